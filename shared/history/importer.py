"""The historical import: a Runkeeper export planned into activities, then sent to Strava on a rate budget.

The plan does no I/O beyond the export; every activity gets the live path's sync id (start in UTC and
sport type), so the activity log and Strava's own listing tell us what is already there. The run then
spends Strava calls like money: one call per activity, plus a few paged listings that both find what
already exists and confirm uploads in bulk, never a call the budget knows would be refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared.model.naming import activity_name
from shared.model.sports import strava_sport, type_from_gpx_name
from shared.model.syncid import external_id, sync_id, sync_id_from_external_id
from shared.runkeeper.csvindex import CsvError, CsvRow, parse_csv
from shared.runkeeper.export import Export, MemberError, member_stem
from shared.runkeeper.gpxfile import GpxError, GpxFile, read_gpx
from shared.storage import activitylog
from shared.storage.clients import Storage

log = logging.getLogger("shared.history.importer")

CSV_NAME = "cardioactivities.csv"
# A GPX's first point and the CSV's local time differ by the UTC offset: whole quarter hours, within a few s.
OFFSET_TOLERANCE = timedelta(minutes=2)
MAX_OFFSET = timedelta(hours=14)
SAME_START = timedelta(seconds=60)  # Strava activities starting this close (and compatible) are the same one
LISTING_MARGIN = timedelta(days=1)  # a manual activity's UTC start is only a guess within a day
LISTING_CHUNK = 150  # our activities per listing call, so one call is usually one page of 200
PAGE = 200


class ImportError_(Exception):
    """The import cannot go on at all (export unreadable, no Strava connection); the message says what to do."""


# ---------------------------------------------------------------------------------------------------------------
# The plan


@dataclass
class Item:
    """One activity to bring to Strava, with everything the upload or the manual create needs."""

    origin: str  # where it came from, for messages: "cardioActivities.csv line 12 (2013-07-25-0653.gpx)"
    runkeeper_type: str
    sport_type: str
    trainer: bool
    start: datetime  # aware UTC: the sync id's start
    start_local: datetime  # naive wall clock: the name and Strava's start_date_local
    name: str
    sync_id: str
    gpx_member: str | None = None  # None: a manual activity
    description: str | None = None
    distance: float | None = None  # metres
    duration: float | None = None  # seconds
    points: int | None = None
    runkeeper_id: str | None = None
    problem: str | None = None  # why it cannot be sent; it then fails without a Strava call
    note: str | None = None  # how the start was worked out, or what was repaired

    @property
    def is_manual(self) -> bool:
        return self.gpx_member is None

    @property
    def external_id(self) -> str:
        return external_id(self.sync_id)


@dataclass(frozen=True, slots=True)
class Failure:
    origin: str
    reason: str


@dataclass
class Plan:
    items: list[Item] = field(default_factory=list)  # oldest first
    failures: list[Failure] = field(default_factory=list)  # cannot even be identified (no start time)
    unlisted: list[str] = field(default_factory=list)  # GPX files the CSV does not mention: skipped
    repeated: list[Failure] = field(default_factory=list)  # rows that repeat an earlier row's activity
    filtered: int = 0  # outside --since/--until
    csv_rows: int | None = None  # None: the export has no cardioActivities.csv
    junk: list[str] = field(default_factory=list)  # members left out of the export's listing, with why

    @property
    def gpx_count(self) -> int:
        return sum(not i.is_manual for i in self.items)

    @property
    def manual_count(self) -> int:
        return sum(i.is_manual for i in self.items)


def utc_start(local: datetime, gpx_start: datetime | None, timezone: str) -> tuple[datetime, str | None]:
    """The activity's start in UTC from the CSV's wall clock, using the GPX for the offset when it can.

    Runkeeper's GPX times are UTC and its CSV times local, so they differ by the offset the athlete had
    that day (travel included), which ACTIVITY_TIMEZONE cannot know. Some old GPX files carry local time
    marked Z: a zero difference where the zone has an offset is taken as that, not as a UTC+0 day.
    """
    zone_local = local.replace(tzinfo=ZoneInfo(timezone))
    zone_start = zone_local.astimezone(UTC)
    if gpx_start is None:
        return zone_start, None
    diff = gpx_start - local.replace(tzinfo=UTC)
    offset = timedelta(minutes=15) * round(diff / timedelta(minutes=15))
    if abs(diff - offset) > OFFSET_TOLERANCE or abs(offset) > MAX_OFFSET:
        return zone_start, (f"the GPX starts at {gpx_start:%Y-%m-%d %H:%M:%S}Z, not a time-zone offset away from "
                            f"the CSV's {local:%Y-%m-%d %H:%M:%S}; start taken in {timezone}")
    if not offset and zone_local.utcoffset():
        return zone_start, f"the GPX times look like local time marked Z; start taken in {timezone}"
    return local.replace(tzinfo=UTC) + offset, None


def _in_range(local: datetime, since: date | None, until: date | None) -> bool:
    return (since is None or local.date() >= since) and (until is None or local.date() <= until)


def _find_csv(export: Export) -> str | None:
    matches = [n for n in export.names if member_stem(n).lower() == CSV_NAME]
    return min(matches, key=lambda n: (n.count("/"), n)) if matches else None


def _gpx_names(export: Export) -> list[str]:
    """Every member that claims to be a GPX file, folders so named included (they fail alone, with a reason)."""
    return sorted({n for n in (*export.names, *export.folders) if n.lower().endswith(".gpx")})


def _read_gpx(export: Export, member: str) -> GpxFile:
    try:
        return read_gpx(export.read(member), max_bytes=export.max_member_bytes)
    except MemberError as exc:
        raise GpxError(str(exc).removeprefix(f"{member}: ")) from None


def build_plan(export: Export, *, timezone: str, since: date | None = None, until: date | None = None) -> Plan:
    """Every activity of the export (the CSV is the index; without one, every GPX file), oldest first."""
    plan = Plan(junk=[f"{s.name}: {s.reason}" for s in export.skipped])
    plan.failures.extend(Failure(s.name, s.reason) for s in export.skipped if s.name.lower().endswith(".gpx"))
    csv_name = _find_csv(export)
    if csv_name is None:
        _plan_from_gpx(export, plan, timezone, since, until)
    else:
        try:
            index = parse_csv(export.read(csv_name))
        except (MemberError, CsvError) as exc:
            raise ImportError_(str(exc)) from None
        plan.csv_rows = len(index.rows) + len(index.problems)
        plan.failures.extend(Failure(f"cardioActivities.csv line {p.line}", p.message) for p in index.problems)
        listed: set[str] = set()
        for row in index.rows:
            if row.gpx_file:
                found = export.find(row.gpx_file)
                listed.add((found or row.gpx_file).lower())
            if _in_range(row.start_local, since, until):
                plan.items.append(_item_from_row(export, row, timezone))
            else:
                plan.filtered += 1
        plan.unlisted = [n for n in _gpx_names(export) if n.lower() not in listed]
    _drop_repeats(plan)
    plan.items.sort(key=lambda i: (i.start, i.origin))
    return plan


def _item_from_row(export: Export, row: CsvRow, timezone: str) -> Item:
    sport = strava_sport(row.type)
    origin = f"cardioActivities.csv line {row.line}" + (f" ({row.gpx_file})" if row.gpx_file else "")
    gpx: GpxFile | None = None
    problem: str | None = None
    member: str | None = None
    if row.gpx_file:
        member = export.find(row.gpx_file) or row.gpx_file
        try:
            gpx = _read_gpx(export, member)
        except GpxError as exc:
            problem = str(exc)
    elif not row.duration:
        problem = "no duration: Strava needs an elapsed time to create a manual activity"
    start, note = utc_start(row.start_local, gpx.start if gpx else None, timezone)
    if gpx and gpx.repairs:
        note = "; ".join(filter(None, [note, "repaired: " + ", ".join(gpx.repairs)]))
    return Item(
        origin=origin,
        runkeeper_type=row.type,
        sport_type=sport.sport_type,
        trainer=sport.trainer,
        start=start,
        start_local=row.start_local,
        name=activity_name(row.type, row.start_local),
        sync_id=sync_id(start, sport.sport_type),
        gpx_member=member,
        description=row.notes,
        distance=row.distance,
        duration=row.duration,
        points=gpx.points if gpx else None,
        runkeeper_id=row.activity_id,
        problem=problem,
        note=note,
    )


def _plan_from_gpx(export: Export, plan: Plan, timezone: str, since: date | None, until: date | None) -> None:
    """No CSV: every GPX file is an activity; its type comes from its <name> ("Running 7/25/13 6:53 am")."""
    zone = ZoneInfo(timezone)
    for member in _gpx_names(export):
        try:
            gpx = _read_gpx(export, member)
        except GpxError as exc:
            plan.failures.append(Failure(member, str(exc)))
            continue
        assert gpx.start is not None  # read_gpx refuses files without timed points
        local = gpx.start.astimezone(zone).replace(tzinfo=None)
        if not _in_range(local, since, until):
            plan.filtered += 1
            continue
        rk_type = type_from_gpx_name(gpx.name or "")
        sport = strava_sport(rk_type or "Other")
        note = None if rk_type else f"type unknown (<name> is {gpx.name!r}): sent as {sport.sport_type}"
        if gpx.repairs:
            note = "; ".join(filter(None, [note, "repaired: " + ", ".join(gpx.repairs)]))
        plan.items.append(Item(
            origin=member,
            runkeeper_type=rk_type or "Other",
            sport_type=sport.sport_type,
            trainer=sport.trainer,
            start=gpx.start.replace(microsecond=0),
            start_local=local.replace(microsecond=0),
            name=activity_name(rk_type or "", local),
            sync_id=sync_id(gpx.start, sport.sport_type),
            gpx_member=member,
            points=gpx.points,
            note=note,
        ))


def _drop_repeats(plan: Plan) -> None:
    """Two rows with the same start and sport are one activity (exports repeat rows): keep the first."""
    seen: dict[str, Item] = {}
    kept: list[Item] = []
    for item in plan.items:
        first = seen.get(item.sync_id)
        if first is None:
            seen[item.sync_id] = item
            kept.append(item)
        else:
            plan.repeated.append(Failure(item.origin, f"same activity as {first.origin} (same start and sport)"))
    plan.items = kept


# ---------------------------------------------------------------------------------------------------------------
# What Strava already has


_FAMILIES = (
    {"Run", "TrailRun", "VirtualRun"},
    {"Ride", "MountainBikeRide", "GravelRide", "EBikeRide", "EMountainBikeRide", "VirtualRide", "Velomobile",
     "Handcycle"},
    {"Walk", "Hike", "Snowshoe"},
    {"Swim"},
    {"AlpineSki", "BackcountrySki", "NordicSki", "RollerSki", "Snowboard"},
    {"Rowing", "VirtualRow", "Canoeing", "Kayaking", "StandUpPaddling"},
    {"IceSkate", "InlineSkate", "Skateboard"},
)
_ANY = {"Workout"}  # Strava's catch-all: compatible with whatever the athlete later called it


def compatible(a: str | None, b: str | None) -> bool:
    """Could these two sport types be the same activity (after an edit on Strava, or a default sport)?"""
    if not a or not b or a == b or a in _ANY or b in _ANY:
        return True
    return any(a in family and b in family for family in _FAMILIES)


def _when(value: Any, aware: bool) -> datetime | None:
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    if aware:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return moment.replace(tzinfo=None)  # Strava writes local times with a misleading Z


@dataclass(frozen=True, slots=True)
class StravaActivity:
    id: str
    sport_type: str | None
    start: datetime | None  # aware UTC
    start_local: datetime | None  # naive wall clock
    sync_id: str | None  # ours, when its external_id says so


class StravaIndex:
    """The athlete's Strava activities in a time range, each matched to at most one of ours."""

    def __init__(self, summaries: Iterable[dict[str, Any]] = ()) -> None:
        self._all: dict[str, StravaActivity] = {}
        self._taken: set[str] = set()
        self.add(summaries)

    def add(self, summaries: Iterable[dict[str, Any]]) -> None:
        for s in summaries:
            act = StravaActivity(
                id=str(s.get("id")),
                sport_type=s.get("sport_type") or s.get("type"),
                start=_when(s.get("start_date"), aware=True),
                start_local=_when(s.get("start_date_local"), aware=False),
                sync_id=sync_id_from_external_id(s.get("external_id")),
            )
            self._all[act.id] = act

    def __len__(self) -> int:
        return len(self._all)

    def match(self, item: Item) -> StravaActivity | None:
        """Ours by external_id, else one starting within a minute (UTC or wall clock) with a compatible sport."""
        for act in self._all.values():
            if act.sync_id == item.sync_id and act.id not in self._taken:
                self._taken.add(act.id)
                return act
        best: tuple[timedelta, StravaActivity] | None = None
        for act in self._all.values():
            if act.id in self._taken or not compatible(act.sport_type, item.sport_type):
                continue
            gaps = [abs(act.start - item.start)] if act.start else []
            if act.start_local:
                gaps.append(abs(act.start_local - item.start_local))
            gap = min(gaps, default=None)
            if gap is not None and gap <= SAME_START and (best is None or gap < best[0]):
                best = (gap, act)
        if best:
            self._taken.add(best[1].id)
            return best[1]
        return None


