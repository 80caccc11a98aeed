"""GPX writing: segments, UTC times, heart rate, hostile notes; real Runkeeper tracks round-tripped via a payload."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import gpxpy
import gpxpy.gpx
import pytest

from shared.model.activity import Activity, HeartRate, Point
from shared.runkeeper.payload import parse_payload
from shared.strava.gpx import activity_to_gpx, xml_text
from tests.conftest import data_path
from tests.support.datasets import KINDS, SEEDS, Seed, export, generator

NS = {"g": "http://www.topografix.com/GPX/1/1", "tpx": "http://www.garmin.com/xmlschemas/TrackPointExtension/v1"}
START = datetime(2022, 9, 26, 18, 52, 22, tzinfo=timezone(timedelta(hours=1)))


def activity(kinds: list[str], offsets: list[float] | None = None, **extra: object) -> Activity:
    offsets = offsets if offsets is not None else [float(i) for i in range(len(kinds))]
    points = [Point(51.0 + i / 1000, -0.5, 10.0 + i, t, k) for i, (k, t) in enumerate(zip(kinds, offsets, strict=True))]
    return Activity(type="Running", start=START, points=points, **extra)  # type: ignore[arg-type]


def segments(gpx: bytes) -> list[list[gpxpy.gpx.GPXTrackPoint]]:
    parsed = gpxpy.parse(gpx.decode("utf-8"))
    assert len(parsed.tracks) == 1
    return [list(seg.points) for seg in parsed.tracks[0].segments]


def heart_rates(gpx: bytes) -> list[int | None]:
    root = ET.fromstring(gpx)
    out: list[int | None] = []
    for trkpt in root.iterfind(".//g:trkpt", NS):
        hr = trkpt.find(".//tpx:hr", NS)
        out.append(None if hr is None else int(hr.text or ""))
    return out


# --- the real Zapier payload --------------------------------------------------------------------------------------


def test_zapier_payload_gives_its_segments_with_heart_rate(seed: Seed) -> None:
    """The real payload (one segment of 298 points), then the synthetic one (a pause: two of 150)."""
    parsed = parse_payload(seed.payload())
    assert isinstance(parsed, Activity)
    gpx = activity_to_gpx(parsed)
    segs = segments(gpx)
    assert tuple(len(s) for s in segs) == seed.segments
    assert segs[0][0].time == seed.start
    assert f"<time>{seed.start:%Y-%m-%dT%H:%M:%SZ}</time>".encode() in gpx
    # Expected heart rate per point, computed the slow obvious way: the last sample at or before the point.
    hrs = heart_rates(gpx)
    first_sample = parsed.heart_rate[0].offset
    for point, hr in zip(parsed.points, hrs, strict=True):
        earlier = [s.bpm for s in parsed.heart_rate if s.offset <= point.offset]
        assert hr == (earlier[-1] if earlier else None)
        assert (hr is not None) == (point.offset >= first_sample)
    assert hrs[0] is None and all(hr is not None for hr in hrs[1:])


def test_real_payload_keeps_sub_second_times() -> None:
    parsed = parse_payload(SEEDS["real"].payload())
    assert isinstance(parsed, Activity)
    assert segments(activity_to_gpx(parsed))[0][1].time == datetime(2022, 9, 26, 17, 52, 33, 577000, tzinfo=UTC)


# --- round trips of real Runkeeper GPX files ------------------------------------------------------------------------


def gpx_to_payload(path: Path) -> tuple[dict[str, str], list[list[gpxpy.gpx.GPXTrackPoint]]]:
    """What Zapier would send for this export track: pauses close segments, resumes open the next."""
    segs = [list(s.points) for t in gpxpy.parse(path.read_text(encoding="utf-8")).tracks for s in t.segments]
    segs = [s for s in segs if s]
    start = segs[0][0].time
    assert start is not None
    rows: list[tuple[gpxpy.gpx.GPXTrackPoint, str]] = []
    for i, seg in enumerate(segs):
        for j, p in enumerate(seg):
            kind = "gps"
            if j == 0:
                kind = "start" if i == 0 else "resume"
            elif j == len(seg) - 1:
                kind = "end" if i == len(segs) - 1 else "pause"
            rows.append((p, kind))
    payload = {
        "activityType": "Running",
        "activityStartTimeIso": start.isoformat(),
        "activityPathLatitude": ",".join(repr(p.latitude) for p, _ in rows),
        "activityPathLongitude": ",".join(repr(p.longitude) for p, _ in rows),
        "activityPathAltitude": ",".join("" if p.elevation is None else repr(p.elevation) for p, _ in rows),
        "activityPathTimestamp": ",".join(repr((p.time - start).total_seconds()) for p, _ in rows),  # type: ignore[operator]
        "activityPathType": ",".join(k for _, k in rows),
    }
    return payload, segs


def multi_segment_exports(kind: str) -> list[Path]:
    folder = export("2016", kind).path
    files = [f for f in sorted(folder.glob("*.gpx")) if f.read_text(encoding="utf-8").count("<trkseg>") > 1]
    if kind == "real":
        assert len(files) > 50
    else:  # the generator's paused activities
        assert len(files) == sum(bool(s.pauses) for s in generator().ACTIVITIES_2016 if s.gps) == 2
    return files


def assert_round_trip(path: Path) -> None:
    payload, original = gpx_to_payload(path)
    parsed = parse_payload(payload, "America/Chicago")
    assert isinstance(parsed, Activity), (path.name, parsed[:3])
    back = segments(activity_to_gpx(parsed))
    assert [len(s) for s in back] == [len(s) for s in original], path.name
    for a, b in zip((p for s in original for p in s), (p for s in back for p in s), strict=True):
        assert (a.latitude, a.longitude, a.elevation, a.time) == (b.latitude, b.longitude, b.elevation, b.time)


@pytest.mark.parametrize("name", ["2013-07-25-0653.gpx", "2015-03-06-0855.gpx", "2014-08-02-1050.gpx"])
def test_real_track_round_trip(name: str) -> None:
    path = data_path("exports", "runkeeper-export-2016", name)
    assert_round_trip(path)
    segs = gpx_to_payload(path)[1]
    assert len(segs) > 1  # these are the pause-heavy ones (18 segments in 2015-03-06-0855)


@pytest.mark.parametrize(("name", "count"), [("2016-01-10-1111.gpx", 2), ("2016-02-07-0812.gpx", 4)])
def test_synthetic_track_round_trip(name: str, count: int) -> None:
    path = export("2016", "synthetic").path / name
    assert_round_trip(path)
    assert len(gpx_to_payload(path)[1]) == count


@pytest.mark.parametrize("kind", KINDS)
def test_every_multi_segment_export_track_round_trips(kind: str) -> None:
    for path in multi_segment_exports(kind):
        assert_round_trip(path)


# --- segments ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kinds", "sizes"),
    [
        (["start", "gps", "gps", "end"], [4]),
        (["start", "gps", "pause", "resume", "gps", "end"], [3, 3]),
        (["start", "pause", "resume", "pause", "resume", "end"], [2, 2, 2]),
        (["start", "gps", "pause", "gps", "end"], [3, 2]),  # points after a pause open a segment even without resume
        (["gps", "gps", "start", "gps"], [2, 2]),  # a start after the first point begins a new stretch
        (["start", "resume", "gps"], [1, 2]),
        (["manual", "manual", "gps"], [3]),  # drawn points are ordinary points
        (["start"], [1]),
        (["pause", "gps"], [1, 1]),
    ],
)
def test_segments_follow_pauses_and_resumes(kinds: list[str], sizes: list[int]) -> None:
    assert [len(s) for s in segments(activity_to_gpx(activity(kinds)))] == sizes


def test_no_points_is_an_error_not_an_empty_track() -> None:
    with pytest.raises(ValueError, match="manual activity"):
        activity_to_gpx(Activity(type="Yoga", start=START))


# --- times ------------------------------------------------------------------------------------------------------


def test_times_are_utc_z_with_sub_seconds_kept() -> None:
    gpx = activity_to_gpx(activity(["start", "gps", "gps", "gps", "end"], [0, 0.001, 1.5, 59.999999, 86400.25]))
    text = gpx.decode()
    for stamp in ("2022-09-26T17:52:22Z", "2022-09-26T17:52:22.001Z", "2022-09-26T17:52:23.5Z",
                  "2022-09-26T17:53:21.999999Z", "2022-09-27T17:52:22.25Z"):
        assert f"<time>{stamp}</time>" in text
    times = [p.time for s in segments(gpx) for p in s]
    assert times[2] == datetime(2022, 9, 26, 17, 52, 23, 500000, tzinfo=UTC)


def test_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        activity_to_gpx(Activity(type="Running", start=datetime(2022, 1, 1), points=[Point(1, 2, None, 0)]))


# --- heart rate -------------------------------------------------------------------------------------------------


def test_heart_rate_is_latest_sample_at_or_before_never_before_first() -> None:
    samples = [HeartRate(5.0, 100), HeartRate(10.0, 120), HeartRate(10.0, 121), HeartRate(20.0, 0)]
    act = activity(["start", "gps", "gps", "gps", "gps", "gps", "end"], [0, 4.999, 5, 7, 10, 19.9, 25],
                   heart_rate=samples)
    assert heart_rates(activity_to_gpx(act)) == [None, None, 100, 100, 121, 121, None]  # 0 bpm = no reading


def test_heart_rate_samples_out_of_order_or_points_going_back_still_pick_the_right_sample() -> None:
    samples = [HeartRate(10.0, 120), HeartRate(0.0, 90)]
    act = activity(["gps", "gps", "gps", "gps"], [12, 3, 11, 0], heart_rate=samples)
    assert heart_rates(activity_to_gpx(act)) == [120, 90, 120, 90]


def test_heart_rate_uses_garmin_namespace() -> None:
    gpx = activity_to_gpx(activity(["start", "end"], heart_rate=[HeartRate(0, 150)]))
    assert b'xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v1"' in gpx
    assert b"<gpxtpx:hr>150</gpxtpx:hr>" in gpx


# --- hostile text and odd numbers -------------------------------------------------------------------------------

HOSTILE = "a ]]> b <script>alert('x')</script> & \x00\x08\x1f\ud800 é 🏃 \ufffe </desc></trk>"


def test_notes_cannot_break_the_xml() -> None:
    act = activity(["start", "end"], notes=HOSTILE)
    act.type = "Run <b>&</b>"
    gpx = activity_to_gpx(act)
    root = ET.fromstring(gpx)  # well-formed
    desc = root.find("g:trk/g:desc", NS)
    assert desc is not None
    assert desc.text == "a ]]> b <script>alert('x')</script> &  é 🏃  </desc></trk>"
    assert b"<script>" not in gpx
    parsed = gpxpy.parse(gpx.decode("utf-8"))
    assert parsed.tracks[0].name == "Run <b>&</b>"
    assert len(parsed.tracks[0].segments[0].points) == 2


def test_xml_text_drops_only_what_xml_cannot_carry() -> None:
    assert xml_text("tab\there\nnew\rline") == "tab\there\nnew\rline"
    assert xml_text("\x00\x0b\x0c") == ""


def test_tiny_and_negative_coordinates_never_use_exponents() -> None:
    act = Activity(type="Running", start=START, points=[
        Point(1e-05, -1e-07, 1e-06, 0.0), Point(-0.0, 179.99999999, -12.5, 1.0)])
    gpx = activity_to_gpx(act)
    assert b"e-0" not in gpx
    back = [p for s in segments(gpx) for p in s]
    assert (back[0].latitude, back[0].longitude, back[0].elevation) == (1e-05, -1e-07, 1e-06)
    assert (back[1].longitude, back[1].elevation) == (179.99999999, -12.5)


def test_missing_elevation_writes_no_ele() -> None:
    gpx = activity_to_gpx(Activity(type="Running", start=START, points=[Point(1, 2, None, 0), Point(1, 2, 3, 1)]))
    assert gpx.count(b"<ele>") == 1
