"""Payload parsing: every accepted spelling, every validation problem (named by field), and never an exception."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.model.activity import Activity, HeartRate, Point, Problem
from shared.runkeeper.payload import PROBLEMS_PER_FIELD, normalise_key, parse_payload
from tests.conftest import data_path
from tests.support.datasets import SEEDS, Seed


def real_payload() -> dict[str, object]:
    return json.loads(data_path("zapier", "example-seed-app.json").read_text(encoding="utf-8"))


def minimal(**extra: object) -> dict[str, object]:
    payload: dict[str, object] = {
        "activityType": "Running",
        "activityStartTimeIso": "2022-09-26T18:52:22+01:00",
        "activityPathLatitude": "51.1,51.2,51.3",
        "activityPathLongitude": "-0.1,-0.2,-0.3",
        "activityPathAltitude": "10,11,12",
        "activityPathTimestamp": "0,5.5,10",
        "activityPathType": "start,gps,end",
    }
    payload.update(extra)
    return payload


def ok(payload: object, tz: str = "Europe/London") -> Activity:
    result = parse_payload(payload, tz)  # type: ignore[arg-type]
    assert isinstance(result, Activity), result
    return result


def problems(payload: object) -> list[Problem]:
    result = parse_payload(payload)  # type: ignore[arg-type]
    assert isinstance(result, list) and result, result
    assert all(isinstance(p, Problem) for p in result)
    return result


def fields(found: list[Problem]) -> set[str]:
    return {p.field for p in found}


def problem_for(found: list[Problem], field: str) -> Problem:
    matches = [p for p in found if p.field == field]
    assert matches, f"no problem names {field!r}: {found}"
    return matches[0]


# --- the real payload -------------------------------------------------------------------------------------------


def test_zapier_payload_parses_completely(seed: Seed) -> None:
    """The real payload, then the synthetic one (a pause, heart rate on its own clock)."""
    activity = ok(seed.payload())
    assert activity.type == "Running"
    assert activity.start == seed.start
    assert activity.start.utcoffset() == timedelta(hours=seed.utc_offset_hours)
    assert len(activity.points) == seed.points
    kinds = ["start"] + ["gps"] * (seed.points - 2) + ["end"]
    at = 0
    for size in seed.segments[:-1]:  # a pause closes each segment but the last, a resume opens the next
        at += size
        kinds[at - 1], kinds[at] = "pause", "resume"
    assert [p.kind for p in activity.points] == kinds
    assert len(activity.heart_rate) == seed.heart_rate
    assert activity.notes is not None and activity.notes.startswith(seed.notes_start)


def test_real_zapier_payload_values() -> None:
    activity = ok(real_payload())
    assert activity.points[0] == Point(51.33598, -0.574555, 23.97126333333333, 0.0, "start")
    assert activity.points[1].offset == 11.577
    assert activity.heart_rate[0] == HeartRate(10.557, 160)


def test_synthetic_payload_values() -> None:
    """payload-small.json carries what the user's Zap does not send: distance, duration, calories."""
    activity = ok(SEEDS["synthetic"].payload())
    assert (activity.distance, activity.duration) == (3827.1, 1327.602)
    assert activity.points[0].offset == 0.0 and activity.points[1].offset == 4.602
    assert activity.heart_rate[0].offset == 3.917  # between the first two points: its own clock
    path_times = {p.offset for p in activity.points}
    assert not [s for s in activity.heart_rate if s.offset in path_times]


def test_payload_with_api_fields_drops_them_and_never_echoes_the_key(seed: Seed) -> None:
    payload = seed.payload() | {"apiKey": "s3cret-api-key", "apiEndpoint": "https://example.invalid/api"}
    activity = ok(payload)
    assert "s3cret" not in repr(activity)
    bad = seed.payload() | {"apiKey": "s3cret-api-key", "activityType": ""}
    assert "s3cret" not in repr(problems(bad))


# --- key spellings ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "normal"),
    [
        ("activityPathLatitude", "pathlatitude"),
        ("path_latitude", "pathlatitude"),
        ("Activity Path Latitude", "pathlatitude"),
        ("ACTIVITY-PATH-LATITUDE", "pathlatitude"),
        ("activity_id", "id"),
        ("activity", "activity"),
        ("Start Time ISO", "starttimeiso"),
    ],
)
def test_normalise_key(key: str, normal: str) -> None:
    assert normalise_key(key) == normal


