"""The one answer to "is this activity already on Strava?", for the live path and the importer alike.

An activity Strava lists is the same as ours when it carries our sync id in its `external_id` (an
upload of ours, whatever was edited since), or when it starts within `SAME_START` of ours and its
sport is compatible: equal, in the same family (Run/TrailRun/VirtualRun: the athlete may have
refined it on Strava), or unknown/`Workout` on either side (Strava's catch-all, and a default some
devices use). The start is compared both in UTC and on the wall clock, because a manual activity's
UTC start is only a guess at the athlete's time zone, while Strava keeps the wall clock as given.

One athlete cannot start two activities within a minute, so the sport test only guards against a
coincidence of wall clocks; refusing a family member instead would create a duplicate each time the
athlete retyped a run as a trail run.

Hidden start times: since 2024-07-03 Strava reports an activity whose start time the athlete hides as
starting at midnight + 1 s of its day (FACTS.md), so for such an athlete no start is ever close. A
listed start of exactly 00:00:01 on the wall clock (or in UTC) of our day is therefore taken as hidden,
and the activity is ours when its elapsed time is within `SAME_ELAPSED` of ours and, when both sides
know a distance, the distances agree within `SAME_DISTANCE_M` or `SAME_DISTANCE_SHARE`. Our `upload_id`,
where the app has one, identifies the activity as surely as our external_id. Pure: no I/O, no clock.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from shared.model.syncid import sync_id_from_external_id

SAME_START = timedelta(seconds=60)  # starts this close (UTC or wall clock), sports compatible: the same activity

FAMILIES: tuple[frozenset[str], ...] = (
    frozenset({"Run", "TrailRun", "VirtualRun"}),
    frozenset({"Ride", "MountainBikeRide", "GravelRide", "EBikeRide", "EMountainBikeRide", "VirtualRide",
               "Velomobile", "Handcycle"}),
    frozenset({"Walk", "Hike", "Snowshoe"}),
    frozenset({"Swim"}),
    frozenset({"AlpineSki", "BackcountrySki", "NordicSki", "RollerSki", "Snowboard"}),
    frozenset({"Rowing", "VirtualRow", "Canoeing", "Kayaking", "StandUpPaddling"}),
    frozenset({"IceSkate", "InlineSkate", "Skateboard"}),
)
HIDDEN_START = time(0, 0, 1)  # what Strava reports as the start of an activity whose start time is hidden
SAME_ELAPSED = 5.0  # seconds: a hidden start's elapsed time this close to ours...
SAME_DISTANCE_M = 20.0  # ...and its distance this close (metres)...
SAME_DISTANCE_SHARE = 0.01  # ...or this share of ours, whichever is larger

ANY_SPORT = frozenset({"Workout"})  # Strava's catch-all: compatible with whatever the athlete later called it


@dataclass(frozen=True, slots=True)
class ListedActivity:
    """One activity as Strava's listing shows it (a summary), reduced to what matching needs."""

    id: str
    sport_type: str | None
    start: datetime | None  # aware UTC; None when Strava gave no usable time
    start_local: datetime | None  # naive wall clock
    sync_id: str | None  # ours, when its external_id says so
    elapsed_time: float | None = None  # seconds
    distance: float | None = None  # metres
    upload_id: str | None = None

    @classmethod
    def from_summary(cls, summary: Mapping[str, Any]) -> ListedActivity:
        """From one item of GET /athlete/activities; odd or missing fields become None, never an error."""
        return cls(
            id=str(summary.get("id")),
            sport_type=summary.get("sport_type") or summary.get("type"),
            start=strava_time(summary.get("start_date"), local=False),
            start_local=strava_time(summary.get("start_date_local"), local=True),
            sync_id=sync_id_from_external_id(summary.get("external_id")),
            elapsed_time=_number(summary.get("elapsed_time")),
            distance=_number(summary.get("distance")),
            upload_id=None if summary.get("upload_id") in (None, "") else str(summary.get("upload_id")),
        )


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if number == number and number >= 0 else None  # NaN or negative: unusable


