"""Azurite restarted mid-run (on-disk storage, `--location`) loses no accepted activity.

What the ack answered 202 (or 200) for is on disk: the row, the queue message and, for big payloads,
the blob. A restart between the ack and the worker, or in the middle of a drain, must end with every
accepted activity on Strava exactly once. While storage is down the ack answers 503 (Zapier retries);
those posts are sent again once it is back, as Zapier would.

This module runs its own Azurite on a temporary folder (the session's one is in-memory), so `storage`
is overridden here and every fixture built on it (sync_env, strava_env, connected) uses that one.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from azure.core.exceptions import AzureError

from shared.live import sync
from shared.storage import activitylog
from shared.storage.clients import Storage
from tests.support.azurite import Azurite


@pytest.fixture(scope="module")
def disk_azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Azurite]:
    server = Azurite(location=tmp_path_factory.mktemp("azurite-data")).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def storage(disk_azurite: Azurite, storage_prefix: str) -> Storage:
    return Storage.from_connection_string(disk_azurite.connection_string, prefix=storage_prefix)


@pytest.fixture(autouse=True)
def short_lease(monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker cut off from storage mid-claim leaves its row leased; scaled step-asides must outlast that."""
    monkeypatch.setattr(sync, "LEASE", timedelta(seconds=3))


def track(i: int, points: int = 120) -> dict[str, Any]:
    start = datetime(2023, 4, 1, 6, 0, tzinfo=UTC) + timedelta(hours=7 * i)
    kinds = ["start"] + ["gps"] * (points - 2) + ["end"]
    return {
        "activityType": "Running",
        "activityStartTimeIso": start.isoformat(),
        "activityPathLatitude": ",".join(f"{51.5 + k * 1e-4:.6f}" for k in range(points)),
        "activityPathLongitude": ",".join(f"{-0.1 - k * 1e-4:.6f}" for k in range(points)),
        "activityPathAltitude": ",".join("12.5" for _ in range(points)),
        "activityPathTimestamp": ",".join(str(3 * k) for k in range(points)),
        "activityPathType": ",".join(kinds),
    }


def manual(i: int) -> dict[str, Any]:
    start = datetime(2023, 9, 1, 18, 0, tzinfo=UTC) + timedelta(hours=5 * i)
    return {"activityType": "Cycling", "activityStartTimeIso": start.isoformat(), "activityDuration": "2400",
            "activityTotalDistance": "15000"}


def post_until_accepted(env: Any, payload: dict[str, Any], deadline: float) -> tuple[str, list[int]]:
    """Posts like Zapier: a 503 (storage down) is retried; answers the sync id and every status seen."""
    seen: list[int] = []
    while True:
        resp = env.post(payload)
        seen.append(resp.status_code)
        if resp.status_code in (200, 202):
            return json.loads(resp.get_body())["id"], seen
        assert resp.status_code == 503, resp.get_body()
        assert "retry" in json.loads(resp.get_body())["error"]
        assert time.monotonic() < deadline, "storage never came back"
        time.sleep(0.2)  # Zapier's retry interval, shortened; not synchronisation


def drain_until_done(env: Any, sync_ids: set[str], timeout: float = 120) -> None:
    """Drains like the host: storage errors while polling are survived, and it keeps going until all is done."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with env.drain(workers=2, lease=3.0) as drain:
                drain.run(timeout=max(1.0, deadline - time.monotonic()))
            rows = {sid: env.entry(sid) for sid in sync_ids}
            if all(r is not None and r.status in activitylog.DONE for r in rows.values()):
                return
        except (AzureError, TimeoutError, RuntimeError):
            pass  # storage was down under the drain: the host would poll again
        assert time.monotonic() < deadline, "activities still not synced"
        time.sleep(0.2)  # a polling interval, not synchronisation


def assert_exactly_once(connected: Any, sync_ids: set[str]) -> None:
    rows = [connected.sync.entry(sid) for sid in sync_ids]
    assert all(r is not None and r.status == "synced" for r in rows), [(r.sync_id, r.status) for r in rows if r]
    on_strava = connected.activities()
    assert len(on_strava) == len(sync_ids)
    assert {int(r.activity_id) for r in rows} == {a.id for a in on_strava}
    assert connected.sync.queue_count() == 0 and connected.sync.queue_count(poison=True) == 0
    assert connected.sync.blobs() == []


def test_accepted_activities_survive_a_restart_before_any_worker_ran(connected, disk_azurite) -> None:
    payloads = [track(i) for i in range(6)] + [manual(i) for i in range(6)] + [track(99, points=3000)]
    deadline = time.monotonic() + 60
    ids = {post_until_accepted(connected.sync, p, deadline)[0] for p in payloads}
    assert connected.sync.queue_count() == len(payloads)
    assert len(connected.sync.blobs()) == 1  # the big one went by claim check

    disk_azurite.restart()

    assert connected.sync.queue_count() == len(payloads)
    assert len(connected.sync.blobs()) == 1
    assert {r.sync_id for r in connected.sync.entries()} == ids
    drain_until_done(connected.sync, ids)
    assert_exactly_once(connected, ids)


def test_a_restart_in_the_middle_of_posting_and_draining_loses_nothing(connected, disk_azurite) -> None:
    payloads = [track(i) for i in range(20)] + [manual(i) for i in range(20)] + [track(98, points=3000)]
    first, rest = payloads[:25], payloads[25:]
    deadline = time.monotonic() + 90
    ids = {post_until_accepted(connected.sync, p, deadline)[0] for p in first}
    first_ids = set(ids)
    seen: dict[str, Any] = {}

    def outage() -> None:
        end = time.monotonic() + 60
        while len(connected.activities()) < 5 and time.monotonic() < end:
            time.sleep(0.01)  # watching the fake for the drain's progress, not synchronising the test
        seen["synced before"] = len(connected.activities())
        disk_azurite.stop()
        try:
            seen["while down"] = [connected.sync.post(p).status_code for p in rest[:3]]
        finally:
            disk_azurite.start()
        for payload in rest:  # Zapier retries what got 503; the rest arrive after the restart
            ids.add(post_until_accepted(connected.sync, payload, deadline)[0])

    thread = threading.Thread(target=outage)
    thread.start()
    try:
        drain_until_done(connected.sync, first_ids, timeout=90)  # across the outage
    finally:
        thread.join(timeout=90)
    assert seen["while down"] == [503, 503, 503]
    assert seen["synced before"] < len(first_ids)  # the outage met a drain with work left
    drain_until_done(connected.sync, ids, timeout=90)
    assert len(ids) == len(payloads)
    assert_exactly_once(connected, ids)