def test_health_graph_snake_case_keys() -> None:
    activity = ok({
        "type": "Cycling",
        "start_time": "Tue, 1 Mar 2011 07:00:00",
        "utc_offset": -5,
        "notes": "to work",
        "path_latitude": [40.1, 40.2],
        "path_longitude": [-74.1, -74.2],
        "path_altitude": [5, None],
        "path_timestamp": [0, 60],
        "path_type": ["start", "end"],
        "heart_rate": [120, 130],
        "heart_rate_timestamp": [1, 59.5],
        "total_distance": 1234.5,
        "duration": 3600,
        "total_calories": 250,
        "climb": 12,
        "equipment": "None",
        "secondary_type": "commute",
        "activity_id": 12345,
        "uri": "/fitnessActivities/12345",
    })
    assert activity.type == "Cycling"
    assert activity.start == datetime(2011, 3, 1, 12, 0, tzinfo=UTC)
    assert activity.start.utcoffset() == timedelta(hours=-5)
    assert activity.points == [Point(40.1, -74.1, 5.0, 0.0, "start"), Point(40.2, -74.2, None, 60.0, "end")]
    assert activity.heart_rate == [HeartRate(1.0, 120), HeartRate(59.5, 130)]
    assert (activity.distance, activity.duration, activity.calories, activity.climb) == (1234.5, 3600, 250, 12)
    assert activity.equipment is None  # Runkeeper's "None" means no equipment
    assert (activity.secondary_type, activity.source_id, activity.notes) == ("commute", "12345", "to work")


def test_health_graph_objects_for_path_and_heart_rate() -> None:
    activity = ok({
        "type": "Running",
        "start_time": "Sat, 1 Jan 2011 00:00:00",
        "utc_offset": 5.5,
        "path": [
            {"timestamp": 0, "latitude": 12.9, "longitude": 77.5, "altitude": 900, "type": "start"},
            {"timestamp": 10.25, "latitude": 12.91, "longitude": 77.51, "type": "end"},
        ],
        "heart_rate": [{"timestamp": 2, "heart_rate": 99}],
        "uri": "/fitnessActivities/77",
    })
    assert activity.points == [Point(12.9, 77.5, 900.0, 0.0, "start"), Point(12.91, 77.51, None, 10.25, "end")]
    assert activity.heart_rate == [HeartRate(2.0, 99)]
    assert activity.start.utcoffset() == timedelta(hours=5, minutes=30)
    assert activity.source_id == "/fitnessActivities/77"


def test_zapier_labels() -> None:
    activity = ok({
        "Activity Type": "Walking",
        "Activity Start Time ISO": "2022-06-01T07:00:00+02:00",
        "Activity Path Latitude": "1,2",
        "Activity Path Longitude": "3,4",
        "Activity Path Timestamp": "0,1",
        "Activity Heart Rate Heart Rate": "100",
        "Activity Heart Rate Timestamp": "0.5",
        "Some Zapier Field": {"nested": "ignored"},
    })
    assert activity.type == "Walking"
    assert [(p.lat, p.lon, p.kind) for p in activity.points] == [(1.0, 3.0, "gps"), (2.0, 4.0, "gps")]
    assert activity.heart_rate == [HeartRate(0.5, 100)]


def test_empty_strings_and_nulls_are_absent() -> None:
    activity = ok(minimal(activityNotes="", activityHeartRateBpm="", activityHeartRateTimestamp=None,
                          activityPathAltitude="", duration=""))
    assert activity.notes is None and activity.heart_rate == [] and activity.duration is None
    assert all(p.ele is None for p in activity.points)


def test_json_arrays_and_numeric_strings_mix() -> None:
    activity = ok(minimal(activityPathLatitude=[51.1, "51.2", 51], activityPathTimestamp=["0", 5, " 10 "]))
    assert [p.lat for p in activity.points] == [51.1, 51.2, 51.0]
    assert [p.offset for p in activity.points] == [0.0, 5.0, 10.0]


def test_activity_without_path_is_valid() -> None:
    activity = ok({"activityType": "Yoga", "activityStartTimeIso": "2022-01-02T08:00:00Z", "duration": "1:02:03"})
    assert activity.points == [] and not activity.has_path
    assert activity.duration == 3723


