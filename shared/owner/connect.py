"""The "Connect with Strava" HTTP handlers: send the owner to Strava's consent page, take the answer back.

`connect` needs a key (header or `?key=`, since a browser follows this link): the owner's
SYNC_API_KEY (the deployment's default athlete), an invitation (a new athlete, who is shown their own
API key once connected) or an athlete's personal key (reconnecting themselves). It leaves a single-use
state behind, with a note of which key opened it; `callback` is guarded by that state instead of a key.
Every refusal is a small page (or JSON for the key check) that says what to do; nothing is stored
unless all is well.
"""

from __future__ import annotations

import logging
from urllib.parse import urlsplit, urlunsplit

import azure.functions as func

from shared.config import SettingsError, load
from shared.owner.oauth import authorize_url
from shared.storage import oauthstates, users
from shared.storage.clients import Storage
from shared.web.auth import Caller
from shared.web.callers import caller_for
from shared.web.responses import error, html_page, redirect

log = logging.getLogger(__name__)

START_AGAIN = "Start again from /api/strava/connect."
_STATE_PAGES = {
    "unknown": "This sign-in answer does not belong to a connection this app started, so nothing was stored. ",
    "used": "This sign-in answer was already used, so nothing was stored. ",
    "expired": "This sign-in took longer than 10 minutes and has expired, so nothing was stored. ",
}

ATHLETE_LIMIT_PAGE = (
    "Strava refused this connection because this app's limit of connected athletes is reached, so nothing was "
    "stored. Strava's Standard Access allows the app's owner plus 10 athletes. The owner of this app can ask "
    "Strava for more through Strava's developer program (Extended Access), or revoke an athlete who no longer "
    "needs the app (in their Strava settings, under My Apps) to free a place; then open the link again."
)


def callback_url(request_url: str) -> str:
    """This app's own /api/strava/callback, next to the connect URL the browser used (any route prefix)."""
    parts = urlsplit(request_url)
    path = parts.path.rstrip("/")
    path = path[: -len("connect")] + "callback" if path.endswith("/connect") else "/api/strava/callback"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def new_state(storage: Storage, caller: Caller) -> str:
    """A single-use OAuth state for `caller` (shared with the owner's page's Connect button); old ones purged."""
    state = oauthstates.create_state(storage)
    if caller.kind != "owner":  # the callback reads it back; without it the state would mean the owner
        users.remember_connect(storage, state, caller)
    try:
        oauthstates.purge(storage)
    except Exception as exc:  # housekeeping only
        log.info("strava connect: purging old OAuth states failed (%s)", type(exc).__name__)
    return state


