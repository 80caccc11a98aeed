"""How many Strava calls an import needs and when it should be done, from Strava's limits. Pure arithmetic.

The dry run states a floor (`expected_calls`, `least_time`) at Strava's default limits; the run's
progress bar shows `finish_at` with the limits and the budget Strava's headers gave, waits included.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from shared.history.listing import LISTING_CHUNK
from shared.history.plan import Plan
from shared.strava.ratelimit import next_midnight, next_window

FIRST_GUESS = 0.5  # seconds per call until a few calls have been timed
MIN_PER_CALL = 0.05  # seconds: never trust a measurement faster than this
TIMED_CALLS = 5  # calls to time before the measured rate replaces the first guess


def least_time(calls: int, limit15: int, limit_day: int) -> timedelta:
    """The floor the limits set for `calls` calls from the start of a fresh window (call latency ignored)."""
    if calls <= 0:
        return timedelta(0)
    last = calls - 1
    day, within = divmod(last, limit_day)
    return timedelta(days=day, minutes=15 * (within // limit15))


def expected_calls(plan: Plan, rules: Callable[[str | None], dict[str, Any]] | None = None) -> int:
    """One call per activity, plus a listing before and one to confirm uploads (pages of our chunk size), plus
    one PUT per activity an owner's rule (gear, mute) applies to."""
    listings = -(-len(plan.items) // LISTING_CHUNK) if plan.items else 0
    confirm = -(-plan.gpx_count // LISTING_CHUNK) if plan.gpx_count else 0
    sendable = [i for i in plan.items if not i.problem]
    ruled = sum(1 for i in sendable if rules(i.sport_type)) if rules else 0
    return len(sendable) + listings + confirm + ruled


def calls_left(to_send: int, to_confirm: int, rules: int = 0) -> int:
    """Calls a run still needs: one per activity to send, a listing per chunk to confirm, one per rule's PUT,
    and one to spare."""
    return to_send + to_confirm // LISTING_CHUNK + rules + 1


def seconds_per_call(calls: int, first_call_at: datetime | None, now: datetime) -> float:
    """The run's own pace so far (a first guess until a few calls are timed)."""
    if first_call_at is None or calls < TIMED_CALLS:
        return FIRST_GUESS
    return max(MIN_PER_CALL, (now - first_call_at).total_seconds() / calls)


def finish_at(now: datetime, calls: int, per_call: float, *, limits: tuple[int, int],
              left: tuple[int | None, int | None]) -> datetime:
    """When `calls` more calls are done at `per_call` seconds each, waiting for each window or day they overflow.

    `limits`: Strava's (per 15 minutes, per day); `left`: what remains of the current window and day.
    """
    limit15, limit_day = limits
    left15, left_day = left
    t = now
    while True:
        fit = min(calls, left15 or 0, left_day or 0)
        calls -= fit
        t += timedelta(seconds=per_call * fit)
        if calls <= 0:
            return t
        if not left_day:
            t = max(t, next_midnight(t))
            left15, left_day = limit15, limit_day
        else:
            t = max(t, next_window(t))
            left15, left_day = limit15, left_day - fit
