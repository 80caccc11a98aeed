"""shared.live.retrypolicy as a pure function: every kind of trouble × every attempt → defer, retry, fail or give up.

The expected schedules are written out here, not recomputed from the module's constants, so a changed
back-off or cap shows up as a failing row. The end-to-end answers (real queue, fake Strava) are in
tests/test_sync.py and tests/test_worker.py.
"""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.live import retrypolicy
from shared.live.retrypolicy import (
    RECONNECT,
    Defer,
    Fail,
    GiveUp,
    Retry,
    StepAside,
    Trouble,
    after_error,
    decide,
    trouble_of,
)
from shared.strava.errors import (
    MissingPermission,
    NotConnected,
    Permanent,
    RateLimited,
    StravaError,
    Transient,
    Unauthorized,
)
from tests.conftest import ROOT

NOW = datetime(2024, 5, 1, 10, 7, 30, tzinfo=UTC)
RESET = datetime(2024, 5, 1, 10, 15, tzinfo=UTC)  # the next quarter hour: 450 s away
ATTEMPTS = range(0, 9)  # failed tries before this one: below, at and past the cap of 6
# tries before → (delay before the next try, that try's number); from the 6th failed attempt on: failed
BACKOFF_SCHEDULE = {0: (30.0, 1), 1: (120.0, 2), 2: (480.0, 3), 3: (1800.0, 4), 4: (3600.0, 5)}
PERMANENT = (Trouble.MISSING_PERMISSION, Trouble.NOT_CONNECTED, Trouble.PERMANENT)


def test_every_trouble_has_an_answer_at_every_attempt() -> None:
    """The whole matrix: no kind of trouble, at no attempt, is left without a decision."""
    kinds = {Defer, Retry, Fail, StepAside, GiveUp}
    for trouble in Trouble:
        for tries in (*ATTEMPTS, 19, 20, 21):
            decision = decide(trouble, tries, detail="x", now=NOW, until=RESET)
            assert type(decision) in kinds, (trouble, tries)


@pytest.mark.parametrize("tries", ATTEMPTS)
@pytest.mark.parametrize("scale", [1.0, 0.5, 0.0])
def test_a_rate_limit_defers_past_the_reset_whatever_the_attempt(tries: int, scale: float) -> None:
    """Neither our tries nor the host's dequeue count are spent on a window that has not reset."""
    limited = decide(Trouble.RATE_LIMITED, tries, detail="overall", now=NOW, until=RESET, scale=scale)
    assert limited == Defer(RESET, (450.0 + 2.0) * scale,
                            "rate limited by Strava (overall); retrying after 2024-05-01T10:15:00Z")
    spent = decide(Trouble.BUDGET_SPENT, tries, now=NOW, until=RESET, scale=scale)
    assert spent == Defer(RESET, (450.0 + 2.0) * scale,
                          "Strava's rate limit is spent (known from its headers); retrying after 2024-05-01T10:15:00Z")


def test_a_window_already_reset_waits_only_the_margin() -> None:
    late = decide(Trouble.RATE_LIMITED, 0, detail="read", now=RESET + timedelta(seconds=5), until=RESET)
    assert isinstance(late, Defer) and late.delay == 2.0


def test_a_reset_in_another_zone_is_named_in_utc() -> None:
    until = datetime(2024, 5, 1, 12, 15, tzinfo=UTC).astimezone(ZoneInfo("Europe/Paris"))
    deferred = decide(Trouble.BUDGET_SPENT, 0, now=NOW, until=until)
    assert isinstance(deferred, Defer) and deferred.why.endswith("retrying after 2024-05-01T12:15:00Z")


@pytest.mark.parametrize("tries", ATTEMPTS)
@pytest.mark.parametrize("maybe_applied", [False, True])
def test_transient_failures_back_off_then_fail_at_the_sixth_attempt(tries: int, maybe_applied: bool) -> None:
    decision = decide(Trouble.TRANSIENT, tries, detail="Strava POST /uploads answered 503", scale=1.0,
                      maybe_applied=maybe_applied)
    if tries in BACKOFF_SCHEDULE:
        delay, attempt = BACKOFF_SCHEDULE[tries]
        assert decision == Retry(delay, attempt, f"temporary Strava failure, retry {attempt}: "
                                                 "Strava POST /uploads answered 503", look_first=maybe_applied)
    else:
        assert decision == Fail(f"Strava kept failing ({tries + 1} attempts); last error: "
                                "Strava POST /uploads answered 503")


@pytest.mark.parametrize("tries", ATTEMPTS)
def test_a_token_refused_after_its_refresh_is_retried_like_a_transient_failure(tries: int) -> None:
    """Most likely a token that expired meanwhile; the cap still ends it. It never marks the row ambiguous."""
    why = f"Strava refused a just-refreshed token (401 Unauthorized); if this persists, {RECONNECT}"
    decision = decide(Trouble.REFUSED_AFTER_REFRESH, tries, detail="401 Unauthorized", scale=0.001)
    if tries in BACKOFF_SCHEDULE:
        delay, attempt = BACKOFF_SCHEDULE[tries]
        assert decision == Retry(delay * 0.001, attempt, f"temporary Strava failure, retry {attempt}: {why}",
                                 look_first=False)
    else:
        assert decision == Fail(f"Strava kept failing ({tries + 1} attempts); last error: {why}")


