"""Fixtures for the owner's page: the app over real HTTP (tests/support/apphost.py) and headless Chromium.

- `page_app`: the live path with the fake's athlete connected, this test's own users table, a fresh
  sign-in throttle, and the app served on 127.0.0.1 (`page_app.url`, `page_app.page_url`).
- `browser`: Debian's Chromium driven by playwright (never a downloaded browser), a fresh profile per test.
  Without /usr/bin/chromium the test fails under CI (`CI` set) and is skipped, saying why, elsewhere.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.apphost import AppHost
from tests.support.fixtures_sync import Live

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--no-first-run"]
SEED = Path(__file__).resolve().parent.parent / "data" / "synthetic" / "zapier" / "payload-small.json"


@dataclass
class PageApp:
    live: Live
    host: AppHost

    @property
    def url(self) -> str:
        return self.host.url

    @property
    def page_url(self) -> str:
        return f"{self.host.url}/api/page"

    def seed(self) -> dict[str, Any]:
        """The synthetic seed activity (a small GPS run, as Zapier posts it)."""
        return json.loads(SEED.read_text(encoding="utf-8"))

    def drain(self) -> None:
        with self.live.sync.drain() as drain:
            stats = drain.run(timeout=60)
        assert stats.errors == [], stats.errors


@pytest.fixture
def page_app(connected: Live, monkeypatch: pytest.MonkeyPatch) -> Iterator[PageApp]:
    from shared.page import throttle

    monkeypatch.setattr(throttle, "THROTTLE", throttle.Throttle())
    from shared.page import handlers

    monkeypatch.setattr(handlers, "THROTTLE", throttle.THROTTLE)
    with AppHost() as host:
        yield PageApp(connected, host)


def chromium_or_skip() -> str:
    if os.path.exists(CHROMIUM) or shutil.which(CHROMIUM):
        return CHROMIUM
    why = f"Chromium not found at {CHROMIUM}: apt-get install -y chromium (make test installs it when root)"
    if os.environ.get("CI"):
        pytest.fail(why)
    pytest.skip(why)


@pytest.fixture(scope="session")
def _playwright() -> Iterator[Any]:
    chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@pytest.fixture
def browser(_playwright: Any, tmp_path: Path) -> Iterator[Any]:
    """A fresh Chromium profile (its own temporary user-data dir); yields the persistent context."""
    context = _playwright.chromium.launch_persistent_context(
        str(tmp_path / "profile"), executable_path=chromium_or_skip(), headless=True, args=CHROMIUM_ARGS,
        viewport={"width": 1280, "height": 800})
    try:
        yield context
    finally:
        context.close()
