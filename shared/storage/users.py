"""Who may use the app: the owner (SYNC_API_KEY) and each athlete who connected through an invitation.

A personal key or invitation is random, shown once, and stored only as its SHA-256 (the row key), so
telling who sent a request is one point read and a stolen table holds no usable key. Each athlete has
their own activity-log partition (``athlete-<Strava id>``) and Strava tokens; the owner keeps the
``owner`` partition and the deployment's default Strava connection.

Table rows (clients.USERS_TABLE): ``key/<sha256>`` (kind ``athlete`` or ``invite``), ``user/<user id>``
(the athlete's current key hash, name, dates) and ``connect/<oauth state>`` (which key started a
"Connect with Strava", read back by the callback).
"""

from __future__ import annotations

import hashlib
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from shared.model.times import TIME_FORMAT, utcnow
from shared.model.users import OWNER as OWNER
from shared.storage import clients
from shared.storage.clients import Storage
from shared.web.auth import OWNER_CALLER as OWNER_CALLER
from shared.web.auth import Caller as Caller
from shared.web.auth import Kind as Kind
from shared.web.auth import key_matches

if TYPE_CHECKING:
    from azure.data.tables import TableClient

USER_PREFIX = "athlete-"
KEY_PARTITION = "key"
USER_PARTITION = "user"
CONNECT_PARTITION = "connect"
PERSONAL_PREFIX = "rk_"
INVITE_PREFIX = "inv_"
INVITE_TTL = timedelta(days=7)
CONNECT_TTL = timedelta(hours=1)  # an OAuth state lives 10 minutes; its note is purged well after
MAX_KEY_CHARS = 200  # anything longer is not one of ours: no hashing of megabytes

InviteCheck = Literal["ok", "unknown", "used", "expired"]

log = logging.getLogger(__name__)


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime(TIME_FORMAT)


