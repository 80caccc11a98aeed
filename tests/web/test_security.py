"""Nobody gets in without the key, and no secret gets out.

- Every HTTP function of function_app (enumerated, so a new one is covered the day it is added) except
  the OAuth callback answers 401 without the app's key, with a wrong one, and with the key in the wrong
  place; the callback needs a valid single-use state instead. Keys are compared by shared.web.auth.key_matches.
- HTML pages carry no-store, nosniff and a restrictive Content-Security-Policy; what Strava sends is escaped.
- Representative flows run with known secrets (the API key, the Strava client secret, every code and token
  the fake issued, an athlete's personal key) and none of them appears in any log record, exception,
  activity-log field or HTTP answer. tests/fixtures_secrets.py does the log part for every test of the suite.
"""

from __future__ import annotations

import ast
import io
import json
import re
import traceback
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import azure.functions as func
import pytest
import requests

from shared.storage import clients
from shared.storage.clients import Storage
from shared.web import auth
from tests.conftest import ROOT
from tests.support.fixtures_secrets import known_secrets, leaks, mark, records_since
from tests.support.host import functions

APP = "http://localhost:7071"
HTTP = {name: f for name, f in functions().items() if type(f.get_trigger()).__name__ == "HttpTrigger"}
GUARDED_BY_STATE = {"strava_callback"}
# The owner's page: anonymous at the host (a browser sends no function key), guarded by its own signed
# session and CSRF token (tests/owner/test_page_security.py); every key check below is for the others.
GUARDED_BY_SESSION = {name for name, fn in HTTP.items() if fn.get_trigger().route.startswith("page")}
KEYED = set(HTTP) - GUARDED_BY_STATE - GUARDED_BY_SESSION


def request(name: str, *, key: str | None = None, where: str = "header", body: bytes = b"",
            params: dict[str, str] | None = None) -> func.HttpResponse:
    """Call HTTP function `name` as the host would, with `key` in the header, the query or the body."""
    trigger = HTTP[name].get_trigger()
    method = trigger.methods[0].value
    route_params = {p: "a" + "0" * 20 for p in re.findall(r"{(\w+)}", trigger.route)}
    path = re.sub(r"{(\w+)}", lambda m: route_params[m.group(1)], trigger.route)
    headers, query = {"Content-Type": "application/json"}, dict(params or {})
    if key is not None and where == "header":
        headers["X-Api-Key"] = key
    elif key is not None and where == "query":
        query["key"] = key
    elif key is not None and where == "body":
        body = json.dumps({"apiKey": key}).encode()
    url = f"{APP}/api/{path}" + (f"?{urlencode(query)}" if query else "")
    req = func.HttpRequest(method, url, headers=headers, params=query, route_params=route_params, body=body)
    return HTTP[name].get_user_function()(req)


def stored_rows(storage: Storage) -> list[dict[str, Any]]:
    return [dict(e) for e in clients.table(storage, clients.ACTIVITY_LOG_TABLE).list_entities()]


# ---- nobody gets in --------------------------------------------------------------------------------------
def test_the_enumeration_sees_every_http_function() -> None:
    assert {"runkeeper", "strava_connect", "strava_callback"} <= set(HTTP)
    assert len(HTTP) >= 5
    for name, fn in HTTP.items():  # anonymous at the host only where a browser must reach it
        level = fn.get_trigger().auth_level.name
        assert level == "FUNCTION" or name in {"strava_connect", "strava_callback"} | GUARDED_BY_SESSION, name
    assert GUARDED_BY_SESSION >= {"page", "page_sign_in", "page_retry"}


