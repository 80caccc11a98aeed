"""The owner's page over plain HTTP: sign-in, cookies, CSRF, the throttle, the CSP, and who sees what."""

from __future__ import annotations

import re

import requests

from shared.page import handlers, session
from shared.page.throttle import Throttle, client_of
from tests.support.apphost import FUNCTION_KEY
from tests.support.athletes import invite, post_activity
from tests.support.builders import track
from tests.support.fixtures_page import PageApp

CSRF = re.compile(r'name="csrf" value="([0-9a-f]{32})"')

def sign_in(app: PageApp, key: str) -> requests.Session:
    web = requests.Session()
    answer = web.post(f"{app.page_url}/signin", data={"key": key}, allow_redirects=False, timeout=10)
    assert answer.status_code == 303, answer.text
    cookie = answer.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Max-Age=2592000" in cookie
    assert "Secure" not in cookie  # 127.0.0.1: a plain-HTTP local run must still work
    return web

def csrf_of(web: requests.Session, app: PageApp) -> str:
    page = web.get(app.page_url, timeout=10)
    assert page.status_code == 200
    return CSRF.search(page.text).group(1)

def test_page_is_anonymous_at_the_host_but_the_api_keeps_its_function_key(page_app: PageApp) -> None:
    assert requests.get(page_app.page_url, timeout=10).status_code == 200
    assert requests.get(f"{page_app.url}/api/activities", timeout=10).status_code == 401  # no function key
    listed = requests.get(f"{page_app.url}/api/activities?code={FUNCTION_KEY}",
                          headers={"X-Api-Key": page_app.live.sync.api_key}, timeout=10)
    assert listed.status_code == 200

