"""Activity names in the original app's format, so synced activities look the same as before the move."""

from __future__ import annotations

from datetime import datetime

from shared.model.sports import runkeeper_type as known_type

_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_MONTHS = ("January", "February", "March", "April", "May", "June", "July",
           "August", "September", "October", "November", "December")


def ordinal(day: int) -> str:
    """1st 2nd 3rd 4th ... 11th 12th 13th ... 21st 22nd 23rd ... 31st (English, whatever the machine's locale)."""
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def activity_name(runkeeper_type: str, start: datetime, timezone: str | None = None) -> str:
    """'Running activity on Monday 26th September 2022 at 18:52', with Runkeeper's spelling of a known type.

    An aware `start` is shown in `timezone` when given; a naive one is already the wall clock and is used as is.
    """
    if timezone and start.tzinfo is not None:
        from zoneinfo import ZoneInfo

        start = start.astimezone(ZoneInfo(timezone))
    kind = known_type(runkeeper_type or "") or " ".join((runkeeper_type or "").split())  # 'running' -> 'Running'
    prefix = f"{kind} activity" if kind else "Activity"
    return (f"{prefix} on {_DAYS[start.weekday()]} {ordinal(start.day)} {_MONTHS[start.month - 1]} {start.year}"
            f" at {start.hour:02d}:{start.minute:02d}")
