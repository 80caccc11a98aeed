"""Activity -> StravaActivity: upload or manual, name, sport, times, elapsed time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import gpxpy
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.model.activity import Activity, Point
from shared.runkeeper.payload import parse_payload
from shared.strava.convert import StravaActivity, to_strava
from tests.support.datasets import SEEDS, Seed, generator

LONDON = "Europe/London"


def test_zapier_payload_becomes_an_upload(seed: Seed) -> None:
    parsed = parse_payload(seed.payload())
    assert isinstance(parsed, Activity)
    strava = to_strava(parsed, LONDON)
    assert strava.name == seed.name
    assert (strava.sport_type, strava.trainer, strava.commute) == (seed.sport_type, False, False)
    assert strava.start == seed.start and strava.start.tzinfo is UTC
    assert strava.start_local == (seed.start + timedelta(hours=seed.utc_offset_hours)).replace(tzinfo=None)
    assert strava.description == parsed.notes
    assert strava.gpx is not None and not strava.is_manual
    segments = gpxpy.parse(strava.gpx.decode()).tracks[0].segments
    assert tuple(len(s.points) for s in segments) == seed.segments and segments[0].points[0].time == strava.start
    assert strava.elapsed_time == seed.elapsed_time
    assert "gpx=" not in repr(strava)  # kilobytes of XML stay out of logs


def test_real_payload_elapsed_time_is_the_track() -> None:
    """Without activityDuration (the real Zap does not send it) the track's length is the elapsed time."""
    parsed = parse_payload(SEEDS["real"].payload())
    assert isinstance(parsed, Activity) and parsed.duration is None
    assert to_strava(parsed, LONDON).elapsed_time == round(parsed.points[-1].offset)


def test_synthetic_payload_elapsed_time_is_its_duration_not_the_track() -> None:
    parsed = parse_payload(SEEDS["synthetic"].payload())
    assert isinstance(parsed, Activity) and parsed.duration is not None
    assert to_strava(parsed, LONDON).elapsed_time == round(parsed.duration) != round(parsed.points[-1].offset)


def test_synthetic_manual_payload_is_a_manual_ride() -> None:
    parsed = parse_payload(generator().manual_payload())
    assert isinstance(parsed, Activity)
    strava = to_strava(parsed, LONDON)
    assert strava.is_manual and strava.gpx is None
    assert (strava.sport_type, strava.elapsed_time, strava.distance) == ("Ride", 3600, 20000.0)


def test_without_path_it_is_a_manual_activity() -> None:
    act = Activity(type="Running", start=datetime(2016, 2, 23, 7, 3, tzinfo=ZoneInfo(LONDON)), distance=5000.0,
                   duration=1500.4, equipment="Treadmill", notes="  treadmill intervals  ")
    strava = to_strava(act, LONDON)
    assert strava.is_manual and strava.gpx is None
    assert (strava.sport_type, strava.trainer) == ("Run", True)
    assert (strava.elapsed_time, strava.distance, strava.description) == (1500, 5000.0, "treadmill intervals")
    assert strava.start_local == datetime(2016, 2, 23, 7, 3)


def test_one_point_is_no_track() -> None:
    act = Activity(type="Walking", start=datetime(2022, 1, 1, 9, tzinfo=UTC), points=[Point(1, 2, None, 0.0)],
                   duration=600)
    strava = to_strava(act, LONDON)
    assert strava.gpx is None and strava.elapsed_time == 600


def test_manual_activity_falls_back_to_the_paths_last_offset() -> None:
    act = Activity(type="Walking", start=datetime(2022, 1, 1, 9, tzinfo=UTC), points=[Point(1, 2, None, 754.6)])
    assert to_strava(act, LONDON).elapsed_time == 755


def test_manual_activity_without_any_time_is_a_clear_error() -> None:
    act = Activity(type="Yoga", start=datetime(2022, 1, 1, 9, tzinfo=UTC), distance=0.0)
    with pytest.raises(ValueError, match="no path and no duration"):
        to_strava(act, LONDON)


