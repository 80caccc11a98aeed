"""POST /api/runkeeper against real Azurite: what is stored, what is answered, and what is never stored."""

from __future__ import annotations

import json
import logging
import threading
from datetime import timedelta
from typing import Any

import pytest

from shared.live import intake
from shared.storage import activitylog, clients
from shared.storage import messages as jobs
from tests.support.azurite import free_port


def _body(resp) -> dict[str, Any]:
    return json.loads(resp.get_body())


def _assert_nothing_stored(sync_env, *, rejected_rows: int = 0) -> None:
    assert sync_env.queue_count() == 0
    assert sync_env.blobs() == []
    rows = sync_env.entries()
    assert [r.status for r in rows] == ["rejected"] * rejected_rows


def test_real_payload_with_key_in_body_is_queued(sync_env, seed_payload, seed) -> None:
    body = {**seed_payload, "apiKey": sync_env.api_key, "apiEndpoint": "https://example.invalid/api/runkeeper"}
    resp = sync_env.post(body, key=None)
    assert resp.status_code == 202, resp.get_body()
    assert _body(resp) == {"id": seed.sync_id, "status": "queued"}
    assert resp.mimetype == "application/json"

    row = sync_env.entry(seed.sync_id)
    assert row is not None
    assert (row.status, row.source, row.runkeeper_type, row.sport_type, row.points) == (
        "queued", "zapier", "Running", seed.sport_type, seed.points)
    assert row.name == seed.name
    assert row.start == seed.start

    [message] = sync_env.visible_messages()
    assert message["id"] == seed.sync_id and message["user"] == "owner" and message["source"] == "zapier"
    assert "apiKey" not in message["payload"] and "apiEndpoint" not in message["payload"]
    assert message["payload"] == seed_payload
    assert sync_env.api_key not in json.dumps(message)


def test_key_in_header_works_too(sync_env, seed_payload) -> None:
    resp = sync_env.post(seed_payload)
    assert resp.status_code == 202
    assert sync_env.queue_count() == 1


@pytest.mark.parametrize(
    ("key", "extra"),
    [
        (None, {}),  # no key anywhere
        ("wrong-key", {}),  # wrong header
        ("", {}),  # empty header
        (None, {"apiKey": "wrong-key"}),
        (None, {"apiKey": 12345}),
        ("wrong-key", {"apiKey": "RIGHT"}),  # a wrong header is not rescued by the body
    ],
)
def test_missing_or_wrong_key_is_401_and_nothing_stored(sync_env, seed_payload, key, extra) -> None:
    if extra.get("apiKey") == "RIGHT":
        extra = {"apiKey": sync_env.api_key}
    resp = sync_env.post({**seed_payload, **extra}, key=key)
    assert resp.status_code == 401
    assert "API key" in _body(resp)["error"]
    assert sync_env.api_key not in resp.get_body().decode()
    _assert_nothing_stored(sync_env)


def test_unauthenticated_garbage_is_401_not_400(sync_env) -> None:
    resp = sync_env.post(b"not json at all", key=None)
    assert resp.status_code == 401
    _assert_nothing_stored(sync_env)


def test_body_over_the_limit_is_413(sync_env, monkeypatch) -> None:
    monkeypatch.setattr(intake, "MAX_BODY", 1000)  # same code path as 20 MB, without building 20 MB
    resp = sync_env.post({"activityNotes": "x" * 2000})
    assert resp.status_code == 413
    assert "larger than" in _body(resp)["error"]
    _assert_nothing_stored(sync_env)


def test_a_real_21_mb_body_is_413(sync_env) -> None:
    resp = sync_env.post(b'{"activityNotes":"' + b"x" * (21 * 1024 * 1024) + b'"}')
    assert resp.status_code == 413
    _assert_nothing_stored(sync_env)


