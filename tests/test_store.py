from __future__ import annotations

import base64

from azure.storage.queue import QueueClient

from shared import store


def test_queue_messages_are_base64_as_host_json_says(storage: str, unique: str) -> None:
    q = store.queue(storage, f"q{unique}")
    q.send_message(b'{"a": 1}')
    raw = QueueClient.from_connection_string(storage, f"q{unique}").receive_message()
    assert raw is not None
    assert base64.b64decode(raw.content) == b'{"a": 1}'


def test_clients_are_cached_and_resources_created(storage: str, unique: str) -> None:
    t = store.table(storage, f"t{unique}")
    assert store.table(storage, f"t{unique}") is t
    t.create_entity({"PartitionKey": "p", "RowKey": "r", "v": 1})
    assert t.get_entity("p", "r")["v"] == 1
    c = store.container(storage, f"c{unique}")
    c.upload_blob("b", b"x")
    assert c.download_blob("b").readall() == b"x"