@pytest.mark.parametrize("name", sorted(GUARDED_BY_SESSION))
def test_the_page_without_a_session_changes_nothing_and_never_fails(live, name: str) -> None:
    """No cookie: a sign-in form, a redirect or a refusal; never data, a write or a 5xx."""
    resp = request(name, key=live.sync.api_key, where="query")  # a key in the query string is ignored
    assert resp.status_code < 500, (name, resp.get_body()[:300])
    granted = resp.headers.get("Set-Cookie", "Max-Age=0")
    assert "Max-Age=0" in granted, (name, "a session from a key in the query string")
    assert stored_rows(live.sync.storage) == [] and live.sync.queue_count() == 0


@pytest.mark.parametrize("name", sorted(KEYED))
@pytest.mark.parametrize(("key", "where"), [(None, "header"), ("", "header"), ("wrong-key-" + "x" * 20, "header"),
                                             ("wrong-key-" + "x" * 20, "query"), ("wrong-key-" + "x" * 20, "body")])
def test_every_http_function_but_the_callback_needs_the_key(live, name: str, key: str | None, where: str) -> None:
    resp = request(name, key=key, where=where)
    assert resp.status_code == 401, (name, resp.status_code, resp.get_body()[:300])
    assert "key" in json.loads(resp.get_body())["error"]
    assert stored_rows(live.sync.storage) == [] and live.sync.queue_count() == 0


@pytest.mark.parametrize("name", sorted(KEYED))
def test_with_the_key_the_same_request_gets_past_the_check(live, name: str) -> None:
    """The 401s above come from the key check: the right key gets a different answer, and never a 5xx."""
    resp = request(name, key=live.sync.api_key)
    assert resp.status_code != 401 and resp.status_code < 500, (name, resp.get_body()[:300])


@pytest.mark.parametrize("params", [{}, {"state": ""}, {"state": "x" * 40, "code": "c" * 40},
                                    {"state": "<script>", "code": "c"}, {"error": "access_denied"}])
def test_the_callback_needs_a_valid_state(live, params: dict[str, str]) -> None:
    resp = request("strava_callback", params=params)
    assert resp.status_code == 400 and resp.mimetype == "text/html"
    assert live.fake.call_count("POST", "/oauth/token") == 0
    from shared.strava.tokens import get_connection

    assert get_connection(live.sync.storage) is None


def test_keys_are_compared_by_key_matches_in_constant_time(live, monkeypatch) -> None:
    """Every guarded function hands the caller's key to key_matches, which compares digests with hmac."""
    import sys

    seen: list[str | None] = []
    real = auth.key_matches

    def spy(given: str | None, expected: str | None) -> bool:
        seen.append(given)
        return real(given, expected)

    for module in [m for n, m in list(sys.modules.items()) if n.startswith("shared.") and m is not None]:
        if getattr(module, "key_matches", None) is real:
            monkeypatch.setattr(module, "key_matches", spy)
    digests: list[tuple[bytes, bytes]] = []
    monkeypatch.setattr(auth.hmac, "compare_digest", lambda a, b: digests.append((a, b)) or a == b)
    for name in sorted(KEYED):
        seen.clear()
        request(name, key="wrong-key-" + name)
        assert "wrong-key-" + name in seen, f"{name} did not compare the key with key_matches"
    assert digests and all(len(a) == len(b) == 32 for a, b in digests)  # digests: length leaks nothing


def test_no_module_compares_a_key_with_equals() -> None:
    """A guard against `given == settings.api_key` creeping in: == short-circuits on the first wrong byte."""
    keyish = re.compile(r"api_?key|secret|given_key|header_key|body_key|personal_key", re.IGNORECASE)
    offenders = []
    for path in sorted((ROOT / "shared").rglob("*.py")):  # every package, not only the top level
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Compare) and any(isinstance(op, ast.Eq | ast.NotEq) for op in node.ops):
                names = [ast.unparse(n) for n in [node.left, *node.comparators]]
                if any(keyish.search(n) for n in names) and not any(n in ("None", "''", '""') for n in names):
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno}: {ast.unparse(node)}")
    assert offenders == []


