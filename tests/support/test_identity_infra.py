"""The identity-path harness itself, proven with the real Azure SDKs and no app code.

If these pass, a failing app test on `identity_env` is the app's fault: the fake identity endpoint
issues tokens azure-identity accepts, the OAuth Azurite accepts them (and refuses bad ones) for tables,
queues and blobs, and the debug-log detector tells Bearer from Shared Key.
"""

from __future__ import annotations

import os
import time
from typing import Any

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.data.tables import TableServiceClient
from azure.identity import ManagedIdentityCredential
from azure.storage.blob import BlobServiceClient
from azure.storage.queue import QueueServiceClient

from tests.support.azurite import ACCOUNT_KEY, Azurite, parse_debug_log
from tests.support.fake_identity import FAKE_CLIENT_ID, FAKE_TENANT_ID, FakeIdentity
from tests.support.fixtures_identity import key_material_in_env
from tests.support.tls import TestTLS

STORAGE_SCOPE = "https://storage.azure.com/.default"


class StaticToken:
    """A credential handing out one fixed token, to show what Azurite does with a bad one."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)


@pytest.fixture
def identity_only(monkeypatch: pytest.MonkeyPatch, fake_identity: FakeIdentity) -> FakeIdentity:
    """Only the identity endpoint's variables (no storage): for the credential-level tests."""
    for name, value in fake_identity.env().items():
        monkeypatch.setenv(name, value)
    return fake_identity


# --- the fake managed-identity endpoint ---------------------------------------------------------------


def test_managed_identity_credential_gets_a_token_azurite_would_accept(identity_only: FakeIdentity) -> None:
    credential = ManagedIdentityCredential(client_id=FAKE_CLIENT_ID)
    token = credential.get_token(STORAGE_SCOPE)
    claims = FakeIdentity.claims(token.token)
    assert claims["aud"] == "https://storage.azure.com"
    assert claims["iss"] == f"https://sts.windows.net/{FAKE_TENANT_ID}/"
    assert claims["nbf"] <= time.time() < claims["exp"] == token.expires_on
    assert claims["appid"] == FAKE_CLIENT_ID and claims["tid"] == FAKE_TENANT_ID and claims["oid"]
    assert identity_only.token_count == 1
    assert identity_only.resources == ["https://storage.azure.com"]
    (request,) = identity_only.requests
    assert request.status == 200
    assert request.query == {"api-version": "2019-08-01", "resource": "https://storage.azure.com",
                             "client_id": FAKE_CLIENT_ID}
    # MSAL caches the token in the credential: the same credential does not ask again...
    assert credential.get_token(STORAGE_SCOPE).token == token.token
    assert identity_only.token_count == 1
    # ...but a new credential does, with a token of its own.
    assert ManagedIdentityCredential(client_id=FAKE_CLIENT_ID).get_token(STORAGE_SCOPE).token != token.token
    assert identity_only.token_count == 2


@pytest.mark.parametrize("client_id", [None, "00000000-1111-2222-3333-444444444444"])
def test_a_request_for_another_identity_is_refused(identity_only: FakeIdentity, client_id: str | None) -> None:
    """The system-assigned identity (no client id) or another user-assigned one: not the app's identity."""
    with pytest.raises(ClientAuthenticationError):
        ManagedIdentityCredential(client_id=client_id).get_token(STORAGE_SCOPE)
    assert identity_only.token_count == 0
    assert [r.status for r in identity_only.requests] == [400]


def test_a_system_assigned_fake_refuses_a_client_id(identity_only: FakeIdentity) -> None:
    identity_only.client_id = None
    assert ManagedIdentityCredential().get_token(STORAGE_SCOPE).token
    with pytest.raises(ClientAuthenticationError):
        ManagedIdentityCredential(client_id=FAKE_CLIENT_ID).get_token(STORAGE_SCOPE)
    assert identity_only.token_count == 1


