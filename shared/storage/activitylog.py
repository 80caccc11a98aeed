"""The activity log: one Table Storage row per activity, the owner's answer to "what happened to my runs?".

PartitionKey is the user (``owner`` for the deployment's own key), RowKey the sync id, so the live
path and the importer meet on the same row. Every write that changes a row's status is a
compare-and-swap on its ETag and emits one structured log line that Application Insights can query.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from shared.model.status import DONE as DONE
from shared.model.status import RETRYABLE as RETRYABLE
from shared.model.status import STATUSES as STATUSES
from shared.model.status import Status
from shared.model.times import TIME_FORMAT
from shared.model.times import utcnow as utcnow
from shared.model.users import OWNER as OWNER
from shared.storage import cas, clients
from shared.storage.cas import Conflict as Conflict
from shared.storage.clients import Storage

if TYPE_CHECKING:
    from azure.data.tables import TableClient

SOURCES = ("zapier", "import")

EXCERPT_CHARS = 2000  # what a rejected payload keeps of what Zapier sent
ERROR_CHARS = 1000
PROBLEMS_CHARS = 8000

log = logging.getLogger("shared.storage.activitylog")


def iso(value: datetime | None) -> str:
    """UTC to the second, fixed width, so string comparison in table filters is time order."""
    if value is None:
        return ""
    if value.tzinfo is None:
        raise ValueError("naive datetime in the activity log")
    return value.astimezone(UTC).strftime(TIME_FORMAT)


def parse_iso(value: str | None) -> datetime | None:
    if not value:
        return None
    return datetime.strptime(value, TIME_FORMAT).replace(tzinfo=UTC)


def bounded(text: str | None, limit: int) -> str | None:
    if text is None:
        return None
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class Entry:
    """One activity's row. Times are aware UTC datetimes; ``etag`` is the version this copy was read at."""

    user: str
    sync_id: str
    status: Status  # a plain string given here ("queued") becomes its Status
    source: str = "zapier"
    attempts: int = 0
    runkeeper_type: str | None = None
    runkeeper_id: str | None = None
    sport_type: str | None = None
    name: str | None = None
    start: datetime | None = None
    points: int | None = None
    distance: float | None = None  # metres, when the payload or export said (or its path measured it)
    duration: float | None = None  # seconds: what the owner's page shows beside the distance
    upload_id: str | None = None
    activity_id: str | None = None
    error: str | None = None
    created: datetime | None = None
    updated: datetime | None = None
    next_try: datetime | None = None  # when a deferred retry is due (rate limit, transient error)
    lease_until: datetime | None = None  # while `uploading`: the claim's expiry
    lease_owner: str | None = None
    ambiguous: bool = False  # a create may have reached Strava unseen: look before creating again
    problems: list[dict[str, str]] = field(default_factory=list)
    excerpt: str | None = None  # rejected payloads: the start of what was sent
    rules_pending: str | None = None  # synced, but the owner's rules (gear, mute) not yet applied: the PUT's JSON
    rule_error: str | None = None  # why applying them failed (the activity stays synced)
    etag: str | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        self.status = Status(self.status)

    @property
    def when(self) -> datetime | None:
        """The time the row is listed by: the activity's start, or when it arrived if it has none."""
        return self.start or self.created

    def leased(self, now: datetime | None = None) -> bool:
        return (
            self.status == Status.UPLOADING and self.lease_until is not None and self.lease_until > (now or utcnow())
        )

    def public(self) -> dict[str, Any]:
        """What the owner sees (status endpoint, CLI): no lease bookkeeping, times as ISO strings."""
        out: dict[str, Any] = {"id": self.sync_id}
        for f in fields(self):
            if f.name in ("user", "sync_id", "lease_until", "lease_owner", "etag", "ambiguous"):
                continue
            value = getattr(self, f.name)
            out[f.name] = iso(value) or None if isinstance(value, datetime) else value
        return out


_DATES = ("start", "created", "updated", "next_try", "lease_until")


def to_entity(entry: Entry) -> dict[str, Any]:
    data = asdict(entry)
    data.pop("etag")
    entity: dict[str, Any] = {"PartitionKey": data.pop("user"), "RowKey": data.pop("sync_id")}
    for key, value in data.items():
        if key in _DATES:
            entity[key] = iso(value)
        elif key == "problems":
            entity[key] = bounded(json.dumps(value, ensure_ascii=False), PROBLEMS_CHARS) if value else ""
        elif value is None:
            entity[key] = ""  # MERGE keeps absent properties: write "" to clear one
        elif isinstance(value, Status):
            entity[key] = value.value  # the plain string, as rows have always held
        else:
            entity[key] = value
    entity["when"] = iso(entry.when)
    return entity


def from_entity(entity: Any) -> Entry:
    kwargs: dict[str, Any] = {"user": entity["PartitionKey"], "sync_id": entity["RowKey"]}
    names = {f.name for f in fields(Entry)} - {"user", "sync_id", "etag"}
    for key in names:
        if key not in entity:
            continue
        value = entity[key]
        if key in _DATES:
            kwargs[key] = parse_iso(value)
        elif key == "problems":
            try:
                kwargs[key] = json.loads(value) if value else []
            except ValueError:  # cut by `bounded`: keep what the owner can still read
                kwargs[key] = [{"field": "", "message": value}]
        elif value == "" and key not in ("status", "source"):
            kwargs[key] = None
        else:
            kwargs[key] = value
    kwargs.setdefault("status", Status.QUEUED)
    metadata = getattr(entity, "metadata", None) or {}
    return Entry(**kwargs, etag=metadata.get("etag"))


