"""One queued activity through conversion and upload to Strava, with the retry policy. The worker's logic.

Exactly once on Strava, whatever happens: the log is checked first, the row is claimed with an ETag
compare-and-swap and a lease (a second delivery steps aside), uploads carry a stable `external_id`,
Strava's "duplicate of activity N" counts as done, and a manual activity whose creation may have
reached Strava unseen is looked for before it is created again.

Retry policy: rate limited → the job goes back on the queue invisible until the window resets (a new
message, so the dequeue count is not spent); transient → back with growing delays, then `failed`;
permanent (Strava refuses the file, no connection, bad settings) → `failed` at once. Delays are
multiplied by SYNC_DELAY_SCALE (default 1) so tests can replay a 15-minute wait in a second.
"""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from shared.config import Settings, SettingsError, current
from shared.owner import replay
from shared.storage import activitylog, messages
from shared.storage.activitylog import Entry
from shared.storage.clients import Storage
from shared.storage.users import athlete_of

if TYPE_CHECKING:
    from shared.model.activity import Activity, Problem
    from shared.strava.api import StravaClient, UploadOutcome
    from shared.strava.convert import StravaActivity
    from shared.strava.ratelimit import RateBudget

LEASE = timedelta(minutes=5)  # covers an upload plus its bounded wait, with room to spare
UPLOAD_WAIT = 15.0  # seconds to wait for Strava's processing before checking back later
FIRST_CHECK = 2.0  # seconds before the first status check of a fresh upload (Strava's mean processing time)
CHECK_LATER = 30.0  # seconds before looking at an upload that was still processing
MAX_TRIES = 6  # transient failures (and "still processing" checks) before giving up
BACKOFF = (30.0, 120.0, 480.0, 1800.0, 3600.0)  # seconds before transient retry n (the last repeats)
RESET_MARGIN = 2.0  # seconds after a rate-limit window resets, so the first call lands in the new one
STEP_ASIDE = 30.0  # longest wait for another worker's lease before looking again
MAX_STEP_ASIDES = 20  # the lease holder's own message carries the work on; ours can go after this
MANUAL_MATCH = timedelta(seconds=60)  # "the same start" for an existing manual activity
CLIENT_TIMEOUT = (5.0, 30.0)  # connect, read (s) for Strava calls; an upload of a big track needs the read time

log = logging.getLogger("shared.live.sync")

# The clock leases and rate-limit waits are reckoned in; tests point it at the fake Strava's virtual clock.
_clock: Callable[[], datetime] = activitylog.utcnow


def now() -> datetime:
    return _clock()


@dataclass(frozen=True)
class Outcome:
    """What became of one delivery: a final status, or `deferred` with the delay of the new message."""

    status: str  # synced | duplicate | failed | rejected | deferred | skipped
    sync_id: str
    activity_id: str | None = None
    delay: float | None = None
    reason: str | None = None


def settings() -> Settings:
    """Settings cached per process (see shared.config.current)."""
    return current()


def delay_scale() -> float:
    """SYNC_DELAY_SCALE: 1 in production; tests shrink every wait with it. Nonsense falls back to 1."""
    raw = os.environ.get("SYNC_DELAY_SCALE", "").strip()
    try:
        value = float(raw) if raw else 1.0
    except ValueError:
        return 1.0
    return value if 0 <= value <= 1000 else 1.0


@lru_cache(maxsize=4)
def _budget(cfg: Settings) -> RateBudget:
    """Strava's rate limits belong to the app, not the athlete: every athlete's client spends one budget."""
    from shared.strava.ratelimit import RateBudget

    return RateBudget()


@lru_cache(maxsize=64)
def _client(cfg: Settings, timeout: tuple[float, float], athlete_id: str | None = None) -> StravaClient:
    from shared.strava.tokens import client_from_settings

    client = client_from_settings(cfg, athlete_id, timeout=timeout, budget=_budget(cfg))
    client.clock = now  # the budget's windows and `reset_at` in the same time as the leases
    return client


def client_for(cfg: Settings, athlete_id: str | None = None) -> StravaClient:
    """One client per process, settings and athlete (None: the default one), so the HTTP pool outlives a message."""
    return _client(cfg, CLIENT_TIMEOUT, athlete_id)


class _StepAside(Exception):
    """Another worker holds a live lease on this activity."""

    def __init__(self, remaining: float) -> None:
        super().__init__(f"leased for {remaining:.0f} s more")
        self.remaining = remaining


