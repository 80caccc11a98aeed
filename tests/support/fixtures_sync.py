"""Fixtures for the live sync path (ack, queue, worker, drain helper). Loaded by conftest via pytest_plugins."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import azure.functions as func
import pytest

from shared.storage import activitylog, clients
from shared.storage.clients import Storage
from tests.support.drain import Drain, Stats, raw_queue, set_storage_env, storage_settings
from tests.support.fake_strava import FakeStrava
from tests.support.fixtures_strava import connect_athlete
from tests.support.host import function

SYNC_API_KEY = "test-sync-key-0123456789abcdef"  # a test value, not a real secret
# The store names (shared.storage.clients) a test sees with its own prefix, so tests never see each other's rows
# or messages; `SyncEnv.names` gives their real names.
_NAMES = ("ACTIVITY_QUEUE", "POISON_QUEUE", "PAYLOAD_CONTAINER", "ACTIVITY_LOG_TABLE", "CONNECTIONS_TABLE",
          "OAUTH_STATE_TABLE", "USERS_TABLE")


@dataclass
class SyncEnv:
    """The app's storage as one test sees it, plus the calls a test makes against it.

    `names`: the real name of each store (`storage.prefix` + the name in shared.storage.clients), for a test that
    reaches them without the app's client builders (raw SDK clients, another process).
    """

    storage: Storage
    names: dict[str, str]

    @property
    def api_key(self) -> str:
        """The key the app expects now (the Strava fixtures may set their own)."""
        import os

        return os.environ["SYNC_API_KEY"]

    def post(
        self, body: Any, *, key: str | None = "header", headers: dict[str, str] | None = None
    ) -> func.HttpResponse:
        """POST /api/runkeeper through the registered function; `key="header"` sends the right X-Api-Key."""
        if isinstance(body, bytes):
            raw = body
        else:
            raw = json.dumps(body).encode("utf-8")
        hdrs = {"Content-Type": "application/json", **(headers or {})}
        if key == "header":
            hdrs["X-Api-Key"] = self.api_key
        elif key is not None:
            hdrs["X-Api-Key"] = key
        req = func.HttpRequest("POST", "http://localhost:7071/api/runkeeper", headers=hdrs, body=raw)
        return function("runkeeper")(req)

    def entry(self, sync_id: str, user: str = activitylog.OWNER) -> activitylog.Entry | None:
        return activitylog.get(self.storage, user, sync_id)

    def entries(self, user: str = activitylog.OWNER) -> list[activitylog.Entry]:
        return activitylog.list_activities(self.storage, user, limit=10_000)

    def queue_count(self, poison: bool = False) -> int:
        """Messages in the activity queue (or its poison queue), visible or not."""
        name = clients.POISON_QUEUE if poison else clients.ACTIVITY_QUEUE
        client = clients.queue(self.storage, name)
        return client.get_queue_properties().approximate_message_count or 0

    def visible_messages(self, poison: bool = False) -> list[dict[str, Any]]:
        """The visible messages, decoded (base64, as host.json says) without taking them."""
        name = clients.POISON_QUEUE if poison else clients.ACTIVITY_QUEUE
        raw = raw_queue(self.storage, name)
        return [json.loads(base64.b64decode(m.content)) for m in raw.peek_messages(max_messages=32)]

    def blobs(self) -> list[str]:
        return [b.name for b in clients.container(self.storage, clients.PAYLOAD_CONTAINER).list_blobs()]

    def drain(self, **kwargs: Any) -> Drain:
        kwargs.setdefault("release_delay", 0)
        return Drain(self.storage, **kwargs)

    def subprocess_env(self) -> dict[str, str]:
        """Environment for another process (`python -m tests.support.drain`, the command line) on this test's
        storage: its settings, STORAGE_NAME_PREFIX included, so the child reaches the same tables and queues."""
        import os

        env = dict(os.environ)
        for name in (clients.CONNECTION, *clients.IDENTITY_SETTINGS, clients.NAME_PREFIX):
            env.pop(name, None)
        env.update(storage_settings(self.storage))
        return env


@pytest.fixture
def sync_env(storage: Storage, monkeypatch: pytest.MonkeyPatch) -> Iterator[SyncEnv]:
    """Settings in the environment, and this test's own queue, poison queue, container and tables (its storage
    prefix: tests/conftest.py's `storage_prefix`)."""
    assert storage.prefix, "a test's storage needs its own prefix (tests/conftest.py storage_prefix)"
    names = {attr: storage.name(getattr(clients, attr)) for attr in _NAMES}
    set_storage_env(monkeypatch, storage)
    monkeypatch.setenv("SYNC_API_KEY", SYNC_API_KEY)
    monkeypatch.setenv("SYNC_DELAY_SCALE", "0.001")  # 15 minutes of rate-limit wait become about a second
    yield SyncEnv(storage=storage, names=names)


@dataclass
class Live:
    """The whole live path: this test's storage (`sync`), the fake Strava (`fake`) and the app's settings."""

    sync: SyncEnv
    fake: FakeStrava

    def connect(self) -> None:
        """Connect the fake's default athlete the way the OAuth callback does."""
        connect_athlete(self.sync.storage, self.fake)

    def activities(self) -> list[Any]:
        return self.fake.activities()


def drain_all(live: Live, timeout: float = 90, **kwargs: Any) -> Stats:
    """Run the queue (and its poison queue) as the host would until nothing is left to do."""
    with live.sync.drain(**kwargs) as drain:
        return drain.run(timeout=timeout)


@pytest.fixture
def live(sync_env: SyncEnv, strava_env: dict[str, str], fake_strava: FakeStrava) -> Live:
    """Settings point at Azurite and the fake Strava; nobody is connected yet (`live.connect()`)."""
    return Live(sync=sync_env, fake=fake_strava)


@pytest.fixture
def connected(live: Live) -> Live:
    """`live` with the fake's default athlete connected."""
    live.connect()
    return live


@pytest.fixture
def seed_payload(seed: Any) -> dict[str, Any]:
    """The Zapier payload of `seed` (tests/conftest.py): the real one the original app's Zap posted
    (../shared/data/zapier/example-seed-app.json), then the synthetic one; `seed` holds its expected facts."""
    return seed.payload()
