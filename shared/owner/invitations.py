"""POST /api/invitations: the owner invites an athlete, who connects to Strava and gets a personal key.

Only the owner's key may invite (an athlete's personal key gets a 403). The answer carries the
single-use invitation and the connect link to send to the athlete; shared.owner.connect takes it from there.
"""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit

import azure.functions as func

from shared.model.times import TIME_FORMAT
from shared.owner.guard import caller, guarded, json_body, settings
from shared.web.responses import error, json_response


def connect_url(request_url: str, key: str) -> str:
    """This app's /api/strava/connect?key=..., next to the invitations URL the owner called."""
    parts = urlsplit(request_url)
    path = parts.path.rstrip("/")
    base = path[: -len("/invitations")] if path.endswith("/invitations") else "/api"
    return urlunsplit((parts.scheme, parts.netloc, f"{base}/strava/connect", f"key={key}", ""))


def invite(req: func.HttpRequest) -> func.HttpResponse:
    return guarded(_invite, req, "invitation")


def _invite(req: func.HttpRequest) -> func.HttpResponse:
    from shared.storage.users import create_invitation

    cfg = settings()
    if caller(req, cfg).kind != "owner":
        return error(403, "only the owner (the deployment's SYNC_API_KEY) can invite athletes")
    body = json_body(req) or {}
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
        "expires_at": expires.strftime(TIME_FORMAT),
        "connect_url": connect_url(req.url, key),
        "note": "send the connect_url to the athlete: it works once, until expires_at; after connecting to "
                "Strava they are shown their own API key",
    })