# ---- HTML pages -------------------------------------------------------------------------------------------
def _html_headers_ok(resp: func.HttpResponse) -> None:
    headers = {k.lower(): v for k, v in resp.headers.items()}
    assert "no-store" in headers.get("cache-control", "")
    assert headers.get("x-content-type-options") == "nosniff"
    csp = headers.get("content-security-policy", "")
    directives = {d.strip().split(" ")[0]: d.strip() for d in csp.split(";") if d.strip()}
    assert directives.get("default-src") == "default-src 'none'", csp
    assert "script-src" not in directives and "unsafe-eval" not in csp
    assert directives.get("frame-ancestors") == "frame-ancestors 'none'"
    assert "<script" not in resp.get_body().decode().lower()


def _connect(live: Any, key: str) -> str:
    """Connect with `key` and follow Strava's consent page back; answers the callback URL."""
    answer = request("strava_connect", key=key, where="query")
    assert answer.status_code == 302, answer.get_body()
    consent = requests.get(answer.headers["Location"], allow_redirects=False, timeout=5)
    return consent.headers["Location"]


def _callback(url: str) -> func.HttpResponse:
    params = {k: v[-1] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}
    return request("strava_callback", params=params)


def test_every_html_page_has_the_security_headers_and_escapes_strava(live) -> None:
    live.fake.athlete.firstname = "<script>alert('x')</script>"
    live.fake.athlete.lastname = "&<img src=x onerror=alert(1)>"
    pages = [_callback(_connect(live, live.sync.api_key))]  # connected: the name Strava sent, escaped
    assert pages[0].status_code == 200 and "&lt;script&gt;" in pages[0].get_body().decode()
    pages.append(request("strava_callback"))  # no state
    live.fake.authorize_mode = "deny"
    pages.append(_callback(_connect(live, live.sync.api_key)))
    live.fake.authorize_mode = "approve"
    live.fake.granted_scope = "read"
    pages.append(_callback(_connect(live, live.sync.api_key)))
    live.fake.granted_scope = None
    back = _connect(live, live.sync.api_key)
    live.fake.fail_next(1, 500, path_prefix="/oauth/token")
    pages.append(_callback(back))
    pages.append(_callback(back))  # the state is used up
    assert {p.mimetype for p in pages} == {"text/html"}
    assert len({p.status_code for p in pages}) >= 3
    for page in pages:
        _html_headers_ok(page)


# ---- no secret gets out --------------------------------------------------------------------------------
def _text(resp: func.HttpResponse) -> str:
    return f"{resp.status_code} {dict(resp.headers)} {resp.get_body().decode('utf-8', 'replace')}"


