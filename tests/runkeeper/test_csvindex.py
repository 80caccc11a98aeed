"""cardioActivities.csv: both header generations, both unit systems, every row of the real files."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.runkeeper.csvindex import CsvError, parse_csv, parse_duration
from shared.runkeeper.export import open_export
from tests.conftest import data_path
from tests.support.datasets import export, generator

OLD = "Date,Type,Route Name,Distance (km),Duration,Average Pace,Average Speed (km/h),Calories Burned,Climb (m),"\
      "Average Heart Rate (bpm),Notes,GPX File\n"
NEW = "Activity Id,Date,Type,Route Name,Distance (mi),Duration,Average Pace,Average Speed (mph),Calories Burned,"\
      "Climb (ft),Average Heart Rate (bpm),Friend's Tagged,Notes,GPX File\n"


def test_eleven_types_file_parses_completely() -> None:
    index = parse_csv(data_path("csv", "cardioActivities-11-types.csv").read_bytes())
    assert index.problems == []
    assert len(index.rows) == 325
    assert index.distance_unit == "km" and not index.new_header
    assert Counter(r.type for r in index.rows) == {
        "Running": 262, "Cycling": 34, "Strength Training": 13, "Walking": 6, "Swimming": 2, "Rowing": 2,
        "Skating": 2, "Stairmaster / Stepwell": 1, "Elliptical": 1, "Downhill Skiing": 1, "Spinning": 1,
    }
    assert sum(r.is_manual for r in index.rows) == 54
    first = index.rows[0]
    assert (first.start_local, first.distance, first.duration, first.gpx_file) == (
        datetime(2017, 8, 10, 17, 59, 54), 3000.0, 18 * 60 + 51, "2017-08-10-1759.gpx")
    notes = {r.notes for r in index.rows if r.notes}
    assert "Corrida de Aleluia em São Roque. O GPS falhou, mas o tempo foi esse ai..." in notes


def test_new_header_manual_ski_file_parses_completely() -> None:
    index = parse_csv(data_path("csv", "cardioActivities-2020-manual-ski.csv").read_bytes())
    assert index.problems == []
    assert len(index.rows) == 51 and index.new_header
    assert Counter(r.type for r in index.rows) == {"Cross-Country Skiing": 50, "Running": 1}
    longest = index.rows[0]
    assert longest.activity_id == "19985331-b901-4cb1-afbf-9b0e94b5a5f0"
    assert (longest.distance, longest.duration, longest.is_manual) == (90_000.0, 10 * 3600 + 44 * 60, True)
    assert "Teknikträning utan stavar" in {r.notes for r in index.rows}


def test_imperial_export_converts_to_metres() -> None:
    index = parse_csv(data_path("exports", "runkeeper-export-2016", "cardioActivities.csv").read_bytes())
    assert index.problems == [] and len(index.rows) == 288
    assert (index.distance_unit, index.climb_unit) == ("mi", "ft")
    assert sum(r.is_manual for r in index.rows) == 134
    first = index.rows[0]
    assert first.distance == pytest.approx(4.45 * 1609.344)
    assert first.climb == pytest.approx(0.3048)
    multiline = next(r for r in index.rows if r.start_local == datetime(2014, 5, 19, 8, 37, 16))
    assert multiline.notes == "+ bball\n+ jumps" and multiline.line == 199


def test_synthetic_km_export_old_header() -> None:
    specs = generator().ACTIVITIES_2016
    index = parse_csv((export("2016", "synthetic").path / "cardioActivities.csv").read_bytes())
    assert index.problems == [] and len(index.rows) == len(specs) == 12
    assert (index.distance_unit, index.climb_unit, index.new_header) == ("km", "m", False)
    assert sum(r.is_manual for r in index.rows) == sum(not s.gps for s in specs) == 2
    assert Counter(r.type for r in index.rows) == Counter(s.type for s in specs) == {
        "Running": 6, "Walking": 3, "Cycling": 2, "Swimming": 1}
    assert [r.start_local for r in index.rows] == [s.local for s in specs]
    assert [r.duration for r in index.rows] == [s.moving for s in specs]
    treadmill = next(r for r in index.rows if r.start_local == datetime(2016, 3, 6, 18, 30))
    assert treadmill.notes == "Treadmill at the gym\n6 x 400 m" and treadmill.line == 7
    assert (treadmill.distance, treadmill.duration, treadmill.is_manual) == (5000.0, 1800, True)
    assert "Easy run before work, café after ✓" in {r.notes for r in index.rows}


def test_synthetic_miles_zip_new_header() -> None:
    specs = generator().ACTIVITIES_2019
    with open_export(export("2019", "synthetic").path) as archive:
        index = parse_csv(archive.read("cardioActivities.csv"))
    assert index.problems == [] and len(index.rows) == len(specs) == 4 and index.new_header
    assert (index.distance_unit, index.climb_unit) == ("mi", "ft")
    assert Counter(r.type for r in index.rows) == Counter(s.type for s in specs) == {
        "Running": 2, "Cycling": 1, "Strength Training": 1}
    oldest = index.rows[-1]
    assert oldest.activity_id == export("2019", "synthetic").extra["first_id"]
    assert oldest.gpx_file == "2019-07-01-182012.gpx"
    assert index.rows[0].distance == pytest.approx(5.02 * 1609.344)  # the first row's 5.02 mi: 8,078.9 m
    gym = next(r for r in index.rows if r.is_manual)
    assert (gym.type, gym.distance, gym.duration) == ("Strength Training", 0.0, 45 * 60)


def test_new_header_in_miles_and_feet() -> None:
    text = NEW + 'abc,2019-07-01 18:20:12,Running,,2.00,1:01:05,5:07,11.74,748.0,100,,"","Ünïcode ✓",x.gpx\n'
    row = parse_csv(text.encode()).rows[0]
    assert row.activity_id == "abc"
    assert row.distance == pytest.approx(3218.688)
    assert row.climb == pytest.approx(30.48)
    assert row.duration == 3665
    assert row.notes == "Ünïcode ✓"


def test_bad_rows_name_every_problem_and_the_rest_still_count() -> None:
    text = OLD + (
        "2020-01-01 10:00:00,Running,,5.0,30:00,,,,,,,a.gpx\n"
        "yesterday,,,five,30:99,,,,,,,\n"
        "2020-01-02 10:00:00,Walking,,1.0,10:00,,,,,,,\n"
        "2020-01-03 10:00:00,Walking,,1.0\n"
    )
    index = parse_csv(text.encode())
    assert [r.line for r in index.rows] == [2, 4]
    assert [p.line for p in index.problems] == [3, 5]
    message = str(index.problems[0])
    assert message.startswith("cardioActivities.csv line 3:")
    for part in ("Date 'yesterday' is not YYYY-MM-DD HH:MM:SS", "Type is empty", "Distance 'five' is not a number",
                 "Duration '30:99' is not MM:SS or H:MM:SS"):
        assert part in message
    assert "has 4 fields, the header has 12" in str(index.problems[1])


def test_missing_columns_are_all_named() -> None:
    with pytest.raises(CsvError, match=r"missing column\(s\): Date, Duration, GPX File"):
        parse_csv(b"Type,Distance (km)\nRunning,5\n")
    with pytest.raises(CsvError, match="unit 'furlongs'"):
        parse_csv(OLD.replace("Distance (km)", "Distance (furlongs)").encode())
    with pytest.raises(CsvError, match="empty"):
        parse_csv(b"")


def test_bom_and_windows_encoding() -> None:
    text = OLD + "2020-01-01 10:00:00,Running,,5.0,30:00,,,,,,Café,\n"
    assert parse_csv(b"\xef\xbb\xbf" + text.encode()).rows[0].notes == "Café"
    assert parse_csv(text.encode("cp1252")).rows[0].notes == "Café"


@pytest.mark.parametrize(("text", "seconds"), [("30:21", 1821), ("0:05", 5), ("75:00", 4500), ("1:02:03", 3723),
                                               ("10:44:00", 38640), ("12:30.5", 750.5)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "1:75:00", "10:60", "1:2:3:4", "-5:00"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="MM:SS"):
        parse_duration(text)


@given(st.integers(min_value=0, max_value=99), st.integers(min_value=0, max_value=59),
       st.integers(min_value=0, max_value=59))
def test_duration_round_trip(h: int, m: int, s: int) -> None:
    assert parse_duration(f"{h}:{m:02d}:{s:02d}") == h * 3600 + m * 60 + s
