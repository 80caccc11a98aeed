"""Session fixtures: one real Azurite per test session, fresh resources per test."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from shared.storage.clients import Storage
from tests.support.azurite import Azurite

# Fixture modules owned by each part of the app; kept out of this file so they grow independently.
pytest_plugins = [
    "tests.support.fixtures_strava",
    "tests.support.fixtures_sync",
    "tests.support.fixtures_secrets",
    "tests.support.fixtures_identity",
    "tests.support.fixtures_page",
]

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"


def data_path(*parts: str) -> Path:
    """A file of ../shared/data, or skip the test cleanly when a user's clone has no such folder."""
    path = DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"reference data not present: {path}")
    return path


@pytest.fixture(scope="session")
def azurite() -> Iterator[Azurite]:
    server = Azurite().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def storage(azurite: Azurite) -> Storage:
    """The session's Azurite, reached by its connection string."""
    return Storage.from_connection_string(azurite.connection_string)


@pytest.fixture
def unique() -> str:
    """A short unique suffix for queue/table/container names, so tests never see each other's data."""
    return uuid.uuid4().hex[:10]


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-soak", action="store_true", default=False, help="also run tests marked soak")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if config.getoption("--run-soak"):
        return
    skip = pytest.mark.skip(reason="soak test: run with --run-soak (make test-all)")
    for item in items:
        if "soak" in item.keywords:
            item.add_marker(skip)