@pytest.mark.parametrize("tries", ATTEMPTS)
@pytest.mark.parametrize(("trouble", "reason"), [
    (Trouble.MISSING_PERMISSION, f"Strava refused the app's authorization (no activity:write); {RECONNECT}"),
    (Trouble.NOT_CONNECTED, "no activity:write; then replay the activity"),
    (Trouble.PERMANENT, "no activity:write"),
])
def test_permanent_troubles_fail_at_once_at_every_attempt(tries: int, trouble: Trouble, reason: str) -> None:
    assert decide(trouble, tries, detail="no activity:write", now=NOW, until=RESET) == Fail(reason)


@pytest.mark.parametrize("tries", ATTEMPTS)
def test_an_upload_still_processing_is_looked_at_later_then_failed_after_six_checks(tries: int) -> None:
    decision = decide(Trouble.PROCESSING, tries, detail="123456", scale=0.5)
    if tries < 5:
        assert decision == Retry(15.0, tries + 1, "Strava is still processing the upload")
        assert decision.look_first is None  # the row's flag is left as it is
    else:
        assert decision == Fail(f"Strava was still processing upload 123456 after {tries + 1} checks")


@pytest.mark.parametrize(("step_asides", "remaining", "scale", "expected"), [
    (0, 240.0, 1.0, StepAside(30.0, 1)),  # at most STEP_ASIDE: the holder may finish early
    (0, 12.0, 1.0, StepAside(12.0, 1)),  # no longer than the lease has left
    (7, 240.0, 0.001, StepAside(1.0, 8)),  # never less than a second, even scaled
    (19, 240.0, 1.0, StepAside(30.0, 20)),
    (20, 240.0, 1.0, GiveUp()),  # the lease holder's own message carries the work on
    (25, 240.0, 1.0, GiveUp()),
])
def test_a_held_lease_is_stepped_around_then_left_to_its_holder(step_asides: int, remaining: float, scale: float,
                                                                 expected: StepAside | GiveUp) -> None:
    until = NOW + timedelta(seconds=remaining)
    assert decide(Trouble.LEASE_HELD, step_asides, now=NOW, until=until, scale=scale) == expected


@pytest.mark.parametrize("step_asides", range(0, 20))
def test_every_step_aside_before_the_cap_waits(step_asides: int) -> None:
    decision = decide(Trouble.LEASE_HELD, step_asides, now=NOW, until=NOW + timedelta(minutes=5))
    assert decision == StepAside(30.0, step_asides + 1, "another worker holds it")


@pytest.mark.parametrize(("error", "trouble"), [
    (RateLimited("429", reset_at=RESET, kind="read"), Trouble.RATE_LIMITED),
    (Transient("503", maybe_applied=True), Trouble.TRANSIENT),
    (MissingPermission("401", permission="activity:write_permission"), Trouble.MISSING_PERMISSION),
    (Unauthorized("401"), Trouble.REFUSED_AFTER_REFRESH),
    (NotConnected("nobody connected"), Trouble.NOT_CONNECTED),
    (Permanent("400"), Trouble.PERMANENT),
])
def test_errors_are_told_apart_by_type(error: StravaError, trouble: Trouble) -> None:
    assert trouble_of(error) is trouble


def test_a_permission_is_recognised_by_type_not_by_text() -> None:
    """The old rule looked for "_permission" in the message; the type decides now, whatever the text says."""
    assert trouble_of(Unauthorized("Authorization Error (activity:write_permission missing)")) is (
        Trouble.REFUSED_AFTER_REFRESH)
    assert trouble_of(MissingPermission("Authorization Error", permission="activity:write_permission")) is (
        Trouble.MISSING_PERMISSION)


def test_an_error_outside_the_family_has_no_policy() -> None:
    with pytest.raises(TypeError, match="no retry policy for StravaError"):
        trouble_of(StravaError("something else"))


def test_after_error_reads_what_it_needs_off_the_exception() -> None:
    limited = after_error(RateLimited("429 (read rate limit)", reset_at=RESET, kind="read"), 3, now=NOW)
    assert limited == Defer(RESET, 452.0, "rate limited by Strava (read); retrying after 2024-05-01T10:15:00Z")
    maybe = after_error(Transient("POST timed out", maybe_applied=True), 0, now=NOW, scale=0.5)
    assert maybe == Retry(15.0, 1, "temporary Strava failure, retry 1: POST timed out", look_first=True)
    unseen = after_error(Transient("GET failed"), 0, now=NOW)
    assert isinstance(unseen, Retry) and unseen.look_first is False
    assert after_error(Permanent("answered 400: bad"), 0, now=NOW) == Fail("answered 400: bad")


def test_the_policy_is_pure_it_loads_no_storage_strava_client_or_http() -> None:
    """A fresh interpreter imports it: nothing of storage, the Strava client, requests or the Azure SDKs."""
    probe = ("import json, sys; import shared.live.retrypolicy; "
             "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('shared', 'requests', 'azure')))))")
    loaded = json.loads(subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                                       check=True, timeout=60).stdout)
    assert loaded == ["shared", "shared.live", "shared.live.retrypolicy", "shared.model", "shared.model.times"]
    assert not any(name in vars(retrypolicy) for name in ("activitylog", "messages", "clients", "os", "time"))
