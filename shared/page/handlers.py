"""The page's HTTP handlers: sign-in, the page, and its buttons (each a POST with the session's CSRF token).

Who is asking comes only from the signed session cookie, never from the URL: a `key` in the query string
is ignored. Anything unexpected (storage down, a bug) is a small page saying so, never a stack trace.
"""

from __future__ import annotations

import hmac
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import azure.functions as func

from shared.config import Settings, SettingsError, current
from shared.page import answers, render
from shared.page import session as sessions
from shared.page.session import Session
from shared.page.throttle import THROTTLE, client_of

log = logging.getLogger(__name__)

MAX_FORM = 16 * 1024
STATIC = Path(__file__).resolve().parent / "static"
_STATIC_TYPES = {"app.css": "text/css", "icon.svg": "image/svg+xml"}
NOTICES = {"retried": "Queued again: the row says synced once the upload has gone through (reload in a minute).",
           "revoked": "Invitation revoked: its link no longer works.",
           "signed-out": "Signed out."}
clock: Callable[[], float] = time.time  # tests move it to expire sessions


class _Stop(Exception):
    def __init__(self, response: func.HttpResponse) -> None:
        super().__init__(response.status_code)
        self.response = response


def _guarded(handler: Callable[[func.HttpRequest], func.HttpResponse], req: func.HttpRequest) -> func.HttpResponse:
    try:
        return handler(req)
    except _Stop as stop:
        return stop.response
    except Exception as exc:  # storage down or a bug: a page that says so
        log.warning("page %s failed (%s)", handler.__name__, type(exc).__name__, exc_info=True)
        return answers.html(503, render.message(base_of(req.url), "Try again", "The activity log is unavailable "
                                                "right now; try again in a minute."), None)


def base_of(url: str) -> str:
    """The page's own path (any route prefix): everything up to and including /page."""
    path = urlsplit(url).path
    at = path.find("/page")
    return path[: at + 5] if at >= 0 else "/api/page"


def _secure(url: str) -> bool:
    return (urlsplit(url).hostname or "") not in ("localhost", "127.0.0.1", "::1")


def _settings(req: func.HttpRequest) -> Settings:
    try:
        return current()
    except SettingsError as exc:
        raise _Stop(answers.html(503, render.message(base_of(req.url), "Not configured", str(exc)), None)) from None


def _secret(cfg: Settings) -> bytes:
    return sessions.signing_secret(cfg.api_key, cfg.strava_client_secret)


def _form(req: func.HttpRequest, cfg: Settings) -> dict[str, str]:
    body = req.get_body() or b""
    if len(body) > MAX_FORM:
        raise _Stop(answers.html(413, render.message(base_of(req.url), "Too large", "That form was too large."),
                                 cfg.strava_base_url))
    parsed = parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True)
    return {k: v[-1] for k, v in parsed.items()}


def current_session(req: func.HttpRequest, cfg: Settings) -> Session | None:
    """The signed-in caller, if the cookie is ours, unexpired, and the key it was made with still works."""
    secret = _secret(cfg)
    found = sessions.read(secret, sessions.from_header(req.headers.get("cookie")), now=clock())
    if found is None:
        return None
    if found.kind == "owner":
        digest = sessions.key_digest(cfg.api_key or "")
    else:
        from shared.storage.users import current_key_hash

        digest = current_key_hash(cfg.storage, found.user) or ""
    if not digest or not hmac.compare_digest(sessions.fingerprint(secret, digest), found.fingerprint):
        return None  # the key changed or was revoked since
    return found


def _signed_in(req: func.HttpRequest, cfg: Settings, form: dict[str, str] | None = None) -> Session:
    """The session of a button's POST: signed out → the sign-in page; no or a wrong CSRF token → 403."""
    base = base_of(req.url)
    found = current_session(req, cfg)
    if found is None:
        raise _Stop(answers.html(401, render.sign_in(base, "You are signed out; sign in again."),
                                 cfg.strava_base_url))
    if form is not None and not sessions.csrf_ok(_secret(cfg), found, form.get("csrf")):
        raise _Stop(answers.html(403, render.message(base, "Refused", "This form is out of date or did not come "
                                                     "from this page. Go back, reload the page and try again."),
                                 cfg.strava_base_url))
    return found