def _parse(value: Any) -> datetime | None:
    try:
        return datetime.strptime(str(value), TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        return None


def table(storage: Storage) -> TableClient:
    return clients.table(storage, clients.USERS_TABLE)


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def user_for_athlete(athlete_id: str | int) -> str:
    return f"{USER_PREFIX}{athlete_id}"


def athlete_of(user: str | None) -> str | None:
    """The Strava athlete of a log partition; None for the owner (the deployment's default connection)."""
    if user and user.startswith(USER_PREFIX) and user[len(USER_PREFIX):].isdigit():
        return user[len(USER_PREFIX):]
    return None


def identify(storage: Storage, given: str | None, owner_key: str | None, *, invitations: bool = False) -> Caller | None:
    """The caller a key belongs to, or None. Invitations count only where asked (the connect page)."""
    if key_matches(given, owner_key):
        return OWNER_CALLER
    if not given or len(given) > MAX_KEY_CHARS or not given.startswith((PERSONAL_PREFIX, INVITE_PREFIX)):
        return None
    from azure.core.exceptions import ResourceNotFoundError

    digest = key_hash(given)
    try:
        row = table(storage).get_entity(KEY_PARTITION, digest)
    except ResourceNotFoundError:
        return None
    kind = row.get("kind")
    if kind == "athlete" and row.get("user") and not row.get("revoked"):
        return Caller("athlete", str(row["user"]), str(row.get("athlete_id") or "") or None, digest)
    if kind == "invite" and invitations and _invite_state(row) == "ok":
        return Caller("invite", None, None, digest)
    return None


# ---- invitations -------------------------------------------------------------------------------------------
def create_invitation(storage: Storage, note: str = "", ttl: timedelta = INVITE_TTL) -> tuple[str, datetime]:
    """A new single-use invitation key (returned once, stored as a hash) and when it expires."""
    key = INVITE_PREFIX + secrets.token_urlsafe(32)
    expires = utcnow() + ttl
    table(storage).create_entity({
        "PartitionKey": KEY_PARTITION, "RowKey": key_hash(key), "kind": "invite", "note": note[:200],
        "created": _iso(utcnow()), "expires_at": _iso(expires), "used": False,
    })
    log.info("invitation created expires_at=%s", _iso(expires))
    return key, expires


def _invite_state(row: Any) -> InviteCheck:
    if row.get("used"):
        return "used"
    expires = _parse(row.get("expires_at"))
    if expires is None or expires <= utcnow():
        return "expired"
    return "ok"


def use_invitation(storage: Storage, digest: str, athlete_id: str) -> InviteCheck:
    """Mark an invitation used by `athlete_id` (compare-and-swap: two racing callbacks, one winner)."""
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
    from azure.data.tables import UpdateMode

    try:
        row = table(storage).get_entity(KEY_PARTITION, digest)
    except ResourceNotFoundError:
        return "unknown"
    if row.get("kind") != "invite":
        return "unknown"
    state = _invite_state(row)
    if state != "ok":
        return state
    try:
        table(storage).update_entity(
            {"PartitionKey": KEY_PARTITION, "RowKey": digest, "used": True, "used_at": _iso(utcnow()),
             "athlete_id": athlete_id},
            mode=UpdateMode.MERGE, etag=row.metadata.get("etag"), match_condition=MatchConditions.IfNotModified)
    except (ResourceModifiedError, ResourceNotFoundError):
        return "used"
    return "ok"


@dataclass(frozen=True)
class Invitation:
    """A pending invitation as the owner's page lists it: its hash (not usable as a key), note and dates."""

    digest: str
    note: str
    created: datetime | None
    expires_at: datetime | None


def pending_invitations(storage: Storage) -> list[Invitation]:
    """Invitations not used and not expired yet, newest first."""
    rows = table(storage).query_entities("PartitionKey eq @p and kind eq @k",
                                         parameters={"p": KEY_PARTITION, "k": "invite"})
    found = [Invitation(str(r["RowKey"]), str(r.get("note") or ""), _parse(r.get("created")),
                        _parse(r.get("expires_at"))) for r in rows if _invite_state(r) == "ok"]
    return sorted(found, key=lambda i: (i.created or datetime.min.replace(tzinfo=UTC), i.digest), reverse=True)


def revoke_invitation(storage: Storage, digest: str) -> bool:
    """Delete a pending invitation, so its link stops working; False if there was none to revoke."""
    from azure.core.exceptions import ResourceNotFoundError

    t = table(storage)
    try:
        row = t.get_entity(KEY_PARTITION, digest)
    except ResourceNotFoundError:
        return False
    if row.get("kind") != "invite" or row.get("used"):
        return False
    _delete(t, KEY_PARTITION, digest)
    log.info("invitation revoked")
    return True


def current_key_hash(storage: Storage, user: str) -> str | None:
    """The hash of the athlete's personal key now (None once revoked): a page session checks it is still theirs."""
    from azure.core.exceptions import ResourceNotFoundError

    try:
        row = table(storage).get_entity(USER_PARTITION, user)
    except ResourceNotFoundError:
        return None
    return str(row.get("key_hash") or "") or None


# ---- athletes and their keys -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Athlete:
    user: str
    athlete_id: str
    name: str
    created: datetime | None
    key_created: datetime | None
    has_key: bool


def issue_key(storage: Storage, athlete_id: str, name: str) -> tuple[str, str]:
    """(user, new personal key) for `athlete_id`; an earlier key of theirs stops working (a lost key's cure)."""
    from azure.core.exceptions import ResourceNotFoundError
    from azure.data.tables import UpdateMode

    user = user_for_athlete(athlete_id)
    key = PERSONAL_PREFIX + secrets.token_urlsafe(32)
    digest = key_hash(key)
    t = table(storage)
    now = _iso(utcnow())
    t.create_entity({"PartitionKey": KEY_PARTITION, "RowKey": digest, "kind": "athlete", "user": user,
                     "athlete_id": athlete_id, "created": now})
    try:
        old = t.get_entity(USER_PARTITION, user)
    except ResourceNotFoundError:
        old = None
    t.upsert_entity({"PartitionKey": USER_PARTITION, "RowKey": user, "athlete_id": athlete_id, "name": name[:200],
                     "key_hash": digest, "key_created": now,
                     "created": (old or {}).get("created") or now}, mode=UpdateMode.REPLACE)
    previous = (old or {}).get("key_hash")
    if previous and previous != digest:
        _delete(t, KEY_PARTITION, previous)
    log.info("personal key issued user=%s replaced_previous=%s", user, bool(previous))
    return user, key


def revoke(storage: Storage, athlete_id: str) -> bool:
    """Stop the athlete's personal key working (their log and Strava connection stay); False if they had none."""
    from azure.core.exceptions import ResourceNotFoundError
    from azure.data.tables import UpdateMode

    t = table(storage)
    user = user_for_athlete(athlete_id)
    try:
        row = t.get_entity(USER_PARTITION, user)
    except ResourceNotFoundError:
        return False
    digest = row.get("key_hash")
    if not digest:
        return False
    _delete(t, KEY_PARTITION, str(digest))
    t.update_entity({"PartitionKey": USER_PARTITION, "RowKey": user, "key_hash": ""}, mode=UpdateMode.MERGE)
    log.info("personal key revoked user=%s", user)
    return True


def athletes(storage: Storage) -> list[Athlete]:
    rows = table(storage).query_entities("PartitionKey eq @p", parameters={"p": USER_PARTITION})
    found = [Athlete(user=str(r["RowKey"]), athlete_id=str(r.get("athlete_id") or ""), name=str(r.get("name") or ""),
                     created=_parse(r.get("created")), key_created=_parse(r.get("key_created")),
                     has_key=bool(r.get("key_hash"))) for r in rows]
    return sorted(found, key=lambda a: a.user)


def _delete(t: TableClient, partition: str, row: str) -> None:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        t.delete_entity(partition, row)
    except ResourceNotFoundError:
        pass


# ---- which key started a "Connect with Strava" -------------------------------------------------------------
def remember_connect(storage: Storage, state: str, caller: Caller) -> None:
    """Note who opened the connect page under this OAuth state, for the callback (the owner needs no note)."""
    t = table(storage)
    t.create_entity({"PartitionKey": CONNECT_PARTITION, "RowKey": state, "kind": caller.kind,
                     "user": caller.user or "", "athlete_id": caller.athlete_id or "",
                     "key_hash": caller.key_hash or "", "created": _iso(utcnow())})
    _purge_connect_notes(t)


def take_connect(storage: Storage, state: str) -> Caller:
    """Who started the connect with this (already validated) state: the owner unless a note says otherwise."""
    from azure.core.exceptions import ResourceNotFoundError

    t = table(storage)
    try:
        row = t.get_entity(CONNECT_PARTITION, state)
    except ResourceNotFoundError:
        return OWNER_CALLER
    _delete(t, CONNECT_PARTITION, state)
    kind = row.get("kind")
    if kind == "athlete":
        return Caller("athlete", str(row.get("user")), str(row.get("athlete_id") or "") or None,
                      str(row.get("key_hash") or "") or None)
    if kind == "invite":
        return Caller("invite", None, None, str(row.get("key_hash") or "") or None)
    return OWNER_CALLER


def _purge_connect_notes(t: TableClient, limit: int = 50) -> None:
    """Housekeeping: notes of connects nobody finished (bounded work per call)."""
    try:
        rows = t.query_entities("PartitionKey eq @p and created lt @cutoff",
                                parameters={"p": CONNECT_PARTITION, "cutoff": _iso(utcnow() - CONNECT_TTL)},
                                select=["PartitionKey", "RowKey"], results_per_page=limit)
        for n, row in enumerate(rows):
            if n >= limit:
                break
            _delete(t, CONNECT_PARTITION, str(row["RowKey"]))
    except Exception as exc:  # housekeeping only
        log.info("purging old connect notes failed (%s)", type(exc).__name__)
