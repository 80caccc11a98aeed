"""Strava connections in Table Storage, and the one place tokens are refreshed.

Strava rotates the refresh token on refresh and the old one stops working at once, so a refresh is
a small protocol over the entity's ETag: claim a short lease (compare-and-swap), refresh at Strava,
store the new tokens (compare-and-swap again). Workers that lose the lease wait for the winner's token
instead of calling Strava, so any number of threads and processes cause one refresh; a worker whose
lease lapsed and who then meets a rotated token re-reads and uses the winner's. A newer token (later
`expires_at`) is never overwritten by an older one.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from shared.model.times import utcnow
from shared.storage import cas, clients
from shared.storage.clients import Storage
from shared.strava.api import StravaClient, http_session, strava_message
from shared.strava.errors import AthleteLimitReached, NotConnected, Permanent, StravaError, Transient

if TYPE_CHECKING:
    from azure.data.tables import TableClient

    from shared.config import Settings
    from shared.strava.ratelimit import RateBudget

log = logging.getLogger(__name__)

PARTITION = "athlete"
DEFAULT_ROW = "default"
REFRESH_MARGIN = 300  # refresh when the token expires within 5 minutes
LEASE_SECONDS = 40  # longer than one token request (timeout below) can take
TOKEN_TIMEOUT = (5.0, 25.0)
WAIT_SECONDS = LEASE_SECONDS + 10  # a loser waits this long for the winner before giving up (Transient)
POLL_SECONDS = 0.2
ROTATION_GRACE_SECONDS = 2.0  # how long a refused refresh waits for another worker's new token to appear
NOT_CONNECTED = "Strava is not connected: open /api/strava/connect with the app's key and approve the app"

_locks: dict[tuple[str, str], threading.Lock] = {}
_locks_guard = threading.Lock()


@dataclass(frozen=True)
class Connection:
    """One connected athlete; tokens and ETag are kept out of repr so a log line can't leak them."""

    athlete_id: str
    name: str
    scopes: str
    expires_at: int
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    etag: str | None = field(default=None, repr=False, compare=False)
    lease_until: float = field(default=0.0, repr=False)
    lease_owner: str = field(default="", repr=False)

    @property
    def scope_set(self) -> frozenset[str]:
        return frozenset(s.strip() for s in self.scopes.split(",") if s.strip())

    @property
    def can_upload(self) -> bool:
        return "activity:write" in self.scope_set

    def expires_within(self, seconds: float, now: float | None = None) -> bool:
        return self.expires_at - (time.time() if now is None else now) < seconds


def _table(storage: Storage) -> TableClient:
    return clients.table(storage, clients.CONNECTIONS_TABLE)


def _from_entity(entity: Any) -> Connection:
    return Connection(
        athlete_id=str(entity["RowKey"]),
        name=str(entity.get("name") or ""),
        scopes=str(entity.get("scopes") or ""),
        expires_at=int(entity.get("expires_at") or 0),
        access_token=str(entity.get("access_token") or ""),
        refresh_token=str(entity.get("refresh_token") or ""),
        etag=entity.metadata.get("etag"),
        lease_until=float(entity.get("lease_until") or 0.0),
        lease_owner=str(entity.get("lease_owner") or ""),
    )


def _now_iso() -> str:
    return utcnow().isoformat(timespec="seconds")


def _athlete_name(athlete: dict[str, Any]) -> str:
    name = f"{athlete.get('firstname') or ''} {athlete.get('lastname') or ''}".strip()
    return name or str(athlete.get("username") or f"athlete {athlete.get('id')}")


def _tokens_of(answer: dict[str, Any]) -> tuple[str, str, int]:
    try:
        return str(answer["access_token"]), str(answer["refresh_token"]), int(answer["expires_at"])
    except (KeyError, TypeError, ValueError):
        raise Transient("Strava's token answer lacked access_token, refresh_token or expires_at") from None