@pytest.mark.parametrize(
    ("raw", "needle"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "not valid JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"activityDuration": NaN}', "NaN is not valid JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b"[1, 2]", "must be a JSON object, not list"),
        (b'"a string"', "must be a JSON object, not str"),
        (b"null", "must be a JSON object, not null"),
    ],
)
def test_not_a_json_object_is_400_naming_the_problem(sync_env, raw, needle) -> None:
    resp = sync_env.post(raw)
    assert resp.status_code == 400
    body = _body(resp)
    assert needle in body["error"]
    assert body["problems"] == [{"field": "body", "message": body["error"]}]
    _assert_nothing_stored(sync_env, rejected_rows=1)  # what was sent is kept for the owner to see
    [row] = sync_env.entries()
    assert row.error == "body: " + body["error"] and len(row.excerpt or "") <= activitylog.EXCERPT_CHARS


def test_the_key_never_lands_in_a_rejected_excerpt(sync_env) -> None:
    resp = sync_env.post(('{"apiKey": "' + sync_env.api_key + '", broken').encode())
    assert resp.status_code == 400
    [row] = sync_env.entries()
    assert sync_env.api_key not in row.excerpt and "***" in row.excerpt


def test_validation_problems_are_400_named_and_logged_as_rejected(sync_env, seed_payload) -> None:
    bad = {**seed_payload, "activityStartTimeIso": "yesterday", "activityPathLatitude": "91,51.3"}
    bad["apiKey"] = sync_env.api_key
    resp = sync_env.post(bad, key=None)
    assert resp.status_code == 400
    body = _body(resp)
    fields = {p["field"] for p in body["problems"]}
    assert "activityStartTimeIso" in fields
    assert any(f.startswith("activityPathLatitude") for f in fields)
    assert all(p["message"] for p in body["problems"])

    _assert_nothing_stored(sync_env, rejected_rows=1)
    [row] = sync_env.entries()
    assert row.status == "rejected" and row.source == "zapier"
    assert {p["field"] for p in row.problems} == fields
    assert "activityStartTimeIso" in (row.error or "")
    assert row.excerpt is not None and len(row.excerpt) <= activitylog.EXCERPT_CHARS
    assert sync_env.api_key not in row.excerpt  # the key is dropped before anything is stored

    # the same bad payload again: still 400, still one row
    assert sync_env.post(bad, key=None).status_code == 400
    [row] = sync_env.entries()
    assert row.attempts == 2


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"activityStartTimeIso": "2022-09-26T18:52:22+01:00"}, "activityType"),
        ({"activityType": "Running"}, "activityStartTimeIso"),
        ({"activityType": "Running", "activityStartTimeIso": "2022-09-26T18:52:22+01:00"}, "activityDuration"),
        ({"activityType": "Running", "activityStartTimeIso": "2022-09-26T18:52:22+01:00",
          "activityPathLatitude": "51,51.1", "activityPathLongitude": "0"}, "activityPathLongitude"),
    ],
)
def test_each_missing_piece_is_named(sync_env, payload, field) -> None:
    resp = sync_env.post(payload)
    assert resp.status_code == 400
    assert field in {p["field"] for p in _body(resp)["problems"]}
    _assert_nothing_stored(sync_env, rejected_rows=1)


def test_manual_activity_with_a_duration_is_accepted(sync_env) -> None:
    payload = {"activityType": "Running", "activityStartTimeIso": "2022-09-26T18:52:22+01:00",
               "activityDuration": "1800", "activityTotalDistance": "5000"}
    resp = sync_env.post(payload)
    assert resp.status_code == 202, resp.get_body()
    row = sync_env.entry(_body(resp)["id"])
    assert row is not None and row.points == 0


def test_posted_twice_is_queued_once(sync_env, seed_payload, seed) -> None:
    first = sync_env.post(seed_payload)
    second = sync_env.post(seed_payload)
    assert first.status_code == 202
    assert second.status_code == 200
    assert _body(second) == {"id": seed.sync_id, "status": "queued"}
    assert sync_env.queue_count() == 1


@pytest.mark.parametrize("status", ["synced", "duplicate", "uploading"])
def test_replay_of_a_done_or_running_activity_answers_its_status(sync_env, seed_payload, seed, status) -> None:
    assert sync_env.post(seed_payload).status_code == 202
    clients.queue(sync_env.storage, clients.ACTIVITY_QUEUE).clear_messages()  # as if the worker had taken it
    row = sync_env.entry(seed.sync_id)
    activitylog.save(sync_env.storage, row, status=status, activity_id="98765432101", attempts=1)

    resp = sync_env.post(seed_payload)
    assert resp.status_code == 200
    assert _body(resp) == {"id": seed.sync_id, "status": status, "activity_id": "98765432101"}
    assert sync_env.queue_count() == 0
    assert sync_env.entry(seed.sync_id).status == status


