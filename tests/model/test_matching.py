"""The one "is this activity already on Strava?" rule, as a pure function: times, tolerance, sports, our ids."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.model.matching import (
    SAME_START,
    ListedActivity,
    closest,
    compatible,
    same_activity,
    start_gap,
    strava_time,
)
from shared.model.syncid import external_id, sync_id

START = datetime(2024, 1, 1, 8, 0, tzinfo=UTC)
LOCAL = datetime(2024, 1, 1, 9, 0)  # the athlete's wall clock (UTC+1)


def listed(id_: int = 1, *, sport: str | None = "Run", utc: str | None = None, local: str | None = None,
           **extra: Any) -> ListedActivity:
    summary: dict[str, Any] = {"id": id_, "sport_type": sport, "start_date": utc, "start_date_local": local}
    return ListedActivity.from_summary({**summary, **extra})


def same(act: ListedActivity, sport: str = "Run", start: datetime = START, local: datetime = LOCAL,
         ours: str | None = None) -> bool:
    return same_activity(act, sport_type=sport, start=start, start_local=local, sync_id=ours)


def test_manual_match_window() -> None:
    """Moved from test_sync.py (sync._close): the live path's window is now the shared rule's."""
    start = datetime(2024, 1, 1, 8, 0, tzinfo=UTC)
    assert same(listed(utc="2024-01-01T08:00:59Z"), start=start)
    assert not same(listed(utc="2024-01-01T08:01:01Z"), start=start)
    assert same(listed(local="2024-01-01T08:00:30Z"), local=start.replace(tzinfo=None))  # wall clocks compare naive
    assert not same(listed(utc="not a date"), start=start) and not same(listed(utc=None), start=start)


def test_same_start_is_the_same_activity() -> None:
    assert same(listed(utc="2024-01-01T08:00:00Z"))
    assert same(listed(utc="2024-01-01T08:00:00+00:00", local="2024-01-01T09:00:00Z"))


@pytest.mark.parametrize(("seconds", "expected"), [(0, True), (-59, True), (60, True), (-60, True), (61, False),
                                                   (-61, False), (3600, False)])
def test_tolerance_on_either_side(seconds: int, expected: bool) -> None:
    moment = START + timedelta(seconds=seconds)
    assert same(listed(utc=moment.strftime("%Y-%m-%dT%H:%M:%SZ"))) is expected
    assert SAME_START == timedelta(seconds=60)


def test_the_wall_clock_matches_when_the_utc_guess_is_off() -> None:
    """A manual activity's UTC start is a guess at the athlete's zone; Strava keeps the wall clock as given."""
    wrong_zone = listed(utc="2024-01-01T03:00:20Z", local="2024-01-01T09:00:20Z")
    assert same(wrong_zone)
    assert start_gap(wrong_zone, START, LOCAL) == timedelta(seconds=20)
    assert not same(listed(utc="2024-01-01T03:00:20Z", local="2024-01-01T04:00:20Z"))


def test_compatible_sports() -> None:
    """Moved from test_importer.py."""
    assert compatible("Run", "TrailRun") and compatible("Ride", "VirtualRide") and compatible("Walk", "Hike")
    assert compatible("Workout", "Swim") and compatible(None, "Run")
    assert not compatible("Run", "Ride") and not compatible("Swim", "Walk")


def test_sport_families_and_catch_alls() -> None:
    assert compatible("Run", "TrailRun") and compatible("VirtualRun", "Run")
    assert compatible("Ride", "GravelRide") and compatible("Walk", "Hike") and compatible("Kayaking", "Rowing")
    assert compatible("Workout", "Swim") and compatible("Ride", "Workout")  # Strava's catch-all
    assert compatible(None, "Run") and compatible("Run", None) and compatible("", "Run")  # unknown: the time decides
    assert not compatible("Run", "Ride") and not compatible("Swim", "Walk") and not compatible("Hike", "TrailRun")
    assert same(listed(sport="TrailRun", utc="2024-01-01T08:00:10Z"))  # retyped on Strava: still ours
    assert same(listed(sport=None, utc="2024-01-01T08:00:10Z"))


def test_a_different_sport_at_the_same_time_is_another_activity() -> None:
    assert not same(listed(sport="Ride", utc="2024-01-01T08:00:00Z"))
    assert not same(listed(sport="Swim", local="2024-01-01T09:00:00Z"))


def test_type_stands_in_for_a_missing_sport_type() -> None:
    old = ListedActivity.from_summary({"id": 5, "type": "Ride", "start_date": "2024-01-01T08:00:00Z"})
    assert old.sport_type == "Ride" and not same(old)


def test_our_external_id_wins_whatever_the_time_or_sport() -> None:
    ours = sync_id(START, "Run")
    tagged = listed(sport="Workout", utc="2021-01-01T00:00:00Z", external_id=external_id(ours) + ".gpx.gz")
    assert tagged.sync_id == ours
    assert same(tagged, ours=ours)
    assert not same(tagged)  # without our id to compare, it is only an activity three years earlier


def test_manual_and_gps_activities_follow_one_rule() -> None:
    """Strava's listing says nothing of how an activity was made: a manual one and an upload match alike."""
    manual = listed(utc="2024-01-01T08:00:30Z", manual=True)
    upload = listed(2, utc="2024-01-01T08:00:30Z", manual=False, external_id="garmin_push_123")
    assert same(manual) and same(upload) and upload.sync_id is None