def _page(req: func.HttpRequest, cfg: Settings, found: Session, *, status: int = 200, notice: str = "",
          error: bool = False, new_link: str = "") -> func.HttpResponse:
    from dataclasses import replace

    from shared.page import view

    params = req.params if req.method == "GET" else {}
    page_no = params.get("page") or "1"
    built = view.build(cfg, found, base=base_of(req.url), csrf=sessions.csrf_token(_secret(cfg), found),
                       status=params.get("status") or "", page=int(page_no) if page_no.isdigit() else 1,
                       now=datetime.fromtimestamp(clock(), UTC))
    built = replace(built, notice=notice, notice_error=error, new_link=new_link)
    return answers.html(status, render.page(built), cfg.strava_base_url)


# ---- GET /api/page ----------------------------------------------------------------------------------------
def show(req: func.HttpRequest) -> func.HttpResponse:
    return _guarded(_show, req)


def _show(req: func.HttpRequest) -> func.HttpResponse:
    cfg = _settings(req)
    found = current_session(req, cfg)  # a ?key= in the URL is never looked at
    notice = NOTICES.get(req.params.get("notice") or "", "")
    if found is None:
        cookie = None
        if sessions.from_header(req.headers.get("cookie")):  # forged, expired or stale: take it away
            cookie = sessions.clearing_cookie(path=base_of(req.url), secure=_secure(req.url))
        return answers.html(200, render.sign_in(base_of(req.url), status_text=notice), cfg.strava_base_url,
                            cookie=cookie)
    return _page(req, cfg, found, notice=notice)


# ---- POST /api/page/signin --------------------------------------------------------------------------------
def sign_in(req: func.HttpRequest) -> func.HttpResponse:
    return _guarded(_sign_in, req)


def _sign_in(req: func.HttpRequest) -> func.HttpResponse:
    from shared.web.callers import caller_for

    cfg = _settings(req)
    base = base_of(req.url)
    client = client_of(req.headers.get("x-forwarded-for"))
    wait = THROTTLE.wait(client)
    if wait:
        log.warning("page sign-in throttled after repeated wrong keys")
        return answers.html(429, render.sign_in(base, f"Too many wrong keys from here. Wait {wait} seconds, then "
                                                "try again."), cfg.strava_base_url,
                            extra={"Retry-After": str(wait)})
    key = _form(req, cfg).get("key", "").strip()
    found = caller_for(cfg, key) if key else None
    if found is None or found.user is None:
        THROTTLE.failed(client)
        log.info("page sign-in refused: wrong key")
        return answers.html(401, render.sign_in(base, "That key is not right. Use the deployment's SYNC_API_KEY or "
                                                "your personal key (it starts with rk_)."), cfg.strava_base_url)
    THROTTLE.succeeded(client)
    digest = sessions.key_digest(key) if found.kind == "owner" else (found.key_hash or sessions.key_digest(key))
    value = sessions.issue(_secret(cfg), kind=found.kind, user=found.user, athlete_id=found.athlete_id,
                           digest=digest, now=clock())
    log.info("page sign-in user=%s", found.user)
    return answers.see_other(base, cfg.strava_base_url,
                             cookie=sessions.cookie_for(value, path=base, secure=_secure(req.url)))


# ---- POST /api/page/signout -------------------------------------------------------------------------------
def sign_out(req: func.HttpRequest) -> func.HttpResponse:
    return _guarded(_sign_out, req)


def _sign_out(req: func.HttpRequest) -> func.HttpResponse:
    cfg = _settings(req)
    base = base_of(req.url)
    found = current_session(req, cfg)
    if found is not None and not sessions.csrf_ok(_secret(cfg), found, _form(req, cfg).get("csrf")):
        return answers.html(403, render.message(base, "Refused", "This form did not come from this page."),
                            cfg.strava_base_url)
    return answers.see_other(f"{base}?notice=signed-out", cfg.strava_base_url,
                             cookie=sessions.clearing_cookie(path=base, secure=_secure(req.url)))


# ---- POST /api/page/activities/{id}/retry -----------------------------------------------------------------
def retry(req: func.HttpRequest) -> func.HttpResponse:
    return _guarded(_retry, req)