def strava_time(value: Any, *, local: bool) -> datetime | None:
    """A Strava timestamp: aware UTC, or (`local`) a naive wall clock, since Strava marks local times with Z."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if local:
        return moment.replace(tzinfo=None)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def compatible(a: str | None, b: str | None) -> bool:
    """Could these two sport types be the same activity (after an edit on Strava, or a default sport)?"""
    if not a or not b or a == b or a in ANY_SPORT or b in ANY_SPORT:
        return True
    return any(a in family and b in family for family in FAMILIES)


def start_gap(listed: ListedActivity, start: datetime, start_local: datetime) -> timedelta | None:
    """How far apart the starts are: the smaller of the UTC and wall-clock gaps; None when Strava gave neither."""
    gaps = [abs(listed.start - start)] if listed.start else []
    if listed.start_local:
        gaps.append(abs(listed.start_local - start_local))
    return min(gaps, default=None)


def hidden_match(listed: ListedActivity, *, start: datetime, start_local: datetime,
                 elapsed_time: float | None, distance: float | None) -> float | None:
    """For a listed start that reads as hidden (00:00:01 of our day): how far the elapsed times are apart, when
    they and the distances (where both are known) agree; None when this is not a hidden-start match."""
    on_our_day = (listed.start_local is not None and listed.start_local.time() == HIDDEN_START
                  and listed.start_local.date() == start_local.date()) or \
                 (listed.start is not None and listed.start.time() == HIDDEN_START
                  and listed.start.date() == start.astimezone(UTC).date())
    if not on_our_day or elapsed_time is None or listed.elapsed_time is None:
        return None
    off = abs(listed.elapsed_time - elapsed_time)
    if off > SAME_ELAPSED:
        return None
    if distance is not None and listed.distance is not None and \
            abs(listed.distance - distance) > max(SAME_DISTANCE_M, SAME_DISTANCE_SHARE * distance):
        return None
    return off


def _ours(listed: ListedActivity, sync_id: str | None, upload_id: str | None) -> bool:
    return (sync_id is not None and listed.sync_id == sync_id) or \
        (upload_id is not None and listed.upload_id == str(upload_id))


def same_activity(listed: ListedActivity, *, sport_type: str | None, start: datetime, start_local: datetime,
                  sync_id: str | None = None, elapsed_time: float | None = None, distance: float | None = None,
                  upload_id: str | None = None) -> bool:
    """The rule itself: ours by external_id or upload_id, or a compatible sport and either a start within
    SAME_START or a hidden start on our day with our elapsed time and distance."""
    if _ours(listed, sync_id, upload_id):
        return True
    if not compatible(listed.sport_type, sport_type):
        return False
    gap = start_gap(listed, start, start_local)
    if gap is not None and gap <= SAME_START:
        return True
    return hidden_match(listed, start=start, start_local=start_local, elapsed_time=elapsed_time,
                        distance=distance) is not None


def closest(candidates: Iterable[ListedActivity], *, sport_type: str | None, start: datetime,
            start_local: datetime, sync_id: str | None = None, elapsed_time: float | None = None,
            distance: float | None = None, upload_id: str | None = None) -> ListedActivity | None:
    """The listed activity that is ours: the first carrying our sync id (or upload id), else the nearest start
    the rule accepts, else the hidden start (see the module) with the nearest elapsed time.

    Nearest, not first, so that of two close candidates (a watch's copy and ours) the better one is taken;
    on a tie the earlier candidate wins.
    """
    pool = list(candidates)
    for listed in pool:
        if _ours(listed, sync_id, upload_id):
            return listed
    best: tuple[timedelta, ListedActivity] | None = None
    hidden: tuple[float, ListedActivity] | None = None
    for listed in pool:
        if not compatible(listed.sport_type, sport_type):
            continue
        gap = start_gap(listed, start, start_local)
        if gap is not None and gap <= SAME_START:
            if best is None or gap < best[0]:
                best = (gap, listed)
            continue
        off = hidden_match(listed, start=start, start_local=start_local, elapsed_time=elapsed_time,
                           distance=distance)
        if off is not None and (hidden is None or off < hidden[0]):
            hidden = (off, listed)
    if best:
        return best[1]
    return hidden[1] if hidden else None
