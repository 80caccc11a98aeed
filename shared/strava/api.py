"""The app's only door to Strava's API: uploads, manual activities, listing, with typed errors and the rate budget.

Failures come back as the typed family of shared.strava.errors (`RateLimited` with `reset_at`,
`Transient` with `maybe_applied`, `Unauthorized`, `MissingPermission`, `Permanent`, `NotConnected`), so
callers decide retry policy by type, never by parsing text.
`requests` is imported on first use only: the HTTP ack must not pay for it.
"""

from __future__ import annotations

import gzip
import logging
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, Protocol

from shared.strava.errors import MissingPermission, Permanent, RateLimited, Transient, Unauthorized
from shared.strava.ratelimit import Kind, RateBudget, kind_of

if TYPE_CHECKING:
    import requests

    from shared.strava.convert import StravaActivity

log = logging.getLogger(__name__)

API = "/api/v3"
STATUS_DELETED = "The created activity has been deleted."
_DUPLICATE = re.compile(r"duplicate of activity (\d+)")
_GZIP_MAGIC = b"\x1f\x8b"


class TokenSource(Protocol):
    def access_token(self) -> str: ...

    def refresh(self, stale_access_token: str) -> str: ...


@dataclass(frozen=True)
class UploadOutcome:
    state: Literal["ready", "duplicate", "error", "processing"]
    activity_id: str | None
    message: str | None
    upload_id: str


@dataclass(frozen=True)
class Upload:
    id: str
    status: str
    error: str | None
    activity_id: str | None

    def outcome(self) -> UploadOutcome:
        return _outcome({"status": self.status, "error": self.error, "activity_id": self.activity_id}, self.id)


def _id(value: Any) -> str | None:
    return None if value in (None, "", 0) else str(value)


def _outcome(answer: dict[str, Any], upload_id: str) -> UploadOutcome:
    """Strava's upload answer → what the caller must do: record, record as duplicate, fail, or check later."""
    error, status = answer.get("error"), str(answer.get("status") or "")
    activity_id = _id(answer.get("activity_id"))
    if error:
        match = _DUPLICATE.search(str(error))
        if match:
            return UploadOutcome("duplicate", match.group(1), str(error), upload_id)
        return UploadOutcome("error", None, str(error), upload_id)
    if activity_id:
        return UploadOutcome("ready", activity_id, status or None, upload_id)
    if status == STATUS_DELETED or "error" in status.lower():
        return UploadOutcome("error", None, status, upload_id)
    return UploadOutcome("processing", None, status or None, upload_id)


_session: requests.Session | None = None
_session_lock = threading.Lock()


def http_session() -> requests.Session:
    """One pooled session per process, made on first use (no retries: errors are classified here)."""
    global _session
    if _session is None:
        with _session_lock:
            if _session is None:
                import requests
                from requests.adapters import HTTPAdapter

                session = requests.Session()
                adapter = HTTPAdapter(pool_connections=4, pool_maxsize=16, max_retries=0)
                session.mount("http://", adapter)
                session.mount("https://", adapter)
                session.headers["User-Agent"] = "runkeeper-strava-sync"
                _session = session
    return _session


def strava_message(resp: requests.Response) -> str:
    """Strava's own words from an error answer, short: "Bad Request (Upload data_type invalid)"."""
    try:
        body = resp.json()
    except ValueError:
        return (resp.text or resp.reason or "no message").strip()[:300]
    if not isinstance(body, dict):
        return str(body)[:300]
    details = [" ".join(str(e.get(k) or "") for k in ("resource", "field", "code")).strip()
               for e in body.get("errors") or [] if isinstance(e, dict)]
    message = str(body.get("message") or resp.reason or "error")
    return (message + (f" ({'; '.join(d for d in details if d)})" if any(details) else ""))[:300]


def transport_error(method: str, path: str, exc: Exception) -> Transient:
    """A failure below HTTP: did the request leave us (then a POST may have been applied)?"""
    import requests
    from urllib3.exceptions import NewConnectionError

    reason = getattr(exc.args[0], "reason", None) if exc.args else None
    if isinstance(exc, requests.ConnectTimeout) or isinstance(reason, NewConnectionError):
        sent = False
    else:
        sent = True
    what = "timed out" if isinstance(exc, requests.Timeout) else "failed"
    applied = sent and method != "GET"
    return Transient(
        f"Strava {method} {path} {what} ({type(exc).__name__})"
        + ("; Strava may have applied it" if applied else ""),
        maybe_applied=applied,
    )


