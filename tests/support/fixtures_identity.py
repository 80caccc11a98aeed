"""Fixtures that run the app exactly as in Azure with identity-based storage: no account key anywhere.

Loaded by conftest via pytest_plugins. Pieces, each started only when a test asks for it:
- `tls` (session): a throwaway CA and a server certificate for 127.0.0.1/localhost (tests/tls.py).
- `oauth_azurite` (session): Azurite over HTTPS with `--oauth basic` and a debug log (tests/azurite.py).
- `fake_identity_server` (session) and `fake_identity` (the same server, reset for each test): the
  App Service managed-identity endpoint (tests/fake_identity.py), as a user-assigned identity whose
  client id is `FAKE_CLIENT_ID`.
- `identity_env`: the environment of an app configured as in Azure, and nothing else: the three
  `AzureWebJobsStorage__*ServiceUri` (https), `__credential=managedidentity`, `__clientId`,
  `IDENTITY_ENDPOINT`/`IDENTITY_HEADER`, `REQUESTS_CA_BUNDLE`. It removes `AzureWebJobsStorage` and any
  other way to a key or another credential, and fails the test at teardown if Azurite saw a request
  made with the account key (Shared Key, Shared Key Lite, key-signed SAS) during it. A subprocess (the
  CLI in a child) inherits all of it from os.environ.

The identity endpoint and header stay the same for the whole session, because an app that keeps its
credential across tests keeps the values it read when building it.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from shared.storage import clients
from shared.storage.clients import Storage
from tests.support.azurite import ACCOUNT_KEY, Azurite
from tests.support.fake_identity import FAKE_CLIENT_ID, FakeIdentity

if TYPE_CHECKING:
    from tests.support.tls import TestTLS

# Variables through which a process could reach storage with a key, or pick another credential than the
# managed identity (azure-identity's EnvironmentCredential, workload identity, Service Fabric, Arc, IMDS).
FORBIDDEN_ENV = (
    "AzureWebJobsStorage",
    "AzureWebJobsStorage__accountName",  # the URIs are explicit here; one source of endpoints, not two
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_KEY",
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_TENANT_ID",
    "AZURE_FEDERATED_TOKEN_FILE",
    "IDENTITY_SERVER_THUMBPRINT",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
)
KEY_MARKERS = ("accountkey=", "sharedaccesssignature=", ACCOUNT_KEY.lower())


def key_material_in_env(environ: dict[str, str] | os._Environ[str]) -> list[str]:
    """Names of variables that hold an account key, a SAS or a connection string with one (never values)."""
    return [name for name, value in environ.items() if any(m in value.lower() for m in KEY_MARKERS)]


@pytest.fixture(scope="session")
def tls(tmp_path_factory: pytest.TempPathFactory) -> TestTLS:
    from tests.support.tls import TestTLS  # imported here so that the plugin loads even where trustme is missing

    return TestTLS.create(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="session")
def oauth_azurite(tls: TestTLS) -> Iterator[Azurite]:
    """Azurite as Azure Storage looks to an app with an identity: HTTPS, bearer tokens, and a debug log."""
    server = Azurite(oauth=True, tls=tls).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def fake_identity_server() -> Iterator[FakeIdentity]:
    """The session's managed-identity endpoint, never reset (for fixtures wider than one test)."""
    fake = FakeIdentity(client_id=FAKE_CLIENT_ID).start()
    try:
        yield fake
    finally:
        fake.stop()


@pytest.fixture
def fake_identity(fake_identity_server: FakeIdentity) -> Iterator[FakeIdentity]:
    """The session's managed-identity endpoint, answering normally and with no history at the test's start."""
    fake_identity_server.reset()
    yield fake_identity_server
    fake_identity_server.reset()


@pytest.fixture
def identity_env(
    monkeypatch: pytest.MonkeyPatch, tls: TestTLS, oauth_azurite: Azurite, fake_identity: FakeIdentity,
    storage_prefix: str,
) -> Iterator[dict[str, str]]:
    """Identity-based storage settings only, as the Functions host reads them in Azure (with this test's
    STORAGE_NAME_PREFIX, so its tables, queues and container are its own); returns what it set.

    Teardown fails the test if Azurite saw a request made with the account key during it.
    """
    for name in FORBIDDEN_ENV:
        monkeypatch.delenv(name, raising=False)
    env = {
        "AzureWebJobsStorage__blobServiceUri": oauth_azurite.blob_url,
        "AzureWebJobsStorage__queueServiceUri": oauth_azurite.queue_url,
        "AzureWebJobsStorage__tableServiceUri": oauth_azurite.table_url,
        "AzureWebJobsStorage__credential": "managedidentity",
        "AzureWebJobsStorage__clientId": FAKE_CLIENT_ID,
        "STORAGE_NAME_PREFIX": storage_prefix,
        **fake_identity.env(),
        "REQUESTS_CA_BUNDLE": str(tls.ca_bundle),  # replaces the system bundle: only local HTTPS in tests
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    leaked = key_material_in_env(os.environ)
    assert not leaked, f"account key or connection string still in the environment: {leaked}"
    mark = oauth_azurite.log_mark()
    yield env
    # Only what reached storage is judged here: a test may put a connection string back on purpose
    # (contradictory settings must be refused), and then a key-signed request is exactly the failure.
    keyed = oauth_azurite.key_based_requests(since=mark)
    if keyed:
        lines = [f"  {request}" for request in keyed[:10]]
        pytest.fail(f"{len(keyed)} storage request(s) made with the account key, not the identity:\n"
                    + "\n".join(lines), pytrace=False)


def provision(storage: Storage) -> None:
    """Create every queue, table and container the app uses, as infra/ does in Azure (the app creates none there).

    Done with the identity's own token: an identity-path test never holds the account key.
    """
    for name in (clients.ACTIVITY_QUEUE, clients.POISON_QUEUE):
        _created(clients.queue(storage, name).create_queue)
    for name in (clients.ACTIVITY_LOG_TABLE, clients.CONNECTIONS_TABLE, clients.OAUTH_STATE_TABLE, clients.USERS_TABLE):
        _created(clients.table(storage, name).create_table)
    _created(clients.container(storage, clients.PAYLOAD_CONTAINER).create_container)


def _created(create: Callable[[], object]) -> None:
    from azure.core.exceptions import ResourceExistsError

    try:
        create()
    except ResourceExistsError:
        pass
