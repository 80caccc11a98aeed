"""Retry: a failed activity keeps its payload and goes again; a rejected one only comes back corrected.

The live path end to end: the ack, the host-like drain, the fake Strava over HTTP, POST .../retry.
"""

from __future__ import annotations

import json
import threading

from shared.owner import retry as retries
from shared.storage import activitylog, kept, messages
from shared.storage.activitylog import Entry
from tests.support.athletes import body, post_activity, retry
from tests.support.azurite import free_port
from tests.support.builders import manual, track
from tests.support.fixtures_sync import drain_all


def _post(live, payload) -> str:
    resp = post_activity(live.sync.api_key, payload)
    assert resp.status_code == 202, resp.get_body()
    return body(resp)["id"]




def test_a_failed_upload_keeps_its_payload_and_a_retry_syncs_it(connected) -> None:
    connected.fake.fail_next_processing("activity.gpx: Improperly formatted data.")
    sid = _post(connected, track("2024-04-01T07:00:00+01:00"))
    drain_all(connected)
    row = connected.sync.entry(sid)
    assert row.status == "failed" and "Improperly formatted" in row.error
    assert connected.sync.blobs() == [kept.kept_name("owner", sid)]
    assert connected.sync.queue_count() == 0

    resp = retry(connected.sync.api_key, sid)
    assert resp.status_code == 202 and body(resp) == {"id": sid, "status": "queued", "retried": sid}
    assert connected.sync.entry(sid).status == "queued" and connected.sync.entry(sid).error is None
    assert retry(connected.sync.api_key, sid).status_code == 409  # queued already: nothing to retry
    drain_all(connected)
    row = connected.sync.entry(sid)
    assert row.status == "synced" and row.activity_id
    assert [a.external_id for a in connected.activities()] == [f"rk2strava-{sid}"]
    assert connected.sync.blobs() == []
    assert retry(connected.sync.api_key, sid).status_code == 409  # synced: nothing to retry


def test_a_big_payload_that_failed_keeps_one_copy(connected, monkeypatch) -> None:
    monkeypatch.setattr(messages, "INLINE_LIMIT", 500)  # every track takes the claim-check path
    connected.fake.fail_next_processing("activity.gpx: The file is empty.")
    sid = _post(connected, track("2024-04-02T07:00:00+01:00", points=40))
    assert len(connected.sync.blobs()) == 1 and not connected.sync.blobs()[0].startswith(kept.KEPT_PREFIX)
    drain_all(connected)
    assert connected.sync.blobs() == [kept.kept_name("owner", sid)]
    assert retry(connected.sync.api_key, sid).status_code == 202
    drain_all(connected)
    assert connected.sync.entry(sid).status == "synced" and connected.sync.blobs() == []


def test_a_poisoned_message_keeps_its_inline_payload(connected) -> None:
    sid = _post(connected, manual("2024-04-03T07:00:00+01:00"))

    def crashes(msg) -> None:
        raise RuntimeError("worker crashed")

    with connected.sync.drain(handler=crashes) as drain:
        drain.run(timeout=60)
    assert len(drain.stats.poisoned) == 1
    row = connected.sync.entry(sid)
    assert row.status == "failed" and "poison" in row.error
    assert connected.sync.blobs() == [kept.kept_name("owner", sid)]
    assert retry(connected.sync.api_key, sid).status_code == 202
    drain_all(connected)
    assert connected.sync.entry(sid).status == "synced" and len(connected.activities()) == 1


