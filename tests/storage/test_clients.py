from __future__ import annotations

import base64

import pytest
from azure.storage.queue import QueueClient

from shared.storage import clients
from shared.storage.clients import Storage, StorageSettingsError


def test_queue_messages_are_base64_as_host_json_says(storage: Storage, unique: str) -> None:
    q = clients.queue(storage, f"q{unique}")
    q.send_message(b'{"a": 1}')
    raw = QueueClient.from_connection_string(storage.connection_string, f"q{unique}").receive_message()
    assert raw is not None
    assert base64.b64decode(raw.content) == b'{"a": 1}'


def test_clients_are_cached_and_resources_created(storage: Storage, unique: str) -> None:
    t = clients.table(storage, f"t{unique}")
    assert clients.table(storage, f"t{unique}") is t
    t.create_entity({"PartitionKey": "p", "RowKey": "r", "v": 1})
    assert t.get_entity("p", "r")["v"] == 1
    c = clients.container(storage, f"c{unique}")
    c.upload_blob("b", b"x")
    assert c.download_blob("b").readall() == b"x"


# -- which storage the settings describe ---------------------------------------------------------------------

def test_a_connection_string_never_shows_in_a_repr() -> None:
    target = Storage.from_settings({"AzureWebJobsStorage": "AccountName=a;AccountKey=c2VjcmV0"})
    assert not target.uses_identity
    assert "c2VjcmV0" not in repr(target)


def test_an_account_name_gives_the_public_https_endpoints_and_the_identity() -> None:
    target = Storage.from_settings({"AzureWebJobsStorage__accountName": "rk2strava",
                                    "AzureWebJobsStorage__credential": "managedidentity",
                                    "AzureWebJobsStorage__clientId": "00000000-0000-0000-0000-00000000abcd"})
    assert target.uses_identity and target.managed_identity
    assert (target.blob_url, target.queue_url, target.table_url) == (
        "https://rk2strava.blob.core.windows.net", "https://rk2strava.queue.core.windows.net",
        "https://rk2strava.table.core.windows.net")
    assert target.client_id == "00000000-0000-0000-0000-00000000abcd"


def test_service_uris_are_taken_as_given() -> None:
    target = Storage.from_settings({f"AzureWebJobsStorage__{k}ServiceUri": f"https://127.0.0.1:1/{k}/"
                                    for k in ("blob", "queue", "table")})
    assert target.queue_url == "https://127.0.0.1:1/queue" and not target.managed_identity


@pytest.mark.parametrize(("env", "named"), [
    ({}, ["AzureWebJobsStorage", "AzureWebJobsStorage__accountName"]),
    ({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "AzureWebJobsStorage__accountName": "a"},
     ["AzureWebJobsStorage", "AzureWebJobsStorage__accountName", "both"]),
    ({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "AzureWebJobsStorage__clientId": "x"},
     ["AzureWebJobsStorage__clientId", "both"]),
    ({"AzureWebJobsStorage__accountName": "a", "AzureWebJobsStorage__queueServiceUri": "https://q"},
     ["AzureWebJobsStorage__accountName", "AzureWebJobsStorage__queueServiceUri", "both"]),
    ({"AzureWebJobsStorage__queueServiceUri": "https://q"},
     ["AzureWebJobsStorage__blobServiceUri", "AzureWebJobsStorage__tableServiceUri", "incomplete"]),
    ({"AzureWebJobsStorage__clientId": "x"}, ["AzureWebJobsStorage__blobServiceUri", "incomplete"]),
    ({f"AzureWebJobsStorage__{k}ServiceUri": f"http://127.0.0.1/{k}" for k in ("blob", "queue", "table")},
     ["AzureWebJobsStorage__blobServiceUri", "https://"]),
    ({"AzureWebJobsStorage__accountName": "a", "AzureWebJobsStorage__credential": "connectionstring"},
     ["AzureWebJobsStorage__credential", "managedidentity"]),
])
def test_missing_incomplete_or_contradicting_settings_fail_naming_them(env: dict[str, str],
                                                                        named: list[str]) -> None:
    with pytest.raises(StorageSettingsError) as err:
        Storage.from_settings(env)
    for word in named:
        assert word in str(err.value)


def test_identity_clients_skip_creating_resources_the_template_made() -> None:
    """No call at all on building them: the app's identity needs no create rights, and a cold start saves one."""
    target = Storage(blob_url="https://127.0.0.1:9/a", queue_url="https://127.0.0.1:9/a",
                     table_url="https://127.0.0.1:9/a", managed_identity=True, client_id="c")
    assert clients.table(target, "t").table_name == "t"  # port 9 (discard): any request would fail
    assert clients.queue(target, "q").queue_name == "q"
    assert clients.container(target, "c").container_name == "c"
