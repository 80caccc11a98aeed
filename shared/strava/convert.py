"""Activity -> what the Strava step sends: an upload (GPX) when there is a track, else a manual activity."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from datetime import timezone as fixed_offset

from shared.model.activity import Activity
from shared.model.naming import activity_name
from shared.model.sports import strava_sport
from shared.strava.gpx import activity_to_gpx


@dataclass(frozen=True)
class StravaActivity:
    name: str
    sport_type: str
    trainer: bool
    commute: bool
    description: str | None
    start: datetime  # aware, UTC
    start_local: datetime  # naive local wall clock, for Strava's start_date_local
    elapsed_time: int | None  # seconds
    distance: float | None  # metres
    gpx: bytes | None = field(repr=False)  # None: a manual activity, created with POST /activities

    @property
    def is_manual(self) -> bool:
        return self.gpx is None


def _local_wall_clock(start: datetime, timezone: str) -> datetime:
    """The activity's own offset when it came with one; a bare UTC time or a zone's time goes through `timezone`.

    `Z`/+00:00 usually means "the offset was not known", so the configured zone is the better guess there.
    """
    tz = start.tzinfo
    if isinstance(tz, fixed_offset) and start.utcoffset():
        return start.replace(tzinfo=None)
    from zoneinfo import ZoneInfo

    return start.astimezone(ZoneInfo(timezone)).replace(tzinfo=None)


def _elapsed_time(activity: Activity) -> int | None:
    """Duration when known (Runkeeper's only time for a manual entry), else how long the track lasted."""
    if activity.duration:
        return round(activity.duration)
    if activity.points:
        seconds = round(activity.points[-1].offset)
        return seconds or None
    return None


def to_strava(activity: Activity, timezone: str, air_temps: Sequence[float | None] | None = None) -> StravaActivity:
    """Everything Strava needs for `activity`; raises ValueError for a manual activity with no time at all.

    `air_temps`: one air temperature per point (the optional weather enrichment), written into the GPX.
    """
    sport = strava_sport(activity.type, activity.equipment, activity.secondary_type)
    elapsed = _elapsed_time(activity)
    gpx = activity_to_gpx(activity, air_temps) if activity.has_path else None
    if gpx is None and not elapsed:
        raise ValueError("activity has no path and no duration: Strava needs an elapsed time for a manual activity")
    return StravaActivity(
        name=activity_name(activity.type, activity.start, timezone),
        sport_type=sport.sport_type,
        trainer=sport.trainer,
        commute=False,
        description=(activity.notes or "").strip() or None,
        start=activity.start.astimezone(UTC),
        start_local=_local_wall_clock(activity.start, timezone),
        elapsed_time=elapsed,
        distance=activity.distance,
        gpx=gpx,
    )
