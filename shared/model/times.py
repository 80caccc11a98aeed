"""The app's one UTC clock and its one stored timestamp format.

Tables keep times as fixed-width UTC strings to the second ("2024-03-01T08:00:00Z"), so comparing
them as strings in a table filter is comparing them in time.
"""

from __future__ import annotations

from datetime import UTC, datetime

TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def utcnow() -> datetime:
    """Now, aware UTC: the default clock wherever a test or a simulation may pass its own."""
    return datetime.now(UTC)
