"""The owner's page in headless Chromium against the app over real HTTP: what a runner does on a phone.

Sign in (wrong key, then right), the seed activity listed as synced with its Strava link, a failed one with
its reason, Retry and the queue drained, filters, Connect, sign out, an athlete's own rows only; on every
page: the CSP header, no CSP violation in the console, no secret in the HTML. Screenshots at phone and
desktop width go to the test's folder (and to docs/ with PAGE_SCREENSHOTS_TO_DOCS=1, for the README).
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from tests.support.athletes import invite, post_activity
from tests.support.builders import track
from tests.support.fixtures_page import PageApp

DOCS = Path(__file__).resolve().parents[2] / "docs"
PROCESSING_ERROR = "The GPX file has no usable track points."


class Watch:
    """Console messages, page errors and every page response of one browser tab, checked after each step."""

    def __init__(self, tab: Any, app: PageApp) -> None:
        self.app = app
        self.console: list[str] = []
        self.errors: list[str] = []
        self.pages: list[Any] = []
        tab.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        tab.on("pageerror", lambda e: self.errors.append(str(e)))
        tab.on("response", lambda r: self.pages.append(r) if r.request.resource_type == "document" else None)

    def secrets(self) -> list[str]:
        live = self.app.live
        return [live.sync.api_key, live.fake.client_secret, *(live.fake.current_tokens() or ())[:2]]

    def check(self, tab: Any) -> None:
        """The page now: no secret in its HTML; every page so far had the CSP; the console stayed clean."""
        html = tab.content()
        for secret in self.secrets():
            assert secret not in html
        for response in self.pages:
            if response.url.startswith(self.app.url) and response.status < 300:
                csp = response.header_value("content-security-policy") or ""
                assert "frame-ancestors 'none'" in csp and "unsafe-inline" not in csp, response.url
                if response.url.startswith(self.app.page_url):
                    assert "default-src 'self'" in csp, response.url
                else:  # the connect and callback pages: nothing but the page's stylesheet
                    assert "default-src 'none'" in csp, response.url
        assert not [m for m in self.console if "Content Security Policy" in m], self.console
        # A 401 (wrong key) or 403 is the page's own answer; a 404 would be a missing asset.
        assert not [m for m in self.console if m.startswith("error") and "401" not in m], self.console
        assert self.errors == []


def _post(app: PageApp, key: str, payload: dict[str, Any]) -> str:
    answer = post_activity(key, payload)
    assert answer.status_code == 202, answer.get_body()
    import json

    return json.loads(answer.get_body())["id"]


def _recent(weeks_ago: int) -> str:
    day = datetime.now(UTC) - timedelta(weeks=weeks_ago, days=1)
    return day.replace(hour=6, minute=30, second=0, microsecond=0).isoformat()


def _sign_in(tab: Any, key: str) -> None:
    tab.get_by_label("Your key").fill(key)
    tab.get_by_role("button", name="Sign in").click()


def test_sign_in_list_retry_filter_connect_sign_out(page_app: PageApp, browser: Any, tmp_path: Path) -> None:
    app, key = page_app, page_app.live.sync.api_key
    seed = _post(app, key, app.seed())
    for weeks_ago in (1, 2, 4, 5, 9, 14, 20, 30):  # some weeks run, some not: the chart has bars and gaps
        _post(app, key, track(_recent(weeks_ago), points=40))
    app.drain()
    app.live.fake.fail_next_processing(PROCESSING_ERROR)
    failed = _post(app, key, track(_recent(0), points=30))
    app.drain()
    assert app.live.sync.entry(failed).status == "failed"

    tab = browser.new_page()
    watch = Watch(tab, app)
    tab.goto(app.page_url)
    _sign_in(tab, "not-the-key")
    expect(tab.get_by_role("alert")).to_contain_text("That key is not right")
    watch.check(tab)
    _sign_in(tab, key)
    expect(tab.get_by_text("Signed in as the owner")).to_be_visible()
    assert tab.url.startswith(app.page_url) and key not in tab.url
    watch.check(tab)

    synced = tab.locator(f"#row-{seed}")
    expect(synced.locator(".chip")).to_have_text("synced")
    activity_id = app.live.sync.entry(seed).activity_id
    expect(synced.get_by_role("link", name="View on Strava")).to_have_attribute(
        "href", f"https://www.strava.com/activities/{activity_id}")
    expect(synced).to_contain_text("Sat 15 Apr 2023, 07:12")  # the start in ACTIVITY_TIMEZONE
    expect(synced).to_contain_text("3.83 km")
    expect(synced).to_contain_text("Zapier")
    row = tab.locator(f"#row-{failed}")
    expect(row.locator(".chip")).to_have_text("failed")
    expect(row).to_contain_text(PROCESSING_ERROR)
    expect(tab.locator("svg.chart rect.bar")).to_have_count(8)
    assert tab.locator("svg.chart rect.gap").count() == 52 - 8  # the failed run leaves its week a gap

    tab.set_viewport_size({"width": 1280, "height": 800})
    tab.screenshot(path=str(tmp_path / "owner-page-desktop.png"), full_page=True)
    tab.set_viewport_size({"width": 390, "height": 844})
    expect(row.get_by_role("button", name="Retry")).to_be_visible()
    assert tab.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling on a phone
    tab.screenshot(path=str(tmp_path / "owner-page-phone.png"), full_page=True)
    if os.environ.get("PAGE_SCREENSHOTS_TO_DOCS"):
        for name in ("owner-page-desktop.png", "owner-page-phone.png"):
            shutil.copy(tmp_path / name, DOCS / name)
    tab.set_viewport_size({"width": 1280, "height": 800})

    row.get_by_role("button", name="Retry").click()
    expect(tab.get_by_role("status")).to_contain_text("Queued again")
    expect(tab.locator(f"#row-{failed} .chip")).to_have_text("queued")
    app.drain()
    tab.reload()
    expect(tab.locator(f"#row-{failed} .chip")).to_have_text("synced")
    expect(tab.locator(f"#row-{failed}").get_by_role("link", name="View on Strava")).to_be_visible()
    watch.check(tab)

    tab.get_by_label("Status").select_option("failed")
    tab.get_by_role("button", name="Filter").click()
    expect(tab.get_by_text("No failed activities.")).to_be_visible()
    tab.get_by_label("Status").select_option("synced")
    tab.get_by_role("button", name="Filter").click()
    expect(tab.locator("table.activities tbody tr")).to_have_count(10)
    expect(tab.get_by_text("10 synced activities, newest first")).to_be_visible()

    tab.get_by_role("button", name="Reconnect").click()  # through Strava's consent page and back
    expect(tab.get_by_role("heading", name="Connected to Strava")).to_be_visible()
    watch.check(tab)

    tab.goto(app.page_url)
    tab.get_by_role("button", name="Sign out").click()
    expect(tab.get_by_role("status")).to_have_text("Signed out.")
    expect(tab.get_by_label("Your key")).to_be_visible()
    tab.goto(app.page_url)
    expect(tab.get_by_label("Your key")).to_be_visible()
    watch.check(tab)
    assert (tmp_path / "owner-page-phone.png").stat().st_size > 10_000


def test_an_athletes_key_shows_only_their_rows(page_app: PageApp, browser: Any) -> None:
    app = page_app
    bob = app.live.fake.add_athlete("Bob", "Beamon")
    bob_key = invite(app.live.sync.storage, app.live.fake, bob.id)
    mine = _post(app, app.live.sync.api_key, track(_recent(3)))
    his = _post(app, bob_key, track(_recent(2)))
    app.drain()

    tab = browser.new_page()
    watch = Watch(tab, app)
    tab.goto(app.page_url)
    _sign_in(tab, bob_key)
    expect(tab.get_by_text("Signed in as Bob Beamon")).to_be_visible()
    expect(tab.locator("table.activities tbody tr")).to_have_count(1)
    expect(tab.locator(f"#row-{his} .chip")).to_have_text("synced")
    assert tab.locator(f"#row-{mine}").count() == 0
    expect(tab.get_by_role("heading", name="Invitations")).to_have_count(0)
    expect(tab.locator("#conn-h + dl")).to_contain_text("Bob Beamon")
    assert bob_key not in tab.content()
    watch.check(tab)


def test_owner_invites_sees_pending_and_revokes(page_app: PageApp, browser: Any) -> None:
    app = page_app
    tab = browser.new_page()
    watch = Watch(tab, app)
    tab.goto(app.page_url)
    _sign_in(tab, app.live.sync.api_key)
    expect(tab.get_by_text("No activities yet")).to_be_visible()  # the empty state says what to do next
    tab.get_by_label("Note (who it is for)").fill("for Carol")
    tab.get_by_role("button", name="Create invitation").click()
    link = tab.locator("#new-link").inner_text()
    assert "/api/strava/connect?key=inv_" in link
    expect(tab.get_by_role("row", name="for Carol")).to_be_visible()
    tab.goto(app.page_url)
    assert "inv_" not in tab.content()  # shown once
    tab.get_by_role("button", name="Revoke invitation for Carol").click()
    expect(tab.get_by_role("status")).to_contain_text("Invitation revoked")
    expect(tab.get_by_text("No pending invitations.")).to_be_visible()
    watch.check(tab)


@pytest.fixture(autouse=True)
def _timeout(browser: Any) -> None:
    browser.set_default_timeout(15_000)
