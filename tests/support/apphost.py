"""The app over real HTTP on 127.0.0.1, routed the way the Functions host routes: the ONE place that knows it.

From each registered function's httpTrigger binding (function_app.app.get_functions(), as the host indexes
them): the route template under the `api` prefix (`activities/{id}/retry`: a `{name}` is one path segment,
handed over as a route parameter), the methods, and the auth level: a FUNCTION-level function without a key
(`?code=` or `x-functions-key`, the value of `function_key`) gets the host's bare 401, an ANONYMOUS one is
called whatever is sent. The handler gets an `azure.functions.HttpRequest` with the full URL, the headers
(and `X-Forwarded-For`, as the platform's front end adds it), the query as params and the body; its
status, headers and body go back as they are. The host answers 404 for a path no function claims and 405
for a method the function does not accept.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import azure.functions as func

ROUTE_PREFIX = "api"
FUNCTION_KEY = "test-function-key"  # what a FUNCTION-level route wants as ?code= (the host's own key)


@dataclass(frozen=True)
class Route:
    name: str
    pattern: re.Pattern[str]
    methods: frozenset[str]
    anonymous: bool
    call: Callable[[func.HttpRequest], func.HttpResponse]


def _pattern(template: str) -> re.Pattern[str]:
    parts = []
    for piece in re.split(r"(\{[^}]+\})", template.strip("/")):
        if piece.startswith("{"):
            name = piece[1:-1].split(":")[0].rstrip("?")
            parts.append(f"(?P<{name}>[^/]+)")
        else:
            parts.append(re.escape(piece))
    return re.compile(f"/{ROUTE_PREFIX}/" + "".join(parts) + "/?")


def routes() -> list[Route]:
    """Every HTTP function of function_app, in registration order, as the host would route to it."""
    from tests.support.host import functions

    found = []
    for name, fn in functions().items():
        trigger = next((b for b in json.loads(fn.get_function_json())["bindings"] if b["type"] == "httpTrigger"),
                       None)
        if trigger is None:
            continue
        found.append(Route(name, _pattern(trigger.get("route") or name),
                           frozenset(m.upper() for m in trigger.get("methods") or ["GET", "POST"]),
                           str(trigger.get("authLevel", "function")).lower() == "anonymous",
                           fn.get_user_function()))
    return found


class AppHost:
    """`AppHost().start()`; `url` is http://127.0.0.1:<port>; `stop()`. Usable as a context manager."""

    def __init__(self) -> None:
        self.routes = routes()
        self.calls: list[tuple[str, str, int]] = []  # (method, path, status)
        host = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _any(self) -> None:
                host._serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _any

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="apphost", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> AppHost:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> AppHost:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _serve(self, h: BaseHTTPRequestHandler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length else b""
        parts = urlsplit(h.path)
        params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        status, headers, payload = self._answer(h.command, parts.path, params, dict(h.headers.items()), body,
                                                h.client_address[0], h.path)
        self.calls.append((h.command, parts.path, status))
        h.send_response(status)
        for name, value in headers:
            h.send_header(name, value)
        h.send_header("Content-Length", str(len(payload)))
        h.end_headers()
        if h.command != "HEAD":
            h.wfile.write(payload)

    def _answer(self, method: str, path: str, params: dict[str, str], headers: dict[str, str], body: bytes,
                client: str, raw_path: str) -> tuple[int, list[tuple[str, str]], bytes]:
        matched = [(r, m) for r in self.routes if (m := r.pattern.fullmatch(path))]
        if not matched:
            return 404, [], b""
        allowed = [(r, m) for r, m in matched if method in r.methods]
        if not allowed:
            return 405, [], b""
        route, match = allowed[0]
        if not route.anonymous and FUNCTION_KEY not in (params.get("code"), headers.get("x-functions-key")):
            return 401, [], b""
        headers = {**headers, "X-Forwarded-For": f"{client}:{50000}"}
        req = func.HttpRequest(method, self.url + raw_path, headers=headers, params=params,
                               route_params=match.groupdict(), body=body)
        resp = route.call(req)
        out = [(k, v) for k, v in resp.headers.items() if k.lower() != "content-length"]
        if resp.mimetype and "content-type" not in {k.lower() for k, _ in out}:
            out.append(("Content-Type", f"{resp.mimetype}; charset={resp.charset}" if resp.charset else resp.mimetype))
        return resp.status_code, out, resp.get_body() or b""