def listing_ranges(items: list[Item]) -> list[tuple[datetime, datetime]]:
    """Contiguous (after, before) ranges covering `items`, each with few enough of ours to fit one page."""
    starts = sorted(i.start for i in items)
    if not starts:
        return []
    bounds = [starts[0] - LISTING_MARGIN]
    for k in range(LISTING_CHUNK, len(starts), LISTING_CHUNK):
        bounds.append(starts[k - 1] + (starts[k] - starts[k - 1]) / 2)
    bounds.append(starts[-1] + LISTING_MARGIN)
    return [(bounds[i] - timedelta(seconds=1), bounds[i + 1]) for i in range(len(bounds) - 1)]


# ---------------------------------------------------------------------------------------------------------------
# The run: the log decides what is left, the budget decides when


Clock = Callable[[], datetime]
Sleep = Callable[[float], None]
LEASE = timedelta(hours=1)  # the live worker steps aside while an import holds the row
TRANSIENT_TRIES = 3  # per activity, before it is marked failed
TRANSIENT_STREAK = 6  # consecutive transient failures: Strava is down, stop rather than churn
POLL_ROUNDS = 4  # rounds of individual upload checks at the end (each at least 2 s apart)
WINDOW_SLACK = timedelta(seconds=2)  # our clock and Strava's may differ a little at a boundary


