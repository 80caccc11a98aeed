"""Fixtures of the import's tests: each data set's 2016-style export, this test's log, a client on the fake's clock."""

from __future__ import annotations

from typing import Any

import pytest

from shared.config import Settings
from shared.strava.api import StravaClient
from tests.support.datasets import KINDS, Export, export
from tests.support.fake_strava import FakeStrava
from tests.support.importing import new_client


@pytest.fixture(params=KINDS)
def ex(request: pytest.FixtureRequest) -> Export:
    """The 2016-style export folder of each data set (real: 288 activities; synthetic: 12), with its facts."""
    facts = export("2016", request.param)
    facts.path  # noqa: B018 - the real case skips here without ../shared/data
    return facts


@pytest.fixture
def env(sync_env: Any, connected_athlete: Any, fake_strava: FakeStrava) -> Any:
    """This test's own log table (sync_env), with the fake's default athlete connected."""
    return sync_env


@pytest.fixture
def client(env: Any, strava_settings: Settings, fake_strava: FakeStrava) -> StravaClient:
    return new_client(strava_settings, fake_strava)