def test_closest_prefers_our_id_then_the_nearest_start() -> None:
    ours = sync_id(START, "Run")
    pool = [listed(1, sport="Ride", utc="2024-01-01T08:00:10Z"), listed(2, utc="2024-01-01T08:00:50Z"),
            listed(3, utc="2024-01-01T08:00:20Z"), listed(4, utc="2024-01-01T07:59:40Z")]
    assert closest(pool, sport_type="Run", start=START, start_local=LOCAL).id == "3"  # 20 s beats 50 s; tie: first
    tagged = [*pool, listed(9, utc="2020-01-01T00:00:00Z", external_id=external_id(ours))]
    assert closest(tagged, sport_type="Run", start=START, start_local=LOCAL, sync_id=ours).id == "9"
    assert closest([], sport_type="Run", start=START, start_local=LOCAL) is None
    assert closest(pool[:1], sport_type="Run", start=START, start_local=LOCAL) is None


def test_strava_times() -> None:
    assert strava_time("2024-01-01T08:00:00Z", local=False) == START
    assert strava_time("2024-01-01T08:00:00", local=False) == START  # no offset: UTC
    assert strava_time("2024-01-01T10:00:00+02:00", local=False) == START
    assert strava_time("2024-01-01T09:00:00Z", local=True) == LOCAL  # Strava's Z on a local time means nothing
    assert strava_time("yesterday", local=False) is None and strava_time(None, local=True) is None
    assert strava_time(12345, local=False) is None


# ---- hidden start times (FACTS.md: since 2024-07-03, midnight + 1 s of the day) ----------------------------
HIDDEN_UTC, HIDDEN_LOCAL = "2024-01-01T00:00:01Z", "2024-01-01T00:00:01Z"


def hidden(id_: int = 1, *, elapsed: Any = 1800, distance: Any = 5000.0, utc: str = HIDDEN_UTC,
           local: str = HIDDEN_LOCAL, **extra: Any) -> ListedActivity:
    return listed(id_, utc=utc, local=local, elapsed_time=elapsed, distance=distance, **extra)


def same_hidden(act: ListedActivity, elapsed: float | None = 1800, distance: float | None = 5000.0,
                start: datetime = START, local: datetime = LOCAL, sport: str = "Run") -> bool:
    return same_activity(act, sport_type=sport, start=start, start_local=local, elapsed_time=elapsed,
                         distance=distance)


def test_summary_carries_elapsed_distance_and_upload_id() -> None:
    act = hidden(upload_id=987654321012)
    assert (act.elapsed_time, act.distance, act.upload_id) == (1800.0, 5000.0, "987654321012")
    odd = listed(elapsed_time="x", distance=None, upload_id=None)
    assert (odd.elapsed_time, odd.distance, odd.upload_id) == (None, None, None)


def test_hidden_start_with_same_elapsed_and_distance_matches() -> None:
    assert same_hidden(hidden())
    assert same_hidden(hidden(elapsed=1803, distance=5030.0))  # within a few seconds and 1 %
    assert same_hidden(hidden(distance=0.0), distance=None)  # ours has no distance: elapsed alone decides
    assert same_hidden(hidden(local="2024-01-01T00:00:01Z", utc="2023-12-31T23:00:01Z"))  # only the wall clock hidden
    assert same_hidden(hidden(local="2024-01-01T00:00:01Z", utc="2023-12-31T23:00:01Z"), sport="TrailRun")


def test_hidden_start_with_other_elapsed_or_distance_does_not_match() -> None:
    assert not same_hidden(hidden(elapsed=1830))
    assert not same_hidden(hidden(distance=5200.0))
    assert not same_hidden(hidden(distance=4900.0))
    assert not same_hidden(hidden(elapsed=None))
    assert not same_hidden(hidden(), elapsed=None)
    assert not same_hidden(hidden(), sport="Ride")


def test_hidden_start_on_another_day_or_another_time_does_not_match() -> None:
    assert not same_hidden(hidden(utc="2024-01-02T00:00:01Z", local="2024-01-02T00:00:01Z"))
    assert not same_hidden(hidden(utc="2023-12-31T00:00:01Z", local="2023-12-31T00:00:01Z"))
    assert not same_hidden(hidden(utc="2024-01-01T00:00:02Z", local="2024-01-01T00:00:02Z"))  # not Strava's mark


def test_closest_prefers_a_close_start_then_the_nearest_hidden_elapsed() -> None:
    near = listed(1, utc="2024-01-01T08:00:30Z", elapsed_time=999, distance=1.0)
    far, nearer = hidden(2, elapsed=1804), hidden(3, elapsed=1801)
    kw: dict[str, Any] = {"sport_type": "Run", "start": START, "start_local": LOCAL, "elapsed_time": 1800,
                          "distance": 5000.0}
    assert closest([far, near, nearer], **kw) is near
    assert closest([far, nearer], **kw) is nearer
    assert closest([hidden(4, elapsed=1900)], **kw) is None


def test_ours_by_upload_id() -> None:
    act = listed(7, utc="2020-05-05T10:00:00Z", upload_id=42)
    assert same_activity(act, sport_type="Ride", start=START, start_local=LOCAL, upload_id="42")
    assert closest([listed(1), act], sport_type="Run", start=START, start_local=LOCAL, upload_id="42") is act
    assert not same_activity(act, sport_type="Run", start=START, start_local=LOCAL, upload_id="43")
