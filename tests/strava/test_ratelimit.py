"""RateBudget: what Strava's headers say is left, per kind and window, and when it comes back."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from shared.strava.ratelimit import RateBudget, kind_of, next_midnight, next_window, window_start

T = datetime(2024, 5, 6, 10, 7, 30, tzinfo=UTC)


def headers(limit=(7, 30), usage=(2, 11), read_limit=(5, 20), read_usage=(1, 4)) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": f"{limit[0]},{limit[1]}",
        "X-RateLimit-Usage": f"{usage[0]},{usage[1]}",
        "X-ReadRateLimit-Limit": f"{read_limit[0]},{read_limit[1]}",
        "X-ReadRateLimit-Usage": f"{read_usage[0]},{read_usage[1]}",
    }


def test_unknown_before_the_first_answer_means_go_ahead() -> None:
    budget = RateBudget()
    assert budget.remaining("overall", T) == (None, None)
    assert budget.remaining("read", T) == (None, None)
    assert budget.can_call("read", T, n=10_000)
    assert budget.wait_until("overall", T) is None


def test_limits_and_usage_come_from_headers_in_any_case() -> None:
    budget = RateBudget()
    budget.update({k.lower(): v for k, v in headers().items()}, T)
    assert budget.remaining("overall", T) == (5, 19)
    assert budget.remaining("read", T) == (4, 16)
    assert budget.limits("overall") == (7, 30)
    budget.update({k.upper(): v for k, v in headers(usage=(3, 12)).items()}, T)
    assert budget.remaining("overall", T) == (4, 18)


def test_malformed_headers_are_ignored() -> None:
    budget = RateBudget()
    budget.update({"X-RateLimit-Limit": "lots", "X-RateLimit-Usage": "1,2", "X-ReadRateLimit-Limit": "5"}, T)
    assert budget.remaining("overall", T) == (None, None)
    assert budget.remaining("read", T) == (None, None)


def test_windows_are_natural_quarters_and_utc_days() -> None:
    assert window_start(T) == datetime(2024, 5, 6, 10, 0, tzinfo=UTC)
    assert next_window(T) == datetime(2024, 5, 6, 10, 15, tzinfo=UTC)
    assert next_window(datetime(2024, 5, 6, 23, 59, 59, tzinfo=UTC)) == datetime(2024, 5, 7, tzinfo=UTC)
    assert next_midnight(T) == datetime(2024, 5, 7, tzinfo=UTC)


def test_a_new_window_or_day_starts_from_nothing() -> None:
    budget = RateBudget()
    budget.update(headers(usage=(7, 11)), T)
    assert budget.remaining("overall", T) == (0, 19)
    assert budget.remaining("overall", datetime(2024, 5, 6, 10, 15, tzinfo=UTC)) == (7, 19)
    assert budget.remaining("overall", datetime(2024, 5, 7, 0, 0, 1, tzinfo=UTC)) == (7, 30)


def test_short_limit_spent_waits_for_the_next_quarter() -> None:
    budget = RateBudget()
    budget.update(headers(usage=(7, 11)), T)
    assert not budget.can_call("overall", T)
    assert budget.wait_until("overall", T) == datetime(2024, 5, 6, 10, 15, tzinfo=UTC)
    assert budget.next_reset("overall", T) == datetime(2024, 5, 6, 10, 15, tzinfo=UTC)


def test_daily_limit_spent_waits_for_midnight() -> None:
    budget = RateBudget()
    budget.update(headers(usage=(1, 30)), T)
    assert budget.wait_until("overall", T) == datetime(2024, 5, 7, tzinfo=UTC)
    assert budget.next_reset("overall", T) == datetime(2024, 5, 7, tzinfo=UTC)


def test_read_calls_need_both_budgets_but_writes_only_overall() -> None:
    budget = RateBudget()
    budget.update(headers(usage=(2, 11), read_usage=(5, 6)), T)
    assert budget.can_call("overall", T, n=5)
    assert not budget.can_call("read", T)
    assert budget.wait_until("read", T) == next_window(T)
    budget.update(headers(usage=(7, 11), read_usage=(0, 0)), datetime(2024, 5, 6, 10, 16, tzinfo=UTC))
    assert not budget.can_call("read", datetime(2024, 5, 6, 10, 16, tzinfo=UTC))


def test_n_calls_must_all_fit() -> None:
    budget = RateBudget()
    budget.update(headers(usage=(4, 11)), T)
    assert budget.can_call("overall", T, n=3)
    assert not budget.can_call("overall", T, n=4)
    budget.update(headers(usage=(4, 28)), T)
    assert budget.wait_until("overall", T, n=3) == next_midnight(T)


def test_late_answers_never_lower_usage() -> None:
    budget = RateBudget()
    budget.update(headers(usage=(5, 15)), T)
    budget.update(headers(usage=(3, 13)), T)  # an answer that left Strava earlier but arrived later
    assert budget.remaining("overall", T) == (2, 15)
    budget.update(headers(usage=(6, 16)), datetime(2024, 5, 6, 9, 59, tzinfo=UTC))  # from the previous window
    assert budget.remaining("overall", T) == (2, 15)


def test_record_call_counts_ahead_of_the_answer_and_the_header_then_agrees() -> None:
    budget = RateBudget()
    budget.update(headers(usage=(2, 11), read_usage=(1, 4)), T)
    budget.record_call("read", T)
    assert budget.remaining("overall", T) == (4, 18)
    assert budget.remaining("read", T) == (3, 15)
    budget.record_call("overall", T)
    assert budget.remaining("read", T) == (3, 15)
    budget.update(headers(usage=(4, 13), read_usage=(2, 5)), T)
    assert budget.remaining("overall", T) == (3, 17)


def test_exhausted_marks_the_window_spent() -> None:
    budget = RateBudget()
    budget.update(headers(usage=(2, 11)), T)
    budget.exhausted("overall", T)
    assert budget.remaining("overall", T) == (0, 19)
    budget.exhausted("overall", T, daily=True)
    assert budget.next_reset("overall", T) == next_midnight(T)


def test_thread_safe_under_concurrent_updates() -> None:
    budget = RateBudget()
    budget.update(headers(limit=(1000, 100000), usage=(0, 0)), T)

    def spend() -> None:
        for _ in range(200):
            budget.record_call("overall", T)

    threads = [threading.Thread(target=spend) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert budget.remaining("overall", T) == (0, 100000 - 1600)


@pytest.mark.parametrize(("method", "path", "kind"), [
    ("POST", "/api/v3/uploads", "overall"),
    ("POST", "/api/v3/activities", "overall"),
    ("GET", "/api/v3/uploads/123", "read"),
    ("GET", "/api/v3/athlete/activities", "read"),
    ("PUT", "/api/v3/activities/12", "read"),
])
def test_kind_of_request(method: str, path: str, kind: str) -> None:
    assert kind_of(method, path) == kind
