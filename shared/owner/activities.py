"""HTTP handlers for the activity log: list it, send a failure again, and (owner only) invite an athlete.

Every handler checks the key first (the owner's SYNC_API_KEY or an athlete's personal key, as the
X-Api-Key header) and then works on that caller's own log only. Bad input gets a 400 that names every
problem; storage trouble a 503; never a stack trace.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, date, datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import azure.functions as func

from shared.config import Settings, SettingsError, current
from shared.storage.users import Caller
from shared.web.responses import error, json_response

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
MAX_BODY = 20 * 1024 * 1024
QUERY = ("status", "since", "limit")
ALLOWED_EXTRA = ("code",)  # the Functions host's own key parameter
_ID = re.compile(r"a[0-9a-f]{20}|rejected-[0-9a-f]{24}")

log = logging.getLogger(__name__)


class _Answer(Exception):
    """Stop handling and give this response."""

    def __init__(self, response: func.HttpResponse) -> None:
        super().__init__(response.status_code)
        self.response = response


def _guarded(handler: Any, req: func.HttpRequest, name: str) -> func.HttpResponse:
    try:
        return handler(req)
    except _Answer as answer:
        return answer.response
    except Exception as exc:  # storage down or a bug: a clear 503, never a stack trace
        log.warning("%s failed (%s)", name, type(exc).__name__, exc_info=True)
        return error(503, "the activity log is unavailable right now; try again later")


def _settings() -> Settings:
    try:
        return current()
    except SettingsError as exc:
        raise _Answer(error(503, str(exc))) from None


def _caller(req: func.HttpRequest, cfg: Settings) -> Caller:
    from shared.storage.users import identify

    caller = identify(cfg.storage, req.headers.get("x-api-key"), cfg.api_key)
    if caller is None or caller.user is None:
        raise _Answer(error(401, "missing or wrong API key: send the owner's or your personal key as the "
                                 "X-Api-Key header"))
    return caller


# ---- GET /api/activities ---------------------------------------------------------------------------------
def parse_since(text: str) -> datetime:
    """A date (midnight UTC) or an ISO 8601 time (without an offset: UTC)."""
    text = text.strip()
    try:
        if len(text) == 10:
            day = date.fromisoformat(text)
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError("since must be a date like 2024-05-01 or a time like 2024-05-01T07:30:00Z") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment


def parse_query(params: dict[str, str]) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """(status, since, limit) from the query, and every problem with it."""
    from shared.storage.activitylog import STATUSES

    problems: list[dict[str, str]] = []
    out: dict[str, Any] = {"status": None, "since": None, "limit": DEFAULT_LIMIT}
    for name in sorted(set(params) - set(QUERY) - set(ALLOWED_EXTRA)):
        problems.append({"field": name[:50], "message": "unknown parameter; expected status, since or limit"})
    status = (params.get("status") or "").strip()
    if status:
        if status in STATUSES:
            out["status"] = status
        else:
            problems.append({"field": "status", "message": "must be one of " + ", ".join(STATUSES)})
    since = (params.get("since") or "").strip()
    if since:
        try:
            out["since"] = parse_since(since)
        except ValueError as exc:
            problems.append({"field": "since", "message": str(exc)})
    limit = (params.get("limit") or "").strip()
    if limit:
        if limit.isdigit() and 1 <= int(limit) <= MAX_LIMIT:
            out["limit"] = int(limit)
        else:
            problems.append({"field": "limit", "message": f"must be a whole number from 1 to {MAX_LIMIT}"})
    return out, problems


def list_activities(req: func.HttpRequest) -> func.HttpResponse:
    return _guarded(_list, req, "activity list")


def _list(req: func.HttpRequest) -> func.HttpResponse:
    from shared.storage import activitylog

    cfg = _settings()
    caller = _caller(req, cfg)
    query, problems = parse_query(dict(req.params))
    if problems:
        return error(400, "the query has problems", problems=problems)
    assert caller.user is not None
    entries = activitylog.list_activities(cfg.storage, caller.user, status=query["status"], since=query["since"],
                                          limit=query["limit"])
    return json_response(200, {"user": caller.user, "count": len(entries),
                               "activities": [e.public() for e in entries]})


# ---- POST /api/activities/{id}/retry ---------------------------------------------------------------------
def _json_body(req: func.HttpRequest) -> dict[str, Any] | None:
    """The corrected payload, or None for an empty body."""
    body = req.get_body() or b""
    if len(body) > MAX_BODY:
        raise _Answer(error(413, f"body is larger than {MAX_BODY // (1024 * 1024)} MB; nothing was queued"))
    if not body.strip():
        return None

    def no_constants(name: str) -> None:
        raise ValueError(f"{name} is not valid JSON")

    try:
        value = json.loads(body.decode("utf-8-sig"), parse_constant=no_constants)
    except (UnicodeDecodeError, RecursionError, ValueError) as exc:
        why = "body is not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else "body is not valid JSON"
        raise _Answer(error(400, why, problems=[{"field": "body", "message": why}])) from None
    if not isinstance(value, dict):
        why = "body must be the corrected activity as a JSON object (or empty, to send the kept one again)"
        raise _Answer(error(400, why, problems=[{"field": "body", "message": why}]))
    return value


def retry(req: func.HttpRequest) -> func.HttpResponse:
    return _guarded(_retry, req, "activity retry")


def _retry(req: func.HttpRequest) -> func.HttpResponse:
    from shared.owner.replay import RetryRefused
    from shared.owner.replay import retry as do_retry

    cfg = _settings()
    caller = _caller(req, cfg)
    sync_id = (req.route_params or {}).get("id") or ""
    if not _ID.fullmatch(sync_id):
        return error(404, "no such activity: the id is the one GET /api/activities lists")
    payload = _json_body(req)
    assert caller.user is not None
    try:
        done = do_retry(cfg.storage, caller.user, sync_id, timezone=cfg.timezone, payload=payload)
    except RetryRefused as exc:
        extra = {"problems": exc.problems} if exc.problems else {}
        return error(exc.status, str(exc), **extra)
    answer: dict[str, Any] = {"id": done.sync_id, "status": done.status, "retried": done.retried}
    if done.activity_id:
        answer["activity_id"] = done.activity_id
    if done.replaced:
        answer["replaced"] = True
    return json_response(done.status_code, answer)


# ---- POST /api/invitations -------------------------------------------------------------------------------
def connect_url(request_url: str, key: str) -> str:
    """This app's /api/strava/connect?key=..., next to the invitations URL the owner called."""
    parts = urlsplit(request_url)
    path = parts.path.rstrip("/")
    base = path[: -len("/invitations")] if path.endswith("/invitations") else "/api"
    return urlunsplit((parts.scheme, parts.netloc, f"{base}/strava/connect", f"key={key}", ""))


def invitations(req: func.HttpRequest) -> func.HttpResponse:
    return _guarded(_invite, req, "invitation")


def _invite(req: func.HttpRequest) -> func.HttpResponse:
    from shared.storage.users import create_invitation

    cfg = _settings()
    caller = _caller(req, cfg)
    if caller.kind != "owner":
        return error(403, "only the owner (the deployment's SYNC_API_KEY) can invite athletes")
    body = _json_body(req) or {}
    note = body.get("note", "")
    unknown = sorted(set(body) - {"note"})
    problems = [{"field": k[:50], "message": "unknown field; expected note"} for k in unknown]
    if not isinstance(note, str) or len(note) > 200:
        problems.append({"field": "note", "message": "must be text of at most 200 characters"})
    if problems:
        return error(400, "the invitation request has problems", problems=problems)
    key, expires = create_invitation(cfg.storage, note)
    return json_response(201, {
        "invitation": key,
        "expires_at": expires.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "connect_url": connect_url(req.url, key),
        "note": "send the connect_url to the athlete: it works once, until expires_at; after connecting to "
                "Strava they are shown their own API key",
    })
