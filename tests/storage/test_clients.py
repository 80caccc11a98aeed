from __future__ import annotations

import base64
import re

import pytest
from azure.storage.queue import QueueClient

from shared.storage import clients
from shared.storage.clients import Storage, StorageSettingsError


def test_queue_messages_are_base64_as_host_json_says(storage: Storage, unique: str) -> None:
    q = clients.queue(storage, f"q{unique}")
    q.send_message(b'{"a": 1}')
    raw = QueueClient.from_connection_string(storage.connection_string, storage.name(f"q{unique}")).receive_message()
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


# -- the name prefix (STORAGE_NAME_PREFIX) ---------------------------------------------------------------------

_TABLE_NAME = re.compile(r"[A-Za-z][A-Za-z0-9]{2,62}")  # Azure's rules for table names
_QUEUE_OR_CONTAINER_NAME = re.compile(r"(?!.*--)[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")  # and for queues and containers


def test_every_builder_puts_the_prefix_before_the_name() -> None:
    target = Storage(blob_url="https://127.0.0.1:9/a", queue_url="https://127.0.0.1:9/a",
                     table_url="https://127.0.0.1:9/a", managed_identity=True, prefix="t0a")
    assert target.name(clients.ACTIVITY_QUEUE) == "t0arunkeeper-activities"
    assert clients.table(target, clients.USERS_TABLE).table_name == "t0asyncusers"  # port 9: no request is made
    assert clients.queue(target).queue_name == "t0arunkeeper-activities"
    assert clients.queue(target, clients.POISON_QUEUE).queue_name == "t0arunkeeper-activities-poison"
    assert clients.container(target).container_name == "t0arunkeeper-payloads"
    plain = Storage(blob_url="https://127.0.0.1:9/a", queue_url="https://127.0.0.1:9/a",
                    table_url="https://127.0.0.1:9/a", managed_identity=True)
    assert plain.prefix == "" and clients.queue(plain).queue_name == clients.ACTIVITY_QUEUE


def test_the_prefix_comes_from_the_settings_in_either_form() -> None:
    conn = Storage.from_settings({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "STORAGE_NAME_PREFIX": " dev2 "})
    assert conn.prefix == "dev2" and conn == Storage.from_connection_string("UseDevelopmentStorage=true", prefix="dev2")
    identity = Storage.from_settings({"AzureWebJobsStorage__accountName": "rk2strava", "STORAGE_NAME_PREFIX": "dev2"})
    assert identity.prefix == "dev2" and identity.uses_identity
    assert Storage.from_settings({"STORAGE_NAME_PREFIX": "dev2"}, default="UseDevelopmentStorage=true").prefix == "dev2"
    assert Storage.from_settings({"AzureWebJobsStorage": "UseDevelopmentStorage=true"}).prefix == ""
    assert Storage.from_settings({"AzureWebJobsStorage": "x", "STORAGE_NAME_PREFIX": ""}).prefix == ""


@pytest.mark.parametrize("prefix", ["a", "t0123456789a", "abc123", "z9"])
def test_a_valid_prefix_keeps_every_name_valid(prefix: str) -> None:
    target = Storage.from_connection_string("UseDevelopmentStorage=true", prefix=prefix)
    for name in (clients.CONNECTIONS_TABLE, clients.ACTIVITY_LOG_TABLE, clients.OAUTH_STATE_TABLE,
                 clients.USERS_TABLE):
        assert _TABLE_NAME.fullmatch(target.name(name)), name
    for name in (clients.ACTIVITY_QUEUE, clients.POISON_QUEUE, clients.PAYLOAD_CONTAINER):
        assert _QUEUE_OR_CONTAINER_NAME.fullmatch(target.name(name)), name


@pytest.mark.parametrize("prefix", ["1abc", "Dev", "dev-2", "dev_2", "dev.2", "abcdefghijklm", "dév", "a b"])
def test_an_invalid_prefix_is_refused_naming_the_setting_and_its_rules(prefix: str) -> None:
    with pytest.raises(StorageSettingsError, match="STORAGE_NAME_PREFIX") as err:
        Storage.from_settings({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "STORAGE_NAME_PREFIX": prefix})
    assert "lowercase letters and digits" in str(err.value) and "at most 12" in str(err.value)
    with pytest.raises(StorageSettingsError, match="STORAGE_NAME_PREFIX"):
        Storage.from_connection_string("UseDevelopmentStorage=true", prefix=prefix)
