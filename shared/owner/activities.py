"""HTTP handlers for the caller's activity log: list it, and send a failed or rejected activity again.

The key comes first (shared.owner.guard), then the caller's own log only. Bad input gets a 400 that
names every problem; storage trouble a 503; never a stack trace. The retry itself is shared.owner.retry,
which the command line uses too.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

import azure.functions as func

from shared.owner.guard import caller, guarded, json_body, settings
from shared.web.responses import error, json_response

DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
QUERY = ("status", "since", "limit")
ALLOWED_EXTRA = ("code",)  # the Functions host's own key parameter
_ID = re.compile(r"a[0-9a-f]{20}|rejected-[0-9a-f]{24}")


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
    return guarded(_list, req, "activity list")


def _list(req: func.HttpRequest) -> func.HttpResponse:
    from shared.storage import activitylog

    cfg = settings()
    who = caller(req, cfg)
    query, problems = parse_query(dict(req.params))
    if problems:
        return error(400, "the query has problems", problems=problems)
    assert who.user is not None
    entries = activitylog.list_activities(cfg.storage, who.user, status=query["status"], since=query["since"],
                                          limit=query["limit"])
    return json_response(200, {"user": who.user, "count": len(entries),
                               "activities": [e.public() for e in entries]})


# ---- POST /api/activities/{id}/retry ---------------------------------------------------------------------
def retry(req: func.HttpRequest) -> func.HttpResponse:
    return guarded(_retry, req, "activity retry")


def _retry(req: func.HttpRequest) -> func.HttpResponse:
    from shared.owner.retry import RetryRefused
    from shared.owner.retry import retry as do_retry

    cfg = settings()
    who = caller(req, cfg)
    sync_id = (req.route_params or {}).get("id") or ""
    if not _ID.fullmatch(sync_id):
        return error(404, "no such activity: the id is the one GET /api/activities lists")
    payload = json_body(req)
    assert who.user is not None
    try:
        done = do_retry(cfg.storage, who.user, sync_id, timezone=cfg.timezone, payload=payload)
    except RetryRefused as exc:
        extra = {"problems": exc.problems} if exc.problems else {}
        return error(exc.status, str(exc), **extra)
    answer: dict[str, Any] = {"id": done.sync_id, "status": done.status, "retried": done.retried}
    if done.activity_id:
        answer["activity_id"] = done.activity_id
    if done.replaced:
        answer["replaced"] = True
    return json_response(done.status_code, answer)