def test_equal_spellings_of_one_field_agree_or_are_reported() -> None:
    assert ok(minimal(type="Running")).type == "Running"
    found = problems(minimal(type="Cycling"))
    assert problem_for(found, "type").message == "conflicts with activityType: send only one of them"


# --- start time -------------------------------------------------------------------------------------------------


def test_iso_start_keeps_its_offset_and_utc_offset_is_ignored_then() -> None:
    activity = ok(minimal(activityStartTimeIso="2019-07-01T18:20:12+08:00", utc_offset=3))
    assert activity.start.utcoffset() == timedelta(hours=8)


def test_start_without_offset_uses_the_timezone_even_across_dst() -> None:
    summer = ok(minimal(activityStartTimeIso="2022-09-26T18:52:22"))
    assert summer.start.astimezone(UTC) == datetime(2022, 9, 26, 17, 52, 22, tzinfo=UTC)
    winter = ok(minimal(activityStartTimeIso="2022-12-26T18:52:22"))
    assert winter.start.astimezone(UTC) == datetime(2022, 12, 26, 18, 52, 22, tzinfo=UTC)
    tokyo = ok({"type": "Running", "start_time": "Tue, 1 Mar 2011 07:00:00"}, tz="Asia/Tokyo")
    assert tokyo.start.astimezone(UTC) == datetime(2011, 2, 28, 22, 0, tzinfo=UTC)


def test_runkeeper_time_with_utc_offset_and_sub_seconds() -> None:
    activity = ok({"type": "Running", "start_time": "Mon, 26 Sep 2022 18:52:22.5", "utc_offset": "1"})
    assert activity.start == datetime(2022, 9, 26, 18, 52, 22, 500000, tzinfo=timezone(timedelta(hours=1)))


@pytest.mark.parametrize(
    ("value", "words"),
    [
        ("yesterday", "not a date and time"),
        ("2022-09-26", "not a date and time"),
        ("2022-02-30T10:00:00Z", "not a date and time"),
        ("Mon, 31 Feb 2022 10:00:00", "not a valid date/time"),
        ("Mon, 1 Foo 2022 10:00:00", "unknown month"),
        ("1066-10-14T09:00:00Z", "outside"),
    ],
)
def test_bad_start_time_names_the_field(value: str, words: str) -> None:
    found = problems(minimal(activityStartTimeIso=value))
    assert words in problem_for(found, "activityStartTimeIso").message


def test_start_time_must_be_text() -> None:
    found = problems(minimal(activityStartTimeIso=1664214742))
    assert problem_for(found, "activityStartTimeIso").message == "must be a date and time as text, not a number"


@pytest.mark.parametrize("offset", [15, "x", float("nan"), [1]])
def test_bad_utc_offset(offset: object) -> None:
    found = problems({"type": "Running", "start_time": "Tue, 1 Mar 2011 07:00:00", "utc_offset": offset})
    assert problem_for(found, "utc_offset")


# --- validation: every problem at once, each naming its field --------------------------------------------------


def test_missing_type_and_start_are_both_reported() -> None:
    found = problems({"activityPathLatitude": "1", "activityPathLongitude": "2", "activityPathTimestamp": "0"})
    assert "is missing" in problem_for(found, "activityType").message
    assert "is missing" in problem_for(found, "activityStartTimeIso").message


def test_missing_type_reported_under_the_sent_spelling_style() -> None:
    found = problems({"start_time": "Tue, 1 Mar 2011 07:00:00", "utc_offset": 0, "activityType": "  "})
    assert fields(found) == {"activityType"}


def test_unequal_list_lengths_name_the_list() -> None:
    found = problems(minimal(activityPathLongitude="1,2", activityPathType="start,gps,gps,end"))
    assert problem_for(found, "activityPathLongitude").message == "has 2 values but activityPathLatitude has 3"
    assert problem_for(found, "activityPathType").message == "has 4 values but activityPathLatitude has 3"


def test_heart_rate_lists_of_unequal_length() -> None:
    found = problems(minimal(activityHeartRateTimestamp="1,2,3", activityHeartRateBpm="100,101"))
    assert problem_for(found, "activityHeartRateBpm").message == "has 2 values but activityHeartRateTimestamp has 3"