def save_connection(storage: Storage, token_answer: dict[str, Any], scopes: str, make_default: bool = True, *,
                    first_is_default: bool = True) -> Connection:
    """Store the tokens of an authorization-code answer (it names the athlete); a reconnect replaces the row.

    `first_is_default=False` (an invited athlete) never makes this athlete the deployment's default.
    """
    athlete = token_answer.get("athlete")
    if not isinstance(athlete, dict) or not athlete.get("id"):
        raise ValueError("Strava's token answer did not name the athlete")
    from azure.core.exceptions import ResourceExistsError
    from azure.data.tables import UpdateMode

    access, refresh, expires_at = _tokens_of(token_answer)
    athlete_id = str(athlete["id"])
    table = _table(storage)
    table.upsert_entity({
        "PartitionKey": PARTITION, "RowKey": athlete_id, "name": _athlete_name(athlete), "scopes": scopes,
        "access_token": access, "refresh_token": refresh, "expires_at": expires_at,
        "connected_at": _now_iso(), "updated_at": _now_iso(), "lease_until": 0.0, "lease_owner": "",
    }, mode=UpdateMode.REPLACE)
    pointer = {"PartitionKey": PARTITION, "RowKey": DEFAULT_ROW, "athlete_id": athlete_id}
    if make_default:
        table.upsert_entity(pointer, mode=UpdateMode.REPLACE)
    elif first_is_default:
        try:
            table.create_entity(pointer)  # the first connection becomes the default anyway
        except ResourceExistsError:
            pass
    conn = get_connection(storage, athlete_id)
    assert conn is not None
    log.info("strava connection saved athlete=%s scopes=%s default=%s", athlete_id, scopes, make_default)
    return conn


def default_athlete_id(storage: Storage) -> str | None:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return str(_table(storage).get_entity(PARTITION, DEFAULT_ROW)["athlete_id"]) or None
    except (ResourceNotFoundError, KeyError):
        return None


def get_connection(storage: Storage, athlete_id: str | None = None) -> Connection | None:
    """The connection of `athlete_id`, or of the deployment's default athlete; None when there is none."""
    from azure.core.exceptions import ResourceNotFoundError

    athlete_id = athlete_id or default_athlete_id(storage)
    if not athlete_id or athlete_id == DEFAULT_ROW:
        return None
    try:
        return _from_entity(_table(storage).get_entity(PARTITION, athlete_id))
    except ResourceNotFoundError:
        return None


def post_token(base_url: str, client_id: str, client_secret: str, **form: str) -> dict[str, Any]:
    """POST /oauth/token; errors typed like the client's, and never quoting what was sent."""
    import requests

    try:
        resp = http_session().post(f"{base_url.rstrip('/')}/oauth/token", timeout=TOKEN_TIMEOUT,
                                   data={"client_id": client_id, "client_secret": client_secret, **form})
    except requests.RequestException as exc:
        raise Transient(f"Strava token request failed ({type(exc).__name__})", maybe_applied=True) from None
    if resp.status_code >= 500 or resp.status_code == 429:
        raise Transient(f"Strava token request answered {resp.status_code}", status=resp.status_code,
                        maybe_applied=True)
    if resp.status_code == 401:
        raise Permanent("Strava refused the app's client id or secret (check STRAVA_CLIENT_ID and "
                        "STRAVA_CLIENT_SECRET)", status=401)
    if resp.status_code == 403 and _athlete_limit(resp):
        raise AthleteLimitReached("Strava refused to connect another athlete: this API application's limit of "
                                  "connected athletes is reached", status=403)
    if resp.status_code != 200:
        raise Permanent(f"Strava refused the token request ({resp.status_code}): {strava_message(resp)}",
                        status=resp.status_code)
    try:
        answer = resp.json()
    except ValueError:
        raise Transient("Strava's token answer was not JSON", maybe_applied=True) from None
    if not isinstance(answer, dict):
        raise Transient("Strava's token answer was not an object", maybe_applied=True)
    return answer


def _athlete_limit(resp: Any) -> bool:
    """Is this 403 Strava's "Limit of connected athletes exceeded" (errors: Athlete / limit)?"""
    try:
        body = resp.json()
    except ValueError:
        return "limit of connected athletes" in (resp.text or "").lower()
    errors = body.get("errors") if isinstance(body, dict) else None
    for e in errors if isinstance(errors, list) else []:
        if not isinstance(e, dict):
            continue
        code = str(e.get("code") or "").lower()
        if "limit of connected athletes" in code or (e.get("resource") == "Athlete" and e.get("field") == "limit"):
            return True
    return False


