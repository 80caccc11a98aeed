"""The ack's fast path: signed HTTP storage writes (shared.storagehttp) and the blob written during validation."""

from __future__ import annotations

import base64
import json
import uuid

import pytest
from azure.data.tables import TableClient
from azure.storage.blob import ContainerClient
from azure.storage.queue import QueueClient

from shared import jobs, storagehttp, store
from shared.storagehttp import StorageHTTPError, account, insert_entity, put_blob, put_message
from tests.azurite import ACCOUNT_KEY, Azurite


def test_connection_strings() -> None:
    dev = account("UseDevelopmentStorage=true")
    assert dev is not None and dev.name == "devstoreaccount1"
    assert dev.queue is not None and (dev.queue.port, dev.queue.path) == (10001, "/devstoreaccount1")
    azure = account(f"DefaultEndpointsProtocol=https;AccountName=acct;AccountKey={ACCOUNT_KEY};"
                    "EndpointSuffix=core.windows.net")
    assert azure is not None and azure.table is not None
    assert (azure.table.scheme, azure.table.host, azure.table.path) == ("https", "acct.table.core.windows.net", "")
    assert ACCOUNT_KEY not in repr(azure) and "acct" in repr(azure)
    # no shared key: the SDK path
    assert account("BlobEndpoint=https://a.blob.core.windows.net;SharedAccessSignature=sv=2020&sig=x") is None
    assert account("AccountName=acct;AccountKey=not base64!") is None


def test_an_entity_reads_back_through_the_sdk_with_the_same_types(storage: str, unique: str) -> None:
    table = f"fast{unique}"
    entity = {"PartitionKey": "p", "RowKey": "r", "text": "é ☃", "small": 7, "big": 2**40, "flag": True,
              "ratio": 2.5, "empty": "", "gone": None}
    etag = insert_entity(storage, table, entity)  # the table does not exist yet: created on the way
    assert etag
    got = TableClient.from_connection_string(storage, table_name=table).get_entity("p", "r")
    assert {k: got[k] for k in ("text", "small", "flag", "ratio", "empty")} == {
        "text": "é ☃", "small": 7, "flag": True, "ratio": 2.5, "empty": ""}
    assert got["big"].value == 2**40  # Edm.Int64 (the SDK itself refuses a plain int this large)
    assert "gone" not in got
    assert got.metadata["etag"] == etag  # usable for the SDK's compare-and-swap updates
    assert insert_entity(storage, table, {"PartitionKey": "p", "RowKey": "r"}) is None  # exists: no overwrite
    assert TableClient.from_connection_string(storage, table_name=table).get_entity("p", "r")["small"] == 7


def test_a_message_is_base64_and_can_be_taken_back(storage: str, unique: str) -> None:
    queue = f"fast-{unique}"
    content = json.dumps({"v": 1, "text": "<&>\"'"}).encode()
    message_id, receipt = put_message(storage, queue, content)
    raw = QueueClient.from_connection_string(storage, queue)
    [peeked] = raw.peek_messages()
    assert base64.b64decode(peeked.content) == content and peeked.id == message_id
    raw.delete_message(message_id, receipt)  # the pop receipt is the real one
    assert raw.get_queue_properties().approximate_message_count == 0


def test_a_delayed_message_is_invisible(storage: str, unique: str) -> None:
    queue = f"fast-{unique}"
    put_message(storage, queue, b"later", visibility=3600)
    raw = QueueClient.from_connection_string(storage, queue)
    assert raw.get_queue_properties().approximate_message_count == 1
    assert list(raw.peek_messages()) == []


def test_a_blob_with_a_path_name(storage: str, unique: str) -> None:
    container = f"fast-{unique}"
    put_blob(storage, container, "owner/some id+1/x.json", b'{"a":1}')
    got = ContainerClient.from_connection_string(storage, container).download_blob("owner/some id+1/x.json")
    assert got.readall() == b'{"a":1}'


def test_errors_name_status_and_code_never_the_key(storage: str) -> None:
    bad = storage.replace(ACCOUNT_KEY, base64.b64encode(b"x" * 64).decode())
    with pytest.raises(StorageHTTPError) as caught:
        put_message(bad, "fast-badkey", b"x")
    assert caught.value.status == 403 and ACCOUNT_KEY not in str(caught.value)


def test_a_connection_the_server_dropped_is_replaced(tmp_path) -> None:
    """Azurite restarts between two writes: the kept-alive connection is dead; the next write reconnects."""
    server = Azurite(location=tmp_path).start()
    try:
        conn = server.connection_string
        assert insert_entity(conn, "restart", {"PartitionKey": "p", "RowKey": "1"})
        server.restart()
        assert insert_entity(conn, "restart", {"PartitionKey": "p", "RowKey": "2"})
        put_message(conn, "restart", b"after")
        rows = TableClient.from_connection_string(conn, table_name="restart").list_entities()
        assert sorted(r["RowKey"] for r in rows) == ["1", "2"]
    finally:
        server.stop()