def test_no_secret_in_any_log_exception_row_or_answer(live, seed_payload, monkeypatch, tmp_path) -> None:
    from shared.cli.app import main as cli_main
    from shared.config import load
    from shared.live import sync
    from shared.strava.errors import StravaError
    from shared.strava.tokens import client_from_settings, get_connection
    from tests.support.fake_strava import make_gpx

    monkeypatch.setattr(sync, "CLIENT_TIMEOUT", (2.0, 1.0))
    start = mark()
    fake, env = live.fake, live.sync
    key = env.api_key
    answers: list[func.HttpResponse] = []
    errors: list[str] = []

    # Connect (code exchange), then activities with the key in the header, in the body, wrong, or quoted.
    answers.append(_callback(_connect(live, key)))
    answers.append(env.post(seed_payload))
    answers.append(env.post({**seed_payload, "apiKey": key, "activityStartTimeIso": "2022-09-27T18:52:22+01:00"},
                            key=None))
    answers.append(env.post({"activityType": "Running", "apiKey": key, "activityNotes": key}, key=None))
    answers.append(env.post({"activityType": key, "activityStartTimeIso": "nope"}))
    answers.append(env.post(b"not json " + key.encode(), key="header"))
    answers.append(env.post({**seed_payload}, key=key + "x"))
    manual = {"activityType": "Cycling", "activityStartTimeIso": "2022-10-01T08:00:00Z", "activityDuration": "600",
              "activityNotes": f"my key is {key}"}
    answers.append(env.post(manual))

    # The worker through expired and rotated tokens, 5xx, a timeout after Strava acted, then a revoked grant.
    fake.expire_access_tokens()
    fake.fail_next(1, 502, path_prefix="/api/v3/uploads", method="POST")
    fake.hold_next(1, seconds=1.5, path_prefix="/api/v3/activities", method="POST")
    with env.drain(workers=2) as drain:
        drain.run(timeout=90)
        errors += ["".join(traceback.format_exception(e)) for e in drain.stats.errors]
    fake.revoke(fake.athlete.id)
    answers.append(env.post({**manual, "activityStartTimeIso": "2022-10-02T08:00:00Z"}))
    with env.drain() as drain:
        drain.run(timeout=60)
        errors += ["".join(traceback.format_exception(e)) for e in drain.stats.errors]
    client = client_from_settings(load(), timeout=(2, 2))
    try:
        client.athlete()
    except StravaError as exc:
        errors.append("".join(traceback.format_exception(exc)))
    failed = [r for r in env.entries() if r.status == "failed"]
    assert failed and "reconnect" in failed[0].error.lower()

    # Reconnect, list, retry, invite (the invitation's key is meant for its answer only), the CLI.
    answers.append(_callback(_connect(live, key)))
    answers.append(request("activities", key=key))
    answers.append(request("activity_retry", key=key))
    answers.append(request("invitations", key=key, body=b'{"note": "for Bob"}'))
    invitation = json.loads(answers[-1].get_body())["invitation"]
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "2020-01-01-0700.gpx").write_bytes(make_gpx(datetime(2020, 1, 1, 7, tzinfo=UTC), points=5))
    (folder / "broken.gpx").write_bytes(b"<gpx>" + key.encode())
    out, err = io.StringIO(), io.StringIO()
    cli_main(["import", str(folder), "--verbose"], out=out, err=err)
    outputs = [out.getvalue(), err.getvalue()]

    secrets = known_secrets({"strava_env": {"SYNC_API_KEY": key, "STRAVA_CLIENT_SECRET": fake.client_secret}}, [fake])
    conn = get_connection(env.storage)
    assert conn is not None and conn.refresh_token in secrets and fake.refresh_count >= 1
    assert sum(kind == "a Strava code or token" for kind in secrets.values()) >= 6  # codes, old and new tokens
    records = records_since(start)
    assert any("status=synced" in r.text for r in records)  # the capture sees the app's lines

    assert leaks(records, secrets) == []
    everything = {
        "answers": [_text(a) for a in answers],
        "activity log": [json.dumps(row, default=str) for row in stored_rows(env.storage)],
        "exceptions": errors,
        "cli": outputs,
    }
    for where, texts in everything.items():
        for text in texts:
            for value, kind in secrets.items():
                assert value not in text, f"{kind} in {where}"
    invitation_answer = _text(answers[-1])
    assert invitation in invitation_answer  # the one place it belongs
    for where, texts in {**everything, "logs": [r.text for r in records]}.items():
        for text in texts:
            if text != invitation_answer:
                assert invitation not in text, f"the invitation key in {where}"


def test_the_log_check_finds_a_planted_secret() -> None:
    """The session-wide capture sees the app's loggers at DEBUG, tracebacks included, and the search finds it."""
    import logging

    planted = "planted-" + "s" * 20
    start = mark()
    logging.getLogger("shared.anything").debug("token=%s", planted)
    try:
        raise RuntimeError(f"boom {planted[::-1]}")
    except RuntimeError:
        logging.getLogger("tests.anything").exception("failed")
    found = leaks(records_since(start), {planted: "a planted secret", planted[::-1]: "a reversed one"})
    assert len(found) == 2 and all(planted not in line and planted[::-1] not in line for line in found)
