"""The page's session cookie and CSRF tokens: HMAC-signed with a secret derived from the app's settings.

The cookie holds who signed in, when it expires and a fingerprint of the key used (never the key): a
session stops working when that key changes or is revoked, and every session stops when SYNC_API_KEY or
STRAVA_CLIENT_SECRET changes (the signing secret is derived from both, so there is nothing new to set up).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

COOKIE = "rk2s_session"
LIFETIME = 30 * 24 * 3600  # seconds
_LABEL = b"rk2strava/page-session/v1"


@dataclass(frozen=True)
class Session:
    """A signed-in browser: the caller's kind, log partition and athlete, and the key's fingerprint."""

    kind: str
    user: str
    athlete_id: str | None
    fingerprint: str
    nonce: str
    expires: int


def signing_secret(api_key: str | None, client_secret: str | None) -> bytes:
    """The server-side secret: a labelled HMAC of the settings' own secrets (b"" when no key is set)."""
    if not api_key:
        return b""
    return hmac.new(_LABEL, f"{api_key}\0{client_secret or ''}".encode(), hashlib.sha256).digest()


def key_digest(key: str) -> str:
    """SHA-256 of a key, as shared.storage.users stores personal keys."""
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def fingerprint(secret: bytes, digest: str) -> str:
    """What the cookie keeps of the key: useless without the server's secret, and no key hash either."""
    return hmac.new(secret, b"key:" + digest.encode(), hashlib.sha256).hexdigest()[:32]


def _sign(secret: bytes, body: bytes) -> str:
    return base64.urlsafe_b64encode(hmac.new(secret, body, hashlib.sha256).digest()).decode().rstrip("=")


def issue(secret: bytes, *, kind: str, user: str, athlete_id: str | None, digest: str, now: float) -> str:
    """A fresh cookie value for a caller who just signed in with the key whose SHA-256 is `digest`."""
    data = {"k": kind, "u": user, "a": athlete_id or "", "f": fingerprint(secret, digest),
            "n": secrets.token_urlsafe(16), "e": int(now) + LIFETIME}
    body = base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode()).decode().rstrip("=")
    return f"{body}.{_sign(secret, body.encode())}"


def read(secret: bytes, value: str | None, *, now: float) -> Session | None:
    """The session in a cookie value, or None: unsigned, forged, expired or malformed alike."""
    if not secret or not value or len(value) > 1000 or value.count(".") != 1:
        return None
    body, signature = value.split(".")
    if not hmac.compare_digest(signature.encode(), _sign(secret, body.encode()).encode()):
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        found = Session(str(data["k"]), str(data["u"]), str(data["a"]) or None, str(data["f"]), str(data["n"]),
                        int(data["e"]))
    except (ValueError, KeyError, TypeError):
        return None
    return found if found.expires > now else None


def csrf_token(secret: bytes, session: Session) -> str:
    """The token every form of this session posts back: tied to the session, so another site cannot know it."""
    return hmac.new(secret, b"csrf:" + session.nonce.encode(), hashlib.sha256).hexdigest()[:32]


def csrf_ok(secret: bytes, session: Session, given: str | None) -> bool:
    return bool(given) and hmac.compare_digest(csrf_token(secret, session).encode(), (given or "").encode())


def cookie_for(value: str, *, path: str, secure: bool) -> str:
    """The Set-Cookie header: HttpOnly, SameSite=Strict, Secure outside localhost, 30 days."""
    flags = f"; Path={path}; Max-Age={LIFETIME}; HttpOnly; SameSite=Strict"
    return f"{COOKIE}={value}{flags}{'; Secure' if secure else ''}"


def clearing_cookie(*, path: str, secure: bool) -> str:
    return f"{COOKIE}=; Path={path}; Max-Age=0; HttpOnly; SameSite=Strict{'; Secure' if secure else ''}"


def from_header(header: str | None) -> str | None:
    """This app's cookie value out of a Cookie header (the first wins: a browser sends the most specific path first)."""
    found = None
    for part in (header or "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and value:
            found = found or value
    return found
