"""The page's pure parts: the week chart, the HTML (escaped, no inline script or style), the session cookie."""

from __future__ import annotations

from datetime import date

from shared.page import chart, render, session
from tests.support.apphost import routes


def test_only_the_page_routes_are_anonymous() -> None:
    levels = {r.name: r.anonymous for r in routes()}
    page = {n for n, anonymous in levels.items() if anonymous and n.startswith("page")}
    assert page == {"page", "page_sign_in", "page_sign_out", "page_retry", "page_connect", "page_invite",
                    "page_revoke_invitation", "page_static"}
    assert {n for n, anonymous in levels.items() if anonymous} - page == {"strava_connect", "strava_callback"}
    assert levels["runkeeper"] is False and levels["activities"] is False and levels["activity_retry"] is False


def test_weeks_start_on_monday_and_empty_weeks_are_gaps() -> None:
    today = date(2024, 5, 15)  # a Wednesday
    weeks = chart.weekly([(date(2024, 5, 13), 5000.0), (date(2024, 5, 19), 2500.0), (date(2024, 5, 6), None),
                          (date(2023, 1, 1), 9000.0)], today)
    assert len(weeks) == 52 and weeks[-1].start == date(2024, 5, 13) and weeks[0].start.weekday() == 0
    assert (weeks[-1].km, weeks[-1].synced) == (7.5, 2)
    assert (weeks[-2].km, weeks[-2].synced) == (0.0, 1)  # counted though its distance is unknown
    svg = chart.svg(weeks)
    assert svg.count('class="bar"') == 2 and svg.count('class="gap"') == 50
    assert "style=" not in svg and "<script" not in svg and 'role="img"' in svg


def _view(**changes: object) -> render.View:
    row = render.Row("a" + "0" * 20, "Mon", "Run", "<script>alert(1)</script>", "1 km", "5:00", "Zapier",
                     "failed", None, "reason <b>bold</b>", [], True)
    base = dict(base="/api/page", who="the owner", owner=True, csrf="c" * 32,
                connection=render.Connection(True, "Ada <i>", "activity:write", True, "ok", True), rows=[row],
                status="", page=1, pages=1, total=1, logged=1, chart="<svg></svg>", chart_summary="s",
                invitations=[])
    return render.View(**{**base, **changes})


def test_everything_is_escaped_and_nothing_is_inline() -> None:
    html = render.page(_view())
    assert "<script>" not in html and "&lt;script&gt;" in html and "&lt;b&gt;bold" in html and "Ada &lt;i&gt;" in html
    assert "style=" not in html and "<script" not in html and 'name="viewport"' in html
    assert html.count('name="csrf"') == 4  # sign out, reconnect, retry, invite
    assert "<caption>" in html and '<th scope="col">Status</th>' in html


def test_empty_states_say_what_to_do_next() -> None:
    nothing = render.page(_view(rows=[], total=0, logged=0, connection=render.Connection(False)))
    assert "Connect your Strava account" in nothing and "Set up the Zap" in nothing and "shared.cli import" in nothing
    filtered = render.page(_view(rows=[], total=0, logged=3, status="failed"))
    assert "No failed activities." in filtered


def test_session_cookie_round_trip_and_tampering() -> None:
    secret = session.signing_secret("key-1", "client-secret")
    value = session.issue(secret, kind="owner", user="owner", athlete_id=None, digest="d" * 64, now=1000)
    found = session.read(secret, value, now=1001)
    assert found is not None and found.user == "owner" and found.fingerprint == session.fingerprint(secret, "d" * 64)
    assert session.read(secret, value, now=1000 + session.LIFETIME) is None  # expired
    assert session.read(session.signing_secret("key-2", "client-secret"), value, now=1001) is None
    assert session.read(b"", value, now=1001) is None
    assert session.csrf_ok(secret, found, session.csrf_token(secret, found))
    assert not session.csrf_ok(secret, found, None) and not session.csrf_ok(secret, found, "x" * 32)
    assert "key-1" not in value and "d" * 64 not in value
    assert session.from_header(f"a=b; {session.COOKIE}={value}; c=d") == value