def _missing_permission(resp: requests.Response) -> str | None:
    """The scope a 401 names as not granted ("activity:write_permission"), if any: a new token cannot cure it."""
    try:
        errors = resp.json().get("errors") or []
    except (ValueError, AttributeError):
        return None
    fields = (str(e.get("field", "")) for e in errors if isinstance(e, dict))
    return next((f for f in fields if f.endswith("_permission")), None)


class StravaClient:
    def __init__(self, base_url: str, tokens: TokenSource, *, timeout: tuple[float, float] = (5, 30),
                 budget: RateBudget | None = None, clock: Callable[[], datetime] | None = None) -> None:
        self._base = base_url.rstrip("/")
        self.clock = clock or (lambda: datetime.now(UTC))  # a virtual clock lets a simulation skip the waits
        self._tokens = tokens
        self._timeout = timeout
        self._budget = budget or RateBudget()
        self._count_lock = threading.Lock()
        self.calls = 0

    def __repr__(self) -> str:
        return f"StravaClient({self._base!r}, calls={self.calls})"

    @property
    def budget(self) -> RateBudget:
        return self._budget

    # ---- HTTP plumbing ---------------------------------------------------------------------------
    def _send(self, method: str, path: str, token: str, kind: Kind, **kwargs: Any) -> requests.Response:
        import requests

        self._budget.record_call(kind, self.clock())
        with self._count_lock:
            self.calls += 1
        try:
            resp = http_session().request(method, self._base + path, timeout=self._timeout,
                                          headers={"Authorization": f"Bearer {token}"}, **kwargs)
        except requests.RequestException as exc:
            raise transport_error(method, path, exc) from None  # the cause holds the request and its token
        self._budget.update(resp.headers, self.clock())
        log.debug("strava %s %s -> %s", method, path, resp.status_code)
        return resp

    def _request(self, method: str, path: str, **kwargs: Any) -> Any:
        kind = kind_of(method, path)
        token = self._tokens.access_token()
        resp = self._send(method, path, token, kind, **kwargs)
        if resp.status_code == 401 and _missing_permission(resp) is None:
            log.info("strava %s %s answered 401: refreshing the token once", method, path)
            token = self._tokens.refresh(token)
            resp = self._send(method, path, token, kind, **kwargs)
        return self._answer(method, path, kind, resp)

    def _answer(self, method: str, path: str, kind: Kind, resp: requests.Response) -> Any:
        status = resp.status_code
        if 200 <= status < 300:
            try:
                return resp.json()
            except ValueError:
                raise Transient(f"Strava {method} {path} answered {status} without JSON",
                                maybe_applied=method != "GET", status=status) from None
        message = f"Strava {method} {path} answered {status}: {strava_message(resp)}"
        if status == 429:
            raise self._rate_limited(kind, message)
        if status == 401:
            permission = _missing_permission(resp)
            if permission is not None:
                raise MissingPermission(message, permission=permission, status=status)
            raise Unauthorized(message, status=status)
        if status >= 500:
            log.warning("%s", message)
            raise Transient(message, maybe_applied=method != "GET", status=status)
        raise Permanent(message, status=status)

    def _rate_limited(self, kind: Kind, message: str) -> RateLimited:
        """Which limit refused us (Strava's body says; else the budget), and when it starts afresh."""
        now = self.clock()
        text = message.lower()
        limited: Kind = "read" if "read rate limit" in text else "overall" if "overall rate limit" in text else kind
        daily_spent = self._budget.remaining(limited, now)[1] == 0
        self._budget.exhausted(limited, now, daily=daily_spent)
        reset_at = self._budget.next_reset(limited, now)
        log.warning("strava rate limit (%s) reached; resets at %s", limited, reset_at.isoformat())
        return RateLimited(f"{message}; resets at {reset_at.isoformat()}", reset_at=reset_at, kind=limited)

    # ---- API -------------------------------------------------------------------------------------
    def send_upload(self, act: StravaActivity, *, external_id: str, filename: str) -> Upload:
        """An activity with a track, as both paths send it (the live worker and the importer)."""
        assert act.gpx is not None, "a manual activity has no GPX to upload"
        return self.upload_gpx(act.gpx, name=act.name, description=act.description, sport_type=act.sport_type,
                               trainer=act.trainer, commute=act.commute, external_id=external_id, filename=filename)

    def send_manual(self, act: StravaActivity) -> dict[str, Any]:
        """An activity without a track, as both paths send it; Strava keeps no external id for these."""
        return self.create_manual_activity(
            name=act.name, sport_type=act.sport_type, start_date_local=act.start_local,
            elapsed_time=act.elapsed_time or 0, description=act.description, distance=act.distance,
            trainer=act.trainer, commute=act.commute)

    def upload_gpx(self, gpx: bytes, *, name: str, description: str | None, sport_type: str, trainer: bool,
                   commute: bool, external_id: str, filename: str = "activity.gpx") -> Upload:
        """POST /uploads as gpx.gz (gzipped here unless it already is); the outcome comes later."""
        body = gpx if gpx[:2] == _GZIP_MAGIC else gzip.compress(gpx, mtime=0)
        data = {"data_type": "gpx.gz", "name": name, "sport_type": sport_type, "external_id": external_id,
                "trainer": "1" if trainer else "0", "commute": "1" if commute else "0"}
        if description:
            data["description"] = description
        answer = self._request("POST", f"{API}/uploads", data=data,
                               files={"file": (filename, body, "application/gzip")})
        upload_id = _id(answer.get("id_str")) or _id(answer.get("id"))
        if upload_id is None:
            raise Transient("Strava accepted an upload without an id", maybe_applied=True)
        return Upload(upload_id, str(answer.get("status") or ""), answer.get("error") or None,
                      _id(answer.get("activity_id")))

    def upload_status(self, upload_id: str) -> UploadOutcome:
        answer = self._request("GET", f"{API}/uploads/{upload_id}")
        return _outcome(answer, str(upload_id))

    def wait_for_upload(self, upload_id: str, *, max_wait: float = 30.0, interval: float = 1.0,
                        first_check_after: float = 0.0) -> UploadOutcome:
        """Poll until the upload is decided, at most once a second and for at most `max_wait` seconds.

        `first_check_after` skips the check that would only say "still processing" (Strava takes 1-2 s),
        saving one read call per fresh upload.
        """
        interval = max(1.0, interval)
        deadline = time.monotonic() + max_wait
        if first_check_after > 0:
            time.sleep(min(first_check_after, max_wait))
        while True:
            outcome = self.upload_status(upload_id)
            if outcome.state != "processing" or time.monotonic() + interval > deadline:
                return outcome
            time.sleep(interval)

    def create_manual_activity(self, *, name: str, sport_type: str, start_date_local: datetime, elapsed_time: int,
                               description: str | None = None, distance: float | None = None,
                               trainer: bool = False, commute: bool = False) -> dict[str, Any]:
        """POST /activities. Strava does not deduplicate these; `start_date_local` is used as a wall clock."""
        data: dict[str, str] = {
            "name": name, "sport_type": sport_type, "elapsed_time": str(int(elapsed_time)),
            "start_date_local": start_date_local.replace(tzinfo=None).strftime("%Y-%m-%dT%H:%M:%S"),
            "trainer": "1" if trainer else "0", "commute": "1" if commute else "0",
        }
        if description:
            data["description"] = description
        if distance is not None:
            data["distance"] = f"{float(distance):.1f}"
        answer = self._request("POST", f"{API}/activities", data=data)
        if not isinstance(answer, dict) or "id" not in answer:
            raise Transient("Strava created an activity without an id", maybe_applied=True)
        return answer

    def list_activities(self, after: datetime, before: datetime) -> list[dict[str, Any]]:
        """Activities starting strictly between `after` and `before` (naive = UTC), every page of 200."""
        window = {"after": int(_aware(after).timestamp()), "before": int(_aware(before).timestamp()),
                  "per_page": 200}
        found: list[dict[str, Any]] = []
        page = 1
        while True:
            batch = self._request("GET", f"{API}/athlete/activities", params={**window, "page": page})
            if not isinstance(batch, list):
                raise Permanent("Strava's activity list was not a list")
            found.extend(batch)
            if len(batch) < 200:
                return found
            page += 1

    def update_activity(self, activity_id: str, changes: dict[str, Any]) -> dict[str, Any]:
        """PUT /activities/{id} with a JSON body (gear_id, hide_from_home, ...): one read-limit call."""
        answer = self._request("PUT", f"{API}/activities/{int(activity_id)}", json=changes)
        return answer if isinstance(answer, dict) else {}

    def athlete(self) -> dict[str, Any]:
        """GET /athlete: a cheap check that the connection works."""
        return self._request("GET", f"{API}/athlete")


def _aware(dt: datetime) -> datetime:
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt

