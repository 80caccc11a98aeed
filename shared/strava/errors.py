"""Every way talking to Strava can fail, as types: callers choose a retry policy by class, never by text.

A leaf module (like stravalib's exc.py): at run time it imports nothing of the app (ratelimit's `Kind`
is for type checkers only), so anyone may catch these without loading the client, `requests` or the
token store. Messages never carry tokens or secrets.

    StravaError
    ├── RateLimited        429: nothing of this kind can succeed before `reset_at`
    ├── Transient          5xx, timeout, connection failure: try again (`maybe_applied`: Strava may have acted)
    ├── Unauthorized       the token was refused even after a refresh
    │   └── MissingPermission   the athlete did not grant a scope: no new token and no retry can help
    └── Permanent          4xx: the same request fails the same way
        ├── NotConnected   no athlete connected, or the grant was revoked: /api/strava/connect
        └── AthleteLimitReached   403 at token exchange: the app already has as many athletes as Strava allows
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from datetime import datetime

    from shared.strava.ratelimit import Kind


class StravaError(Exception):
    """Base of every failure talking to Strava; messages never carry tokens or secrets."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class RateLimited(StravaError):
    """Strava answered 429 (or would): nothing of this kind can succeed before `reset_at` (aware UTC)."""

    def __init__(self, message: str, *, reset_at: datetime, kind: Kind, status: int | None = 429) -> None:
        super().__init__(message, status=status)
        self.reset_at = reset_at
        self.kind = kind


class Transient(StravaError):
    """5xx, timeout or connection failure; `maybe_applied` when the request left us and Strava may have acted."""

    def __init__(self, message: str, *, maybe_applied: bool = False, status: int | None = None) -> None:
        super().__init__(message, status=status)
        self.maybe_applied = maybe_applied


class Unauthorized(StravaError):
    """Strava refused the token even after a refresh."""


class MissingPermission(Unauthorized):
    """A 401 naming a scope the athlete did not grant (`permission`, e.g. "activity:write_permission").

    A refreshed token carries the same scopes, so the client does not refresh and callers do not retry:
    only reconnecting with the scope approved helps.
    """

    def __init__(self, message: str, *, permission: str, status: int | None = 401) -> None:
        super().__init__(message, status=status)
        self.permission = permission


class Permanent(StravaError):
    """Strava refused the request itself (4xx); the same request will fail the same way."""


class NotConnected(Permanent):
    """No Strava athlete is connected (or the connection was revoked): open /api/strava/connect."""


class AthleteLimitReached(Permanent):
    """Strava refused to connect another athlete: the API application's athlete capacity is used up (403).

    Standard Access serves the app's owner plus 10 athletes; more needs Extended Access from Strava.
    """
