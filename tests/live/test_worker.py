"""The live path end to end: POST → 202 → queue drained as the Functions host would → fake Strava over HTTP."""

from __future__ import annotations

import json
import logging
import threading
from datetime import timedelta
from typing import Any

import pytest
import requests

from shared.live import sync, worker
from shared.live.retrypolicy import MAX_TRIES
from shared.storage import activitylog, clients, messages
from tests.support.builders import big_payload, manual
from tests.support.datasets import generator
from tests.support.fixtures_sync import drain_all

MANUAL = manual("2022-10-02T09:15:00+01:00", distance="5000.5", activityNotes="treadmill-free")


def _post_ok(live, payload: dict[str, Any], status: int = 202) -> str:
    resp = live.sync.post(payload)
    assert resp.status_code == status, resp.get_body()
    return json.loads(resp.get_body())["id"]




@pytest.fixture
def virtual_clock(live, monkeypatch):
    """Leases and rate-limit windows in the fake Strava's virtual time, so a test can jump to the next window."""
    monkeypatch.setattr(sync, "_clock", lambda: live.fake.now)
    return live.fake


def test_real_payload_with_key_in_body_ends_on_strava_once(connected, seed_payload, seed, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    body = {**seed_payload, "apiKey": connected.sync.api_key, "apiEndpoint": "https://old.example/api"}
    resp = connected.sync.post(body, key=None)
    assert resp.status_code == 202
    sid = json.loads(resp.get_body())["id"]

    stats = drain_all(connected)
    assert stats.succeeded == 1 and stats.failed == 0 and stats.poisoned == []

    [activity] = connected.activities()
    assert activity.points == seed.points
    assert activity.has_heart_rate
    assert activity.name == seed.name
    assert activity.sport_type == "Run"
    assert not activity.manual
    assert activity.external_id and sid in activity.external_id
    assert activity.description and activity.description.startswith(seed.notes_start)

    row = connected.sync.entry(sid)
    assert row.status == "synced" and row.activity_id == str(activity.id)
    assert row.upload_id and row.attempts == 1 and row.error is None and row.lease_owner is None
    assert connected.sync.queue_count() == 0 and connected.sync.queue_count(poison=True) == 0

    # one structured line per state change, and no secret anywhere in the logs
    lines = [r.getMessage() for r in caplog.records if r.name == "shared.storage.activitylog"]
    assert [line.split(" status=")[1].split()[0] for line in lines] == ["queued", "uploading", "synced"]
    everything = "\n".join(r.getMessage() + str(r.exc_info or "") for r in caplog.records)
    access, refresh, _ = connected.fake.current_tokens()
    for secret in (connected.sync.api_key, connected.fake.client_secret, access, refresh):
        assert secret not in everything


def test_posted_twice_gives_one_strava_activity(connected, seed_payload) -> None:
    sid = _post_ok(connected, seed_payload)
    _post_ok(connected, seed_payload, status=200)
    drain_all(connected)
    assert len(connected.activities()) == 1
    _post_ok(connected, seed_payload, status=200)  # a replay after it synced: nothing queued
    assert connected.sync.queue_count() == 0
    assert connected.sync.entry(sid).status == "synced"


def test_one_message_delivered_twice_concurrently_gives_one_activity(connected, seed_payload) -> None:
    sid = _post_ok(connected, seed_payload)
    [message] = connected.sync.visible_messages()
    messages.send(connected.sync.storage, messages.decode(json.dumps(message)))  # the same message, twice
    connected.fake.hold_next(1, seconds=0.5, path_prefix="/api/v3/uploads", method="POST")  # a slow upload

    stats = drain_all(connected, workers=2)
    assert stats.failed == 0 and stats.poisoned == []
    assert len(connected.activities()) == 1
    assert connected.fake.call_count("POST", "/api/v3/uploads") == 1
    assert connected.sync.entry(sid).status == "synced"


def test_two_deliveries_at_the_same_instant_never_upload_twice(connected, seed_payload) -> None:
    sid = _post_ok(connected, seed_payload)
    [message] = connected.sync.visible_messages()
    clients.queue(connected.sync.storage, clients.ACTIVITY_QUEUE).clear_messages()
    job = messages.decode(json.dumps(message))
    barrier = threading.Barrier(2)
    outcomes: list[sync.Outcome] = []

    def deliver() -> None:
        barrier.wait()
        outcomes.append(sync.process(job))

    threads = [threading.Thread(target=deliver) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(o.status for o in outcomes) in (["deferred", "synced"], ["skipped", "synced"])
    drain_all(connected)  # the one that stepped aside comes back and finds it done
    assert len(connected.activities()) == 1
    assert connected.fake.call_count("POST", "/api/v3/uploads") == 1
    assert connected.sync.entry(sid).status == "synced"


def test_60000_points_take_the_blob_path_and_the_blob_goes(connected, seed_payload) -> None:
    sid = _post_ok(connected, big_payload(seed_payload, 60_000))
    [message] = connected.sync.visible_messages()
    assert "blob" in message and "payload" not in message
    assert connected.sync.blobs() == [message["blob"]]

    stats = drain_all(connected)
    assert stats.succeeded == 1
    [activity] = connected.activities()
    assert activity.points == 60_000
    assert connected.sync.entry(sid).status == "synced"
    assert connected.sync.blobs() == []


def test_the_synthetic_big_payload_takes_the_blob_path_with_its_pause_and_heart_rate(connected) -> None:
    """tests/data/synthetic's 60,000-point run (built at run time): a pause, heart rate on its own clock, ~3.3 MB."""
    payload = generator().big_payload(60_000)
    assert len(json.dumps(payload)) > 3_000_000
    sid = _post_ok(connected, payload)
    [message] = connected.sync.visible_messages()
    assert "blob" in message and "payload" not in message
    stats = drain_all(connected)
    assert stats.succeeded == 1 and stats.poisoned == []
    [activity] = connected.activities()
    assert (activity.points, activity.has_heart_rate, activity.sport_type) == (60_000, True, "Run")
    assert connected.sync.entry(sid).status == "synced"
    assert connected.sync.blobs() == []


def test_rate_limited_is_deferred_not_poisoned_and_synced_after_the_window(connected, seed_payload,
                                                                          virtual_clock) -> None:
    fake = connected.fake
    fake.set_limits(overall=(2, 1000))  # an upload and its status check
    access, _, _ = fake.current_tokens()
    for _ in range(2):  # someone else spends this window
        requests.get(fake.url + "/api/v3/athlete", headers={"Authorization": f"Bearer {access}"}, timeout=5)
    sid = _post_ok(connected, seed_payload)

    drain = connected.sync.drain()
    drain.run(timeout=30, wait=False)
    row = connected.sync.entry(sid)
    assert row.status == "queued" and "rate limited by Strava (overall)" in row.error
    assert row.next_try is not None
    assert connected.activities() == [] and fake.rate_limited_count == 1
    assert connected.sync.queue_count() == 1 and connected.sync.queue_count(poison=True) == 0
    assert drain.stats.failed == 0 and drain.stats.poisoned == []

    fake.advance_window()
    drain.run(timeout=60)
    drain.close()
    assert len(connected.activities()) == 1
    row = connected.sync.entry(sid)
    assert row.status == "synced" and row.error is None and row.next_try is None
    assert drain.stats.poisoned == [] and drain.stats.failed == 0
    assert set(drain.stats.dequeue_counts) == {1}  # each deferral is a new message: no dequeue count burned


def test_a_spent_budget_is_respected_without_calling(connected, seed_payload, virtual_clock) -> None:
    """Once the headers say the window is spent, the worker waits for it instead of earning a 429."""
    fake = connected.fake
    fake.set_limits(overall=(2, 1000))
    first = _post_ok(connected, seed_payload)
    drain_all(connected)  # upload + status poll: both calls of the window
    assert connected.sync.entry(first).status == "synced"

    second = _post_ok(connected, dict(MANUAL))
    calls = fake.api_calls
    drain = connected.sync.drain()
    drain.run(timeout=30, wait=False)
    assert fake.api_calls == calls and fake.rate_limited_count == 0
    assert connected.sync.entry(second).status == "queued"
    fake.advance_window()
    drain.run(timeout=60)
    drain.close()
    assert connected.sync.entry(second).status == "synced"
    assert fake.rate_limited_count == 0


def test_a_token_refused_right_after_its_refresh_is_retried_not_failed(connected, seed_payload) -> None:
    """Found by the soak test: a 401 on the just-refreshed token used to fail the activity for good."""
    connected.fake.fail_next(2, 401, path_prefix="/api/v3/uploads", method="POST")  # the old token, then the new
    sid = _post_ok(connected, seed_payload)
    stats = drain_all(connected)
    assert stats.poisoned == [] and stats.failed == 0
    row = connected.sync.entry(sid)
    assert row.status == "synced" and row.attempts == 2
    assert connected.fake.refresh_count == 1 and len(connected.activities()) == 1


def test_5xx_is_retried_with_growing_delays(connected, seed_payload) -> None:
    connected.fake.fail_next(2, 502, path_prefix="/api/v3/uploads", method="POST")
    sid = _post_ok(connected, seed_payload)
    stats = drain_all(connected)
    assert stats.poisoned == [] and stats.failed == 0
    assert connected.fake.call_count("POST", "/api/v3/uploads") == 3
    assert len(connected.activities()) == 1
    row = connected.sync.entry(sid)
    assert row.status == "synced" and row.attempts == 3


def test_5xx_without_end_becomes_failed(connected, seed_payload, monkeypatch) -> None:
    monkeypatch.setenv("SYNC_DELAY_SCALE", "0.0001")
    connected.fake.fail_next(50, 503, path_prefix="/api/v3/uploads", method="POST")
    sid = _post_ok(connected, seed_payload)
    stats = drain_all(connected)
    assert stats.poisoned == []
    assert connected.fake.call_count("POST", "/api/v3/uploads") == MAX_TRIES
    row = connected.sync.entry(sid)
    assert row.status == "failed" and f"Strava kept failing ({MAX_TRIES} attempts)" in row.error
    assert "503" in row.error


def test_a_timeout_after_strava_took_the_upload_gives_one_activity(connected, seed_payload, monkeypatch) -> None:
    monkeypatch.setattr(sync, "CLIENT_TIMEOUT", (2.0, 1.0))
    connected.fake.hold_next(1, seconds=2.5, path_prefix="/api/v3/uploads", method="POST")
    sid = _post_ok(connected, seed_payload)
    drain_all(connected)
    [activity] = connected.activities()
    row = connected.sync.entry(sid)
    assert row.status == "synced" and row.activity_id == str(activity.id)  # our own upload, not a "duplicate"


def test_strava_rejecting_the_file_is_failed_with_its_message(connected, seed_payload) -> None:
    connected.fake.fail_next_processing("Improperly formatted data.")
    sid = _post_ok(connected, seed_payload)
    stats = drain_all(connected)
    assert stats.poisoned == [] and stats.failed == 0
    row = connected.sync.entry(sid)
    assert row.status == "failed"
    assert row.error.startswith("Strava could not process the upload: ")
    assert row.error.endswith("Improperly formatted data.")  # Strava's own message (it names the file first)
    assert connected.fake.call_count("POST", "/api/v3/uploads") == 1  # permanent: not retried
    assert connected.activities() == []


def test_an_activity_already_on_strava_is_a_duplicate_not_a_failure(connected, seed_payload, seed) -> None:
    existing = connected.fake.add_activity(name="Morning run", sport_type="Run", elapsed_time=2000,
                                           start_date=seed.start)
    sid = _post_ok(connected, seed_payload)
    stats = drain_all(connected)
    assert stats.poisoned == [] and stats.failed == 0
    row = connected.sync.entry(sid)
    assert row.status == "duplicate" and row.error is None
    assert row.activity_id == str(existing.id)
    assert len(connected.activities()) == 1


def test_no_connection_fails_clearly_then_syncs_when_replayed_after_connecting(live, seed_payload) -> None:
    sid = _post_ok(live, seed_payload)
    stats = drain_all(live)
    assert stats.poisoned == [] and stats.failed == 0
    row = live.sync.entry(sid)
    assert row.status == "failed" and "/api/strava/connect" in row.error
    assert live.activities() == []

    live.connect()
    assert _post_ok(live, seed_payload) == sid  # Zapier's replay
    drain_all(live)
    assert live.sync.entry(sid).status == "synced"
    assert len(live.activities()) == 1


def test_missing_strava_settings_fail_clearly_then_sync_when_replayed(connected, seed_payload, monkeypatch) -> None:
    secret = connected.fake.client_secret
    monkeypatch.delenv("STRAVA_CLIENT_SECRET")
    sid = _post_ok(connected, seed_payload)
    drain_all(connected)
    row = connected.sync.entry(sid)
    assert row.status == "failed" and "STRAVA_CLIENT_SECRET" in row.error
    monkeypatch.setenv("STRAVA_CLIENT_SECRET", secret)
    _post_ok(connected, seed_payload)
    drain_all(connected)
    assert connected.sync.entry(sid).status == "synced"


def test_manual_activity_is_created_once(connected) -> None:
    sid = _post_ok(connected, MANUAL)
    drain_all(connected)
    [activity] = connected.activities()
    assert activity.manual and activity.sport_type == "Run" and activity.elapsed_time == 1800
    assert activity.distance == pytest.approx(5000.5)
    assert activity.description == "treadmill-free"
    assert connected.sync.entry(sid).status == "synced"


def test_manual_create_that_timed_out_after_strava_made_it_is_not_made_twice(connected, monkeypatch) -> None:
    monkeypatch.setattr(sync, "CLIENT_TIMEOUT", (2.0, 1.0))
    connected.fake.hold_next(1, seconds=2.5, path_prefix="/api/v3/activities", method="POST")
    sid = _post_ok(connected, MANUAL)
    drain_all(connected)
    [activity] = connected.activities()  # Strava made it during the timeout; the retry found it
    assert connected.fake.call_count("POST", "/api/v3/activities") == 1
    row = connected.sync.entry(sid)
    assert row.status == "synced" and row.activity_id == str(activity.id)


def test_an_upload_still_processing_is_checked_later_not_uploaded_again(connected, seed_payload,
                                                                        monkeypatch) -> None:
    monkeypatch.setattr(sync, "UPLOAD_WAIT", 0.0)  # one look per delivery
    connected.fake.processing_polls = 3
    sid = _post_ok(connected, seed_payload)
    drain_all(connected)
    assert connected.fake.call_count("POST", "/api/v3/uploads") == 1
    assert connected.fake.call_count("GET", "/api/v3/uploads/1") >= 3
    row = connected.sync.entry(sid)
    assert row.status == "synced" and row.activity_id == str(connected.activities()[0].id)


def test_a_worker_that_died_mid_upload_is_finished_by_the_retry(connected, seed_payload) -> None:
    """The row says `uploading` under an expired lease and Strava already has the upload: no second activity."""
    sid = _post_ok(connected, seed_payload)
    [message] = connected.sync.visible_messages()
    drain_all(connected)
    [activity] = connected.activities()
    row = connected.sync.entry(sid)
    past = activitylog.utcnow() - timedelta(minutes=1)
    activitylog.save(connected.sync.storage, row, status="uploading", lease_owner="dead-worker", lease_until=past,
                     activity_id=None, upload_id=None)
    messages.send(connected.sync.storage, messages.decode(json.dumps(message)))  # the host's redelivery
    drain_all(connected)
    row = connected.sync.entry(sid)
    assert row.status == "synced" and row.activity_id == str(activity.id)
    assert len(connected.activities()) == 1


def test_a_live_lease_makes_a_second_delivery_step_aside(connected, seed_payload) -> None:
    sid = _post_ok(connected, seed_payload)
    row = connected.sync.entry(sid)
    soon = activitylog.utcnow() + timedelta(seconds=2)
    activitylog.save(connected.sync.storage, row, status="uploading", lease_owner="busy-worker", lease_until=soon)
    drain = connected.sync.drain()
    drain.run(timeout=30, wait=False)
    assert connected.fake.call_count("POST", "/api/v3/uploads") == 0
    assert connected.sync.queue_count() == 1  # stepped aside: a new message, invisible for a second
    assert drain.stats.succeeded == 1 and drain.stats.failed == 0
    drain.run(timeout=60)  # the lease runs out; the stepped-aside message claims and uploads
    drain.close()
    assert connected.sync.entry(sid).status == "synced"
    assert len(connected.activities()) == 1


def test_a_message_that_keeps_failing_goes_to_poison_and_the_log_says_failed(connected, seed_payload) -> None:
    sid = _post_ok(connected, seed_payload)

    def broken(msg) -> None:
        raise RuntimeError("worker crashed")

    with connected.sync.drain(handler=broken) as drain:
        stats = drain.run(timeout=60)
    assert stats.dequeue_counts == [1, 2, 3, 4, 5]  # host.json maxDequeueCount
    assert len(stats.poisoned) == 1 and json.loads(stats.poisoned[0])["id"] == sid
    assert stats.poison_handled == 1
    row = connected.sync.entry(sid)
    assert row.status == "failed" and "poison queue" in row.error
    assert connected.sync.queue_count() == 0 and connected.sync.queue_count(poison=True) == 0


def test_the_poison_handler_never_undoes_a_synced_activity(connected, seed_payload) -> None:
    import azure.functions as func

    sid = _post_ok(connected, seed_payload)
    [message] = connected.sync.visible_messages()
    drain_all(connected)
    worker.handle_poison(func.QueueMessage(body=json.dumps(message).encode()))
    assert connected.sync.entry(sid).status == "synced"


def test_an_unreadable_message_is_dropped_and_named_in_the_log(sync_env) -> None:
    import azure.functions as func

    worker.handle_message(func.QueueMessage(id="m1", body=b'{"v": 1, "id": "a123", "user": "owner"}'))
    row = sync_env.entry("a123")
    assert row is not None and row.status == "failed" and "unreadable" in row.error
    worker.handle_message(func.QueueMessage(id="m2", body=b"\x00garbage"))  # nothing to name: just dropped


def test_a_worker_process_drains_like_the_host(connected, seed_payload) -> None:
    """`python -m tests.support.drain` is a real worker process (what a kill -9 test needs), on this test's storage."""
    import subprocess
    import sys
    from pathlib import Path

    sid = _post_ok(connected, seed_payload)
    result = subprocess.run([sys.executable, "-m", "tests.support.drain", "--timeout", "60", "--release-delay", "0"],
                            cwd=Path(__file__).resolve().parents[2], env=connected.sync.subprocess_env(),
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {"succeeded": 1, "failed": 0, "poisoned": 0}
    assert connected.sync.entry(sid).status == "synced"
    assert len(connected.activities()) == 1


def test_a_message_whose_workers_kept_dying_goes_to_poison_without_another_run(connected, seed_payload) -> None:
    """Each crash leaves the message to reappear with a higher dequeue count; past the limit the host poisons it."""
    from azure.storage.queue import QueueClient

    sid = _post_ok(connected, seed_payload)
    raw = QueueClient.from_connection_string(connected.sync.storage.connection_string,
                                             connected.sync.names["ACTIVITY_QUEUE"])
    for _ in range(5):  # five workers took it and died before finishing; it comes back each time
        taken = raw.receive_message(visibility_timeout=30)
        assert taken is not None
        raw.update_message(taken, taken.pop_receipt, visibility_timeout=0)
    ran: list[int] = []
    with connected.sync.drain(handler=lambda msg: ran.append(msg.dequeue_count)) as drain:
        stats = drain.run(timeout=30)
    assert ran == [] and stats.dequeue_counts == [6] and len(stats.poisoned) == 1
    assert connected.sync.entry(sid).status == "failed"
    assert connected.activities() == []


def test_a_big_payload_with_bad_values_is_refused_by_the_ack_naming_every_value(connected, seed_payload) -> None:
    """Every size is checked exactly: a 400 names each bad value, and nothing is queued or stored as a blob."""
    payload = _badbig_payload(connected, seed_payload)
    resp = connected.sync.post(payload)
    assert resp.status_code == 400
    answer = json.loads(resp.get_body())
    assert {p["field"] for p in answer["problems"]} == {"activityPathLatitude[1234]", "activityPathTimestamp[4000]"}
    assert connected.sync.api_key not in resp.get_body().decode()
    assert connected.sync.queue_count() == 0 and connected.sync.blobs() == []


def _badbig_payload(connected, seed_payload: dict[str, Any]) -> dict[str, Any]:
    payload = big_payload(seed_payload, 5_000)
    lat = payload["activityPathLatitude"].split(",")
    lat[1234] = "91.5"
    times = payload["activityPathTimestamp"].split(",")
    times[4000] = "3"
    payload.update(activityPathLatitude=",".join(lat), activityPathTimestamp=",".join(times))
    return {"activityNotes": connected.sync.api_key, **payload}  # a key pasted where it does not belong


def test_a_queued_payload_the_parser_now_refuses_is_rejected_by_the_worker(connected, seed_payload) -> None:
    """A message queued by an older version whose values today's parser refuses: the worker logs it
    `rejected`, each value named, with nothing sent to Strava and the run itself kept."""
    from shared.storage import kept

    sid = "older-version-0001"
    messages.send(connected.sync.storage, messages.Job(sync_id=sid, user="owner",
                                               payload=_badbig_payload(connected, seed_payload)))

    stats = drain_all(connected)
    assert (stats.succeeded, stats.poisoned) == (1, [])  # the message completed: nothing left to retry
    entry = connected.sync.entry(sid)
    assert entry.status == "rejected"
    assert {p["field"] for p in entry.problems} == {"activityPathLatitude[1234]", "activityPathTimestamp[4000]"}
    assert "91.5" in entry.error and "goes backwards" in entry.error
    assert entry.excerpt and connected.sync.api_key not in entry.excerpt and "***" in entry.excerpt
    assert connected.activities() == []
    assert connected.fake.call_count("POST", "/api/v3/uploads") == 0
    assert kept.has_kept(connected.sync.storage, "owner", sid)  # the run itself is not thrown away
    assert connected.sync.blobs() == [kept.kept_name("owner", sid)]