class Syncer:
    """Runs one job; `client` and `clock` can be given (tests, the importer), else they come from settings."""

    def __init__(self, storage: Storage, cfg: Settings, *, client: StravaClient | None = None,
                 clock: Callable[[], datetime] | None = None) -> None:
        self.storage = storage
        self.cfg = cfg
        self._client = client
        self.clock = clock or now
        self.me = uuid.uuid4().hex
        self._payload: dict[str, Any] | None = None  # kept when the activity fails, for a retry

    # ---- entry points ----------------------------------------------------------------------------
    def run(self, job: messages.Job) -> Outcome:
        entry = activitylog.get(self.storage, job.user, job.sync_id)
        if entry is not None and entry.status in activitylog.DONE:
            messages.delete_payload(self.storage, job.blob)
            return Outcome("skipped", job.sync_id, entry.activity_id, reason=f"already {entry.status}")
        try:
            payload = messages.load_payload(self.storage, job)
        except messages.JobError as exc:
            if entry is not None and entry.status in activitylog.RETRYABLE:  # a stale copy after a failure
                return Outcome("skipped", job.sync_id, reason=f"already {entry.status}: {entry.error}")
            return self._fail(job, entry, str(exc))
        self._payload = payload
        prepared = self._convert(payload)
        if isinstance(prepared, str):
            return self._fail(job, entry, prepared)
        if isinstance(prepared, list):
            return self._reject(job, entry, prepared)
        strava_activity, facts = prepared
        if entry is None:
            entry = self._ensure_row(job, strava_activity, facts)
        try:
            client = self._client or client_for(self.cfg, athlete_of(job.user))
        except SettingsError as exc:
            return self._fail(job, entry, f"Strava is not configured: {exc}")
        try:
            entry = self._claim(entry, strava_activity, facts)
        except _StepAside as aside:
            return self._step_aside(job, aside.remaining)
        if entry.status in activitylog.DONE:
            messages.delete_payload(self.storage, job.blob)
            return Outcome("skipped", job.sync_id, entry.activity_id, reason=f"already {entry.status}")
        try:
            return self._push(job, entry, client, strava_activity)
        except Exception as exc:
            self._release(entry, f"internal error ({type(exc).__name__}); retrying")
            raise

    # ---- preparation -----------------------------------------------------------------------------
    def _convert(self, payload: dict[str, Any]) -> tuple[StravaActivity, dict[str, Any]] | list[Problem] | str:
        """The Strava form of the payload, its problems, or why there is none.

        The ack checked the payload exactly, so problems appear only when the parser changed meanwhile (a
        message queued by an older version): the row is then `rejected` with the problems named.
        """
        from shared.runkeeper.payload import parse_payload
        from shared.strava.convert import to_strava

        parsed = parse_payload(payload, self.cfg.timezone)
        if isinstance(parsed, list):
            return parsed
        try:
            facts = {"runkeeper_type": parsed.type, "points": len(parsed.points)}
            if parsed.source_id:
                facts["runkeeper_id"] = parsed.source_id
            return to_strava(parsed, self.cfg.timezone, self._air_temps(parsed)), facts
        except ValueError as exc:
            return f"cannot convert the activity: {exc}"

    def _air_temps(self, activity: Activity) -> list[float | None] | None:
        """ENRICH_WEATHER: temperatures per point, or None (off, no track, or the weather service failed)."""
        if not self.cfg.enrich_weather or not activity.has_path:
            return None
        from shared.live.weather import air_temperatures

        return air_temperatures(activity, self.cfg.open_meteo_base_url)

    def _ensure_row(self, job: messages.Job, act: StravaActivity, facts: dict[str, Any]) -> Entry:
        fresh = Entry(user=job.user, sync_id=job.sync_id, status="queued", source=job.source,
                      sport_type=act.sport_type, name=act.name, start=act.start, **facts)
        created = activitylog.create(self.storage, fresh)
        if created is not None:
            return created
        existing = activitylog.get(self.storage, job.user, job.sync_id)
        assert existing is not None, "row vanished between insert and read"
        return existing

    def _claim(self, entry: Entry, act: StravaActivity, facts: dict[str, Any]) -> Entry:
        """CAS the row to `uploading` under our lease; a live lease of someone else makes us step aside."""
        for _ in range(10):
            if entry.status in activitylog.DONE:
                return entry
            now = self.clock()
            if entry.leased(now) and entry.lease_owner != self.me:
                assert entry.lease_until is not None
                raise _StepAside((entry.lease_until - now).total_seconds())
            # A row left `uploading` by a worker that died: it may have reached Strava. Look before creating.
            interrupted = entry.status == "uploading"
            try:
                return activitylog.save(
                    self.storage, entry, status="uploading", lease_until=now + LEASE, lease_owner=self.me,
                    attempts=entry.attempts + 1, next_try=None, ambiguous=entry.ambiguous or interrupted,
                    name=act.name, sport_type=act.sport_type, start=entry.start or act.start, **facts,
                )
            except activitylog.Conflict:
                fresh = activitylog.get(self.storage, entry.user, entry.sync_id)
                if fresh is None:
                    raise RuntimeError(f"activity log row {entry.sync_id} disappeared") from None
                entry = fresh
        raise RuntimeError(f"could not claim activity {entry.sync_id}: the row keeps changing")

    # ---- Strava ----------------------------------------------------------------------------------
    def _push(self, job: messages.Job, entry: Entry, client: StravaClient, act: StravaActivity) -> Outcome:
        from shared.strava.api import NotConnected, Permanent, RateLimited, Transient, Unauthorized

        try:
            # A status check or a look for a manual activity is a read: it needs the read budget too.
            reads = bool(entry.upload_id) or (act.gpx is None and entry.ambiguous)
            wait = client.budget.wait_until("read" if reads else "overall", self.clock())
            if wait is not None:
                return self._defer(job, entry, wait, "Strava's rate limit is spent (known from its headers)")
            if act.gpx is not None:
                return self._upload(job, entry, client, act)
            return self._manual(job, entry, client, act)
        except RateLimited as exc:
            return self._defer(job, entry, exc.reset_at, f"rate limited by Strava ({exc.kind})")
        except Transient as exc:
            return self._retry(job, entry, str(exc), ambiguous=exc.maybe_applied)
        except NotConnected as exc:
            return self._fail(job, entry, f"{exc}; then replay the activity")
        except Unauthorized as exc:
            advice = "reconnect at /api/strava/connect, then replay the activity"
            if "_permission" in str(exc):  # a scope the athlete did not grant: no retry can help
                return self._fail(job, entry, f"Strava refused the app's authorization ({exc}); {advice}")
            # A token refused right after its refresh (a revoked grant fails at the refresh instead, as
            # NotConnected): most likely a token that expired meanwhile, so retry; the retry cap still ends it.
            return self._retry(job, entry, f"Strava refused a just-refreshed token ({exc}); if this persists, "
                                           f"{advice}", ambiguous=False)
        except Permanent as exc:
            return self._fail(job, entry, str(exc))

    def _upload(self, job: messages.Job, entry: Entry, client: StravaClient, act: StravaActivity) -> Outcome:
        from shared.model.syncid import external_id

        assert act.gpx is not None
        if entry.upload_id:  # an earlier attempt's upload was still processing: look, never upload again
            outcome = client.wait_for_upload(entry.upload_id, max_wait=UPLOAD_WAIT)
        else:
            upload = client.upload_gpx(
                act.gpx, name=act.name, description=act.description, sport_type=act.sport_type,
                trainer=act.trainer, commute=act.commute, external_id=external_id(entry.sync_id),
                filename=f"{entry.sync_id}.gpx",
            )
            entry = self._update(entry, upload_id=upload.id)
            outcome = upload.outcome()
            if outcome.state == "processing":
                outcome = client.wait_for_upload(upload.id, max_wait=UPLOAD_WAIT,
                                                  first_check_after=FIRST_CHECK * delay_scale())
        return self._settle(job, entry, outcome)

    def _settle(self, job: messages.Job, entry: Entry, outcome: UploadOutcome) -> Outcome:
        if outcome.state == "ready":
            return self._done(job, entry, "synced", outcome.activity_id)
        if outcome.state == "duplicate":
            # After an attempt that may have gone through, "duplicate" is most likely our own upload.
            return self._done(job, entry, "synced" if entry.ambiguous else "duplicate", outcome.activity_id)
        if outcome.state == "error":
            return self._fail(job, entry, f"Strava could not process the upload: {outcome.message}")
        tries = job.tries + 1
        if tries >= MAX_TRIES:
            return self._fail(job, entry, f"Strava was still processing upload {outcome.upload_id} "
                                          f"after {tries} checks")
        return self._later(job.again(tries=tries), entry, CHECK_LATER, "Strava is still processing the upload")

    def _manual(self, job: messages.Job, entry: Entry, client: StravaClient, act: StravaActivity) -> Outcome:
        if entry.ambiguous:
            found = self._find_manual(client, act)
            if found is not None:
                return self._done(job, entry, "synced", found)
        assert act.elapsed_time is not None
        created = client.create_manual_activity(
            name=act.name, sport_type=act.sport_type, start_date_local=act.start_local,
            elapsed_time=act.elapsed_time, description=act.description, distance=act.distance,
            trainer=act.trainer, commute=act.commute,
        )
        return self._done(job, entry, "synced", str(created["id"]))

    def _find_manual(self, client: StravaClient, act: StravaActivity) -> str | None:
        """An activity of ours at the same start (±1 min, UTC or local wall clock) and sport, if Strava has one."""
        span = timedelta(hours=15)  # the athlete's profile zone may read start_date_local differently
        for found in client.list_activities(act.start - span, act.start + span):
            if found.get("sport_type") not in (None, act.sport_type):
                continue
            if _close(found.get("start_date"), act.start) or _close(found.get("start_date_local"), act.start_local):
                return str(found["id"])
        return None

    # ---- outcomes --------------------------------------------------------------------------------
    def _update(self, entry: Entry, **changes: Any) -> Entry:
        """Write what Strava told us; Strava is the truth, so a lost CAS re-reads and writes again."""
        for _ in range(10):
            try:
                return activitylog.save(self.storage, entry, **changes)
            except activitylog.Conflict:
                fresh = activitylog.get(self.storage, entry.user, entry.sync_id)
                if fresh is None:
                    raise RuntimeError(f"activity log row {entry.sync_id} disappeared") from None
                if fresh.status in activitylog.DONE and changes.get("status") not in activitylog.DONE:
                    return fresh  # someone recorded it as on Strava: never step back from that
                entry = fresh
        raise RuntimeError(f"could not update activity {entry.sync_id}: the row keeps changing")

    def _done(self, job: messages.Job, entry: Entry, status: str, activity_id: str | None) -> Outcome:
        self._update(entry, status=status, activity_id=activity_id, error=None, next_try=None,
                     lease_until=None, lease_owner=None)
        messages.delete_payload(self.storage, job.blob)
        if job.blob != replay.kept_name(job.user, job.sync_id):
            replay.drop_kept(self.storage, job.user, job.sync_id)  # kept by an earlier failure, if any
        return Outcome(status, job.sync_id, activity_id)

    def _reject(self, job: messages.Job, entry: Entry | None, problems: list[Problem]) -> Outcome:
        """Logged as the ack logs a payload it refuses: `rejected`, every problem named, an excerpt (no key).

        The payload is kept all the same (a track with one impossible point is still the owner's run).
        """
        import json

        from shared.web.auth import redact, redact_problems

        key = self.cfg.api_key  # an invited athlete's own key is known here only by its hash
        text = redact(json.dumps(self._payload, ensure_ascii=False, separators=(",", ":"))
                      [: 2 * activitylog.EXCERPT_CHARS], key)
        listed = [p.as_dict() for p in redact_problems(problems, key)]
        return self._fail(job, entry, activitylog.problems_text(listed), status="rejected", problems=listed[:50],
                          excerpt=activitylog.bounded(text, activitylog.EXCERPT_CHARS))

    def _fail(self, job: messages.Job, entry: Entry | None, reason: str, *, status: str = "failed",
              **details: Any) -> Outcome:
        reason = activitylog.bounded(reason, activitylog.ERROR_CHARS) or status
        replay.keep_failed(self.storage, job.user, job.sync_id, payload=self._payload, blob=job.blob)
        if entry is None:
            entry = activitylog.create(self.storage, Entry(user=job.user, sync_id=job.sync_id, status=status,
                                                           source=job.source, attempts=1, error=reason, **details))
            if entry is None:
                entry = activitylog.get(self.storage, job.user, job.sync_id)
        if entry is not None and (entry.status != status or entry.error != reason):
            entry = self._update(entry, status=status, error=reason, next_try=None, lease_until=None,
                                 lease_owner=None, **details)
        replay.discard(self.storage, job.user, job.sync_id, job.blob)
        if entry is not None and entry.status in activitylog.DONE:  # another delivery put it on Strava meanwhile
            replay.drop_kept(self.storage, job.user, job.sync_id)
            return Outcome("skipped", job.sync_id, entry.activity_id, reason=f"already {entry.status}")
        return Outcome(status, job.sync_id, reason=reason)

    def _defer(self, job: messages.Job, entry: Entry, until: datetime, why: str) -> Outcome:
        """Back on the queue until a rate-limit window resets; the dequeue count and tries are untouched."""
        seconds = max(0.0, (until - self.clock()).total_seconds()) + RESET_MARGIN
        return self._later(job, entry, seconds, f"{why}; retrying after {activitylog.iso(until)}")

    def _retry(self, job: messages.Job, entry: Entry, why: str, *, ambiguous: bool) -> Outcome:
        tries = job.tries + 1
        if tries >= MAX_TRIES:
            return self._fail(job, entry, f"Strava kept failing ({tries} attempts); last error: {why}")
        delay = BACKOFF[min(tries, len(BACKOFF)) - 1]
        # `ambiguous`: Strava may have acted on it, so the next attempt looks before creating again.
        return self._later(job.again(tries=tries), entry, delay, f"temporary Strava failure, retry {tries}: {why}",
                           ambiguous=entry.ambiguous or ambiguous)

    def _later(self, job: messages.Job, entry: Entry, seconds: float, why: str, **changes: Any) -> Outcome:
        """Queue a new message invisible for `seconds` (scaled), then free the row for whoever takes it."""
        delay = seconds * delay_scale()
        messages.send(self.storage, job, delay=delay)
        self._update(entry, status="queued", error=activitylog.bounded(why, activitylog.ERROR_CHARS),
                     next_try=self.clock() + timedelta(seconds=delay), lease_until=None, lease_owner=None,
                     **changes)
        return Outcome("deferred", job.sync_id, delay=delay, reason=why)

    def _step_aside(self, job: messages.Job, remaining: float) -> Outcome:
        if job.backoffs >= MAX_STEP_ASIDES:
            log.info("activity sync_id=%s left to the worker holding its lease", job.sync_id)
            return Outcome("skipped", job.sync_id, reason="another worker holds it")
        delay = max(1.0, min(remaining, STEP_ASIDE) * delay_scale())
        messages.send(self.storage, job.again(backoffs=job.backoffs + 1), delay=delay)
        return Outcome("deferred", job.sync_id, delay=delay, reason="another worker holds it")

    def _release(self, entry: Entry, why: str) -> None:
        """Best effort: free our lease so the host's retry of this message can claim it at once."""
        try:
            current = activitylog.get(self.storage, entry.user, entry.sync_id)
            if current is not None and current.status == "uploading" and current.lease_owner == self.me:
                activitylog.save(self.storage, current, status="queued", error=why, lease_until=None,
                                 lease_owner=None)
        except Exception:
            log.warning("could not release the lease of activity %s", entry.sync_id, exc_info=True)