def _retry(req: func.HttpRequest) -> func.HttpResponse:
    from shared.owner.activities import _ID
    from shared.owner.retry import RetryRefused
    from shared.owner.retry import retry as do_retry

    cfg = _settings(req)
    found = _signed_in(req, cfg, _form(req, cfg))
    sync_id = (req.route_params or {}).get("id") or ""
    if not _ID.fullmatch(sync_id):
        return _page(req, cfg, found, status=404, notice="No such activity in your log.", error=True)
    try:
        do_retry(cfg.storage, found.user, sync_id, timezone=cfg.timezone)
    except RetryRefused as exc:
        problems = "; ".join(f"{p.get('field')}: {p.get('message')}" for p in exc.problems[:10])
        text = f"Not retried: {exc}" + (f" (problems: {problems})" if problems else "")
        return _page(req, cfg, found, status=exc.status, notice=text, error=True)
    return answers.see_other(f"{base_of(req.url)}?notice=retried", cfg.strava_base_url)


# ---- POST /api/page/connect -------------------------------------------------------------------------------
def connect(req: func.HttpRequest) -> func.HttpResponse:
    return _guarded(_connect, req)


def _connect(req: func.HttpRequest) -> func.HttpResponse:
    from shared.owner.connect import new_state
    from shared.owner.oauth import authorize_url
    from shared.web.auth import OWNER_CALLER, Caller

    cfg = _settings(req)
    found = _signed_in(req, cfg, _form(req, cfg))
    if not (cfg.strava_client_id and cfg.strava_client_secret):
        return _page(req, cfg, found, status=503, error=True,
                     notice="STRAVA_CLIENT_ID and STRAVA_CLIENT_SECRET must be set before connecting.")
    if found.kind == "owner":
        caller = OWNER_CALLER
    else:
        from shared.storage.users import current_key_hash

        caller = Caller("athlete", found.user, found.athlete_id, current_key_hash(cfg.storage, found.user))
    state = new_state(cfg.storage, caller)
    parts = urlsplit(req.url)
    callback = f"{parts.scheme}://{parts.netloc}{base_of(req.url)[:-len('/page')]}/strava/callback"
    return answers.see_other(authorize_url(cfg, callback, state), cfg.strava_base_url)


# ---- POST /api/page/invitations, /api/page/invitations/revoke (the owner only) ----------------------------
def invite(req: func.HttpRequest) -> func.HttpResponse:
    return _guarded(_invite, req)


def _owner(req: func.HttpRequest, cfg: Settings) -> tuple[Session, dict[str, str]]:
    form = _form(req, cfg)
    found = _signed_in(req, cfg, form)
    if found.kind != "owner":
        raise _Stop(answers.html(403, render.message(base_of(req.url), "Refused", "Only the owner can manage "
                                                     "invitations."), cfg.strava_base_url))
    return found, form


def _invite(req: func.HttpRequest) -> func.HttpResponse:
    from shared.owner.invitations import InvitationRefused, new_invitation

    cfg = _settings(req)
    found, form = _owner(req, cfg)
    note = form.get("note", "").strip()[:200]
    try:
        key, _ = new_invitation(cfg.storage, cfg.athlete_limit, note)
    except InvitationRefused as exc:
        return _page(req, cfg, found, status=409, error=True, notice=str(exc))
    parts = urlsplit(req.url)
    link = (f"{parts.scheme}://{parts.netloc}{base_of(req.url)[:-len('/page')]}/strava/connect?"
            + urlencode({"key": key}))
    return _page(req, cfg, found, status=201, new_link=link)


def revoke(req: func.HttpRequest) -> func.HttpResponse:
    return _guarded(_revoke, req)


def _revoke(req: func.HttpRequest) -> func.HttpResponse:
    from shared.storage.users import revoke_invitation

    cfg = _settings(req)
    found, form = _owner(req, cfg)
    digest = form.get("invitation", "")
    if len(digest) != 64 or not revoke_invitation(cfg.storage, digest):
        return _page(req, cfg, found, status=404, error=True, notice="That invitation was already used or revoked.")
    return answers.see_other(f"{base_of(req.url)}?notice=revoked", cfg.strava_base_url)


# ---- GET /api/page/static/{name} --------------------------------------------------------------------------
def static(req: func.HttpRequest) -> func.HttpResponse:
    name = (req.route_params or {}).get("name") or ""
    mimetype = _STATIC_TYPES.get(name)
    if mimetype is None:  # a fixed list: no path from the URL ever reaches the file system
        return func.HttpResponse("not found", status_code=404, mimetype="text/plain",
                                 headers={"X-Content-Type-Options": "nosniff"})
    return func.HttpResponse((STATIC / name).read_bytes(), status_code=200, mimetype=mimetype,
                             headers={"X-Content-Type-Options": "nosniff", "Cache-Control": "public, max-age=3600",
                                      "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'"})