def test_half_a_path_or_half_a_heart_rate_is_reported() -> None:
    found = problems(minimal(activityPathTimestamp=None, activityHeartRateBpm="100"))
    assert "is missing" in problem_for(found, "activityPathTimestamp").message
    assert "is missing" in problem_for(found, "activityHeartRateTimestamp").message


def test_non_numeric_values_name_field_and_index() -> None:
    found = problems(minimal(activityPathLatitude="51.1,abc,51.3", activityPathAltitude="1,2,zz",
                             activityPathTimestamp="0,,10", activityHeartRateBpm="1e999",
                             activityHeartRateTimestamp="1_0"))
    assert problem_for(found, "activityPathLatitude[1]").message == "is not a number: 'abc'"
    assert problem_for(found, "activityPathAltitude[2]").message == "is not a number: 'zz'"
    assert problem_for(found, "activityPathTimestamp[1]").message == "is empty"
    assert problem_for(found, "activityHeartRateBpm[0]").message == "must be a finite number"
    assert "not a number" in problem_for(found, "activityHeartRateTimestamp[0]").message


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), "NaN", "-Infinity", 10**400, True, None, {"a": 1}, [1]])
def test_rejects_nan_infinity_huge_booleans_and_nesting_in_lists(bad: object) -> None:
    found = problems(minimal(activityPathLatitude=[51.1, bad, 51.3]))
    assert problem_for(found, "activityPathLatitude[1]")


def test_latitude_longitude_out_of_range() -> None:
    found = problems(minimal(activityPathLatitude="91,51.2,-90.5", activityPathLongitude="180,-180.01,0"))
    assert problem_for(found, "activityPathLatitude[0]").message == "latitude must be between -90 and 90, not 91"
    assert "-90.5" in problem_for(found, "activityPathLatitude[2]").message
    assert "longitude must be between -180 and 180" in problem_for(found, "activityPathLongitude[1]").message
    assert "activityPathLongitude[0]" not in fields(found)  # 180 itself is fine


def test_timestamps_going_backwards_path_and_heart_rate() -> None:
    found = problems(minimal(activityPathTimestamp="0,10,5", activityHeartRateTimestamp="3,2",
                             activityHeartRateBpm="100,110"))
    assert problem_for(found, "activityPathTimestamp[2]").message == "timestamp 5 goes backwards (previous 10)"
    assert "goes backwards" in problem_for(found, "activityHeartRateTimestamp[1]").message


def test_equal_timestamps_are_not_backwards() -> None:
    assert len(ok(minimal(activityPathTimestamp="0,5,5")).points) == 3


def test_negative_and_huge_offsets() -> None:
    found = problems(minimal(activityPathTimestamp="-1,5,1e12"))
    assert "between 0 and" in problem_for(found, "activityPathTimestamp[0]").message
    assert "between 0 and" in problem_for(found, "activityPathTimestamp[2]").message


def test_heart_rate_out_of_range() -> None:
    found = problems(minimal(activityHeartRateTimestamp="1,2", activityHeartRateBpm="-5,301"))
    assert {"activityHeartRateBpm[0]", "activityHeartRateBpm[1]"} <= fields(found)


def test_unknown_point_type() -> None:
    found = problems(minimal(activityPathType="start,jog,end"))
    assert "unknown point type 'jog'" in problem_for(found, "activityPathType[1]").message


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("activityType", {"name": "Running"}, "must be text, not an object"),
        ("activityNotes", ["a", "b"], "must be text, not a list"),
        ("equipment", True, "must be text, not true/false"),
        ("activityPathLatitude", {"0": 51.1}, "must be a list or comma-separated values, not an object"),
        ("total_distance", [1, 2], "must be a number, not a list"),
        ("duration", "long", "is not a number: 'long'"),
        ("total_calories", -1, "calories must be between 0 and 1e+06, not -1"),
        ("path", "51,0", "must be a list of objects, not text"),
    ],
)
def test_nested_or_wrong_kinds_where_scalars_belong(key: str, value: object, message: str) -> None:
    found = problems(minimal(**{key: value}) if key != "path" else
                     {"type": "Running", "start_time": "Tue, 1 Mar 2011 07:00:00", key: value})
    assert problem_for(found, key).message == message