def test_a_wrong_identity_header_is_refused(identity_only: FakeIdentity, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IDENTITY_HEADER", "not-the-platform-secret")
    with pytest.raises(ClientAuthenticationError):
        ManagedIdentityCredential(client_id=FAKE_CLIENT_ID).get_token(STORAGE_SCOPE)
    assert identity_only.token_count == 0
    assert [r.status for r in identity_only.requests] == [401]


# What azure-identity 1.27 raises: an error status becomes ClientAuthenticationError, but a body that is
# not JSON escapes as MSAL's json.JSONDecodeError (a ValueError), so an app must catch both. A storage
# client built on the credential raises the same, before any request to storage. By default the
# credential's pipeline retries 408/429/5xx three times with backoff (4 requests, about 4.8 s);
# `retry_total=0` (a keyword ManagedIdentityCredential passes to its pipeline) asks once.
@pytest.mark.parametrize(("failure", "error"), [("500", ClientAuthenticationError), ("garbage", ValueError)])
def test_failure_modes_reach_the_sdk_as_errors_then_normal_service_resumes(
    identity_only: FakeIdentity, failure: str, error: type[Exception]
) -> None:
    if failure == "garbage":
        identity_only.answer_garbage()
    else:
        identity_only.fail_with(500, retry_after=0)
    credential = ManagedIdentityCredential(client_id=FAKE_CLIENT_ID, retry_total=0)
    with pytest.raises(error) as raised:
        credential.get_token(STORAGE_SCOPE)
    assert identity_only.token_count == 0
    assert len(identity_only.requests) == 1
    assert "access_token" not in str(raised.value)
    identity_only.normal()
    assert credential.get_token(STORAGE_SCOPE).token  # the same credential recovers at once
    assert identity_only.token_count == 1


def test_msal_throttles_a_credential_after_a_5xx_without_retry_after(identity_only: FakeIdentity) -> None:
    """Documents a trap for app tests: for 5 s after a 5xx, the same credential answers from MSAL's cache."""
    identity_only.fail_with(503)
    credential = ManagedIdentityCredential(client_id=FAKE_CLIENT_ID, retry_total=0)
    with pytest.raises(ClientAuthenticationError):
        credential.get_token(STORAGE_SCOPE)
    identity_only.normal()
    with pytest.raises(ClientAuthenticationError):
        credential.get_token(STORAGE_SCOPE)
    assert [r.status for r in identity_only.requests] == [503]  # the second call never reached the endpoint
    assert ManagedIdentityCredential(client_id=FAKE_CLIENT_ID).get_token(STORAGE_SCOPE).token  # a new one does


def test_fake_identity_resets_between_tests(fake_identity: FakeIdentity) -> None:
    fake_identity.fail_with(500)
    fake_identity.client_id = None
    fake_identity.reset()
    assert fake_identity.client_id == FAKE_CLIENT_ID
    assert fake_identity.requests == [] and fake_identity.token_count == 0
    assert set(fake_identity.env()) == {"IDENTITY_ENDPOINT", "IDENTITY_HEADER"}


# --- the OAuth Azurite with the SDKs ------------------------------------------------------------------


def test_identity_env_holds_identity_settings_only(identity_env: dict[str, str], tls: TestTLS) -> None:
    assert "AzureWebJobsStorage" not in os.environ
    assert key_material_in_env(os.environ) == []
    assert os.environ["AzureWebJobsStorage__credential"] == "managedidentity"
    assert os.environ["AzureWebJobsStorage__clientId"] == FAKE_CLIENT_ID
    for service in ("blob", "queue", "table"):
        assert os.environ[f"AzureWebJobsStorage__{service}ServiceUri"].startswith("https://127.0.0.1:")
    assert os.environ["REQUESTS_CA_BUNDLE"] == str(tls.ca_bundle)
    assert {k: os.environ[k] for k in identity_env} == identity_env


def test_tables_queues_and_blobs_work_with_the_managed_identity(
    identity_env: dict[str, str], oauth_azurite: Azurite, fake_identity: FakeIdentity, unique: str
) -> None:
    mark = oauth_azurite.log_mark()
    credential = ManagedIdentityCredential(client_id=identity_env["AzureWebJobsStorage__clientId"])

    tables = TableServiceClient(endpoint=identity_env["AzureWebJobsStorage__tableServiceUri"], credential=credential)
    table = tables.create_table(f"t{unique}")
    table.upsert_entity({"PartitionKey": "p", "RowKey": "1", "status": "done"})
    table.upsert_entity({"PartitionKey": "p", "RowKey": "2", "status": "failed"})
    found = list(table.query_entities("status eq @s", parameters={"s": "failed"}))
    assert [e["RowKey"] for e in found] == ["2"]
    assert table.get_entity("p", "1")["status"] == "done"
    assert f"t{unique}" in [t.name for t in tables.list_tables()]

    queues = QueueServiceClient(account_url=identity_env["AzureWebJobsStorage__queueServiceUri"],
                                credential=credential)
    queue = queues.create_queue(f"q{unique}")
    queue.send_message("hello")
    (message,) = queue.receive_messages(messages_per_page=1, visibility_timeout=30)
    assert message.content == "hello"
    queue.delete_message(message)
    assert queue.get_queue_properties().approximate_message_count == 0

    blobs = BlobServiceClient(account_url=identity_env["AzureWebJobsStorage__blobServiceUri"], credential=credential)
    container = blobs.create_container(f"c{unique}")
    container.upload_blob("payload.json", b'{"big": true}' * 50_000)
    assert container.download_blob("payload.json").readall() == b'{"big": true}' * 50_000
    container.delete_blob("payload.json")

    schemes = oauth_azurite.auth_schemes(since=mark)
    assert schemes["Bearer"] >= 12, schemes
    assert set(schemes) == {"Bearer"}, schemes
    assert oauth_azurite.key_based_requests(since=mark) == []
    assert fake_identity.token_count == 1  # one credential, one token, shared by the three services


def test_azurite_refuses_a_token_for_another_audience(
    identity_env: dict[str, str], oauth_azurite: Azurite, unique: str
) -> None:
    """OAuth mode really checks tokens: one issued for Key Vault does not open storage."""
    vault_token = ManagedIdentityCredential(client_id=FAKE_CLIENT_ID).get_token("https://vault.azure.net/.default")
    assert FakeIdentity.claims(vault_token.token)["aud"] == "https://vault.azure.net"
    tables = TableServiceClient(endpoint=identity_env["AzureWebJobsStorage__tableServiceUri"],
                                credential=StaticToken(vault_token.token))
    with pytest.raises(HttpResponseError) as raised:
        tables.create_table(f"t{unique}")
    assert raised.value.status_code == 403


def test_the_detector_sees_the_account_key(oauth_azurite: Azurite, tls: TestTLS, unique: str) -> None:
    """The account key still works on the OAuth Azurite: only the debug log shows it was used."""
    mark = oauth_azurite.log_mark()
    verify = {"connection_verify": str(tls.ca_bundle)}
    conn = oauth_azurite.connection_string
    assert conn.startswith("DefaultEndpointsProtocol=https;") and ACCOUNT_KEY in conn
    TableServiceClient.from_connection_string(conn, **verify).create_table(f"k{unique}")
    QueueServiceClient.from_connection_string(conn, **verify).create_queue(f"k{unique}")
    BlobServiceClient.from_connection_string(conn, **verify).create_container(f"k{unique}")

    keyed = oauth_azurite.key_based_requests(since=mark)
    assert sorted(r.service for r in keyed) == ["Blob", "Queue", "Table"]
    assert {r.scheme for r in keyed} == {"SharedKey"}
    assert oauth_azurite.auth_schemes(since=mark) == {"SharedKey": 3}
    assert "Bearer" not in oauth_azurite.auth_schemes(since=oauth_azurite.log_mark())


def test_the_log_parser_names_every_scheme() -> None:
    head = "2026-12-01T14:42:54.362Z 10b54edb info: {}StorageContextMiddleware: RequestMethod=GET RequestURL={} "
    tail = " ClientIP=127.0.0.1 Protocol=https HTTPVersion=1.1"
    lines = [
        head.format("Table", "https://127.0.0.1/devstoreaccount1/Tables")
        + 'RequestHeaders:{"host":"x","authorization":"Bearer eyJ.e30.sig"}' + tail,
        head.format("Queue", "https://127.0.0.1/devstoreaccount1/q")
        + 'RequestHeaders:{"authorization":"SharedKey devstoreaccount1:abc="}' + tail,
        head.format("Table", "https://127.0.0.1/devstoreaccount1/t")
        + 'RequestHeaders:{"authorization":"SharedKeyLite devstoreaccount1:abc="}' + tail,
        head.format("Blob", "https://127.0.0.1/devstoreaccount1/c/b?sv=2021&sig=abc%3D")
        + 'RequestHeaders:{"host":"x"}' + tail,
        head.format("Blob", "https://127.0.0.1/devstoreaccount1/c/b?skoid=o&sig=abc%3D")
        + 'RequestHeaders:{"host":"x"}' + tail,
        head.format("Blob", "https://127.0.0.1/devstoreaccount1/c/b") + 'RequestHeaders:{"host":"x"}' + tail,
        "2026-12-01T14:42:54.368Z 10b54edb error: ErrorMiddleware: ErrorName=StorageError",
    ]
    parsed = parse_debug_log("\n".join(lines))
    assert [r.scheme for r in parsed] == ["Bearer", "SharedKey", "SharedKeyLite", "SAS", "UserDelegationSAS", "none"]
    assert "abc%3D" not in str(parsed[3])  # a SAS signature is never printed in a failure message


def test_oauth_needs_tls() -> None:
    with pytest.raises(ValueError, match="HTTPS"):
        Azurite(oauth=True)