def _utcnow() -> datetime:
    return datetime.now(UTC)


class Stopped(Exception):
    """--no-wait met the rate limit: the run ends here and can resume at `resume_at`."""

    def __init__(self, resume_at: datetime) -> None:
        super().__init__(f"rate limit reached; resume after {resume_at:%Y-%m-%d %H:%M} UTC")
        self.resume_at = resume_at


@dataclass
class Counts:
    uploaded: int = 0  # GPX uploads Strava has confirmed
    manual: int = 0  # manual activities created
    duplicate: int = 0  # already on Strava (its listing, or its duplicate answer)
    done_before: int = 0  # synced or duplicate in the activity log already: not touched
    elsewhere: int = 0  # queued or uploading on the live path: left to it
    failed: int = 0  # failed in this run
    failed_before: int = 0  # failed in an earlier run and not retried
    unconfirmed: int = 0  # sent, outcome not yet known (next run confirms)
    left: int = 0  # not reached: --limit, or the run stopped at the rate limit
    sending: int = 0  # uploads sent whose outcome the run has yet to learn (for progress lines)
    sent: int = 0  # uploads and creates Strava accepted in this run

    @property
    def on_strava(self) -> int:
        return self.uploaded + self.manual + self.duplicate + self.done_before

    @property
    def imported(self) -> int:
        return self.uploaded + self.manual