def test_replay_of_a_big_done_activity_leaves_no_blob(sync_env, seed_payload, seed) -> None:
    big = dict(seed_payload, activityNotes="n" * 60_000)
    assert sync_env.post(big).status_code == 202
    clients.queue(sync_env.storage, clients.ACTIVITY_QUEUE).clear_messages()
    for name in sync_env.blobs():
        jobs.delete_payload(sync_env.storage, name)
    activitylog.save(sync_env.storage, sync_env.entry(seed.sync_id), status="synced", activity_id="1")
    assert sync_env.post(big).status_code == 200
    assert sync_env.blobs() == [] and sync_env.queue_count() == 0


@pytest.mark.parametrize("status", ["failed", "rejected"])
def test_replay_of_a_failed_activity_queues_it_again(sync_env, seed_payload, seed, status) -> None:
    assert sync_env.post(seed_payload).status_code == 202
    clients.queue(sync_env.storage, clients.ACTIVITY_QUEUE).clear_messages()
    row = sync_env.entry(seed.sync_id)
    activitylog.save(sync_env.storage, row, status=status, error="no Strava connection yet", attempts=1)

    resp = sync_env.post(seed_payload)
    assert resp.status_code == 202
    assert _body(resp) == {"id": seed.sync_id, "status": "queued"}
    assert sync_env.queue_count() == 1
    row = sync_env.entry(seed.sync_id)
    assert row.status == "queued" and row.error is None and row.attempts == 1


def test_replay_of_a_queued_row_whose_message_was_lost_queues_it_again(sync_env, seed_payload, monkeypatch) -> None:
    assert sync_env.post(seed_payload).status_code == 202
    clients.queue(sync_env.storage, clients.ACTIVITY_QUEUE).clear_messages()  # the message is lost
    assert sync_env.post(seed_payload).status_code == 200  # recent: trusted
    assert sync_env.queue_count() == 0
    monkeypatch.setattr(intake, "STALE_QUEUED", timedelta(seconds=-1))  # no worker has touched it for too long
    assert sync_env.post(seed_payload).status_code == 202
    assert sync_env.queue_count() == 1


def _dead_storage(storage: str, *, queue: bool, table: bool, blob: bool = False) -> str:
    """The same connection string with some services pointing at a port nobody listens on."""
    dead = f"http://127.0.0.1:{free_port()}/devstoreaccount1"
    parts = []
    for part in storage.rstrip(";").split(";"):
        key = part.split("=", 1)[0]
        if (key == "QueueEndpoint" and queue) or (key == "TableEndpoint" and table) or (key == "BlobEndpoint" and blob):
            part = f"{key}={dead}"
        parts.append(part)
    return ";".join(parts) + ";"


@pytest.mark.parametrize(
    ("queue", "table"), [(True, True), (True, False), (False, True)], ids=["all-down", "queue-down", "table-down"]
)
def test_storage_down_is_503_and_nothing_half_stored(sync_env, seed_payload, monkeypatch, queue, table) -> None:
    dead = _dead_storage(sync_env.storage.connection_string, queue=queue, table=table)
    monkeypatch.setenv("AzureWebJobsStorage", dead)
    resp = sync_env.post(seed_payload)
    assert resp.status_code == 503
    assert "retry" in _body(resp)["error"]
    assert "Traceback" not in resp.get_body().decode()
    # whatever half did reach the live service was taken back
    assert sync_env.queue_count() == 0
    assert sync_env.entries() == []

    # storage back: Zapier's replay is accepted
    monkeypatch.setenv("AzureWebJobsStorage", sync_env.storage.connection_string)
    assert sync_env.post(seed_payload).status_code == 202
    assert sync_env.queue_count() == 1


