"""Running the importer in a test the way the command line does, on the fake Strava's clock."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from shared.config import Settings
from shared.history.plan import build_plan
from shared.history.report import Report
from shared.history.run import Importer
from shared.runkeeper.export import open_export
from shared.storage.clients import Storage
from shared.strava.api import StravaClient
from shared.strava.tokens import client_from_settings
from tests.support.fake_strava import FakeStrava

TZ = "Europe/London"


def new_client(settings: Settings, fake: FakeStrava) -> StravaClient:
    """A client as a new process would have (a fresh budget), on the fake's clock so windows agree."""
    client = client_from_settings(settings, timeout=(2, 5))
    client.clock = lambda: fake.now
    return client


def run(client: StravaClient, storage: Storage, path: Path, **kwargs: Any) -> Report:
    limit = kwargs.pop("limit", None)
    kwargs.setdefault("clock", client.clock)
    kwargs.setdefault("sleep", no_sleep)
    with open_export(path) as export:
        plan = build_plan(export, timezone=kwargs.pop("timezone", TZ), since=kwargs.pop("since", None),
                          until=kwargs.pop("until", None))
        return Importer(client, storage, export=export, **kwargs).run(plan, limit=limit)


def no_sleep(seconds: float) -> None:
    raise AssertionError(f"the importer wanted to sleep {seconds} s in a test that expects no wait")