def test_the_sdk_is_used_without_a_shared_key(storage: str, unique: str, monkeypatch) -> None:
    monkeypatch.setattr(storagehttp, "account", lambda _conn: None)
    table = f"sdk{unique}"
    assert insert_entity(storage, table, {"PartitionKey": "p", "RowKey": "r"})
    assert insert_entity(storage, table, {"PartitionKey": "p", "RowKey": "r"}) is None
    message_id, _ = put_message(storage, f"sdk-{unique}", b"hello")
    assert message_id
    put_blob(storage, f"sdk-{unique}", "a.json", b"{}")


# -- the early blob (shared.ack._early_blob) ---------------------------------------------------------------

def _big(seed_payload: dict) -> dict:
    return dict(seed_payload, activityNotes="n" * 60_000)  # over a queue message's 48 KiB


def _blob_payloads(sync_env) -> list[bytes]:
    container = store.container(sync_env.storage, sync_env.names["PAYLOAD_CONTAINER"])
    return [container.download_blob(b.name).readall() for b in container.list_blobs()]


def test_a_big_payload_is_stored_as_sent(sync_env, seed_payload) -> None:
    body = json.dumps(_big(seed_payload), indent=1).encode()
    resp = sync_env.post(body)
    assert resp.status_code == 202
    assert _blob_payloads(sync_env) == [body]
    [message] = sync_env.visible_messages()
    assert message["blob"] == sync_env.blobs()[0] and "payload" not in message


def test_a_big_payload_with_the_key_inside_is_stored_without_it(sync_env, seed_payload) -> None:
    payload = dict(_big(seed_payload), apiKey=sync_env.api_key, apiEndpoint="https://example.invalid/x")
    assert sync_env.post(payload, key=None).status_code == 202
    [data] = _blob_payloads(sync_env)
    assert sync_env.api_key.encode() not in data and b"apiEndpoint" not in data
    assert json.loads(data) == _big(seed_payload)


def test_a_big_refused_payload_leaves_no_blob(sync_env, seed_payload) -> None:
    bad = dict(_big(seed_payload), activityPathLatitude="x" + seed_payload["activityPathLatitude"][1:])
    resp = sync_env.post(bad)
    assert resp.status_code == 400
    assert sync_env.blobs() == [] and sync_env.queue_count() == 0


def test_a_big_replay_of_a_synced_activity_leaves_no_blob(sync_env, seed_payload) -> None:
    from shared import activitylog

    body = _big(seed_payload)
    first = sync_env.post(body)
    assert first.status_code == 202
    sid = json.loads(first.get_body())["id"]
    entry = sync_env.entry(sid)
    assert entry is not None
    activitylog.save(sync_env.storage, entry, status="synced", activity_id=str(uuid.uuid4().int % 10**9))
    for blob in sync_env.blobs():  # the worker would have deleted its blob on success
        store.container(sync_env.storage, sync_env.names["PAYLOAD_CONTAINER"]).delete_blob(blob)
    again = sync_env.post(body)
    assert again.status_code == 200 and json.loads(again.get_body())["status"] == "synced"
    assert sync_env.blobs() == []


@pytest.mark.parametrize("key_name", ["apiKey", "api\\u004bey"])  # plain, or escaped in the JSON text
def test_a_key_inside_a_big_body_is_never_uploaded_even_briefly(sync_env, seed_payload, monkeypatch,
                                                                key_name: str) -> None:
    """The upload starts before decoding only for a body that cannot hold a dropped key."""
    uploaded: list[bytes] = []
    real = jobs.put_payload

    def recording(storage: str, user: str, data: bytes, *args) -> str:
        uploaded.append(data)
        return real(storage, user, data, *args)

    monkeypatch.setattr(jobs, "put_payload", recording)
    text = json.dumps(_big(seed_payload))
    body = (text[:-1] + f', "{key_name}": "{sync_env.api_key}"}}').encode()
    assert json.loads(body)["apiKey"] == sync_env.api_key
    assert sync_env.post(body).status_code == 202
    assert len(uploaded) == 1 and sync_env.api_key.encode() not in uploaded[0]
    assert _blob_payloads(sync_env) == uploaded and json.loads(uploaded[0]) == _big(seed_payload)
    [message] = sync_env.visible_messages()
    assert message["blob"] == sync_env.blobs()[0]


@pytest.mark.parametrize("body", [b"{" + b" " * 60_000, b"[" + b"1," * 30_000 + b"1]"])
def test_a_big_body_that_is_not_an_object_leaves_no_blob(sync_env, body: bytes) -> None:
    resp = sync_env.post(body)
    assert resp.status_code == 400
    assert sync_env.blobs() == [] and sync_env.queue_count() == 0


def test_a_big_body_with_a_bom_and_the_key_inside_is_stored_without_either(sync_env, seed_payload) -> None:
    body = b"\xef\xbb\xbf" + json.dumps(dict(_big(seed_payload), apiKey=sync_env.api_key), indent=2).encode()
    assert sync_env.post(body, key=None).status_code == 202
    [data] = _blob_payloads(sync_env)
    assert not data.startswith(b"\xef\xbb\xbf") and sync_env.api_key.encode() not in data
    assert json.loads(data) == _big(seed_payload)
