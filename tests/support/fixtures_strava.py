"""Fixtures around the fake Strava server (tests/fake_strava.py). Loaded by conftest via pytest_plugins.

- `fake_strava`: a fresh fake per test (`fake_strava.url`; knobs in its module docstring).
- `strava_env`: the app's settings pointing at Azurite and the fake, also put into os.environ for the
  test (so `shared.config.load()` sees them); the Strava connection and OAuth-state tables start empty.
- `connected_athlete`: the fake's default athlete connected through the real code exchange (a `Connection`).
- `strava_client`: a `StravaClient` for that athlete with short timeouts (2 s connect, 5 s read).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest

from shared.config import Settings, load
from shared.storage import clients
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


def clear_table(storage: Storage, name: str) -> None:
    """Delete every entity of a shared table, so one test's connection is not the next one's."""
    table = clients.table(storage, name)
    for entity in table.list_entities(select=["PartitionKey", "RowKey"]):
        table.delete_entity(entity["PartitionKey"], entity["RowKey"])


@pytest.fixture
def strava_env(storage: Storage, fake_strava: FakeStrava, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Settings for the app (a mapping for `shared.config.load(env)`), also set in os.environ."""
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
    clear_table(storage, clients.CONNECTIONS_TABLE)
    clear_table(storage, clients.OAUTH_STATE_TABLE)
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
def strava_client(strava_settings: Settings, connected_athlete: Connection) -> StravaClient:
    return client_from_settings(strava_settings, timeout=(2, 5))
