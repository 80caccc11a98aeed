"""The worker's retry policy as a pure function: what to do after each kind of trouble, at each attempt.

No I/O and no clock of its own, so every answer can be checked exhaustively (tests/test_retrypolicy.py);
shared.live.sync does what the decision says (a new queue message, a row update, a failure kept for a
retry). The answers:

- rate limited (Strava's 429, or our budget known from its headers) → `Defer` past the window's reset,
  on a new message, so neither the host's dequeue count nor our tries are spent;
- transient (5xx, timeout, connection) or a token refused right after its refresh → `Retry` with growing
  delays (BACKOFF), then `Fail` at MAX_TRIES;
- an upload Strava is still processing → `Retry` after CHECK_LATER, then `Fail` at MAX_TRIES checks;
- permanent (Strava refuses the request, a permission was not granted, nobody is connected) → `Fail` at once;
- another worker holds the row's lease → `StepAside` briefly, and `GiveUp` to it after MAX_STEP_ASIDES.

Every delay is multiplied by `scale` (SYNC_DELAY_SCALE) so tests can replay a 15-minute wait in a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING

from shared.model.times import TIME_FORMAT

if TYPE_CHECKING:
    from shared.strava.errors import StravaError

MAX_TRIES = 6  # transient failures (and "still processing" checks) before giving up
BACKOFF = (30.0, 120.0, 480.0, 1800.0, 3600.0)  # seconds before transient retry n (the last repeats)
RESET_MARGIN = 2.0  # seconds after a rate-limit window resets, so the first call lands in the new one
CHECK_LATER = 30.0  # seconds before looking at an upload that was still processing
STEP_ASIDE = 30.0  # longest wait for another worker's lease before looking again
MIN_STEP_ASIDE = 1.0  # seconds, after scaling: a new message is never sent to look again at once
MAX_STEP_ASIDES = 20  # the lease holder's own message carries the work on; ours can go after this
RECONNECT = "reconnect at /api/strava/connect, then replay the activity"


class Trouble(StrEnum):
    """What stopped this delivery; one per branch of the policy."""

    BUDGET_SPENT = "budget_spent"  # our rate budget, from Strava's headers, says wait: nothing was sent
    RATE_LIMITED = "rate_limited"  # Strava answered 429
    TRANSIENT = "transient"  # 5xx, timeout, connection failure
    REFUSED_AFTER_REFRESH = "refused_after_refresh"  # 401 after a refresh: most likely expired meanwhile
    MISSING_PERMISSION = "missing_permission"  # 401 naming a scope the athlete did not grant
    NOT_CONNECTED = "not_connected"  # no athlete connected, or the grant was revoked
    PERMANENT = "permanent"  # Strava refused the request itself (4xx)
    PROCESSING = "processing"  # the upload is still being processed by Strava
    LEASE_HELD = "lease_held"  # another worker holds the row's lease


@dataclass(frozen=True)
class Defer:
    """Send the job again, unchanged, invisible for `delay` seconds: until `until`, plus a margin."""

    until: datetime
    delay: float
    why: str


@dataclass(frozen=True)
class Retry:
    """Send the job again as try number `tries`, invisible for `delay` seconds.

    `look_first`: Strava may have acted on the failed call, so the next attempt looks for the activity
    before creating it again (None: leave the row's flag as it is).
    """

    delay: float
    tries: int
    why: str
    look_first: bool | None = None


@dataclass(frozen=True)
class Fail:
    """No retry can help: the activity is `failed` with this reason (its payload is kept for the owner)."""

    reason: str


@dataclass(frozen=True)
class StepAside:
    """Another worker is on it: look again in `delay` seconds, as step-aside number `step_asides`."""

    delay: float
    step_asides: int
    why: str = "another worker holds it"


@dataclass(frozen=True)
class GiveUp:
    """Leave the activity to the worker holding its lease: its own message carries the work on."""

    why: str = "another worker holds it"


Decision = Defer | Retry | Fail | StepAside | GiveUp


def trouble_of(exc: StravaError) -> Trouble:
    """The policy's name for a typed Strava error (subclasses before their bases); TypeError for anything else."""
    from shared.strava.errors import (
        MissingPermission,
        NotConnected,
        Permanent,
        RateLimited,
        Transient,
        Unauthorized,
    )

    kinds: tuple[tuple[type[StravaError], Trouble], ...] = (
        (RateLimited, Trouble.RATE_LIMITED), (Transient, Trouble.TRANSIENT),
        (MissingPermission, Trouble.MISSING_PERMISSION), (Unauthorized, Trouble.REFUSED_AFTER_REFRESH),
        (NotConnected, Trouble.NOT_CONNECTED), (Permanent, Trouble.PERMANENT),
    )
    for cls, trouble in kinds:
        if isinstance(exc, cls):
            return trouble
    raise TypeError(f"no retry policy for {type(exc).__name__}")


def after_error(exc: StravaError, tries: int, *, now: datetime, scale: float = 1.0) -> Decision:
    """`decide` for a typed Strava error: what it says (its message, the limit and its reset, whether it
    may have been applied) is read off the exception, never parsed from its text."""
    from shared.strava.errors import RateLimited, Transient

    trouble = trouble_of(exc)
    if isinstance(exc, RateLimited):
        return decide(trouble, tries, detail=exc.kind, now=now, until=exc.reset_at, scale=scale)
    maybe_applied = exc.maybe_applied if isinstance(exc, Transient) else False
    return decide(trouble, tries, detail=str(exc), scale=scale, maybe_applied=maybe_applied)


def decide(trouble: Trouble, tries: int, *, detail: str = "", now: datetime | None = None,
           until: datetime | None = None, scale: float = 1.0, maybe_applied: bool = False) -> Decision:
    """What to do about `trouble` on a job that has failed `tries` times before (step-asides for LEASE_HELD).

    `detail`: the error's message (for RATE_LIMITED, which limit; for PROCESSING, the upload id).
    `now` and `until`: when a rate-limit window resets or a lease ends (RATE_LIMITED, BUDGET_SPENT, LEASE_HELD).
    `scale`: multiplies every delay. `maybe_applied`: a transient failure of a call Strava may have acted on.
    """
    if trouble in (Trouble.RATE_LIMITED, Trouble.BUDGET_SPENT):
        assert now is not None and until is not None, "a rate limit is deferred past its reset"
        why = (f"rate limited by Strava ({detail})" if trouble is Trouble.RATE_LIMITED
               else "Strava's rate limit is spent (known from its headers)")
        seconds = max(0.0, (until - now).total_seconds()) + RESET_MARGIN
        return Defer(until, seconds * scale, f"{why}; retrying after {until.astimezone(UTC).strftime(TIME_FORMAT)}")
    if trouble is Trouble.TRANSIENT:
        return _again(detail, tries, scale, look_first=maybe_applied)
    if trouble is Trouble.REFUSED_AFTER_REFRESH:
        # A revoked grant fails at the refresh instead (NOT_CONNECTED): the retry cap still ends this.
        return _again(f"Strava refused a just-refreshed token ({detail}); if this persists, {RECONNECT}", tries,
                      scale, look_first=False)
    if trouble is Trouble.MISSING_PERMISSION:  # a new token carries the same scopes: no retry can help
        return Fail(f"Strava refused the app's authorization ({detail}); {RECONNECT}")
    if trouble is Trouble.NOT_CONNECTED:
        return Fail(f"{detail}; then replay the activity")
    if trouble is Trouble.PERMANENT:
        return Fail(detail)
    if trouble is Trouble.PROCESSING:
        checks = tries + 1
        if checks >= MAX_TRIES:
            return Fail(f"Strava was still processing upload {detail} after {checks} checks")
        return Retry(CHECK_LATER * scale, checks, "Strava is still processing the upload")
    if trouble is Trouble.LEASE_HELD:
        assert now is not None and until is not None, "a lease is waited for until it ends"
        if tries >= MAX_STEP_ASIDES:
            return GiveUp()
        remaining = (until - now).total_seconds()
        return StepAside(max(MIN_STEP_ASIDE, min(remaining, STEP_ASIDE) * scale), tries + 1)
    raise ValueError(f"no retry policy for {trouble!r}")


def _again(why: str, tries: int, scale: float, *, look_first: bool) -> Retry | Fail:
    """Try again after the back-off for this try, or fail once MAX_TRIES attempts have failed."""
    attempt = tries + 1
    if attempt >= MAX_TRIES:
        return Fail(f"Strava kept failing ({attempt} attempts); last error: {why}")
    delay = BACKOFF[min(attempt, len(BACKOFF)) - 1]
    return Retry(delay * scale, attempt, f"temporary Strava failure, retry {attempt}: {why}", look_first)
