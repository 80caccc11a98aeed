"""One queued activity through conversion and upload to Strava, with the retry policy. The worker's logic.

Exactly once on Strava, whatever happens: the log is checked first, the row is claimed with an ETag
compare-and-swap and a lease (a second delivery steps aside), uploads carry a stable `external_id`,
Strava's "duplicate of activity N" counts as done, and a manual activity whose creation may have
reached Strava unseen is looked for before it is created again.

What to do after each kind of trouble (wait for a rate-limit window, retry with growing delays, fail
at once, step aside for another worker) is shared.live.retrypolicy's pure decision; this module does
what it says: a new queue message, the row's update, the payload kept for the owner's retry.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from shared.config import Settings, SettingsError, current
from shared.live import retrypolicy
from shared.live.retrypolicy import Decision, Defer, Fail, GiveUp, Retry, StepAside, Trouble
from shared.model.status import Status
from shared.storage import activitylog, cas, kept, messages
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
    """Another worker holds a live lease on this activity, until `until` (seen at `now`)."""

    def __init__(self, until: datetime, now: datetime) -> None:
        super().__init__(f"leased for {(until - now).total_seconds():.0f} s more")
        self.until = until
        self.now = now


class Syncer:
    """Runs one job; `client` and `clock` can be given (tests), else they come from settings."""

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
            if entry.rules_pending and entry.activity_id:  # deferred past a spent window, or asked by a retry
                try:
                    client = self._client or client_for(self.cfg, athlete_of(job.user))
                except SettingsError as exc:
                    return Outcome(entry.status, job.sync_id, entry.activity_id, reason=str(exc))
                return self._apply_rules(job, entry, client)
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
            return self._step_aside(job, aside)
        if entry.status in activitylog.DONE:
            messages.delete_payload(self.storage, job.blob)
            return Outcome("skipped", job.sync_id, entry.activity_id, reason=f"already {entry.status}")
        try:
            outcome = self._push(job, entry, client, strava_activity)
        except Exception as exc:
            self._release(entry, f"internal error ({type(exc).__name__}); retrying")
            raise
        if outcome.status == Status.SYNCED:
            fresh = activitylog.get(self.storage, job.user, job.sync_id)
            if fresh is not None and fresh.rules_pending and fresh.activity_id:
                return self._apply_rules(job, fresh, client)
        return outcome

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
            facts: dict[str, Any] = {"runkeeper_type": parsed.type, "points": len(parsed.points)}
            for name, value in (("distance", parsed.measured_distance()), ("duration", parsed.measured_duration())):
                if value:  # the ack may not have known (a track without a stated distance): the page shows it
                    facts[name] = value
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
        fresh = Entry(user=job.user, sync_id=job.sync_id, status=Status.QUEUED, source=job.source,
                      sport_type=act.sport_type, name=act.name, start=act.start, **facts)
        created = activitylog.create(self.storage, fresh)
        if created is not None:
            return created
        existing = activitylog.get(self.storage, job.user, job.sync_id)
        assert existing is not None, "row vanished between insert and read"
        return existing

    def _claim(self, entry: Entry, act: StravaActivity, facts: dict[str, Any]) -> Entry:
        """CAS the row to `uploading` under our lease; a live lease of someone else makes us step aside."""
        def attempt(current: Entry) -> Entry:
            if current.status in activitylog.DONE:
                return current
            now = self.clock()
            if current.leased(now) and current.lease_owner != self.me:
                assert current.lease_until is not None
                raise _StepAside(current.lease_until, now)
            # A row left `uploading` by a worker that died: it may have reached Strava. Look before creating.
            interrupted = current.status == Status.UPLOADING
            return activitylog.save(
                self.storage, current, status=Status.UPLOADING, lease_until=now + LEASE, lease_owner=self.me,
                attempts=current.attempts + 1, next_try=None, ambiguous=current.ambiguous or interrupted,
                name=act.name, sport_type=act.sport_type, start=current.start or act.start, **facts,
            )

        try:
            return cas.update(lambda: self._reread(entry), attempt, attempts=10, current=entry)
        except cas.Exhausted:
            raise RuntimeError(f"could not claim activity {entry.sync_id}: the row keeps changing") from None

    def _reread(self, entry: Entry) -> Entry:
        """The row again after a lost race; it is never deleted while a job runs, so its absence is a bug."""
        fresh = activitylog.get(self.storage, entry.user, entry.sync_id)
        if fresh is None:
            raise RuntimeError(f"activity log row {entry.sync_id} disappeared") from None
        return fresh

    # ---- Strava ----------------------------------------------------------------------------------
    def _push(self, job: messages.Job, entry: Entry, client: StravaClient, act: StravaActivity) -> Outcome:
        from shared.strava.errors import Permanent, RateLimited, Transient, Unauthorized

        scale = self.cfg.sync_delay_scale
        try:
            # A status check or a look for a manual activity is a read: it needs the read budget too.
            reads = bool(entry.upload_id) or (act.gpx is None and entry.ambiguous)
            wait = client.budget.wait_until("read" if reads else "overall", self.clock())
            if wait is not None:
                return self._apply(job, entry, retrypolicy.decide(Trouble.BUDGET_SPENT, job.tries, now=self.clock(),
                                                                   until=wait, scale=scale))
            if act.gpx is not None:
                return self._upload(job, entry, client, act)
            return self._manual(job, entry, client, act)
        except (RateLimited, Transient, Unauthorized, Permanent) as exc:  # typed: the policy goes by class
            return self._apply(job, entry, retrypolicy.after_error(exc, job.tries, now=self.clock(), scale=scale))

    def _upload(self, job: messages.Job, entry: Entry, client: StravaClient, act: StravaActivity) -> Outcome:
        from shared.model.syncid import external_id

        assert act.gpx is not None
        if entry.upload_id:  # an earlier attempt's upload was still processing: look, never upload again
            outcome = client.wait_for_upload(entry.upload_id, max_wait=UPLOAD_WAIT)
        else:
            upload = client.send_upload(act, external_id=external_id(entry.sync_id), filename=f"{entry.sync_id}.gpx")
            entry = self._update(entry, upload_id=upload.id)
            outcome = upload.outcome()
            if outcome.state == "processing":
                outcome = client.wait_for_upload(upload.id, max_wait=UPLOAD_WAIT,
                                                  first_check_after=FIRST_CHECK * self.cfg.sync_delay_scale)
        return self._settle(job, entry, outcome)

    def _settle(self, job: messages.Job, entry: Entry, outcome: UploadOutcome) -> Outcome:
        if outcome.state == "ready":
            return self._done(job, entry, Status.SYNCED, outcome.activity_id)
        if outcome.state == "duplicate":
            # After an attempt that may have gone through, "duplicate" is most likely our own upload.
            return self._done(job, entry, Status.SYNCED if entry.ambiguous else Status.DUPLICATE, outcome.activity_id)
        if outcome.state == "error":
            return self._fail(job, entry, f"Strava could not process the upload: {outcome.message}")
        return self._apply(job, entry, retrypolicy.decide(Trouble.PROCESSING, job.tries, detail=outcome.upload_id,
                                                           scale=self.cfg.sync_delay_scale))

    def _manual(self, job: messages.Job, entry: Entry, client: StravaClient, act: StravaActivity) -> Outcome:
        if entry.ambiguous:
            found = self._find_manual(client, act)
            if found is not None:
                return self._done(job, entry, Status.SYNCED, found)
        assert act.elapsed_time is not None
        created = client.send_manual(act)
        return self._done(job, entry, Status.SYNCED, str(created["id"]))

    def _find_manual(self, client: StravaClient, act: StravaActivity) -> str | None:
        """The activity Strava already has for this one, by the shared rule (shared.model.matching), if any."""
        from shared.model.matching import ListedActivity, closest

        span = timedelta(hours=15)  # the athlete's profile zone may read start_date_local differently
        listed = [ListedActivity.from_summary(s) for s in client.list_activities(act.start - span, act.start + span)]
        found = closest(listed, sport_type=act.sport_type, start=act.start, start_local=act.start_local,
                        elapsed_time=act.elapsed_time, distance=act.distance)
        return found.id if found is not None else None

    # ---- outcomes --------------------------------------------------------------------------------
    def _update(self, entry: Entry, **changes: Any) -> Entry:
        """Write what Strava told us; Strava is the truth, so a lost CAS re-reads and writes again."""
        def write(current: Entry) -> Entry:
            return activitylog.save(self.storage, current, **changes)

        def on_strava(fresh: Entry) -> bool:  # someone recorded it as on Strava: never step back from that
            return fresh.status in activitylog.DONE and changes.get("status") not in activitylog.DONE

        try:
            return cas.update(lambda: self._reread(entry), write, attempts=10, current=entry, stop=on_strava)
        except cas.Exhausted:
            raise RuntimeError(f"could not update activity {entry.sync_id}: the row keeps changing") from None

    def _done(self, job: messages.Job, entry: Entry, status: Status, activity_id: str | None) -> Outcome:
        from shared.model import rules

        body = rules.changes(entry.sport_type, gear=self.cfg.gear, mute=self.cfg.mute) if status == Status.SYNCED \
            else {}
        self._update(entry, status=status, activity_id=activity_id, error=None, next_try=None,
                     lease_until=None, lease_owner=None, rules_pending=rules.dumps(body), rule_error=None)
        messages.delete_payload(self.storage, job.blob)
        if job.blob != kept.kept_name(job.user, job.sync_id):
            kept.drop_kept(self.storage, job.user, job.sync_id)  # kept by an earlier failure, if any
        return Outcome(status, job.sync_id, activity_id)

    def _apply_rules(self, job: messages.Job, entry: Entry, client: StravaClient) -> Outcome:
        """The owner's rules (gear, mute) on a synced activity: one PUT. Never fails the sync: a spent window
        defers them on a new message; any other failure is recorded on the row for the owner's retry."""
        from shared.model import rules
        from shared.strava.errors import RateLimited, StravaError

        body = rules.loads(entry.rules_pending)
        assert entry.activity_id is not None
        scale = self.cfg.sync_delay_scale
        until = client.budget.wait_until("read", self.clock())
        try:
            if until is None:
                client.update_activity(entry.activity_id, body)
        except RateLimited as exc:
            until = exc.reset_at
        except StravaError as exc:
            why = activitylog.bounded(f"{rules.names(body)}: {exc}", activitylog.ERROR_CHARS)
            self._update(entry, status=entry.status, rule_error=why)
            log.warning("activity sync_id=%s synced, but its rules failed: %s", entry.sync_id, why)
            return Outcome(entry.status, job.sync_id, entry.activity_id, reason=why)
        if until is not None:
            decision = retrypolicy.decide(Trouble.BUDGET_SPENT, job.tries, now=self.clock(), until=until, scale=scale)
            assert isinstance(decision, Defer)
            messages.send(self.storage, job.again(payload={}, blob=None), delay=decision.delay)  # rules only
            self._update(entry, status=entry.status, rule_error=f"{rules.names(body)} waiting: {decision.why}")
            return Outcome(entry.status, job.sync_id, entry.activity_id, delay=decision.delay,
                           reason=f"rules deferred: {decision.why}")
        self._update(entry, status=entry.status, rules_pending=None, rule_error=None)
        return Outcome(entry.status, job.sync_id, entry.activity_id)

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
        return self._fail(job, entry, activitylog.problems_text(listed), status=Status.REJECTED, problems=listed[:50],
                          excerpt=activitylog.bounded(text, activitylog.EXCERPT_CHARS))

    def _fail(self, job: messages.Job, entry: Entry | None, reason: str, *, status: Status = Status.FAILED,
              **details: Any) -> Outcome:
        reason = activitylog.bounded(reason, activitylog.ERROR_CHARS) or status
        kept.keep_failed(self.storage, job.user, job.sync_id, payload=self._payload, blob=job.blob)
        if entry is None:
            entry = activitylog.create(self.storage, Entry(user=job.user, sync_id=job.sync_id, status=status,
                                                           source=job.source, attempts=1, error=reason, **details))
            if entry is None:
                entry = activitylog.get(self.storage, job.user, job.sync_id)
        if entry is not None and (entry.status != status or entry.error != reason):
            entry = self._update(entry, status=status, error=reason, next_try=None, lease_until=None,
                                 lease_owner=None, **details)
        kept.discard(self.storage, job.user, job.sync_id, job.blob)
        if entry is not None and entry.status in activitylog.DONE:  # another delivery put it on Strava meanwhile
            kept.drop_kept(self.storage, job.user, job.sync_id)
            return Outcome("skipped", job.sync_id, entry.activity_id, reason=f"already {entry.status}")
        return Outcome(status, job.sync_id, reason=reason)

    def _apply(self, job: messages.Job, entry: Entry, decision: Decision) -> Outcome:
        """Do what the retry policy decided about a delivery that did not end on Strava."""
        if isinstance(decision, Fail):
            return self._fail(job, entry, decision.reason)
        if isinstance(decision, Defer):  # the dequeue count and tries are untouched
            return self._later(job, entry, decision.delay, decision.why)
        if isinstance(decision, Retry):
            # `look_first`: Strava may have acted on it, so the next attempt looks before creating again.
            changes = {} if decision.look_first is None else {"ambiguous": entry.ambiguous or decision.look_first}
            return self._later(job.again(tries=decision.tries), entry, decision.delay, decision.why, **changes)
        raise TypeError(f"{type(decision).__name__} is not an answer to a Strava failure")

    def _later(self, job: messages.Job, entry: Entry, delay: float, why: str, **changes: Any) -> Outcome:
        """Queue a new message invisible for `delay` seconds (scaled), then free the row for whoever takes it."""
        messages.send(self.storage, job, delay=delay)
        self._update(entry, status=Status.QUEUED, error=activitylog.bounded(why, activitylog.ERROR_CHARS),
                     next_try=self.clock() + timedelta(seconds=delay), lease_until=None, lease_owner=None,
                     **changes)
        return Outcome("deferred", job.sync_id, delay=delay, reason=why)

    def _step_aside(self, job: messages.Job, aside: _StepAside) -> Outcome:
        """Look again later, on a new message, without touching the row: its lease holder is writing it."""
        decision = retrypolicy.decide(Trouble.LEASE_HELD, job.backoffs, now=aside.now, until=aside.until,
                                      scale=self.cfg.sync_delay_scale)
        if isinstance(decision, GiveUp):
            log.info("activity sync_id=%s left to the worker holding its lease", job.sync_id)
            return Outcome("skipped", job.sync_id, reason=decision.why)
        assert isinstance(decision, StepAside)
        messages.send(self.storage, job.again(backoffs=decision.step_asides), delay=decision.delay)
        return Outcome("deferred", job.sync_id, delay=decision.delay, reason=decision.why)

    def _release(self, entry: Entry, why: str) -> None:
        """Best effort: free our lease so the host's retry of this message can claim it at once."""
        try:
            current = activitylog.get(self.storage, entry.user, entry.sync_id)
            if current is not None and current.status == Status.UPLOADING and current.lease_owner == self.me:
                activitylog.save(self.storage, current, status=Status.QUEUED, error=why, lease_until=None,
                                 lease_owner=None)
        except Exception:
            log.warning("could not release the lease of activity %s", entry.sync_id, exc_info=True)


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
    kept.keep_failed(cfg.storage, user, sync_id, payload=payload, blob=blob)
    kept.discard(cfg.storage, user, sync_id, blob)

    def attempt(entry: Entry | None) -> None:
        if entry is None:
            fresh = Entry(user=user, sync_id=sync_id, status="failed", attempts=1, error=reason)
            if activitylog.create(cfg.storage, fresh) is None:
                raise activitylog.Conflict(f"activity {sync_id} was created concurrently")
            return
        if entry.status in activitylog.DONE:
            kept.drop_kept(cfg.storage, user, sync_id)
            return
        full = reason + (f" (last error: {entry.error})" if entry.error and entry.error not in reason else "")
        activitylog.save(cfg.storage, entry, status="failed", next_try=None, lease_until=None, lease_owner=None,
                         error=activitylog.bounded(full, activitylog.ERROR_CHARS))

    try:
        cas.update(lambda: activitylog.get(cfg.storage, user, sync_id), attempt, attempts=10)
    except cas.Exhausted:
        raise RuntimeError(f"could not mark activity {sync_id} as failed") from None