def test_blob_storage_down_for_a_big_payload_is_503(sync_env, seed_payload, monkeypatch) -> None:
    dead = _dead_storage(sync_env.storage.connection_string, queue=False, table=False, blob=True)
    monkeypatch.setenv("AzureWebJobsStorage", dead)
    resp = sync_env.post(dict(seed_payload, activityNotes="n" * 60_000))
    assert resp.status_code == 503
    assert sync_env.queue_count() == 0 and sync_env.entries() == []


def test_without_sync_api_key_configured_nothing_is_accepted(sync_env, seed_payload, monkeypatch) -> None:
    monkeypatch.delenv("SYNC_API_KEY")
    resp = sync_env.post({**seed_payload, "apiKey": ""}, key=None)
    assert resp.status_code == 503
    assert "not configured" in _body(resp)["error"]
    _assert_nothing_stored(sync_env)


def test_a_big_payload_is_checked_exactly_and_every_problem_named(sync_env, seed_payload) -> None:
    """Over a message's size the same exact checks run: a 400 names every bad value, nothing is stored."""
    lat = seed_payload["activityPathLatitude"].split(",")
    lat[7] = "95.5"  # a value only the exact checks see
    big = dict(seed_payload, activityNotes="n" * 60_000, activityPathLatitude=",".join(lat),
               activityHeartRateBpm=seed_payload["activityHeartRateBpm"].replace("1", "one", 1))
    resp = sync_env.post(big)
    assert resp.status_code == 400
    fields = {p["field"] for p in _body(resp)["problems"]}
    assert {"activityPathLatitude[7]", "activityHeartRateBpm[0]"} <= fields
    _assert_nothing_stored(sync_env, rejected_rows=1)


def test_a_key_sent_as_a_value_is_redacted_from_the_answer_and_the_log(sync_env, seed_payload) -> None:
    lat = seed_payload["activityPathLatitude"].split(",")
    lat[3] = sync_env.api_key
    resp = sync_env.post(dict(seed_payload, activityPathLatitude=",".join(lat)))
    assert resp.status_code == 400
    assert sync_env.api_key not in resp.get_body().decode()
    [problem] = _body(resp)["problems"]
    assert problem["field"] == "activityPathLatitude[3]" and "***" in problem["message"]
    [row] = sync_env.entries()
    assert row.status == "rejected" and sync_env.api_key not in json.dumps(row.public())
    assert row.problems == [problem]


def test_a_key_cut_short_in_a_quoted_value_is_redacted_too(sync_env, seed_payload) -> None:
    """Problem messages quote at most 40 characters: a key at the end of a long value is cut, still masked."""
    lat = seed_payload["activityPathLatitude"].split(",")
    lat[2] = "x" * 20 + sync_env.api_key
    resp = sync_env.post(dict(seed_payload, activityPathLatitude=",".join(lat)))
    assert resp.status_code == 400
    piece = sync_env.api_key[:16]
    assert piece not in resp.get_body().decode()
    [row] = sync_env.entries()
    assert piece not in json.dumps(row.public()) and "***" in row.problems[0]["message"]


def test_an_unexpected_error_in_accept_leaves_no_blob(sync_env, seed_payload, monkeypatch) -> None:
    from shared.model import sports

    def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(sports, "strava_sport", broken)
    resp = sync_env.post(dict(seed_payload, activityNotes="n" * 60_000))
    assert resp.status_code == 503 and b"a bug" not in resp.get_body()
    assert sync_env.blobs() == [] and sync_env.queue_count() == 0


def test_every_log_line_of_an_ack_is_written_on_its_invocation_thread(sync_env, caplog) -> None:
    """The Python worker ties a record to its invocation only on the thread it runs the function on: the
    ack, big payload and blob included, starts no thread of its own."""
    from tests.support.builders import track

    caplog.set_level(logging.DEBUG)
    threads_before = set(threading.enumerate())
    resp = sync_env.post(track("2024-05-09T07:00:00+01:00", points=2_000))  # over a message: the blob path
    assert resp.status_code == 202 and len(sync_env.blobs()) == 1
    assert caplog.records and {r.thread for r in caplog.records} == {threading.get_ident()}
    assert set(threading.enumerate()) <= threads_before