def test_health_graph_objects_name_index_and_sub_key() -> None:
    found = problems({
        "type": "Running", "start_time": "Tue, 1 Mar 2011 07:00:00",
        "path": [{"timestamp": 0, "latitude": 1, "longitude": 2}, {"timestamp": 1, "latitude": 100}, "x"],
    })
    assert "latitude must be between" in problem_for(found, "path[1].latitude").message
    assert problem_for(found, "path[1].longitude").message == "is empty"
    assert problem_for(found, "path[2]").message == "must be an object, not text"


def test_every_problem_at_once() -> None:
    found = problems({
        "activityPathLatitude": "1,x",
        "activityPathLongitude": "1",
        "activityHeartRateBpm": "100",
        "total_distance": "far",
        "apiKey": "k",
    })
    assert {"activityType", "activityStartTimeIso", "activityPathLatitude[1]", "activityPathLongitude",
            "activityPathTimestamp", "activityHeartRateTimestamp", "total_distance"} <= fields(found)


def test_problems_per_list_are_capped_with_a_count() -> None:
    found = problems(minimal(activityPathLatitude=",".join(["x"] * 1000), activityPathLongitude="0," * 999 + "0",
                             activityPathTimestamp=",".join(str(i) for i in range(1000)),
                             activityPathAltitude=None, activityPathType=None))
    assert len([p for p in found if p.field.startswith("activityPathLatitude[")]) == PROBLEMS_PER_FIELD
    assert problem_for(found, "activityPathLatitude").message == (
        f"{1000 - PROBLEMS_PER_FIELD} more problems in activityPathLatitude not listed")


@pytest.mark.parametrize("payload", [None, [], "text", 3, True])
def test_payload_that_is_not_an_object(payload: object) -> None:
    assert fields(problems(payload)) == {"payload"}


# --- never an exception ------------------------------------------------------------------------------------------

_json_scalar = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
_json = st.recursive(_json_scalar, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=10), inner, max_size=4), max_leaves=12)
_known_keys = st.sampled_from([
    "activityType", "type", "activityStartTimeIso", "start_time", "utc_offset", "activityNotes",
    "activityPathLatitude", "activityPathLongitude", "activityPathAltitude", "activityPathTimestamp",
    "activityPathType", "path", "activityHeartRateTimestamp", "activityHeartRateBpm", "heart_rate",
    "Activity Heart Rate Heart Rate", "total_distance", "duration", "total_calories", "climb", "equipment",
    "secondary_type", "activity_id", "uri", "apiKey",
])
_numberish = st.floats() | st.integers() | st.text(alphabet="0123456789.,-eE naif", max_size=20)
_values = (_json | _numberish | st.lists(_numberish, max_size=5)
           | st.lists(st.dictionaries(st.sampled_from(["timestamp", "latitude", "longitude", "heart_rate", "type"]),
                                      _numberish, max_size=5), max_size=4)
           | st.sampled_from(["2022-09-26T18:52:22+01:00", "Tue, 1 Mar 2011 07:00:00", "9999-12-31T23:59:59-14:00",
                              "0001-01-01T00:00:00+14:00", "start,gps,end", "1,2,3"]))


def _check(result: object) -> None:
    if isinstance(result, Activity):
        assert result.start.tzinfo is not None
        assert all(math.isfinite(p.lat) and math.isfinite(p.offset) for p in result.points)
    else:
        assert isinstance(result, list) and result and all(isinstance(p, Problem) for p in result)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(st.dictionaries(_known_keys, _values, max_size=10))
def test_any_payload_of_known_keys_gives_activity_or_problems(payload: dict[str, object]) -> None:
    _check(parse_payload(payload))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(_json)
def test_any_json_value_gives_activity_or_problems(payload: object) -> None:
    _check(parse_payload(payload))  # type: ignore[arg-type]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(-90, 90), st.floats(-180, 180), st.floats(0, 1e5)), min_size=1, max_size=30))
def test_any_valid_path_round_trips_through_text(rows: list[tuple[float, float, float]]) -> None:
    rows = sorted(rows, key=lambda r: r[2])
    activity = ok(minimal(
        activityPathLatitude=",".join(repr(r[0]) for r in rows),
        activityPathLongitude=",".join(repr(r[1]) for r in rows),
        activityPathTimestamp=",".join(repr(r[2]) for r in rows),
        activityPathAltitude=None, activityPathType=None,
    ))
    assert [(p.lat, p.lon, p.offset) for p in activity.points] == rows
