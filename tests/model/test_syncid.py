"""Sync ids: deterministic, safe as keys, and the same for the same activity however its start was written."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.model.syncid import external_id, is_sync_id, sync_id, sync_id_from_external_id

START = datetime(2022, 9, 26, 17, 52, 22, tzinfo=UTC)


def test_same_moment_in_any_zone_gives_the_same_id() -> None:
    ids = {
        sync_id(START, "Run"),
        sync_id(datetime(2022, 9, 26, 18, 52, 22, tzinfo=timezone(timedelta(hours=1))), "Run"),
        sync_id(datetime(2022, 9, 26, 18, 52, 22, 999999, tzinfo=ZoneInfo("Europe/London")), "Run"),
    }
    assert len(ids) == 1


def test_different_second_or_sport_gives_a_different_id() -> None:
    assert sync_id(START, "Run") != sync_id(START + timedelta(seconds=1), "Run")
    assert sync_id(START, "Run") != sync_id(START, "Ride")


def test_shape_is_short_and_safe() -> None:
    value = sync_id(START, "Run")
    assert re.fullmatch(r"a[0-9a-f]{20}", value) and is_sync_id(value)
    assert not is_sync_id("a" + "g" * 20) and not is_sync_id("")


def test_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        sync_id(datetime(2022, 9, 26, 17, 52, 22), "Run")


def test_external_id_round_trip_even_with_an_extension_strava_added() -> None:
    value = sync_id(START, "Run")
    assert external_id(value) == f"rk2strava-{value}"
    assert sync_id_from_external_id(external_id(value)) == value
    assert sync_id_from_external_id(external_id(value) + ".gpx") == value
    assert sync_id_from_external_id("garmin_push_123") is None
    assert sync_id_from_external_id(None) is None


@given(st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)),
       st.text(max_size=30))
def test_always_a_valid_id(start: datetime, sport: str) -> None:
    assert is_sync_id(sync_id(start, sport))
