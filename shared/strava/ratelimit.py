"""Strava's rate budget, learned from the headers of its answers, so callers can plan instead of meeting 429s.

Limits differ per app, so nothing here knows Strava's defaults: before the first answer the budget is
unknown and callers may go ahead. Windows are Strava's: natural quarters of an hour and UTC days.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal

Kind = Literal["overall", "read"]
KINDS: tuple[Kind, ...] = ("overall", "read")
_HEADERS: dict[Kind, tuple[str, str]] = {
    "overall": ("x-ratelimit-limit", "x-ratelimit-usage"),
    "read": ("x-readratelimit-limit", "x-readratelimit-usage"),
}


def _utc(now: datetime) -> datetime:
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def window_start(now: datetime) -> datetime:
    now = _utc(now)
    return now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)


def next_window(now: datetime) -> datetime:
    """The next :00/:15/:30/:45 boundary after `now`."""
    return window_start(now) + timedelta(minutes=15)


def next_midnight(now: datetime) -> datetime:
    now = _utc(now)
    return now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)


def _pair(value: str | None) -> tuple[int, int] | None:
    try:
        short, daily = (int(part.strip()) for part in (value or "").split(","))
    except ValueError:
        return None
    return (short, daily) if short >= 0 and daily >= 0 else None


def kind_of(method: str, path: str) -> Kind:
    """Strava's read limit counts every request except creating uploads and activities."""
    path = "/" + path.strip("/")
    if method.upper() == "POST" and path in ("/api/v3/uploads", "/api/v3/activities"):
        return "overall"
    return "read"


@dataclass
class _Seen:
    limit15: int
    limit_day: int
    used15: int
    used_day: int
    window: datetime
    day: date

    def used_now(self, now: datetime) -> tuple[int, int]:
        """Usage as it stands at `now`: a later window or day starts from nothing."""
        short = self.used15 if window_start(now) <= self.window else 0
        daily = self.used_day if _utc(now).date() <= self.day else 0
        return short, daily


class RateBudget:
    """The latest known budget per kind (thread-safe). "read" calls also spend the "overall" budget."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: dict[Kind, _Seen] = {}

    def update(self, headers: Mapping[str, str], now: datetime) -> None:
        """Take in one answer's headers (any case); usage never goes down within a window."""
        lower = {k.lower(): v for k, v in headers.items()}
        win, day = window_start(now), _utc(now).date()
        with self._lock:
            for kind, (limit_name, usage_name) in _HEADERS.items():
                limit, usage = _pair(lower.get(limit_name)), _pair(lower.get(usage_name))
                if limit is None or usage is None:
                    continue
                old = self._seen.get(kind)
                new = _Seen(limit[0], limit[1], usage[0], usage[1], win, day)
                if old is not None:
                    if old.day > day or (old.day == day and old.window > win):
                        continue  # a late answer from an earlier window: nothing new to learn
                    if old.day == day:
                        new.used_day = max(new.used_day, old.used_day)
                        if old.window == win:
                            new.used15 = max(new.used15, old.used15)
                self._seen[kind] = new

    def record_call(self, kind: Kind, now: datetime) -> None:
        """Count a call as it is sent, so parallel callers don't all spend the same last unit."""
        with self._lock:
            for k in self._kinds(kind):
                seen = self._seen.get(k)
                if seen is None:
                    continue
                short, daily = seen.used_now(now)
                seen.used15, seen.used_day = short + 1, daily + 1
                seen.window, seen.day = max(seen.window, window_start(now)), max(seen.day, _utc(now).date())

    def exhausted(self, kind: Kind, now: datetime, *, daily: bool = False) -> None:
        """A 429 says the budget is spent, whatever the headers last claimed."""
        with self._lock:
            seen = self._seen.get(kind)
            if seen is None:
                return
            short, day_used = seen.used_now(now)
            seen.window, seen.day = max(seen.window, window_start(now)), max(seen.day, _utc(now).date())
            seen.used15 = max(short, seen.limit15)
            seen.used_day = max(day_used, seen.limit_day) if daily else day_used

    def remaining(self, kind: Kind, now: datetime) -> tuple[int | None, int | None]:
        """(15-minute, daily) calls of this kind still allowed; None while no answer has told us."""
        with self._lock:
            seen = self._seen.get(kind)
            if seen is None:
                return None, None
            short, daily = seen.used_now(now)
            return max(0, seen.limit15 - short), max(0, seen.limit_day - daily)

    def limits(self, kind: Kind) -> tuple[int | None, int | None]:
        with self._lock:
            seen = self._seen.get(kind)
            return (None, None) if seen is None else (seen.limit15, seen.limit_day)

    @staticmethod
    def _kinds(kind: Kind) -> tuple[Kind, ...]:
        return ("overall", "read") if kind == "read" else ("overall",)

    def can_call(self, kind: Kind, now: datetime, n: int = 1) -> bool:
        return self.wait_until(kind, now, n) is None

    def wait_until(self, kind: Kind, now: datetime, n: int = 1) -> datetime | None:
        """When `n` calls of this kind fit (None: now). n above a 15-minute limit never fits: ask in smaller steps."""
        short_ok = daily_ok = True
        for k in self._kinds(kind):
            short, daily = self.remaining(k, now)
            short_ok = short_ok and (short is None or short >= n)
            daily_ok = daily_ok and (daily is None or daily >= n)
        if short_ok and daily_ok:
            return None
        return next_midnight(now) if not daily_ok else next_window(now)

    def next_reset(self, kind: Kind, now: datetime) -> datetime:
        """When the limiting window of this kind starts afresh: midnight UTC if a daily limit is spent."""
        for k in self._kinds(kind):
            if self.remaining(k, now)[1] == 0:
                return next_midnight(now)
        return next_window(now)

    def snapshot(self, now: datetime) -> dict[str, tuple[int | None, int | None]]:
        """Remaining per kind, for logs and progress lines."""
        return {k: self.remaining(k, now) for k in KINDS}
