"""The one place tests build what they post: manual activities, GPS tracks, big payloads, hostile files."""

from __future__ import annotations

from typing import Any


def manual(start_iso: str, activity_type: str = "Running", duration: int = 1800, distance: str = "5000",
           **extra: str) -> dict[str, Any]:
    """A small activity without GPS (a manual one): cheap to post, easy to tell apart by its start."""
    return {"activityType": activity_type, "activityStartTimeIso": start_iso, "activityDuration": str(duration),
            "activityTotalDistance": distance, **extra}


def track(start_iso: str, points: int = 5) -> dict[str, Any]:
    """A short GPS run starting at `start_iso`, one point every 10 s."""
    kinds = ["start"] + ["gps"] * (points - 2) + ["end"]
    return {
        "activityType": "Running", "activityStartTimeIso": start_iso,
        "activityPathLatitude": ",".join(f"{51.5 + i * 0.0005:.6f}" for i in range(points)),
        "activityPathLongitude": ",".join("-0.100000" for _ in range(points)),
        "activityPathAltitude": ",".join("12" for _ in range(points)),
        "activityPathTimestamp": ",".join(str(10 * i) for i in range(points)),
        "activityPathType": ",".join(kinds),
    }


def big_payload(seed: dict[str, Any], points: int) -> dict[str, Any]:
    """A `points`-point run made of the real track's coordinates, one point a second."""
    lat = seed["activityPathLatitude"].split(",")
    lon = seed["activityPathLongitude"].split(",")
    n = len(lat)
    kinds = ["start"] + ["gps"] * (points - 2) + ["end"]
    return {
        "activityType": "Running",
        "activityStartTimeIso": "2023-05-01T07:00:00+01:00",
        "activityPathLatitude": ",".join(lat[i % n] for i in range(points)),
        "activityPathLongitude": ",".join(lon[i % n] for i in range(points)),
        "activityPathAltitude": ",".join("20" for _ in range(points)),
        "activityPathTimestamp": ",".join(str(i) for i in range(points)),
        "activityPathType": ",".join(kinds),
    }


# An XML entity bomb (a billion laughs): a GPX reader must refuse it without expanding it.
BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE gpx [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<gpx version="1.1"><trk><name>&lol9;</name></trk></gpx>
"""
