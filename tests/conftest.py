"""Session fixtures: one real Azurite per test session, fresh resources per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.storage.clients import Storage
from tests.support.azurite import Azurite
from tests.support.datasets import SEEDS, Seed

# Fixture modules owned by each part of the app; kept out of this file so they grow independently.
pytest_plugins = [
    "tests.support.fixtures_strava",
    "tests.support.fixtures_sync",
    "tests.support.fixtures_secrets",
    "tests.support.fixtures_identity",
    "tests.support.fixtures_page",
]

ROOT = Path(__file__).resolve().parent.parent
# The real Runkeeper data, outside the repo. RK_SHARED_DATA moves it (CI, or `RK_SHARED_DATA=/nonexistent` to run
# the suite as a plain clone does: every real-data case skips, the synthetic ones still run).
DATA = Path(os.environ.get("RK_SHARED_DATA") or ROOT.parent / "shared" / "data")


def data_path(*parts: str) -> Path:
    """A file of ../shared/data, or skip the test cleanly when a user's clone has no such folder."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"reference data not present: {path}")
    return path


@pytest.fixture(params=["real", "synthetic"])
def seed(request: pytest.FixtureRequest) -> Seed:
    """A real-shaped Zapier payload and its expected facts, once per data set (tests.support.datasets).

    `seed_payload` is its payload, so every test that posts it runs on both; the real case skips without
    ../shared/data, the synthetic one (tests/data/synthetic/zapier/payload-small.json) always runs.
    """
    value: Seed = SEEDS[request.param]
    value.path  # noqa: B018 - the real case skips here when ../shared/data is absent
    return value


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    server = Azurite().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def storage(azurite: Azurite, storage_prefix: str) -> Storage:
    """The session's Azurite, reached by its connection string, with this test's own tables, queues and containers."""
    return Storage.from_connection_string(azurite.connection_string, prefix=storage_prefix)


@pytest.fixture
def unique() -> str:
    """A short unique suffix for queue/table/container names, so tests never see each other's data."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def storage_prefix(unique: str) -> str:
    """This test's STORAGE_NAME_PREFIX (a letter first, as the setting requires): every table, queue and container
    the app names is this test's own, so tests share no rows or messages whatever their order."""
    return "t" + unique


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-soak", action="store_true", default=False, help="also run tests marked soak")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-soak"):
        return
    skip = pytest.mark.skip(reason="soak test: run with --run-soak (make test-all)")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)
