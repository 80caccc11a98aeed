"""POST /api/invitations: the owner invites an athlete, who connects to Strava and gets a personal key.

Only the owner's key may invite (an athlete's personal key gets a 403). The answer carries the
single-use invitation and the connect link to send to the athlete; shared.owner.connect takes it from there.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

import azure.functions as func

from shared.model.times import TIME_FORMAT
from shared.owner.guard import caller, guarded, json_body, settings
from shared.web.responses import error, json_response

if TYPE_CHECKING:
    from shared.storage.clients import Storage


class InvitationRefused(Exception):
    """No new invitation: the athletes already connected and invited fill the app's Strava athlete limit."""


def places_taken(storage: Storage) -> tuple[int, int]:
    """(athletes connected besides the owner, pending invitations): each pending one will take a place too.

    An athlete whose personal key was revoked still counts while their Strava connection is stored: Strava
    counts the athletes who authorized the app, not our keys.
    """
    from shared.storage import users
    from shared.strava import tokens

    owner = tokens.default_athlete_id(storage)
    connected = {a.athlete_id for a in users.athletes(storage)
                 if a.athlete_id and a.athlete_id != owner and tokens.get_connection(storage, a.athlete_id)}
    return len(connected), len(users.pending_invitations(storage))


def new_invitation(storage: Storage, limit: int, note: str = "") -> tuple[str, datetime]:
    """The one rule for every way to invite (CLI, API, page): InvitationRefused once the athlete limit is full."""
    from shared.storage.users import create_invitation

    connected, pending = places_taken(storage)
    if connected + pending >= limit:
        raise InvitationRefused(
            f"no new invitation: {connected} athlete(s) connected and {pending} pending invitation(s) already "
            f"fill this app's limit of {limit} athletes besides you (STRAVA_ATHLETE_LIMIT), and Strava refuses "
            "athletes beyond its limit. Revoke a pending invitation, or get more capacity from Strava's "
            "developer program (Extended Access) and raise STRAVA_ATHLETE_LIMIT.")
    return create_invitation(storage, note)


def connect_url(request_url: str, key: str) -> str:
    """This app's /api/strava/connect?key=..., next to the invitations URL the owner called."""
    parts = urlsplit(request_url)
    path = parts.path.rstrip("/")
    base = path[: -len("/invitations")] if path.endswith("/invitations") else "/api"
    return urlunsplit((parts.scheme, parts.netloc, f"{base}/strava/connect", f"key={key}", ""))


def invite(req: func.HttpRequest) -> func.HttpResponse:
    return guarded(_invite, req, "invitation")


def _invite(req: func.HttpRequest) -> func.HttpResponse:
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
    try:
        key, expires = new_invitation(cfg.storage, cfg.athlete_limit, note)
    except InvitationRefused as exc:
        return error(409, str(exc))
    return json_response(201, {
        "invitation": key,
        "expires_at": expires.strftime(TIME_FORMAT),
        "connect_url": connect_url(req.url, key),
        "note": "send the connect_url to the athlete: it works once, until expires_at; after connecting to "
                "Strava they are shown their own API key",
    })
