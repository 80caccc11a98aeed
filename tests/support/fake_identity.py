"""A fake App Service managed-identity endpoint: a real threaded HTTP server on 127.0.0.1.

In App Service and Functions the platform serves the app's managed identity at `IDENTITY_ENDPOINT`
and guards it with `X-IDENTITY-HEADER: $IDENTITY_HEADER`; azure-identity's `ManagedIdentityCredential`
(through MSAL) asks it `GET ?resource=<resource>&api-version=2019-08-01[&client_id=<id>]` and expects
`{"access_token", "expires_on" (epoch seconds, a string as App Service sends it), "resource",
"token_type", "client_id"}`. This fake answers the same way, so the app's real credential code runs in
tests. Its tokens are well-formed JWTs (HS256 over a per-fake dummy key) with the claims Azurite's
`--oauth basic` checks (`iat`/`nbf`/`exp`, `iss` under https://sts.windows.net/, `aud` = the resource
asked for) plus `oid`/`tid`/`appid`/`sub` as a real managed-identity token has.

Refusals, as the platform: wrong or missing `X-IDENTITY-HEADER` → 401; no `resource` or another
api-version → 400; with `client_id` set (a user-assigned identity, the default), a request naming
another client id or none → 400 "Unable to load requested managed identity." (so tests prove the app
passes the user-assigned identity's client id). `client_id = None` acts as a system-assigned identity.

Knobs: `fail_with(status, retry_after=None)` (every request answers `status` with a JSON error; MSAL
caches a 429/5xx answer per credential for `Retry-After` seconds, 5 by default, so pass `retry_after=0`
when a test expects the very next call to succeed after `normal()`), `answer_garbage()` (200 whose body
is not JSON), `normal()`, `delay` (hold each answer this long), `lifetime` (seconds a token lasts; MSAL
treats tokens with under 5 minutes left as expired and asks again), `client_id`, `tenant_id`.
Inspection: `token_count`, `resources` (resource of every token issued), `requests` (query and status
of every request), `issued_tokens`, `claims(token)`; `reset()` restores all of it. `env()` gives the two
variables azure-identity reads (both must be set before the credential is constructed).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PATH = "/msi/token/"  # App Service's IDENTITY_ENDPOINT is http://127.0.0.1:<port>/msi/token/ too
API_VERSION = "2019-08-01"
FAKE_CLIENT_ID = "3f1c9a52-7b0e-4d6a-9c41-0d2b7e5a8f13"  # the user-assigned identity the tests configure
FAKE_TENANT_ID = "72f988bf-0000-4000-8000-00000000feed"
FAKE_PRINCIPAL_ID = "9d0e4b7a-5c2f-4e18-8a36-1b7c4f2e6d90"  # the identity's object id (oid)
DEFAULT_LIFETIME = 24 * 3600  # managed-identity tokens last about a day


@dataclass(frozen=True)
class TokenRequest:
    query: dict[str, str]
    status: int


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class FakeIdentity:
    def __init__(self, client_id: str | None = FAKE_CLIENT_ID) -> None:
        self.header_secret = secrets.token_urlsafe(24)  # the IDENTITY_HEADER value; fixed for the fake's life
        self._default_client_id = client_id
        self._key = secrets.token_bytes(32)  # signs tokens so they are well-formed; nobody verifies them
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self.reset()

    def reset(self) -> None:
        """Back to answering normally as the configured identity, with no history (between tests)."""
        with self._lock:
            self.client_id: str | None = self._default_client_id
            self.principal_id = FAKE_PRINCIPAL_ID
            self.tenant_id = FAKE_TENANT_ID
            self.lifetime = DEFAULT_LIFETIME
            self.delay = 0.0
            self._fail_status: int | None = None
            self._retry_after: int | None = None
            self._garbage = False
            self.requests: list[TokenRequest] = []
            self.resources: list[str] = []
            self.issued_tokens: list[str] = []

    # --- failure modes -------------------------------------------------------------------------------

    def fail_with(self, status: int, retry_after: int | None = None) -> None:
        """Answer every request with `status` and a JSON error (as the platform does when it is unwell)."""
        with self._lock:
            self._fail_status, self._retry_after, self._garbage = status, retry_after, False

    def answer_garbage(self) -> None:
        """Answer every request 200 with a body that is not JSON."""
        with self._lock:
            self._fail_status, self._garbage = None, True

    def normal(self) -> None:
        with self._lock:
            self._fail_status, self._retry_after, self._garbage = None, None, False

    # --- inspection ----------------------------------------------------------------------------------

    @property
    def token_count(self) -> int:
        return len(self.issued_tokens)

    @property
    def issued_secrets(self) -> set[str]:
        """Every token issued (for log-leak checks, like FakeStrava.issued_secrets)."""
        return set(self.issued_tokens)

    @staticmethod
    def claims(token: str) -> dict[str, Any]:
        """The payload of a token (no verification: tests inspect what the app was given)."""
        return json.loads(_unb64url(token.split(".")[1]))

    # --- server --------------------------------------------------------------------------------------

    def start(self) -> FakeIdentity:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        threading.Thread(target=server.serve_forever, name="fake-identity", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the fake first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}{PATH}"

    def env(self) -> dict[str, str]:
        """What App Service sets for the app: azure-identity reads both when the credential is built."""
        return {"IDENTITY_ENDPOINT": self.url, "IDENTITY_HEADER": self.header_secret}

    # --- the endpoint --------------------------------------------------------------------------------

    def answer(self, path: str, query: dict[str, str], header: str | None) -> tuple[int, dict[str, str], bytes]:
        status, headers, body = self._answer(path, query, header)
        with self._lock:
            self.requests.append(TokenRequest(dict(query), status))
        return status, headers, body

    def _answer(self, path: str, query: dict[str, str], header: str | None) -> tuple[int, dict[str, str], bytes]:
        with self._lock:
            fail, retry_after, garbage, client_id = self._fail_status, self._retry_after, self._garbage, self.client_id
        if path != PATH:
            return _error(404, "Not found.")
        if header is None or not hmac.compare_digest(header.encode(), self.header_secret.encode()):
            return _error(401, "The request is not authorized: X-IDENTITY-HEADER is missing or wrong.")
        if fail:
            status, headers, body = _error(fail, "Fake failure of the identity endpoint.")
            if retry_after is not None:
                headers["Retry-After"] = str(retry_after)
            return status, headers, body
        if garbage:
            return 200, {"Content-Type": "text/html"}, b"<html><body>Service Unavailable</body></html>"
        if query.get("api-version") != API_VERSION:
            return _error(400, f"api-version must be {API_VERSION}.")
        resource = query.get("resource", "").strip()
        if not resource:
            return _error(400, "Required query parameter 'resource' is missing.")
        if client_id is not None and query.get("client_id") != client_id:
            return _error(400, "Unable to load requested managed identity.")
        if client_id is None and query.get("client_id"):
            return _error(400, "Unable to load requested managed identity.")
        resource = resource.removesuffix("/.default")
        token, expires_on = self._issue(resource, client_id or "system-assigned-" + self.principal_id[:8])
        body = {
            "access_token": token,
            "expires_on": str(expires_on),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": client_id or "",
        }
        return 200, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(body).encode()

    def _issue(self, resource: str, app_id: str) -> tuple[str, int]:
        now = int(time.time())
        with self._lock:
            lifetime, tenant, oid = self.lifetime, self.tenant_id, self.principal_id
        claims = {
            "aud": resource,
            "iss": f"https://sts.windows.net/{tenant}/",
            "iat": now - 5 * 60,  # as Entra does: a margin for clock skew
            "nbf": now - 5 * 60,
            "exp": now + lifetime,
            "appid": app_id,
            "appidacr": "2",
            "idp": f"https://sts.windows.net/{tenant}/",
            "oid": oid,
            "sub": oid,
            "tid": tenant,
            "uti": uuid.uuid4().hex,  # makes every token distinct
            "ver": "1.0",
            "xms_mirid": f"/subscriptions/00000000-0000-0000-0000-000000000000/resourcegroups/tests/providers/"
                         f"Microsoft.ManagedIdentity/userAssignedIdentities/fake-{app_id[:8]}",
        }
        head = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
        body = _b64url(json.dumps(claims, separators=(",", ":")).encode())
        signature = _b64url(hmac.new(self._key, f"{head}.{body}".encode(), hashlib.sha256).digest())
        token = f"{head}.{body}.{signature}"
        with self._lock:
            self.issued_tokens.append(token)
            self.resources.append(resource)
        return token, claims["exp"]


def _error(status: int, message: str) -> tuple[int, dict[str, str], bytes]:
    body = {"statusCode": status, "message": message, "correlationId": str(uuid.uuid4())}
    return status, {"Content-Type": "application/json; charset=utf-8"}, json.dumps(body).encode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        fake: FakeIdentity = self.server.fake  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        status, headers, body = fake.answer(parts.path, query, self.headers.get("X-IDENTITY-HEADER"))
        if fake.delay and fake._stopping.wait(fake.delay):
            self.close_connection = True
            return
        try:
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client gave up first (its timeout)
            self.close_connection = True

    def do_POST(self) -> None:
        """App Service's endpoint takes GET only."""
        self.close_connection = True  # its body is left unread
        self.send_response(405)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass
