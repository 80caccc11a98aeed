"""The interchange model between Runkeeper (Zapier payload, export) and Strava (GPX, manual activity).

Each converter only knows its own side and this model, so the live path and the importer agree.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

POINT_KINDS = ("start", "gps", "pause", "resume", "end", "manual")


@dataclass(frozen=True, slots=True)
class Point:
    """A path point; `offset` is seconds from the activity start (Runkeeper's `timestamp`)."""

    lat: float
    lon: float
    ele: float | None
    offset: float
    kind: str = "gps"


@dataclass(frozen=True, slots=True)
class HeartRate:
    offset: float
    bpm: int


@dataclass(frozen=True, slots=True)
class Problem:
    """One validation problem; `field` names the input key, with `[i]` for a list element."""

    field: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message}


@dataclass(slots=True)
class Activity:
    type: str  # Runkeeper type, e.g. "Running"
    start: datetime  # timezone-aware
    points: list[Point] = field(default_factory=list)
    heart_rate: list[HeartRate] = field(default_factory=list)
    notes: str | None = None
    distance: float | None = None  # metres
    duration: float | None = None  # seconds
    calories: float | None = None
    climb: float | None = None  # metres
    equipment: str | None = None
    secondary_type: str | None = None
    source_id: str | None = None  # Runkeeper's activity id / uri when known

    def measured_distance(self) -> float | None:
        """Metres: the stated distance, else the length of the path (great circles), else None."""
        if self.distance:
            return self.distance
        if not self.has_path:
            return None
        total = 0.0
        for a, b in zip(self.points, self.points[1:], strict=False):
            if b.kind != "resume":  # a pause is no distance covered
                total += _metres(a, b)
        return round(total, 1)

    def measured_duration(self) -> float | None:
        """Seconds: the stated duration, else the path's last offset, else None."""
        if self.duration:
            return self.duration
        return self.points[-1].offset if self.has_path and self.points[-1].offset > 0 else None

    @property
    def has_path(self) -> bool:
        return len(self.points) >= 2  # one point is no track: sent as a manual activity


def _metres(a: Point, b: Point) -> float:
    """Great-circle distance between two points (haversine; the Earth as a sphere is close enough here)."""
    from math import asin, cos, radians, sin, sqrt

    dlat, dlon = radians(b.lat - a.lat), radians(b.lon - a.lon)
    h = sin(dlat / 2) ** 2 + cos(radians(a.lat)) * cos(radians(b.lat)) * sin(dlon / 2) ** 2
    return 2 * 6_371_000 * asin(sqrt(min(1.0, h)))
