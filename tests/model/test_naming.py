"""Activity names in the original app's format, English whatever the locale."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.model.naming import activity_name, ordinal


@pytest.mark.parametrize(
    ("day", "text"),
    [(1, "1st"), (2, "2nd"), (3, "3rd"), (4, "4th"), (11, "11th"), (12, "12th"), (13, "13th"), (21, "21st"),
     (22, "22nd"), (23, "23rd"), (24, "24th"), (30, "30th"), (31, "31st"), (111, "111th"), (101, "101st")],
)
def test_ordinals(day: int, text: str) -> None:
    assert ordinal(day) == text


def test_the_issue_example() -> None:
    start = datetime(2022, 9, 26, 18, 52, 22, tzinfo=timezone(timedelta(hours=1)))
    assert activity_name("Running", start, "Europe/London") == "Running activity on Monday 26th September 2022 at 18:52"


def test_aware_start_is_shown_in_the_timezone() -> None:
    start = datetime(2022, 9, 26, 17, 52, 22, tzinfo=UTC)
    assert activity_name("Running", start, "Europe/London").endswith("Monday 26th September 2022 at 18:52")
    assert activity_name("Running", start, "Asia/Tokyo").endswith("Tuesday 27th September 2022 at 02:52")
    assert activity_name("Cycling", datetime(2023, 1, 1, 0, 5, tzinfo=UTC), "Europe/London") == (
        "Cycling activity on Sunday 1st January 2023 at 00:05")


def test_aware_start_without_timezone_keeps_its_own_wall_clock() -> None:
    start = datetime(2019, 7, 1, 18, 20, 12, tzinfo=timezone(timedelta(hours=8)))
    assert activity_name("Running", start) == "Running activity on Monday 1st July 2019 at 18:20"


def test_naive_start_is_the_wall_clock_as_is() -> None:
    name = activity_name("Stairmaster / Stepwell", datetime(2016, 2, 23, 7, 3), "Asia/Tokyo")
    assert name == "Stairmaster / Stepwell activity on Tuesday 23rd February 2016 at 07:03"


def test_blank_type_still_gives_a_name() -> None:
    assert activity_name("  ", datetime(2016, 2, 22, 7, 3)) == "Activity on Monday 22nd February 2016 at 07:03"


def test_known_types_take_runkeepers_spelling_unknown_ones_are_kept() -> None:
    start = datetime(2016, 2, 22, 7, 3)
    assert activity_name("mountain  biking", start).startswith("Mountain Biking activity on ")
    assert activity_name("stairmaster/stepwell", start).startswith("Stairmaster / Stepwell activity on ")
    assert activity_name(" Underwater   hockey ", start).startswith("Underwater hockey activity on ")
