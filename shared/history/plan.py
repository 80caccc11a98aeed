"""The import's plan: a Runkeeper export read into activities, oldest first. No I/O beyond the export.

Every activity gets the live path's sync id (start in UTC and sport type), so the activity log and
Strava's listing can tell later what is already there. What cannot be sent is kept with its reason
(`problem`, `failures`), and rows that repeat an earlier row's activity are set aside (`repeated`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from shared.model.naming import activity_name
from shared.model.sports import strava_sport, type_from_gpx_name
from shared.model.syncid import external_id, sync_id
from shared.runkeeper.csvindex import CsvError, CsvRow, parse_csv
from shared.runkeeper.export import Export, MemberError, member_stem
from shared.runkeeper.gpxfile import GpxError, GpxFile, read_gpx

if TYPE_CHECKING:
    from shared.strava.convert import StravaActivity

CSV_NAME = "cardioactivities.csv"
# A GPX's first point and the CSV's local time differ by the UTC offset: whole quarter hours, within a few s.
OFFSET_TOLERANCE = timedelta(minutes=2)
MAX_OFFSET = timedelta(hours=14)


class CannotImport(Exception):
    """The import cannot go on at all (export unreadable, no Strava connection); the message says what to do."""


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

    def to_strava(self, gpx: bytes | None = None) -> StravaActivity:
        """What Strava receives for this row: the live path's model (shared.strava.convert), so one sender serves
        both paths. `gpx`: the export's file, read only when it is sent."""
        from shared.strava.convert import StravaActivity

        return StravaActivity(name=self.name, sport_type=self.sport_type, trainer=self.trainer, commute=False,
                              description=self.description, start=self.start, start_local=self.start_local,
                              elapsed_time=round(self.duration or 0), distance=self.distance, gpx=gpx)


@dataclass(frozen=True, slots=True)
class Failure:
    """Something of the export that was not sent, with why (for the report and the activity log)."""

    origin: str
    reason: str


@dataclass
class Plan:
    """What an export holds, as the run and the dry run need it."""

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


def read_member_gpx(export: Export, member: str) -> GpxFile:
    """One GPX member checked (and repaired if it can be); GpxError when it cannot be sent, whatever went wrong."""
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
            raise CannotImport(str(exc)) from None
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
            gpx = read_member_gpx(export, member)
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
            gpx = read_member_gpx(export, member)
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

