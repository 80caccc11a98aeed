from __future__ import annotations

import base64
import json
import re

import pytest

from shared.storage import clients, messages
from tests.support.drain import raw_queue


def _payload(points: int) -> dict[str, str]:
    return {
        "activityType": "Running",
        "activityPathLatitude": ",".join("51.123456" for _ in range(points)),
        "activityPathLongitude": ",".join("-0.123456" for _ in range(points)),
    }


def test_message_round_trip_keeps_every_field() -> None:
    job = messages.Job(sync_id="a0123", user="owner", source="zapier", payload={"activityNotes": "café ]]>"}, tries=2,
                   backoffs=1)
    assert messages.decode(messages.encode(job)) == job
    blob_job = messages.Job(sync_id="a0123", user="owner", blob="owner/a0123/x.json")
    assert messages.decode(messages.encode(blob_job)) == blob_job


@pytest.mark.parametrize(
    ("body", "needle"),
    [
        (b"not json", "not JSON"),
        (b"[1]", "not a sync job"),
        (b'{"v": 2, "id": "a", "user": "u", "source": "zapier", "payload": {}}', "not a sync job"),
        (b'{"v": 1, "user": "u", "source": "zapier", "payload": {}}', "id"),
        (b'{"v": 1, "id": "a", "user": "u", "source": "zapier"}', "exactly one of payload/blob"),
        (b'{"v": 1, "id": "a", "user": "u", "source": "zapier", "payload": [1]}', "payload (must be an object)"),
        (b'{"v": 1, "id": "a", "user": "u", "source": "zapier", "payload": {}, "tries": "x"}', "tries"),
    ],
)
def test_foreign_or_broken_messages_are_named(body: bytes, needle: str) -> None:
    with pytest.raises(messages.JobError, match=re.escape(needle)):
        messages.decode(body)


def test_peek_id_survives_a_broken_message() -> None:
    assert messages.peek_id(b'{"id": "a1", "user": "owner", "v": 9}') == ("owner", "a1")
    assert messages.peek_id(b"\xff") == (None, None)


def test_small_payload_goes_inline_base64_as_host_json_says(sync_env) -> None:
    job = messages.Job(sync_id="a1", user="owner", payload=_payload(300))
    sent = messages.send(sync_env.storage, job)
    assert sent.blob is None and sync_env.blobs() == []
    raw = raw_queue(sync_env.storage, clients.ACTIVITY_QUEUE).peek_messages()[0]
    assert messages.decode(base64.b64decode(raw.content)) == job


def test_big_payload_takes_the_claim_check_and_fits_the_queue(sync_env) -> None:
    payload = _payload(60_000)
    job = messages.Job(sync_id="a2", user="owner", payload=payload)
    sent = messages.send(sync_env.storage, job)
    assert sent.blob is not None and sync_env.blobs() == [sent.blob]
    raw = raw_queue(sync_env.storage, clients.ACTIVITY_QUEUE).peek_messages()[0]
    assert len(raw.content) < 64 * 1024
    queued = messages.decode(base64.b64decode(raw.content))
    assert queued.payload is None and queued.blob == sent.blob
    assert messages.load_payload(sync_env.storage, queued) == payload

    messages.delete_payload(sync_env.storage, sent.blob)
    messages.delete_payload(sync_env.storage, sent.blob)  # already gone is fine
    with pytest.raises(messages.JobError, match="missing"):
        messages.load_payload(sync_env.storage, queued)


def test_the_inline_limit_is_the_queue_limit(sync_env) -> None:
    """Just under the limit is sent inline and accepted by the queue; one byte more goes to a blob."""
    job = messages.Job(sync_id="a3", user="owner", payload={"activityNotes": ""})
    room = messages.INLINE_LIMIT - len(messages.encode(job))
    fits = messages.Job(sync_id="a3", user="owner", payload={"activityNotes": "n" * room})
    assert len(messages.encode(fits)) == messages.INLINE_LIMIT
    assert messages.send(sync_env.storage, fits).blob is None
    over = messages.Job(sync_id="a3", user="owner", payload={"activityNotes": "n" * (room + 1)})
    assert messages.send(sync_env.storage, over).blob is not None


def test_delayed_message_is_invisible_and_retract_takes_one_back(sync_env) -> None:
    messages.send(sync_env.storage, messages.Job(sync_id="a4", user="owner", payload={}), delay=600)
    assert sync_env.visible_messages() == [] and sync_env.queue_count() == 1

    sent = messages.send(sync_env.storage, messages.Job(sync_id="a5", user="owner", payload=_payload(60_000)))
    messages.retract(sync_env.storage, sent)
    assert sync_env.visible_messages() == [] and sync_env.blobs() == []


def test_retract_leaves_a_message_a_worker_already_holds(sync_env) -> None:
    sent = messages.send(sync_env.storage, messages.Job(sync_id="a6", user="owner", payload=_payload(60_000)))
    taken = clients.queue(sync_env.storage, clients.ACTIVITY_QUEUE).receive_message(visibility_timeout=1)
    assert taken is not None and json.loads(taken.content)["id"] == "a6"
    messages.retract(sync_env.storage, sent)  # stale pop receipt: the worker's copy and its blob stay
    assert sync_env.queue_count() == 1 and sync_env.blobs() == [sent.blob]
