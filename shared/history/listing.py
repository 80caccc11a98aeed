"""What Strava already has, for the import: which listings to ask for, and which listed activity is which item.

The run lists the athlete's activities around the plan's starts, a page of 200 per call, both to skip
what is already there and to confirm its own uploads in bulk. Matching is shared.model.matching's rule,
with one import-specific twist: each listed activity stands for one item at most. Pure: the calls are
the run's.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from shared.history.plan import Item
from shared.model.matching import ListedActivity, closest

LISTING_MARGIN = timedelta(days=1)  # a manual activity's UTC start is only a guess within a day
LISTING_CHUNK = 150  # our activities per listing call, so one call is usually one page of 200


class StravaIndex:
    """The athlete's Strava activities in a time range, each matched to at most one of ours."""

    def __init__(self, summaries: Iterable[dict[str, Any]] = ()) -> None:
        self._all: dict[str, ListedActivity] = {}
        self._taken: set[str] = set()
        self.add(summaries)

    def add(self, summaries: Iterable[dict[str, Any]]) -> None:
        """Take in one listing's summaries (a later copy of the same id replaces the earlier)."""
        for summary in summaries:
            listed = ListedActivity.from_summary(summary)
            self._all[listed.id] = listed

    def __len__(self) -> int:
        return len(self._all)

    def match(self, item: Item, upload_id: str | None = None) -> ListedActivity | None:
        """Ours by external_id (or our `upload_id`), else the nearest start within a minute (UTC or wall clock)
        with a compatible sport, else a hidden start on its day with its elapsed time and distance."""
        free = (listed for listed in self._all.values() if listed.id not in self._taken)
        found = closest(free, sport_type=item.sport_type, start=item.start, start_local=item.start_local,
                        sync_id=item.sync_id, elapsed_time=item.duration, distance=item.distance,
                        upload_id=upload_id)
        if found is not None:
            self._taken.add(found.id)
        return found


def listing_ranges(items: list[Item]) -> list[tuple[datetime, datetime]]:
    """Contiguous (after, before) ranges covering `items`, each with few enough of ours to fit one page."""
    starts = sorted(i.start for i in items)
    if not starts:
        return []
    bounds = [starts[0] - LISTING_MARGIN]
    for k in range(LISTING_CHUNK, len(starts), LISTING_CHUNK):
        bounds.append(starts[k - 1] + (starts[k] - starts[k - 1]) / 2)
    bounds.append(starts[-1] + LISTING_MARGIN)
    return [(bounds[i] - timedelta(seconds=1), bounds[i + 1]) for i in range(len(bounds) - 1)]