def exchange_code(base_url: str, client_id: str, client_secret: str, code: str) -> dict[str, Any]:
    """The authorization code (single use) for tokens and the athlete."""
    return post_token(base_url, client_id, client_secret, code=code, grant_type="authorization_code")


def _process_lock(storage: Storage, athlete_id: str) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault((storage, athlete_id), threading.Lock())


class TokenManager:
    """A `TokenSource` over the connections table: valid access tokens for one athlete, refreshed once."""

    def __init__(self, storage: Storage, *, base_url: str, client_id: str, client_secret: str,
                 athlete_id: str | None = None) -> None:
        self._storage = storage
        self._base_url = base_url
        self._client_id = client_id
        self._client_secret = client_secret
        self._athlete_id = athlete_id
        self._owner = uuid.uuid4().hex
        self._cached: Connection | None = None

    def __repr__(self) -> str:
        return f"TokenManager(athlete_id={self._athlete_id or 'default'!r}, base_url={self._base_url!r})"

    def connection(self) -> Connection:
        """The stored connection, read now; NotConnected when there is none."""
        from azure.core.exceptions import AzureError

        try:
            conn = get_connection(self._storage, self._athlete_id)
        except AzureError as exc:  # storage unreachable or failing: worth another try later
            raise Transient(f"could not read the Strava connection from storage ({type(exc).__name__})") from None
        if conn is None:
            raise NotConnected(NOT_CONNECTED if self._athlete_id is None
                               else f"Strava athlete {self._athlete_id} is not connected")
        return conn

    @property
    def athlete_id(self) -> str:
        return self._athlete_id or (self._cached or self.connection()).athlete_id

    def access_token(self) -> str:
        conn = self._cached
        if conn is None or conn.expires_within(REFRESH_MARGIN):
            conn = self.connection()
        if conn.expires_within(REFRESH_MARGIN):
            conn = self._refresh(conn.access_token, force=False)
        self._cached = conn
        return conn.access_token

    def refresh(self, stale_access_token: str) -> str:
        """After a 401: a token other than the stale one, refreshing at Strava only if nobody has yet."""
        conn = self._refresh(stale_access_token, force=True)
        self._cached = conn
        return conn.access_token

    def _refresh(self, stale: str, *, force: bool) -> Connection:
        first = self.connection()
        with _process_lock(self._storage, first.athlete_id):  # threads of one process queue here
            deadline = time.monotonic() + WAIT_SECONDS
            while True:
                conn = self.connection()
                fresh = not conn.expires_within(REFRESH_MARGIN)
                if fresh and (conn.access_token != stale or not force):
                    return conn  # someone else refreshed already
                now = time.time()
                if conn.lease_until > now and conn.lease_owner != self._owner:
                    if time.monotonic() > deadline:
                        raise Transient("another worker's Strava token refresh did not finish in time")
                    time.sleep(POLL_SECONDS)  # waiting for another process's refresh to land in the table
                    continue
                leased = self._claim(conn, now)
                if leased is not None:
                    return self._refresh_at_strava(leased)

    def _claim(self, conn: Connection, now: float) -> Connection | None:
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
        from azure.data.tables import UpdateMode

        until = now + LEASE_SECONDS
        try:
            meta = _table(self._storage).update_entity(
                {"PartitionKey": PARTITION, "RowKey": conn.athlete_id, "lease_until": until,
                 "lease_owner": self._owner},
                mode=UpdateMode.MERGE, etag=conn.etag, match_condition=MatchConditions.IfNotModified)
        except (ResourceModifiedError, ResourceNotFoundError):
            return None  # lost the race for the lease: re-read
        return replace(conn, etag=meta.get("etag"), lease_until=until, lease_owner=self._owner)

    def _refresh_at_strava(self, leased: Connection) -> Connection:
        try:
            answer = post_token(self._base_url, self._client_id, self._client_secret,
                                grant_type="refresh_token", refresh_token=leased.refresh_token)
        except Permanent as exc:
            latest = self._rotated_since(leased) if exc.status == 400 else self.connection()
            if latest.refresh_token != leased.refresh_token:
                log.info("strava refresh token was rotated by another worker athlete=%s", leased.athlete_id)
                return latest  # the winner's token
            self._release(latest)
            if exc.status == 400:
                raise NotConnected("Strava no longer accepts the stored refresh token (access revoked?): "
                                   "reconnect at /api/strava/connect") from None
            raise
        except StravaError:
            self._release(leased)
            raise
        access, refresh, expires_at = _tokens_of(answer)
        stored = self._store(leased, access, refresh, expires_at)
        log.info("strava token refreshed athlete=%s expires_at=%s", stored.athlete_id, stored.expires_at)
        return stored

    def _rotated_since(self, leased: Connection) -> Connection:
        """After Strava refused our refresh token: give a winner whose write is in flight a moment to land."""
        deadline = time.monotonic() + ROTATION_GRACE_SECONDS
        while True:
            latest = self.connection()
            if latest.refresh_token != leased.refresh_token or time.monotonic() > deadline:
                return latest
            time.sleep(POLL_SECONDS)

    def _store(self, leased: Connection, access: str, refresh: str, expires_at: int) -> Connection:
        """Compare-and-swap the new tokens in; if the row moved on meanwhile, keep whichever token is newer."""
        from azure.core import MatchConditions
        from azure.core.exceptions import ResourceModifiedError
        from azure.data.tables import UpdateMode

        def write(current: Connection) -> Connection:
            try:
                meta = _table(self._storage).update_entity(
                    {"PartitionKey": PARTITION, "RowKey": leased.athlete_id, "access_token": access,
                     "refresh_token": refresh, "expires_at": expires_at, "updated_at": _now_iso(),
                     "lease_until": 0.0, "lease_owner": ""},
                    mode=UpdateMode.MERGE, etag=current.etag, match_condition=MatchConditions.IfNotModified)
            except ResourceModifiedError:
                raise cas.Conflict(f"connection {leased.athlete_id} changed concurrently") from None
            return replace(current, access_token=access, refresh_token=refresh, expires_at=expires_at,
                           etag=meta.get("etag"), lease_until=0.0, lease_owner="")

        try:  # a newer token already stored (later expiry) is never overwritten: it is the answer
            return cas.update(self.connection, write, current=leased,
                              stop=lambda current: current.expires_at > expires_at)
        except cas.Exhausted:
            raise Transient("could not store the refreshed Strava token (the row kept changing)") from None

    def _release(self, conn: Connection) -> None:
        """Best effort: drop our lease so others need not wait for it to lapse."""
        from azure.core import MatchConditions
        from azure.data.tables import UpdateMode

        if conn.lease_owner != self._owner:
            return
        try:
            _table(self._storage).update_entity(
                {"PartitionKey": PARTITION, "RowKey": conn.athlete_id, "lease_until": 0.0, "lease_owner": ""},
                mode=UpdateMode.MERGE, etag=conn.etag, match_condition=MatchConditions.IfNotModified)
        except Exception:  # noqa: S110 - the lease lapses on its own
            pass


def client_from_settings(settings: Settings, athlete_id: str | None = None, *,
                         timeout: tuple[float, float] = (5, 30), budget: RateBudget | None = None) -> StravaClient:
    """A client for the deployment's (or `athlete_id`'s) connection; SettingsError names missing settings.

    Each client gets its own RateBudget unless one is passed: share one to pool what answers taught.
    """
    settings.require("STRAVA_CLIENT_ID", "STRAVA_CLIENT_SECRET")
    assert settings.strava_client_id and settings.strava_client_secret
    tokens = TokenManager(settings.storage, base_url=settings.strava_base_url, client_id=settings.strava_client_id,
                          client_secret=settings.strava_client_secret, athlete_id=athlete_id)
    return StravaClient(settings.strava_base_url, tokens, timeout=timeout, budget=budget)