def test_headers_csp_and_no_secret_on_any_page(page_app: PageApp) -> None:
    app = page_app
    anonymous = requests.get(app.page_url, timeout=10)
    web = sign_in(app, app.live.sync.api_key)
    main = web.get(app.page_url, timeout=10)
    for answer in (anonymous, main):
        csp = answer.headers["Content-Security-Policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp
        assert answer.headers["X-Content-Type-Options"] == "nosniff"
        assert answer.headers["Referrer-Policy"] == "no-referrer"
        assert answer.headers["Cache-Control"] == "no-store"
        assert '<meta name="viewport"' in answer.text
        assert "<script" not in answer.text and "style=" not in answer.text
        for secret in (app.live.sync.api_key, app.live.fake.client_secret, *app.live.fake.current_tokens()[:2]):
            assert secret not in answer.text
    css = requests.get(f"{app.page_url}/static/app.css", timeout=10)
    assert css.status_code == 200 and css.headers["Content-Type"].startswith("text/css")
    assert requests.get(f"{app.page_url}/static/..%2Ffunction_app.py", timeout=10).status_code == 404

def test_key_in_the_query_string_is_ignored(page_app: PageApp) -> None:
    answer = requests.get(f"{page_app.page_url}?key={page_app.live.sync.api_key}", timeout=10)
    assert answer.status_code == 200 and 'name="key"' in answer.text and "Activities" not in answer.text
    signed_in = requests.post(f"{page_app.page_url}/signin?key={page_app.live.sync.api_key}", data={},
                              allow_redirects=False, timeout=10)
    assert signed_in.status_code == 401 and "Set-Cookie" not in signed_in.headers

def test_buttons_without_the_csrf_token_are_refused(page_app: PageApp) -> None:
    app = page_app
    web = sign_in(app, app.live.sync.api_key)
    token = csrf_of(web, app)
    for path, form in (("/connect", {}), ("/invitations", {"note": "x"}), ("/signout", {}),
                       ("/activities/a0123456789abcdef0123/retry", {})):
        for bad in ({}, {"csrf": "0" * 32}):
            answer = web.post(f"{app.page_url}{path}", data={**form, **bad}, allow_redirects=False, timeout=10)
            assert answer.status_code == 403, (path, answer.status_code)
    assert web.post(f"{app.page_url}/connect", data={"csrf": token}, allow_redirects=False,
                    timeout=10).status_code == 303

def test_forged_expired_or_stale_cookies_are_signed_out(page_app: PageApp, monkeypatch) -> None:
    app = page_app
    web = sign_in(app, app.live.sync.api_key)
    good = web.cookies[session.COOKIE]
    body, signature = good.split(".")
    forged = body[:-2] + ("AA" if body[-2:] != "AA" else "BB") + "." + signature
    for value in (forged, "garbage", body + ".", good[:-3] + "xyz"):
        answer = requests.get(app.page_url, cookies={session.COOKIE: value}, timeout=10)
        assert 'name="key"' in answer.text and "Signed in as" not in answer.text
        assert "Max-Age=0" in answer.headers["Set-Cookie"]  # the bad cookie is taken away
    assert "Signed in as the owner" in requests.get(app.page_url, cookies={session.COOKIE: good}, timeout=10).text
    now = handlers.clock()
    monkeypatch.setattr(handlers, "clock", lambda: now + session.LIFETIME + 1)
    assert "Signed in as" not in requests.get(app.page_url, cookies={session.COOKIE: good}, timeout=10).text
    monkeypatch.setattr(handlers, "clock", lambda: now)
    monkeypatch.setenv("SYNC_API_KEY", "a-new-key-" + "9" * 20)  # the key changed: every session ends
    assert "Signed in as" not in requests.get(app.page_url, cookies={session.COOKIE: good}, timeout=10).text

def test_wrong_keys_get_a_message_then_a_429_with_retry_after(page_app: PageApp) -> None:
    app = page_app
    for _ in range(5):
        wrong = requests.post(f"{app.page_url}/signin", data={"key": "nope"}, allow_redirects=False, timeout=10)
        assert wrong.status_code == 401 and "That key is not right" in wrong.text
    blocked = requests.post(f"{app.page_url}/signin", data={"key": app.live.sync.api_key}, allow_redirects=False,
                            timeout=10)
    assert blocked.status_code == 429 and int(blocked.headers["Retry-After"]) > 0
    assert "Too many wrong keys" in blocked.text

def test_throttle_counts_per_client_and_forgets_after_the_window() -> None:
    now = [1000.0]
    t = Throttle(limit=3, window=60, clock=lambda: now[0])
    for _ in range(3):
        assert t.wait("1.2.3.4") == 0
        t.failed("1.2.3.4")
    assert t.wait("1.2.3.4") == 60 and t.wait("5.6.7.8") == 0
    now[0] += 30
    assert t.wait("1.2.3.4") == 30
    now[0] += 31
    assert t.wait("1.2.3.4") == 0
    t.failed("1.2.3.4")
    t.succeeded("1.2.3.4")
    assert t.wait("1.2.3.4") == 0
    assert client_of("9.9.9.9, 10.0.0.1:5123") == "10.0.0.1" and client_of("[2001:db8::1]:443") == "2001:db8::1"
    assert client_of(None) == "unknown"

def test_an_athlete_sees_only_their_own_rows_and_no_invitations(page_app: PageApp) -> None:
    app = page_app
    bob = app.live.fake.add_athlete("Bob", "Beamon")
    bob_key = invite(app.live.sync.storage, app.live.fake, bob.id)

    assert post_activity(app.live.sync.api_key, track("2024-05-01T07:00:00+01:00")).status_code == 202
    assert post_activity(bob_key, track("2024-05-03T07:00:00+01:00")).status_code == 202
    app.drain()
    web = sign_in(app, bob_key)
    text = web.get(app.page_url, timeout=10).text
    assert "Signed in as Bob Beamon" in text and "Invitations" not in text
    assert text.count('data-status="synced"') == 1 and "Fri 03 May 2024" in text and "Wed 01 May" not in text
    assert bob_key not in text
    token = csrf_of(web, app)
    refused = web.post(f"{app.page_url}/invitations", data={"csrf": token}, allow_redirects=False, timeout=10)
    assert refused.status_code == 403