def test_a_rejected_payload_needs_the_corrected_one(connected) -> None:
    bad = {"activityType": "Running", "activityStartTimeIso": "not a time", "activityDuration": "1800"}
    resp = post_activity(connected.sync.api_key, bad)
    assert resp.status_code == 400
    [rejected] = connected.sync.entries()
    assert rejected.status == "rejected"

    refused = retry(connected.sync.api_key, rejected.sync_id)
    assert refused.status_code == 409 and "corrected" in body(refused)["error"]
    assert {p["field"] for p in body(refused)["problems"]} == {"activityStartTimeIso"}

    still_bad = retry(connected.sync.api_key, rejected.sync_id, {**bad, "activityDuration": "soon"})
    assert still_bad.status_code == 400
    assert {p["field"] for p in body(still_bad)["problems"]} >= {"activityStartTimeIso", "activityDuration"}
    assert connected.sync.entry(rejected.sync_id).status == "rejected"

    fixed = {**bad, "activityStartTimeIso": "2024-04-04T07:00:00+01:00", "apiKey": connected.sync.api_key}
    resp = retry(connected.sync.api_key, rejected.sync_id, fixed)
    assert resp.status_code == 202
    answer = body(resp)
    assert answer["retried"] == rejected.sync_id and answer["replaced"] is True and answer["id"] != rejected.sync_id
    assert connected.sync.entry(rejected.sync_id) is None  # superseded by the corrected activity's own row
    drain_all(connected)
    assert connected.sync.entry(answer["id"]).status == "synced"
    assert connected.sync.api_key not in json.dumps([e.public() for e in connected.sync.entries()])


def test_a_failure_with_nothing_kept_says_what_to_do(sync_env) -> None:
    imported = Entry(user="owner", sync_id="a" + "1" * 20, status="failed", source="import", error="x")
    live_row = Entry(user="owner", sync_id="a" + "2" * 20, status="failed", source="zapier", error="x")
    for entry in (imported, live_row):
        activitylog.create(sync_env.storage, entry)
    resp = retry(sync_env.api_key, imported.sync_id)
    assert resp.status_code == 409 and "--retry-failed" in body(resp)["error"]
    resp = retry(sync_env.api_key, live_row.sync_id)
    assert resp.status_code == 409 and "body" in body(resp)["error"]
    assert retry(sync_env.api_key, "a" + "3" * 20).status_code == 404
    assert retry(sync_env.api_key, "../../etc").status_code == 404
    assert sync_env.queue_count() == 0


def test_two_retries_at_once_queue_it_once(connected) -> None:
    connected.fake.fail_next_processing("activity.gpx: Improperly formatted data.")
    sid = _post(connected, track("2024-04-05T07:00:00+01:00"))
    drain_all(connected)
    barrier = threading.Barrier(4)
    codes: list[int] = []

    def go() -> None:
        barrier.wait()
        codes.append(retry(connected.sync.api_key, sid).status_code)

    threads = [threading.Thread(target=go) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [202, 409, 409, 409]
    assert connected.sync.queue_count() == 1


def test_queue_down_answers_503_and_the_row_stays_failed(connected, monkeypatch) -> None:
    connected.fake.fail_next_processing("activity.gpx: Improperly formatted data.")
    sid = _post(connected, track("2024-04-06T07:00:00+01:00"))
    drain_all(connected)
    dead = f"http://127.0.0.1:{free_port()}/devstoreaccount1"
    broken = ";".join(f"QueueEndpoint={dead}" if p.startswith("QueueEndpoint=") else p
                      for p in connected.sync.storage.connection_string.rstrip(";").split(";")) + ";"
    monkeypatch.setenv("AzureWebJobsStorage", broken)
    resp = retry(connected.sync.api_key, sid)
    assert resp.status_code == 503 and "retry later" in body(resp)["error"]
    row = connected.sync.entry(sid)
    assert row.status == "failed" and "Improperly formatted" in row.error
    monkeypatch.setenv("AzureWebJobsStorage", connected.sync.storage.connection_string)
    assert retry(connected.sync.api_key, sid).status_code == 202


def test_retry_all_failed_queues_what_it_can_and_says_why_not_the_rest(connected) -> None:
    connected.fake.fail_next_processing("activity.gpx: Improperly formatted data.")
    sid = _post(connected, track("2024-04-07T07:00:00+01:00"))
    drain_all(connected)
    imported = Entry(user="owner", sync_id="a" + "4" * 20, status="failed", source="import", error="x")
    activitylog.create(connected.sync.storage, imported)
    done, refused = retries.retry_all_failed(connected.sync.storage, "owner", timezone="Europe/London")
    assert [d.sync_id for d in done] == [sid]
    assert [r[0] for r in refused] == [imported.sync_id] and "--retry-failed" in refused[0][1]
