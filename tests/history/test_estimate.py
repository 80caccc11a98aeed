"""Calls and time an import needs, and its ETA, as pure arithmetic."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.history.estimate import calls_left, expected_calls, finish_at, least_time, seconds_per_call
from shared.history.listing import LISTING_CHUNK
from shared.history.plan import Item, Plan
from shared.model.syncid import sync_id

NOW = datetime(2024, 1, 1, 10, 5, 0, tzinfo=UTC)


def item(k: int, *, manual: bool = False, problem: str | None = None) -> Item:
    start = datetime(2015, 1, 1, tzinfo=UTC) + timedelta(hours=k)
    return Item(origin=f"row {k}", runkeeper_type="Running", sport_type="Run", trainer=False, start=start,
                start_local=start.replace(tzinfo=None), name="n", sync_id=sync_id(start, "Run"),
                gpx_member=None if manual else f"{k}.gpx", problem=problem)


def test_least_time() -> None:
    """Moved from test_importer.py."""
    assert least_time(0, 200, 2000) == timedelta(0)
    assert least_time(200, 200, 2000) == timedelta(0)
    assert least_time(201, 200, 2000) == timedelta(minutes=15)
    assert least_time(1550, 200, 2000) == timedelta(minutes=105)
    assert least_time(2001, 200, 2000) == timedelta(days=1)


def test_expected_calls_one_per_activity_plus_listings() -> None:
    assert expected_calls(Plan()) == 0
    plan = Plan(items=[item(0), item(1, manual=True), item(2, problem="truncated")])
    assert expected_calls(plan) == 2 + 1 + 1  # two sent (the broken one costs nothing), a listing, a confirmation
    many = Plan(items=[item(k, manual=k % 2 == 1) for k in range(LISTING_CHUNK * 2 + 1)])
    assert expected_calls(many) == len(many.items) + 3 + 2  # 301 items: 3 listings; 151 tracks: 2 confirmations


def test_calls_left() -> None:
    assert calls_left(0, 0) == 1
    assert calls_left(10, LISTING_CHUNK - 1) == 11
    assert calls_left(10, LISTING_CHUNK) == 12


def test_seconds_per_call_is_a_guess_until_measured() -> None:
    assert seconds_per_call(0, None, NOW) == 0.5
    assert seconds_per_call(4, NOW - timedelta(seconds=40), NOW) == 0.5  # too few calls to trust
    assert seconds_per_call(10, NOW - timedelta(seconds=20), NOW) == pytest.approx(2.0)
    assert seconds_per_call(1000, NOW - timedelta(seconds=1), NOW) == 0.05  # never faster than the floor


def test_finish_within_the_window() -> None:
    assert finish_at(NOW, 10, 1.0, limits=(100, 1000), left=(50, 500)) == NOW + timedelta(seconds=10)


def test_finish_waits_for_the_next_window() -> None:
    at = finish_at(NOW, 60, 1.0, limits=(100, 1000), left=(50, 500))
    assert at == datetime(2024, 1, 1, 10, 15, 10, tzinfo=UTC)  # 50 now, 10 after 10:15


def test_finish_waits_for_midnight_when_the_day_is_spent() -> None:
    at = finish_at(NOW, 30, 1.0, limits=(100, 1000), left=(50, 20))
    assert at == datetime(2024, 1, 2, 0, 0, 10, tzinfo=UTC)  # 20 today, 10 after midnight UTC