def table(storage: Storage) -> TableClient:
    return clients.table(storage, clients.ACTIVITY_LOG_TABLE)


def log_change(entry: Entry) -> None:
    """One line per state change, key=value so Application Insights can parse and query it."""
    extra = ""
    if entry.activity_id:
        extra += f" activity_id={entry.activity_id}"
    if entry.upload_id:
        extra += f" upload_id={entry.upload_id}"
    if entry.next_try:
        extra += f" next_try={iso(entry.next_try)}"
    if entry.error:
        extra += " error=" + json.dumps(bounded(entry.error, 300), ensure_ascii=False)
    log.info(
        "activity sync_id=%s status=%s source=%s user=%s attempts=%d%s",
        entry.sync_id, entry.status, entry.source, entry.user, entry.attempts, extra,
    )


def get(storage: Storage, user: str, sync_id: str) -> Entry | None:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return from_entity(table(storage).get_entity(user, sync_id))
    except ResourceNotFoundError:
        return None


def create(storage: Storage, entry: Entry) -> Entry | None:
    """Insert only if absent; None when the row already exists (the insert answers "seen before?" itself)."""
    from azure.core.exceptions import ResourceExistsError

    now = utcnow()
    entry = replace(entry, created=entry.created or now, updated=now)
    try:
        entry.etag = table(storage).create_entity(to_entity(entry)).get("etag")
    except ResourceExistsError:
        return None
    log_change(entry)
    return entry


def save(storage: Storage, entry: Entry, **changes: Any) -> Entry:
    """Write `entry` with `changes` if nobody changed the row since `entry` was read; else raise Conflict."""
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

    if entry.etag is None:
        raise ValueError("save() needs an entry read from the table (it has no ETag)")
    new = replace(entry, **changes, updated=utcnow())
    try:
        meta = table(storage).update_entity(
            to_entity(new), etag=entry.etag, match_condition=MatchConditions.IfNotModified
        )
    except (ResourceModifiedError, ResourceNotFoundError) as exc:
        raise Conflict(f"activity {entry.sync_id} changed concurrently") from exc
    new.etag = meta.get("etag")
    if new.status != entry.status or "error" in changes or "next_try" in changes:
        log_change(new)
    return new


def put(storage: Storage, entry: Entry) -> Entry:
    """Unconditional write (insert or merge), for callers that own the row outright, such as a CLI fix-up."""
    now = utcnow()
    entry = replace(entry, created=entry.created or now, updated=now)
    meta = table(storage).upsert_entity(to_entity(entry))
    entry.etag = meta.get("etag")
    log_change(entry)
    return entry


def rejected_id(payload_text: str) -> str:
    """Rejected payloads have no trustworthy start or type: key them by content, so a replay lands on one row."""
    import hashlib

    return "rejected-" + hashlib.sha256(payload_text.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def problems_text(problems: list[dict[str, str]]) -> str:
    """Problems as one line (the row's error): `field: message; field: message`."""
    return "; ".join(f"{p['field']}: {p['message']}" if p.get("field") else p["message"] for p in problems)


def record_rejected(
    storage: Storage, user: str, *, payload_text: str, problems: list[dict[str, str]], source: str = "zapier"
) -> Entry:
    """Keep what was refused and why, with a bounded excerpt, so the owner can see what Zapier sent."""
    sync_id = rejected_id(payload_text)
    message = problems_text(problems)
    entry = Entry(
        user=user, sync_id=sync_id, status=Status.REJECTED, source=source, attempts=1,
        error=bounded(message, ERROR_CHARS), problems=problems[:50],
        excerpt=bounded(payload_text, EXCERPT_CHARS),
    )
    created = create(storage, entry)
    if created is not None:
        return created

    def again(current: Entry | None) -> Entry:
        if current is None:  # deleted since: insert it afresh
            created = create(storage, entry)
            if created is None:
                raise Conflict(f"activity {sync_id} was created concurrently")
            return created
        return save(storage, current, status=Status.REJECTED, attempts=current.attempts + 1, error=entry.error,
                    problems=entry.problems, excerpt=entry.excerpt)

    try:
        return cas.update(lambda: get(storage, user, sync_id), again)
    except cas.Exhausted:
        return entry


def list_activities(
    storage: Storage, user: str, status: str | None = None, since: datetime | None = None, limit: int = 50
) -> list[Entry]:
    """Newest first (by start, or arrival for rows without one); `status` and `since` are filtered server-side."""
    if status is not None and status not in STATUSES:
        raise ValueError(f"unknown status {status!r}; expected one of {', '.join(STATUSES)}")
    clauses = ["PartitionKey eq @user"]
    params: dict[str, Any] = {"user": user}
    if status is not None:
        clauses.append("status eq @status")
        params["status"] = status
    if since is not None:
        clauses.append("when ge @since")
        params["since"] = iso(since)
    rows = table(storage).query_entities(" and ".join(clauses), parameters=params)
    entries = [from_entity(row) for row in rows]
    entries.sort(key=lambda e: (iso(e.when), e.sync_id), reverse=True)
    return entries[: max(0, limit)]
