"""Optimistic concurrency for Table Storage rows: the one "write if unchanged, else re-read and decide again" loop.

Every status change and token refresh is a conditional write on the row's ETag. When another
worker wins the race the write fails with `Conflict`; the loser re-reads the row and decides
afresh (the winner may have done the work already). `update` runs that loop with a bound, so no
caller writes it by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Conflict(Exception):
    """Someone else changed the row since it was read (ETag mismatch): re-read and decide again."""


class Exhausted(Exception):
    """Every attempt lost its race: the row keeps changing under us. The caller says what that means."""


class _Unread:
    """Marks "no value given: read the row first" (None is a valid value: a row that does not exist)."""


UNREAD = _Unread()


def update(read: Callable[[], T], attempt: Callable[[T], R], *, attempts: int = 5,
           current: T | _Unread = UNREAD, stop: Callable[[T], bool] | None = None) -> R:
    """`attempt(current)` until it does not raise `Conflict`, re-reading the row after each lost race.

    `attempt` decides from the row it is given and writes conditionally on that row's ETag: it
    returns its result (having written, or having decided no write is needed) or raises `Conflict`.
    `read` gives the row as it is now (None, or raise, when it is gone: the caller's choice).
    `current`: the row already in hand, so the first attempt needs no read.
    `stop(row)`: asked of each re-read row; True ends the loop with that row as the result, for
    callers that must never overwrite what a winner wrote (a newer token, an activity already on
    Strava). Only then is the row read after the last lost race.
    Raises `Exhausted` after `attempts` lost races.
    """
    row = read() if isinstance(current, _Unread) else current
    for spent in range(1, attempts + 1):
        try:
            return attempt(row)
        except Conflict:
            if spent == attempts and stop is None:
                break
            row = read()
            if stop is not None and stop(row):
                return row  # type: ignore[return-value]  # with `stop`, R is T
    raise Exhausted(f"the row kept changing ({attempts} attempts)")
