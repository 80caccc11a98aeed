"""Payload -> GPX bytes at 1k, 50k and 200k points, against a bare f-string loop (the floor) and gpxpy's writer.

Run: .venv/bin/python -m bench.bench_convert   (prints median / p99 in ms; no asserts, numbers only)
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from shared.model.activity import Activity
from shared.runkeeper.payload import parse_payload
from shared.strava.gpx import activity_to_gpx

START = datetime(2022, 9, 26, 17, 52, 22, tzinfo=UTC)


def make_payload(n: int, seed: int = 1) -> dict[str, str]:
    """A Zapier-shaped payload: comma-separated parallel lists, a pause every 1,000 points, HR every ~4 s."""
    rnd = random.Random(seed)
    lat, lon, ele, t = 51.33598, -0.574555, 24.0, 0.0
    lats, lons, eles, times, kinds = [], [], [], [], []
    for i in range(n):
        lat += rnd.uniform(-1e-4, 1e-4)
        lon += rnd.uniform(-1e-4, 1e-4)
        ele += rnd.uniform(-0.3, 0.3)
        t += rnd.uniform(0.5, 2.0) + (60.0 if i and i % 1000 == 0 else 0.0)
        kind = "gps"
        if i == 0:
            kind = "start"
        elif i == n - 1:
            kind = "end"
        elif i % 1000 == 999:
            kind = "pause"
        elif i % 1000 == 0:
            kind = "resume"
        lats.append(f"{lat:.6f}")
        lons.append(f"{lon:.6f}")
        eles.append(repr(round(ele, 9)))
        times.append(f"{t:.3f}")
        kinds.append(kind)
    hr_t = [f"{x + 0.557:.3f}" for x in range(10, int(t), 4)]
    return {
        "activityType": "Running",
        "activityStartTimeIso": "2022-09-26T18:52:22+01:00",
        "activityNotes": "bench",
        "activityPathLatitude": ",".join(lats),
        "activityPathLongitude": ",".join(lons),
        "activityPathAltitude": ",".join(eles),
        "activityPathTimestamp": ",".join(times),
        "activityPathType": ",".join(kinds),
        "activityHeartRateTimestamp": ",".join(hr_t),
        "activityHeartRateBpm": ",".join(str(rnd.randint(120, 180)) for _ in hr_t),
    }


def ours(payload: dict[str, str]) -> bytes:
    activity = parse_payload(payload)
    assert isinstance(activity, Activity)
    return activity_to_gpx(activity)


def baseline(payload: dict[str, str]) -> bytes:
    """The floor: split the lists and write trkpts with one f-string each; no validation, HR or segments."""
    lats = payload["activityPathLatitude"].split(",")
    lons = payload["activityPathLongitude"].split(",")
    eles = payload["activityPathAltitude"].split(",")
    offsets = payload["activityPathTimestamp"].split(",")
    start = START.timestamp()
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n<gpx version="1.1"><trk><trkseg>\n']
    for lat, lon, ele, off in zip(lats, lons, eles, offsets, strict=True):
        stamp = datetime.fromtimestamp(start + float(off), UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        out.append(f'<trkpt lat="{lat}" lon="{lon}"><ele>{ele}</ele><time>{stamp}</time></trkpt>\n')
    out.append("</trkseg></trk></gpx>\n")
    return "".join(out).encode()


def with_gpxpy(payload: dict[str, str]) -> bytes:
    """The same activity written by gpxpy (segments, no HR): why gpx.py writes points by hand."""
    import gpxpy.gpx

    activity = parse_payload(payload)
    assert isinstance(activity, Activity)
    gpx = gpxpy.gpx.GPX()
    track = gpxpy.gpx.GPXTrack()
    gpx.tracks.append(track)
    segment = gpxpy.gpx.GPXTrackSegment()
    track.segments.append(segment)
    for p in activity.points:
        if p.kind == "resume" and segment.points:
            segment = gpxpy.gpx.GPXTrackSegment()
            track.segments.append(segment)
        when = activity.start + timedelta(seconds=p.offset)
        segment.points.append(gpxpy.gpx.GPXTrackPoint(p.lat, p.lon, p.ele, when))
    return gpx.to_xml(version="1.1").encode()


def measure(fn: Callable[[dict[str, str]], bytes], payload: dict[str, str], runs: int) -> tuple[float, float]:
    fn(payload)  # warm-up
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        fn(payload)
        samples.append((time.perf_counter() - began) * 1000)
    samples.sort()
    return statistics.median(samples), samples[min(len(samples) - 1, int(len(samples) * 0.99))]


def main() -> None:
    print(f"{'points':>8} {'what':<10} {'median ms':>10} {'p99 ms':>10} {'x baseline':>11} {'MB':>6}")
    for n, runs in ((1_000, 200), (50_000, 15), (200_000, 5)):
        payload = make_payload(n)
        base_median, base_p99 = measure(baseline, payload, runs)
        size = len(ours(payload)) / 1e6
        print(f"{n:>8} {'baseline':<10} {base_median:>10.1f} {base_p99:>10.1f} {1.0:>11.2f}")
        median, p99 = measure(ours, payload, runs)
        print(f"{n:>8} {'ours':<10} {median:>10.1f} {p99:>10.1f} {median / base_median:>11.2f} {size:>6.1f}")
        if n <= 50_000:
            median, p99 = measure(with_gpxpy, payload, max(3, runs // 5))
            print(f"{n:>8} {'gpxpy':<10} {median:>10.1f} {p99:>10.1f} {median / base_median:>11.2f}")


if __name__ == "__main__":
    main()