def test_start_local_uses_the_activitys_own_offset() -> None:
    hong_kong = datetime(2019, 7, 1, 18, 20, 12, tzinfo=timezone(timedelta(hours=8)))
    strava = to_strava(Activity(type="Running", start=hong_kong, duration=60), LONDON)
    assert strava.start_local == datetime(2019, 7, 1, 18, 20, 12)
    assert strava.start == datetime(2019, 7, 1, 10, 20, 12, tzinfo=UTC)
    assert strava.name == "Running activity on Monday 1st July 2019 at 11:20"  # the name follows ACTIVITY_TIMEZONE


def test_a_bare_utc_start_is_placed_in_the_timezone() -> None:
    strava = to_strava(Activity(type="Running", start=datetime(2022, 7, 1, 6, tzinfo=UTC), duration=60), LONDON)
    assert strava.start_local == datetime(2022, 7, 1, 7, 0)


def test_unknown_type_is_a_workout_with_the_type_in_the_name() -> None:
    strava = to_strava(Activity(type="Underwater Hockey", start=datetime(2022, 7, 1, 6, tzinfo=UTC), duration=60),
                       LONDON)
    assert strava.sport_type == "Workout" and strava.name.startswith("Underwater Hockey activity on ")


def test_result_is_frozen() -> None:
    strava = to_strava(Activity(type="Yoga", start=datetime(2022, 7, 1, 6, tzinfo=UTC), duration=60), LONDON)
    assert isinstance(strava, StravaActivity)
    with pytest.raises(AttributeError):
        strava.name = "x"  # type: ignore[misc]


def test_name_uses_runkeepers_spelling_of_a_known_type() -> None:
    strava = to_strava(Activity(type="mountain  biking", start=datetime(2022, 7, 1, 6, tzinfo=UTC), duration=60),
                       LONDON)
    assert strava.name.startswith("Mountain Biking activity on ") and strava.sport_type == "MountainBikeRide"


_kinds = st.sampled_from(["start", "gps", "gps", "gps", "pause", "resume", "end", "manual"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(st.floats(-90, 90), st.floats(-180, 180), st.floats(0, 1e5), _kinds), min_size=2, max_size=40),
    st.lists(st.tuples(st.floats(0, 1e5), st.integers(0, 300)), max_size=20),
    st.text(),
    st.sampled_from(["2022-09-26T18:52:22+01:00", "2022-03-27T01:30:00", "Sun, 30 Oct 2022 01:30:00"]),
)
def test_any_valid_payload_gives_gpx_that_gpxpy_reads(
    rows: list[tuple[float, float, float, str]], hr: list[tuple[float, int]], notes: str, start: str
) -> None:
    rows = sorted(rows, key=lambda r: r[2])
    hr = sorted(hr)
    payload = {
        "activityType": "Running",
        "activityStartTimeIso": start,
        "activityNotes": notes,
        "activityPathLatitude": ",".join(repr(r[0]) for r in rows),
        "activityPathLongitude": ",".join(repr(r[1]) for r in rows),
        "activityPathTimestamp": ",".join(repr(r[2]) for r in rows),
        "activityPathType": ",".join(r[3] for r in rows),
        "activityHeartRateTimestamp": [h[0] for h in hr],
        "activityHeartRateBpm": [h[1] for h in hr],
    }
    parsed = parse_payload(payload)
    assert isinstance(parsed, Activity), parsed
    strava = to_strava(parsed, LONDON)
    assert strava.gpx is not None
    points = [p for seg in gpxpy.parse(strava.gpx.decode("utf-8")).tracks[0].segments for p in seg.points]
    assert [(p.latitude, p.longitude) for p in points] == [(r[0], r[1]) for r in rows]
    assert all(p.time is not None and p.time >= strava.start for p in points)
