"""An athlete who hides start times (FACTS.md: Strava then reports midnight + 1 s of the day): the importer and the
live path still find what is already on Strava, by the day, elapsed time and distance, so nothing is duplicated."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any
from zoneinfo import ZoneInfo

from shared.config import load
from shared.storage import activitylog
from shared.storage.clients import Storage
from shared.strava.api import StravaClient
from tests.support.builders import manual
from tests.support.datasets import Export
from tests.support.fake_strava import FakeStrava
from tests.support.fixtures_sync import drain_all
from tests.support.importing import new_client, run


def clear_log(storage: Storage) -> None:
    """Forget every activity row, so that only Strava's listing can tell what is already there."""
    table = activitylog.table(storage)
    for entity in list(table.list_entities()):
        if entity["PartitionKey"].startswith("tokens"):  # keep the connection, should it live in this table
            continue
        table.delete_entity(entity["PartitionKey"], entity["RowKey"])


def once_each(fake: FakeStrava, ex: Export) -> None:
    acts = fake.activities()
    assert len(acts) == ex.activities and sum(a.manual for a in acts) == ex.manual
    assert len({(a.start_date, a.sport_type) for a in acts}) == ex.activities


def test_listing_shows_hidden_starts(env: Any, fake_strava: FakeStrava, strava_settings: Any) -> None:
    fake_strava.hide_start_times = True
    client: StravaClient = new_client(strava_settings, fake_strava)
    start = fake_strava.now.replace(hour=14, minute=3, second=7)
    act = fake_strava.add_activity(name="hidden", sport_type="Run", start_date=start, elapsed_time=1234)
    listed = client.list_activities(start.replace(hour=0, minute=0, second=0), start.replace(hour=23))
    assert [(s["start_date"][11:], s["start_date_local"][11:], s["elapsed_time"]) for s in listed] == [
        ("00:00:01Z", "00:00:01Z", 1234)]
    assert fake_strava.activity(act.id).start_date == start  # inspection keeps the real start


def test_import_twice_with_the_log_cleared(env: Any, fake_strava: FakeStrava, strava_settings: Any,
                                           ex: Export) -> None:
    fake_strava.hide_start_times = True
    first = run(new_client(strava_settings, fake_strava), env.storage, ex.path, sleep=fake_strava.advance)
    assert (first.counts.uploaded, first.counts.manual, first.counts.failed) == (ex.gpx, ex.manual, 0)
    once_each(fake_strava, ex)

    clear_log(env.storage)
    assert not env.entries()
    again = run(new_client(strava_settings, fake_strava), env.storage, ex.path, sleep=fake_strava.advance)
    c = again.counts
    assert (c.duplicate, c.uploaded, c.manual, c.failed) == (ex.activities, 0, 0, 0)
    once_each(fake_strava, ex)
    assert fake_strava.call_count("POST", "/api/v3/activities") == ex.manual  # the first run's only
    assert Counter(e.status for e in env.entries()) == {"duplicate": ex.activities}


def test_live_manual_first_then_the_import_in_another_zone(connected: Any, strava_env: dict[str, str],
                                                           ex: Export) -> None:
    """The importer's zone differs from the one the live path had, so their sync ids differ: the listing alone
    (with hidden starts: day, elapsed time, distance) keeps the manual activity single."""
    fake: FakeStrava = connected.fake
    fake.hide_start_times = True
    assert ex.manual_local is not None
    offset = ex.manual_local.replace(tzinfo=ZoneInfo(ex.timezone)).strftime("%z")
    start_iso = ex.manual_local.isoformat() + f"{offset[:3]}:{offset[3:]}"
    resp = connected.sync.post(manual(start_iso, duration=ex.manual_duration,
                                      distance=f"{ex.manual_distance:.1f}"))
    assert resp.status_code == 202
    live_id = json.loads(resp.get_body())["id"]
    drain_all(connected)
    assert connected.sync.entry(live_id).status == "synced"
    assert len(fake.activities()) == 1

    report = run(new_client(load(strava_env), fake), connected.sync.storage, ex.path,
                 timezone="America/New_York", sleep=fake.advance)
    entries = connected.sync.entries()
    assert live_id not in {e.sync_id for e in entries if e.source == "import"}  # a different sync id
    assert report.counts.duplicate == 1 and report.counts.failed == 0
    assert len([a for a in fake.activities() if a.start_date_local == ex.manual_local]) == 1
    assert len(fake.activities()) == ex.activities