def _close(text: Any, moment: datetime) -> bool:
    if not isinstance(text, str) or not text:
        return False
    try:
        other = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return False
    if (other.tzinfo is None) != (moment.tzinfo is None):
        other, moment = other.replace(tzinfo=None), moment.replace(tzinfo=None)
    return abs(other - moment) <= MANUAL_MATCH


def process(job: messages.Job, cfg: Settings | None = None) -> Outcome:
    """Run one job with the process's settings (the queue worker's entry point)."""
    cfg = cfg or settings()
    outcome = Syncer(cfg.storage, cfg).run(job)
    log.info("job sync_id=%s outcome=%s delay=%s", job.sync_id, outcome.status, outcome.delay)
    return outcome


def give_up(user: str | None, sync_id: str | None, blob: str | None, reason: str,
            cfg: Settings | None = None, *, payload: dict[str, Any] | None = None) -> None:
    """A message no retry can help (poisoned, unreadable): make the failure visible in the log.

    The payload (inline `payload`, or `blob`) is kept for a retry unless the activity is on Strava already.
    """
    cfg = cfg or settings()
    if not user or not sync_id:
        if blob:
            messages.delete_payload(cfg.storage, blob)
        log.error("failed queue message without an activity id: %s", reason)
        return
    replay.keep_failed(cfg.storage, user, sync_id, payload=payload, blob=blob)
    replay.discard(cfg.storage, user, sync_id, blob)
    for _ in range(10):
        entry = activitylog.get(cfg.storage, user, sync_id)
        if entry is None:
            fresh = Entry(user=user, sync_id=sync_id, status="failed", attempts=1, error=reason)
            if activitylog.create(cfg.storage, fresh) is not None:
                return
            continue
        if entry.status in activitylog.DONE:
            replay.drop_kept(cfg.storage, user, sync_id)
            return
        full = reason + (f" (last error: {entry.error})" if entry.error and entry.error not in reason else "")
        try:
            activitylog.save(cfg.storage, entry, status="failed", next_try=None, lease_until=None, lease_owner=None,
                             error=activitylog.bounded(full, activitylog.ERROR_CHARS))
            return
        except activitylog.Conflict:
            continue
    raise RuntimeError(f"could not mark activity {sync_id} as failed")