def connect(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/strava/connect: key check, a fresh state, then 302 to Strava's consent page."""
    try:
        settings = load()
    except SettingsError as exc:
        return error(503, str(exc))
    given = req.headers.get("X-Api-Key") or req.params.get("key")
    try:
        caller = caller_for(settings, given, invitations=True)
    except Exception as exc:
        log.warning("strava connect: could not look up the key (%s)", type(exc).__name__)
        return error(503, "storage is unavailable; try again in a minute")
    if caller is None:
        if not settings.api_key:
            log.warning("strava connect refused: SYNC_API_KEY is not set, so no key can match")
        return error(401, "missing or wrong API key (or a used or expired invitation): send the app's key, your "
                          "invitation or your personal key as the X-Api-Key header or the key query parameter")
    try:
        settings.require("STRAVA_CLIENT_ID", "STRAVA_CLIENT_SECRET")
    except SettingsError as exc:
        return error(503, str(exc))
    try:
        state = new_state(settings.storage, caller)
    except Exception as exc:  # storage down: say so rather than fail with a stack trace
        log.warning("strava connect: could not store the OAuth state (%s)", type(exc).__name__)
        return error(503, "storage is unavailable; try again in a minute")
    log.info("strava connect: redirecting to Strava's consent page")
    return redirect(authorize_url(settings, callback_url(req.url), state))


def callback(req: func.HttpRequest) -> func.HttpResponse:
    """GET /api/strava/callback?code&state&scope (or &error=access_denied)."""
    from shared.strava.errors import AthleteLimitReached, Permanent, StravaError
    from shared.strava.tokens import exchange_code, save_connection

    params = req.params
    try:
        settings = load()
    except SettingsError as exc:
        return html_page(503, "Not configured", str(exc))
    try:
        check = oauthstates.consume_state(settings.storage, params.get("state"))
    except Exception as exc:
        log.warning("strava callback: could not read the OAuth state (%s)", type(exc).__name__)
        return html_page(503, "Try again", "Storage is unavailable, so nothing was stored. " + START_AGAIN)
    if check != "ok":
        log.info("strava callback refused: state %s", check)
        return html_page(400, "Sign-in link not valid", _STATE_PAGES[check] + START_AGAIN)
    try:
        caller = users.take_connect(settings.storage, params.get("state") or "")
    except Exception as exc:
        log.warning("strava callback: could not read who started the connect (%s)", type(exc).__name__)
        return html_page(503, "Try again", "Storage is unavailable, so nothing was stored. " + START_AGAIN)
    problem = params.get("error")
    if problem == "access_denied":
        return html_page(200, "Strava not connected",
                         "You did not authorize the app on Strava, so nothing changed. To connect later, "
                         "open /api/strava/connect again.")
    if problem:
        return html_page(400, "Strava not connected",
                         f"Strava answered with an error ({problem[:100]}), so nothing changed. " + START_AGAIN)
    scopes = params.get("scope") or ""
    granted = {s.strip() for s in scopes.split(",")}
    if "activity:write" not in granted:
        return html_page(400, "Permission needed",
                         "The app needs permission to upload activities: on Strava's page keep "
                         "\"Upload your activities from the app to Strava\" ticked. Nothing was stored. "
                         + START_AGAIN)
    code = params.get("code")
    if not code:
        return html_page(400, "Strava not connected", "Strava's answer had no authorization code. " + START_AGAIN)
    try:
        settings.require("STRAVA_CLIENT_ID", "STRAVA_CLIENT_SECRET")
        assert settings.strava_client_id and settings.strava_client_secret
        answer = exchange_code(settings.strava_base_url, settings.strava_client_id, settings.strava_client_secret,
                               code)
    except SettingsError as exc:
        return html_page(503, "Not configured", str(exc))
    except AthleteLimitReached:
        log.warning("strava callback: Strava refused another athlete (the app's athlete limit is reached)")
        return html_page(403, "Athlete limit reached", ATHLETE_LIMIT_PAGE)
    except Permanent as exc:
        log.warning("strava callback: code exchange refused (%s)", exc.status)
        if exc.status == 401:
            return html_page(503, "Not configured", str(exc))
        return html_page(400, "Strava not connected",
                         "Strava did not accept this sign-in (it may have been used already), so nothing was "
                         "stored. " + START_AGAIN)
    except StravaError as exc:
        log.warning("strava callback: code exchange failed (%s)", type(exc).__name__)
        return html_page(502, "Strava unavailable", "Strava could not be reached, so nothing was stored. "
                         + START_AGAIN)
    if caller.kind != "owner":
        return _athlete_connected(settings.storage, caller, answer, scopes, granted)
    try:
        conn = save_connection(settings.storage, answer, scopes)
    except ValueError as exc:
        return html_page(502, "Strava not connected", f"{exc}; nothing was stored. " + START_AGAIN)
    except Exception as exc:
        log.warning("strava callback: could not store the connection (%s)", type(exc).__name__)
        return html_page(503, "Try again", "Storage is unavailable, so nothing was stored. " + START_AGAIN)
    return html_page(200, "Connected to Strava",
                     f"Connected to Strava as {conn.name}. New Runkeeper activities will be uploaded to this "
                     f"account.{_read_note(granted)}")


def _read_note(granted: set[str]) -> str:
    if granted & {"activity:read", "activity:read_all"}:
        return ""
    return (" Without permission to view your activities, duplicate checks for activities without GPS "
            "and the history import cannot look at Strava first.")


_ASK_AGAIN = "Ask the owner of this app for a new invitation."


def _athlete_connected(storage: Storage, caller: Caller, answer: dict[str, object], scopes: str,
                       granted: set[str]) -> func.HttpResponse:
    """An invited athlete (shown their new personal key, once) or one reconnecting with their own key."""
    from shared.strava.tokens import save_connection

    athlete = answer.get("athlete")
    athlete_id = str(athlete.get("id") or "") if isinstance(athlete, dict) else ""
    if not athlete_id:
        return html_page(502, "Strava not connected", "Strava's answer did not name the athlete; nothing was "
                         "stored. " + START_AGAIN)
    try:
        if caller.kind == "athlete" and athlete_id != caller.athlete_id:
            return html_page(400, "Different Strava account",
                             "You signed in to Strava as another athlete than the one this key belongs to, so "
                             "nothing was stored. Sign in to Strava as yourself, or ask the owner for an "
                             "invitation for the other account.")
        if caller.kind == "invite":
            check = users.use_invitation(storage, caller.key_hash or "", athlete_id)
            if check != "ok":
                return html_page(400, "Invitation not valid",
                                 f"This invitation is {'already used' if check == 'used' else check}, so nothing "
                                 "was stored. " + _ASK_AGAIN)
        conn = save_connection(storage, answer, scopes, make_default=False, first_is_default=False)
        if caller.kind == "athlete":
            return html_page(200, "Connected to Strava",
                             f"Reconnected to Strava as {conn.name}. Your personal API key is unchanged."
                             + _read_note(granted))
        _, key = users.issue_key(storage, conn.athlete_id, conn.name)
    except Exception as exc:
        log.warning("strava callback: could not store the athlete's connection (%s)", type(exc).__name__)
        return html_page(503, "Try again", "Storage is unavailable, so nothing was stored. " + _ASK_AGAIN)
    return html_page(200, "Connected to Strava",
                     f"Connected to Strava as {conn.name}. Your personal API key: {key} — copy it now: it is "
                     "shown only this once and the app keeps only a fingerprint of it. Put it as X-Api-Key (or "
                     "apiKey) in your Zap instead of the owner's key, and your Runkeeper activities go to this "
                     "Strava account. Lost it? Ask the owner for a new invitation: the new key replaces this one."
                     + _read_note(granted))
