"""The import run: a Plan sent to Strava on its rate budget, with the activity log deciding what is left.

Strava calls are spent like money: one per activity, plus a few paged listings that both find what
already exists and confirm uploads in bulk, never a call the budget knows would be refused. The log's
rows are the live path's too, so the run writes them only through shared.history.rows.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.history import estimate
from shared.history.listing import StravaIndex, listing_ranges
from shared.history.plan import CannotImport, Failure, Item, Plan, read_member_gpx
from shared.history.report import Progress, Report
from shared.history.rows import SOURCE, ImportRows, Work
from shared.model.status import DONE, RETRYABLE, Status
from shared.model.times import utcnow
from shared.model.users import OWNER
from shared.runkeeper.export import Export, member_stem
from shared.runkeeper.gpxfile import GpxError
from shared.storage import activitylog
from shared.storage.clients import Storage
from shared.strava.errors import NotConnected, Permanent, RateLimited, Transient, Unauthorized

if TYPE_CHECKING:
    from shared.strava.api import StravaClient, UploadOutcome
    from shared.strava.ratelimit import Kind

log = logging.getLogger("shared.history.run")

Clock = Callable[[], datetime]
Sleep = Callable[[float], None]
TRANSIENT_TRIES = 3  # per activity, before it is marked failed
TRANSIENT_STREAK = 6  # consecutive transient failures: Strava is down, stop rather than churn
POLL_ROUNDS = 4  # rounds of individual upload checks at the end (each at least 2 s apart)
WINDOW_SLACK = timedelta(seconds=2)  # our clock and Strava's may differ a little at a boundary


class Stopped(Exception):
    """--no-wait met the rate limit: the run ends here and can resume at `resume_at`."""

    def __init__(self, resume_at: datetime) -> None:
        super().__init__(f"rate limit reached; resume after {resume_at:%Y-%m-%d %H:%M} UTC")
        self.resume_at = resume_at


class Importer:
    """Runs a Plan against Strava and the activity log; `wait=False` stops at the rate limit instead of sleeping."""

    def __init__(self, client: StravaClient, storage: Storage, *, user: str = OWNER, export: Export | None = None,
                 wait: bool = True, retry_failed: bool = False, progress: Progress | None = None,
                 clock: Clock = utcnow, sleep: Sleep | None = None,
                 rules: Callable[[str | None], dict[str, Any]] | None = None) -> None:
        self.client = client
        self.rules = rules or (lambda _sport: {})  # sport type -> the PUT body of the owner's rules (gear, mute)
        self.storage = storage
        self.user = user
        self.export = export
        self.wait = wait
        self.retry_failed = retry_failed
        self.progress = progress or Progress()
        self.now = clock
        self.sleep = sleep or time.sleep
        self.run_id = "import-" + uuid.uuid4().hex[:12]
        self.rows = ImportRows(storage, user, self.run_id, clock)
        self._streak = 0
        self._ticked: set[str] = set()
        self._first_call_at: datetime | None = None
        self._calls_at_start = 0
        self._todo: list[Work] = []
        self._confirm_list: list[Work] = []

    # ---- the whole run -------------------------------------------------------------------------------------
    def run(self, plan: Plan, *, limit: int | None = None) -> Report:
        """Send what the log says is left (at most `limit`), confirm it, and report; resumable at any point."""
        report = Report(plan=plan, started=self.now())
        self.report = report
        self._calls_at_start = self.client.calls
        report.failures.extend(plan.failures)
        report.counts.failed += len(plan.failures)
        for item in plan.items:
            if item.note:
                log.info("note      %s: %s", item.origin, item.note)
        todo, confirm = self._classify(plan, report)
        if limit is not None and len(todo) > limit:
            report.counts.left += len(todo) - limit
            todo = todo[:limit]
        self._todo, self._confirm_list = todo, confirm
        self.progress.start(len(plan.items), report.counts.done_before + report.counts.elsewhere
                            + report.counts.failed_before + report.counts.failed)
        try:
            if todo or confirm:
                index = self._listing([w.item for w in todo + confirm])
                self._resolve(index)
                self._requeue_unsent()
                self._skip_existing(self._todo, index)
            while self._todo:
                self._send(self._todo[0])
                self._todo.pop(0)
            self._confirm()
        except Stopped as stop:
            report.stopped_until = stop.resume_at
            report.counts.left += len(self._todo)
        finally:
            report.calls = self.client.calls - self._calls_at_start
            report.unconfirmed = [w.item.origin for w in self._confirm_list]
            report.counts.unconfirmed = len(self._confirm_list)
            report.finished = self.now()
            self.progress.close()
        return report

    def _classify(self, plan: Plan, report: Report) -> tuple[list[Work], list[Work]]:
        """Against the log: done, someone else's, failed before, to confirm, or to send."""
        entries = {e.sync_id: e for e in activitylog.list_activities(self.storage, self.user, limit=10**9)}
        todo: list[Work] = []
        confirm: list[Work] = []
        counts = report.counts
        for item in plan.items:
            entry = entries.get(item.sync_id)
            status = entry.status if entry else None
            if status in DONE:
                counts.done_before += 1
            elif status in (Status.QUEUED, Status.UPLOADING) and entry and entry.source != SOURCE:
                counts.elsewhere += 1
            elif item.problem:
                self._fail_locally(item, entry)
            elif status == Status.UPLOADING and entry:  # ours, from a run that ended before knowing the outcome
                confirm.append(Work(item, entry))
            elif status in RETRYABLE and entry and not self.retry_failed:
                counts.failed_before += 1
                report.failures.append(Failure(item.origin, f"{entry.error or 'failed'} (earlier run)"))
            else:
                todo.append(Work(item, entry))
        return todo, confirm

    # ---- the budget ----------------------------------------------------------------------------------------
    def _acquire(self, kind: Kind, n: int = 1) -> None:
        """Return once `n` calls of `kind` fit the budget: sleep to the window, or stop with --no-wait."""
        while True:
            now = self.now()
            until = self.client.budget.wait_until(kind, now, n)
            if until is None:
                return
            self._pause(until + WINDOW_SLACK)

    def _pause(self, until: datetime) -> None:
        """Sleep until `until`, keeping the bar's countdown fresh; with --no-wait, stop the run instead."""
        if not self.wait:
            raise Stopped(until)
        self.progress.waiting(until, self.report.counts, self.eta())
        log.info("rate limit: waiting until %s", until.isoformat())
        while (left := (until - self.now()).total_seconds()) > 0:
            self.sleep(min(left, 30.0))
            self.progress.waiting(until, self.report.counts, self.eta())

    def eta(self) -> datetime | None:
        """When the remaining calls should be done, at the limits Strava's headers gave, waits included."""
        now = self.now()
        budget = self.client.budget
        limit15, limit_day = budget.limits("overall")
        if not limit15 or not limit_day:
            return None
        ruled = sum(1 for w in self._todo + self._confirm_list if self.rules(w.item.sport_type))
        calls = estimate.calls_left(len(self._todo), len(self._confirm_list), rules=ruled)
        per_call = estimate.seconds_per_call(self.client.calls - self._calls_at_start, self._first_call_at, now)
        return estimate.finish_at(now, calls, per_call, limits=(limit15, limit_day),
                                  left=budget.remaining("overall", now))

    def _call(self, kind: Kind, fn: Callable[[], Any]) -> Any:
        """One Strava call inside the budget; a 429 we could not foresee (another user of the app's limits) waits."""
        while True:
            self._acquire(kind)
            self._first_call_at = self._first_call_at or self.now()
            try:
                return fn()
            except RateLimited as exc:
                self._pause(exc.reset_at + WINDOW_SLACK)

    # ---- listing -------------------------------------------------------------------------------------------
    def _listing(self, items: list[Item]) -> StravaIndex:
        """The athlete's Strava activities around `items`, a page of 200 per call."""
        index = StravaIndex()
        for after, before in listing_ranges(items):
            for attempt in range(TRANSIENT_TRIES):
                try:
                    index.add(self._call("read", lambda a=after, b=before: self.client.list_activities(a, b)))
                    break
                except Transient as exc:
                    if attempt == TRANSIENT_TRIES - 1:
                        raise CannotImport(f"listing your Strava activities keeps failing ({exc}); nothing is "
                                           "lost: run the import again later") from None
                    self.sleep(2.0 ** attempt)
        return index

    def _resolve(self, index: StravaIndex) -> None:
        """Sent (this run or before) and now on Strava: synced. Still unknown: kept for an individual check."""
        for work in list(self._confirm_list):
            act = index.match(work.item, work.entry.upload_id if work.entry else None)
            if act is None:
                continue
            self._confirm_list.remove(work)
            self._done(work, Status.SYNCED, act.id)
            self.report.counts.uploaded += not work.item.is_manual
            self.report.counts.manual += work.item.is_manual
            self._tick(work)

    def _requeue_unsent(self) -> None:
        """Claimed in an earlier run but with no upload id, and not on Strava: it never got there. Send it."""
        unsent = [w for w in self._confirm_list if not (w.entry and w.entry.upload_id)]
        for work in unsent:
            self._confirm_list.remove(work)
        self._todo = sorted(self._todo + unsent, key=lambda w: (w.item.start, w.item.origin))

    def _skip_existing(self, todo: list[Work], index: StravaIndex) -> None:
        """What Strava already has (a watch's copy, an earlier upload) is recorded `duplicate`, never sent."""
        keep: list[Work] = []
        for work in todo:
            act = index.match(work.item, work.entry.upload_id if work.entry else None)
            if act is None:
                keep.append(work)
                continue
            self.rows.record(work, Status.DUPLICATE, activity_id=act.id, error=None)
            self.report.counts.duplicate += 1
            self._tick(work)
        self._todo = keep

    # ---- sending -------------------------------------------------------------------------------------------
    def _send(self, work: Work) -> None:
        """Claim the row, then upload or create it; transient failures retry a little, then fail or stop the run."""
        item = work.item
        self._acquire("overall")  # before the claim, so a stop leaves no row half-claimed
        if not self.rows.claim(work):
            self.report.counts.elsewhere += 1
            self._tick(work)
            return
        while True:
            work.tries += 1
            try:
                if item.is_manual:
                    answer = self._call("overall", lambda: self.client.send_manual(item.to_strava()))
                    self.report.counts.sent += 1
                    self._done(work, Status.SYNCED, str(answer["id"]))
                    self.report.counts.manual += 1
                else:
                    data = self._gpx_bytes(work)
                    if data is None:
                        self._tick(work)
                        return
                    upload = self._call("overall", lambda d=data: self.client.send_upload(
                        item.to_strava(d), external_id=item.external_id,
                        filename=member_stem(item.gpx_member or "activity.gpx")))
                    self.report.counts.sent += 1
                    outcome = upload.outcome()
                    if outcome.state == "processing":
                        self.rows.save(work, upload_id=upload.id, ambiguous=False, error=None)
                        self._confirm_list.append(work)
                    else:
                        self._settle(work, outcome)
                self._streak = 0
                self._tick(work)
                return
            except Stopped:
                self.rows.release(work)
                raise
            except (NotConnected, Unauthorized) as exc:
                self.rows.release(work)
                raise CannotImport(f"{exc}. Connect Strava again (open /api/strava/connect with the app's key, "
                                   "or `python -m shared.cli connect`), then run the import again") from None
            except Transient as exc:
                self._streak += 1
                if exc.maybe_applied:
                    # Strava may have it: the listing at the end looks before anything is sent again.
                    self.rows.save(work, ambiguous=True, error=str(exc))
                    self._confirm_list.append(work)
                    self._tick(work)
                    return
                if self._streak >= TRANSIENT_STREAK:
                    self.rows.release(work)
                    raise CannotImport(f"Strava keeps failing ({exc}); nothing is lost: run the import "
                                       "again later and it continues where it stopped") from None
                if work.tries >= TRANSIENT_TRIES:
                    self._fail(work, f"Strava kept failing: {exc}")
                    self._tick(work)
                    return
                self.sleep(2.0 ** work.tries)
            except Permanent as exc:
                self._fail(work, str(exc))
                self._tick(work)
                return

    def _gpx_bytes(self, work: Work) -> bytes | None:
        """The file again (the plan keeps no bytes: 1,500 tracks would not fit in memory), repaired if needed."""
        item = work.item
        if self.export is None or item.gpx_member is None:
            raise CannotImport("the importer needs the export to read GPX files from")
        try:
            return read_member_gpx(self.export, item.gpx_member).data
        except GpxError as exc:
            self._fail(work, f"{member_stem(item.gpx_member)}: {exc}")
            return None

    def _settle(self, work: Work, outcome: UploadOutcome) -> None:
        """An upload's final answer, recorded and counted."""
        if outcome.state == "ready":
            self._done(work, Status.SYNCED, outcome.activity_id)
            self.report.counts.uploaded += 1
        elif outcome.state == "duplicate":
            self._done(work, Status.DUPLICATE, outcome.activity_id)
            self.report.counts.duplicate += 1
        else:
            self._fail(work, f"Strava could not process the file: {outcome.message or 'no reason given'}")

    # ---- confirming ----------------------------------------------------------------------------------------
    def _confirm(self) -> None:
        """Uploads whose outcome is unknown: one listing for all, then a status call only for what it misses."""
        if not self._confirm_list:
            return
        self._resolve(self._listing([w.item for w in self._confirm_list]))
        resend = [w for w in self._confirm_list if not w.entry or not w.entry.upload_id]
        for work in resend:  # the request may never have reached Strava: the listing says it did not
            self._confirm_list.remove(work)
            self._send(work)
        for round_ in range(POLL_ROUNDS):
            waiting: list[Work] = []
            for work in list(self._confirm_list):
                upload_id = work.entry.upload_id if work.entry else None
                if not upload_id:
                    continue
                try:
                    outcome = self._call("read", lambda u=upload_id: self.client.upload_status(u))
                except Transient:
                    waiting.append(work)
                    continue
                if outcome.state == "processing":
                    waiting.append(work)
                else:
                    self._confirm_list.remove(work)
                    self._settle(work, outcome)
                    self._tick(work)
            if not waiting or round_ == POLL_ROUNDS - 1:
                break
            self.sleep(2.0 * (round_ + 1))  # Strava asks for no more than one poll a second

    # ---- outcomes ------------------------------------------------------------------------------------------
    def _done(self, work: Work, status: Status, activity_id: str | None) -> None:
        """On Strava: the row says where, and nothing is left uncertain; then the owner's rules, if any apply."""
        from shared.model import rules

        body = self.rules(work.item.sport_type) if status == Status.SYNCED and activity_id else {}
        self.rows.record(work, status, activity_id=activity_id, error=None, ambiguous=False,
                         rules_pending=rules.dumps(body), rule_error=None)
        if body and activity_id:
            self._apply_rules(work, activity_id, body)

    def _apply_rules(self, work: Work, activity_id: str, body: dict[str, Any]) -> None:
        """One PUT on the read budget (waiting for its window like any call); a failure leaves the activity
        synced with the rule named on its row, for `retry` to apply later."""
        from shared.model import rules

        try:
            self._call("read", lambda: self.client.update_activity(activity_id, body))
        except (Transient, Permanent, Unauthorized) as exc:
            why = activitylog.bounded(f"{rules.names(body)}: {exc}", activitylog.ERROR_CHARS)
            self.rows.record(work, Status.SYNCED, rule_error=why)
            self.report.counts.rules_failed += 1
            self.report.rule_failures.append(Failure(work.item.origin, why or ""))
            return
        self.rows.record(work, Status.SYNCED, rules_pending=None, rule_error=None)
        self.report.counts.rules += 1

    def _fail(self, work: Work, reason: str) -> None:
        """Failed in this run: recorded, reported, and no longer waited for."""
        self.rows.record(work, Status.FAILED, error=activitylog.bounded(reason, activitylog.ERROR_CHARS))
        self.report.counts.failed += 1
        self.report.failures.append(Failure(work.item.origin, reason))
        if work in self._confirm_list:
            self._confirm_list.remove(work)

    def _fail_locally(self, item: Item, entry: activitylog.Entry | None) -> None:
        """An item the plan already knows cannot be sent: failed without a Strava call."""
        reason = item.problem or "cannot be imported"
        if item.gpx_member:  # the log row has no origin column: name the file there
            reason = f"{member_stem(item.gpx_member)}: {reason}"
        work = Work(item, entry)
        ours = entry is None or entry.source == SOURCE  # a live row keeps its own story
        if ours and (entry is None or entry.error != reason or entry.status != Status.FAILED):
            self.rows.record(work, Status.FAILED, error=activitylog.bounded(reason, activitylog.ERROR_CHARS))
        self.report.counts.failed += 1
        self.report.failures.append(Failure(item.origin, item.problem or reason))

    def _tick(self, work: Work) -> None:
        """Advance the bar once per activity (a confirmation after sending only refreshes the counts)."""
        first = work.item.sync_id not in self._ticked
        self.report.counts.sending = len(self._confirm_list)
        self._ticked.add(work.item.sync_id)
        self.progress.advance(self.report.counts, self.eta(), 1 if first else 0)