class Progress:
    """What the run tells a person while it works; the CLI shows it as a tqdm bar, tests ignore it."""

    def start(self, total: int, done: int) -> None: ...

    def advance(self, counts: Counts, eta: datetime | None, n: int = 1) -> None: ...

    def waiting(self, until: datetime, counts: Counts, eta: datetime | None) -> None: ...

    def note(self, text: str) -> None: ...

    def close(self) -> None: ...


@dataclass
class Report:
    plan: Plan
    counts: Counts = field(default_factory=Counts)
    failures: list[Failure] = field(default_factory=list)  # this run's, and earlier ones not retried
    unconfirmed: list[str] = field(default_factory=list)
    stopped_until: datetime | None = None
    calls: int = 0
    started: datetime = field(default_factory=_utcnow)
    finished: datetime | None = None

    @property
    def calls_per_activity(self) -> float | None:
        """Strava calls per activity sent in this run (listings and checks included)."""
        return self.calls / self.counts.sent if self.counts.sent else None


@dataclass
class _Work:
    item: Item
    entry: activitylog.Entry | None
    tries: int = 0


class Importer:
    """Runs a Plan against Strava and the activity log; `wait=False` stops at the rate limit instead of sleeping."""

    def __init__(self, client: Any, storage: Storage, *, user: str = activitylog.OWNER, export: Export | None = None,
                 wait: bool = True, retry_failed: bool = False, progress: Progress | None = None,
                 clock: Clock = _utcnow, sleep: Sleep | None = None) -> None:
        import time
        import uuid

        self.client = client
        self.storage = storage
        self.user = user
        self.export = export
        self.wait = wait
        self.retry_failed = retry_failed
        self.progress = progress or Progress()
        self.now = clock
        self.sleep = sleep or time.sleep
        self.run_id = "import-" + uuid.uuid4().hex[:12]
        self._streak = 0
        self._ticked: set[str] = set()
        self._first_call_at: datetime | None = None
        self._calls_at_start = 0

    # ---- the whole run -------------------------------------------------------------------------------------
    def run(self, plan: Plan, *, limit: int | None = None) -> Report:
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

    def _classify(self, plan: Plan, report: Report) -> tuple[list[_Work], list[_Work]]:
        """Against the log: done, someone else's, failed before, to confirm, or to send."""
        entries = {e.sync_id: e for e in activitylog.list_activities(self.storage, self.user, limit=10**9)}
        todo: list[_Work] = []
        confirm: list[_Work] = []
        counts = report.counts
        for item in plan.items:
            entry = entries.get(item.sync_id)
            status = entry.status if entry else None
            if status in activitylog.DONE:
                counts.done_before += 1
            elif status in ("queued", "uploading") and entry and entry.source != "import":
                counts.elsewhere += 1
            elif item.problem:
                self._fail_locally(item, entry)
            elif status == "uploading" and entry:  # ours, from a run that ended before knowing the outcome
                confirm.append(_Work(item, entry))
            elif status in activitylog.RETRYABLE and entry and not self.retry_failed:
                counts.failed_before += 1
                report.failures.append(Failure(item.origin, f"{entry.error or 'failed'} (earlier run)"))
            else:
                todo.append(_Work(item, entry))
        return todo, confirm

    # ---- the budget ----------------------------------------------------------------------------------------
    def _acquire(self, kind: str, n: int = 1) -> None:
        """Return once `n` calls of `kind` fit the budget: sleep to the window, or stop with --no-wait."""
        while True:
            now = self.now()
            until = self.client.budget.wait_until(kind, now, n)
            if until is None:
                return
            self._pause(until + WINDOW_SLACK)

    def _pause(self, until: datetime) -> None:
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
        calls = len(self._todo) + len(self._confirm_list) // LISTING_CHUNK + 1
        left15, left_day = budget.remaining("overall", now)
        per_call = self._seconds_per_call(now)
        t = now
        while True:
            fit = min(calls, left15 or 0, left_day or 0)
            calls -= fit
            t += timedelta(seconds=per_call * fit)
            if calls <= 0:
                return t
            if not left_day:
                from shared.strava.ratelimit import next_midnight

                t = max(t, next_midnight(t))
                left15, left_day = limit15, limit_day
            else:
                from shared.strava.ratelimit import next_window

                t = max(t, next_window(t))
                left15, left_day = limit15, left_day - fit

    def _seconds_per_call(self, now: datetime) -> float:
        calls = self.client.calls - self._calls_at_start
        if self._first_call_at is None or calls < 5:
            return 0.5
        return max(0.05, (now - self._first_call_at).total_seconds() / calls)

    def _call(self, kind: str, fn: Callable[[], Any]) -> Any:
        """One Strava call inside the budget; a 429 we could not foresee (another user of the app's limits) waits."""
        from shared.strava.api import RateLimited

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
        from shared.strava.api import Transient

        index = StravaIndex()
        for after, before in listing_ranges(items):
            for attempt in range(TRANSIENT_TRIES):
                try:
                    index.add(self._call("read", lambda a=after, b=before: self.client.list_activities(a, b)))
                    break
                except Transient as exc:
                    if attempt == TRANSIENT_TRIES - 1:
                        raise ImportError_(f"listing your Strava activities keeps failing ({exc}); nothing is "
                                           "lost: run the import again later") from None
                    self.sleep(2.0 ** attempt)
        return index

    def _resolve(self, index: StravaIndex) -> None:
        """Sent (this run or before) and now on Strava: synced. Still unknown: kept for an individual check."""
        for work in list(self._confirm_list):
            act = index.match(work.item)
            if act is None:
                continue
            self._confirm_list.remove(work)
            self._done(work, "synced", act.id)
            self.report.counts.uploaded += not work.item.is_manual
            self.report.counts.manual += work.item.is_manual
            self._tick(work)

    def _requeue_unsent(self) -> None:
        """Claimed in an earlier run but with no upload id, and not on Strava: it never got there. Send it."""
        unsent = [w for w in self._confirm_list if not (w.entry and w.entry.upload_id)]
        for work in unsent:
            self._confirm_list.remove(work)
        self._todo = sorted(self._todo + unsent, key=lambda w: (w.item.start, w.item.origin))

    def _skip_existing(self, todo: list[_Work], index: StravaIndex) -> None:
        keep: list[_Work] = []
        for work in todo:
            act = index.match(work.item)
            if act is None:
                keep.append(work)
                continue
            self._record(work, "duplicate", activity_id=act.id, error=None)
            self.report.counts.duplicate += 1
            self._tick(work)
        self._todo = keep

    # ---- sending -------------------------------------------------------------------------------------------
    def _send(self, work: _Work) -> None:
        from shared.strava.api import NotConnected, Permanent, Transient, Unauthorized

        item = work.item
        self._acquire("overall")  # before the claim, so a stop leaves no row half-claimed
        if not self._claim(work):
            self.report.counts.elsewhere += 1
            self._tick(work)
            return
        while True:
            work.tries += 1
            try:
                if item.is_manual:
                    answer = self._call("overall", lambda: self.client.create_manual_activity(
                        name=item.name, sport_type=item.sport_type, start_date_local=item.start_local,
                        elapsed_time=round(item.duration or 0), description=item.description,
                        distance=item.distance, trainer=item.trainer, commute=False))
                    self.report.counts.sent += 1
                    self._done(work, "synced", str(answer["id"]))
                    self.report.counts.manual += 1
                else:
                    data = self._gpx_bytes(work)
                    if data is None:
                        self._tick(work)
                        return
                    upload = self._call("overall", lambda d=data: self.client.upload_gpx(
                        d, name=item.name, description=item.description, sport_type=item.sport_type,
                        trainer=item.trainer, commute=False, external_id=item.external_id,
                        filename=member_stem(item.gpx_member or "activity.gpx")))
                    self.report.counts.sent += 1
                    outcome = upload.outcome()
                    if outcome.state == "processing":
                        self._save(work, upload_id=upload.id, ambiguous=False, error=None)
                        self._confirm_list.append(work)
                    else:
                        self._settle(work, outcome)
                self._streak = 0
                self._tick(work)
                return
            except Stopped:
                self._release(work)
                raise
            except (NotConnected, Unauthorized) as exc:
                self._release(work)
                raise ImportError_(f"{exc}. Connect Strava again (open /api/strava/connect with the app's key, "
                                   "or `python -m shared.cli connect`), then run the import again") from None
            except Transient as exc:
                self._streak += 1
                if exc.maybe_applied:
                    # Strava may have it: the listing at the end looks before anything is sent again.
                    self._save(work, ambiguous=True, error=str(exc))
                    self._confirm_list.append(work)
                    self._tick(work)
                    return
                if self._streak >= TRANSIENT_STREAK:
                    self._release(work)
                    raise ImportError_(f"Strava keeps failing ({exc}); nothing is lost: run the import "
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

    def _gpx_bytes(self, work: _Work) -> bytes | None:
        """The file again (the plan keeps no bytes: 1,500 tracks would not fit in memory), repaired if needed."""
        item = work.item
        if self.export is None or item.gpx_member is None:
            raise ImportError_("the importer needs the export to read GPX files from")
        try:
            return _read_gpx(self.export, item.gpx_member).data
        except GpxError as exc:
            self._fail(work, f"{member_stem(item.gpx_member)}: {exc}")
            return None

    def _settle(self, work: _Work, outcome: Any) -> None:
        if outcome.state == "ready":
            self._done(work, "synced", outcome.activity_id)
            self.report.counts.uploaded += 1
        elif outcome.state == "duplicate":
            self._done(work, "duplicate", outcome.activity_id)
            self.report.counts.duplicate += 1
        else:
            self._fail(work, f"Strava could not process the file: {outcome.message or 'no reason given'}")

    # ---- confirming ----------------------------------------------------------------------------------------
    def _confirm(self) -> None:
        """Uploads whose outcome is unknown: one listing for all, then a status call only for what it misses."""
        from shared.strava.api import Transient

        if not self._confirm_list:
            return
        self._resolve(self._listing([w.item for w in self._confirm_list]))
        resend = [w for w in self._confirm_list if not w.entry or not w.entry.upload_id]
        for work in resend:  # the request may never have reached Strava: the listing says it did not
            self._confirm_list.remove(work)
            self._send(work)
        for round_ in range(POLL_ROUNDS):
            waiting: list[_Work] = []
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

    # ---- the activity log ----------------------------------------------------------------------------------
    def _entry(self, item: Item, status: str, **extra: Any) -> activitylog.Entry:
        return activitylog.Entry(
            user=self.user, sync_id=item.sync_id, status=status, source="import", attempts=1,
            runkeeper_type=item.runkeeper_type, runkeeper_id=item.runkeeper_id, sport_type=item.sport_type,
            name=item.name, start=item.start, points=item.points, **extra,
        )

    def _claim(self, work: _Work) -> bool:
        """Mark the row `uploading` under our lease; False when someone else got there first."""
        lease = {"lease_until": self.now() + LEASE, "lease_owner": self.run_id}
        if work.entry is None:
            created = activitylog.create(self.storage, self._entry(work.item, "uploading", **lease))
            if created is not None:
                work.entry = created
                return True
            work.entry = activitylog.get(self.storage, self.user, work.item.sync_id)
            if work.entry is None or work.entry.status in activitylog.DONE or work.entry.source != "import":
                return False
        try:
            work.entry = activitylog.save(self.storage, work.entry, status="uploading", error=None,
                                          attempts=work.entry.attempts + 1, source="import", **lease)
            return True
        except activitylog.Conflict:
            return False

    def _save(self, work: _Work, **changes: Any) -> None:
        assert work.entry is not None
        try:
            work.entry = activitylog.save(self.storage, work.entry, **changes)
        except activitylog.Conflict:  # someone touched our leased row: write what we know anyway
            current = activitylog.get(self.storage, self.user, work.item.sync_id) or work.entry
            work.entry = activitylog.put(self.storage, _replace(current, **changes))

    def _record(self, work: _Work, status: str, **changes: Any) -> None:
        """Write a final status whether or not the row exists yet."""
        reason = f": {changes['error']}" if changes.get("error") else ""
        log.info("%-9s %s  %s (%s)%s", status, work.item.start_local.strftime("%Y-%m-%d %H:%M"), work.item.name,
                 work.item.origin, reason)
        if work.entry is None:
            entry = self._entry(work.item, status, **changes)
            work.entry = activitylog.create(self.storage, entry) or activitylog.put(self.storage, entry)
        else:
            self._save(work, status=status, lease_until=None, lease_owner=None, **changes)

    def _done(self, work: _Work, status: str, activity_id: str | None) -> None:
        self._record(work, status, activity_id=activity_id, error=None, ambiguous=False)

    def _fail(self, work: _Work, reason: str) -> None:
        self._record(work, "failed", error=activitylog.bounded(reason, activitylog.ERROR_CHARS))
        self.report.counts.failed += 1
        self.report.failures.append(Failure(work.item.origin, reason))
        if work in self._confirm_list:
            self._confirm_list.remove(work)

    def _fail_locally(self, item: Item, entry: activitylog.Entry | None) -> None:
        reason = item.problem or "cannot be imported"
        if item.gpx_member:  # the log row has no origin column: name the file there
            reason = f"{member_stem(item.gpx_member)}: {reason}"
        work = _Work(item, entry)
        ours = entry is None or entry.source == "import"  # a live row keeps its own story
        if ours and (entry is None or entry.error != reason or entry.status != "failed"):
            self._record(work, "failed", error=activitylog.bounded(reason, activitylog.ERROR_CHARS))
        self.report.counts.failed += 1
        self.report.failures.append(Failure(item.origin, item.problem or reason))

    def _release(self, work: _Work) -> None:
        """Nothing reached Strava: hand the row back as queued, for the next run."""
        if work.entry is not None and work.entry.status == "uploading":
            self._save(work, status="queued", lease_until=None, lease_owner=None)

    def _tick(self, work: _Work) -> None:
        """Advance the bar once per activity (a confirmation after sending only refreshes the counts)."""
        first = work.item.sync_id not in self._ticked
        self.report.counts.sending = len(self._confirm_list)
        self._ticked.add(work.item.sync_id)
        self.progress.advance(self.report.counts, self.eta(), 1 if first else 0)


def _replace(entry: activitylog.Entry, **changes: Any) -> activitylog.Entry:
    from dataclasses import replace

    return replace(entry, **changes)


def least_time(calls: int, limit15: int, limit_day: int) -> timedelta:
    """The floor the limits set for `calls` calls from the start of a fresh window (call latency ignored)."""
    if calls <= 0:
        return timedelta(0)
    last = calls - 1
    day, within = divmod(last, limit_day)
    return timedelta(days=day, minutes=15 * (within // limit15))


def expected_calls(plan: Plan) -> int:
    """One call per activity, plus a listing before and one to confirm uploads (pages of our chunk size)."""
    listings = -(-len(plan.items) // LISTING_CHUNK) if plan.items else 0
    confirm = -(-plan.gpx_count // LISTING_CHUNK) if plan.gpx_count else 0
    return sum(1 for i in plan.items if not i.problem) + listings + confirm
