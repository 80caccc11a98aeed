"""Fixtures around the fake Strava server (tests/fake_strava.py). Loaded by conftest via pytest_plugins.

- `fake_strava`: a fresh fake per test (`fake_strava.url`; knobs in its module docstring). At teardown it
  fails the test if any request was outside Strava's official spec (tests/support/strava_spec.py).
- `strava_env`: the app's settings pointing at Azurite and the fake, also put into os.environ for the
  test (so `shared.config.load()` sees them); the Strava connection and OAuth-state tables start empty (they
  are the test's own: its storage's STORAGE_NAME_PREFIX is in the settings).
- `connected_athlete`: the fake's default athlete connected through the real code exchange (a `Connection`).
- `strava_client`: a `StravaClient` for that athlete with short timeouts (2 s connect, 5 s read), on the fake's
  virtual clock (its rate-limit windows and `reset_at` are the fake's, which stand still unless the test moves them).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from shared.config import Settings, load
from shared.storage.clients import Storage
from shared.strava.api import StravaClient
from shared.strava.tokens import Connection, client_from_settings, exchange_code, save_connection
from tests.support.drain import set_storage_env, storage_settings
from tests.support.fake_strava import FakeStrava


@pytest.fixture
def fake_strava() -> Iterator[FakeStrava]:
    """A fresh fake Strava per test, on a free port (`fake_strava.url`); see its module docstring for knobs."""
    fake = FakeStrava().start()
    try:
        yield fake
    finally:
        fake.stop()
    # Every request the app sent must be inside Strava's official spec (the fake also answered each one 400).
    violations = fake.take_spec_violations()
    assert not violations, "requests outside Strava's spec:\n" + "\n".join(map(str, violations))


@pytest.fixture
def strava_env(storage: Storage, fake_strava: FakeStrava, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Settings for the app (a mapping for `shared.config.load(env)`), also set in os.environ."""
    assert storage.prefix, "a test's storage needs its own prefix (tests/conftest.py storage_prefix)"
    env = {
        **storage_settings(storage),
        "SYNC_API_KEY": "test-key-" + secrets.token_hex(12),
        "STRAVA_CLIENT_ID": fake_strava.client_id,
        "STRAVA_CLIENT_SECRET": fake_strava.client_secret,
        "STRAVA_BASE_URL": fake_strava.url,
        "ACTIVITY_TIMEZONE": "Europe/London",
    }
    set_storage_env(monkeypatch, storage)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return env


@pytest.fixture
def strava_settings(strava_env: dict[str, str]) -> Settings:
    return load(strava_env)


def connect_athlete(storage: Storage, fake: FakeStrava, athlete_id: int | None = None,
                    scope: str = "read,activity:write,activity:read_all", make_default: bool = True) -> Connection:
    """Connect an athlete of the fake as the callback would (code exchange + save), skipping the browser."""
    answer = exchange_code(fake.url, fake.client_id, fake.client_secret, fake.issue_code(athlete_id, scope))
    return save_connection(storage, answer, scope, make_default=make_default)


@pytest.fixture
def connected_athlete(strava_env: dict[str, str], storage: Storage, fake_strava: FakeStrava) -> Connection:
    """The fake's default athlete (`fake_strava.athlete`), connected and the deployment's default."""
    return connect_athlete(storage, fake_strava)


@pytest.fixture
def strava_client(strava_settings: Settings, connected_athlete: Connection, fake_strava: FakeStrava) -> StravaClient:
    client = client_from_settings(strava_settings, timeout=(2, 5))
    client.clock = lambda: fake_strava.now  # windows agree with the fake's, whatever the wall clock does
    return client
