"""Where the app's storage is, how to reach it, and every SDK client for it (tables, queues, blobs).

Two ways in, the same two the Functions host reads for its own triggers:
- a connection string in ``AzureWebJobsStorage``: Azurite for local runs and tests;
- identity-based settings (``AzureWebJobsStorage__accountName`` or the three ``__*ServiceUri``, with
  ``__credential=managedidentity`` and ``__clientId`` for a user-assigned identity): Azure, where the
  account refuses Shared Key, and the command line on a laptop after ``az login``.

Every module that touches storage gets its clients here, so timeouts, retries, the queue's base64
encoding (matching host.json), tokens and "create if missing" are decided in one place; so is the name
prefix (``STORAGE_NAME_PREFIX``, for tests and side-by-side local experiments), which every builder puts
before the name it is given.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the SDKs are imported lazily: the HTTP ack's cold start counts against Zapier's second
    from azure.core.credentials import TokenCredential
    from azure.data.tables import TableClient
    from azure.storage.blob import ContainerClient
    from azure.storage.queue import QueueClient

# Resource names: one place, so the host bindings (function_app.py), infra/ and the code agree.
ACTIVITY_QUEUE = "runkeeper-activities"
POISON_QUEUE = ACTIVITY_QUEUE + "-poison"
PAYLOAD_CONTAINER = "runkeeper-payloads"
CONNECTIONS_TABLE = "stravaconnections"
ACTIVITY_LOG_TABLE = "activitylog"
OAUTH_STATE_TABLE = "oauthstates"
USERS_TABLE = "syncusers"  # personal API keys (as hashes), invitations, athletes (shared.storage.users)

# Put before every name above by the client builders below (tests: each test's own tables, queues and containers).
# Lowercase letters and digits, a letter first, at most 12: every table, queue and container name stays valid
# (tables take letters and digits only and start with a letter; 12 + the longest name stays far under 63).
NAME_PREFIX = "STORAGE_NAME_PREFIX"
NAME_PREFIX_MAX = 12
_NAME_PREFIX_RULE = re.compile(rf"[a-z][a-z0-9]{{0,{NAME_PREFIX_MAX - 1}}}")

CONNECTION = "AzureWebJobsStorage"
ACCOUNT_NAME = CONNECTION + "__accountName"
SERVICE_URIS = {kind: f"{CONNECTION}__{kind}ServiceUri" for kind in ("blob", "queue", "table")}
CREDENTIAL = CONNECTION + "__credential"
CLIENT_ID = CONNECTION + "__clientId"
IDENTITY_SETTINGS = (ACCOUNT_NAME, *SERVICE_URIS.values(), CREDENTIAL, CLIENT_ID)
DEVELOPMENT_STORAGE = "UseDevelopmentStorage=true"

# Fail fast rather than hang: an HTTP caller (Zapier) has one second, and a 503 is better than a timeout.
_CLIENT_OPTIONS = {"connection_timeout": 5, "read_timeout": 20, "retry_total": 2, "retry_backoff_factor": 0.2}

# Queue and blob SDKs ignore retry_backoff_factor and default to 15 s + 3^n s between retries (45 s to fail).
_STORAGE_RETRY = {"backoff": 0.2, "random_jitter_range": 0.1, "retry_total": 2}


class StorageSettingsError(ValueError):
    """The storage settings are missing, incomplete or contradict each other; the message names them."""


def check_name_prefix(prefix: str) -> str:
    """`prefix` if it keeps every resource name valid (empty, or a-z then a-z/0-9, at most 12), else an error."""
    if prefix and not _NAME_PREFIX_RULE.fullmatch(prefix):
        raise StorageSettingsError(
            f"{NAME_PREFIX} must be empty or lowercase letters and digits starting with a letter, at most "
            f"{NAME_PREFIX_MAX} characters (it is put before every table, queue and container name)")
    return prefix


@dataclass(frozen=True)
class Storage:
    """One storage account as the app reaches it: by connection string, or by service URLs and a token.

    Hashable, so clients are built once per process and target; the connection string (it may hold the
    account key) never appears in a repr.
    """

    connection_string: str | None = field(default=None, repr=False)
    blob_url: str | None = None
    queue_url: str | None = None
    table_url: str | None = None
    managed_identity: bool = False  # __credential=managedidentity: only the platform's identity, never a developer's
    client_id: str | None = None  # a user-assigned identity's client id
    prefix: str = ""  # STORAGE_NAME_PREFIX: put before every table, queue and container name (empty in Azure)

    def __post_init__(self) -> None:
        check_name_prefix(self.prefix)

    @property
    def uses_identity(self) -> bool:
        return self.connection_string is None

    def name(self, base: str) -> str:
        """The real name of the table, queue or container the app calls `base` (e.g. ACTIVITY_QUEUE)."""
        return self.prefix + base

    @classmethod
    def from_connection_string(cls, value: str, *, prefix: str = "") -> Storage:
        return cls(connection_string=value, prefix=prefix)

    @classmethod
    def from_settings(cls, env: Mapping[str, str], *, default: str | None = None) -> Storage:
        """The storage `env` describes (the host's own setting names, and STORAGE_NAME_PREFIX); `default`: a
        connection string for none."""
        prefix = check_name_prefix((env.get(NAME_PREFIX) or "").strip())
        values = {name: (env.get(name) or "").strip() for name in (CONNECTION, *IDENTITY_SETTINGS)}
        identity = [name for name in IDENTITY_SETTINGS if values[name]]
        conn = values[CONNECTION]
        if conn and identity:
            raise StorageSettingsError(
                f"{CONNECTION} (a connection string) and {', '.join(identity)} (identity-based) are both set: "
                f"keep one form")
        if conn:
            return cls.from_connection_string(conn, prefix=prefix)
        if not identity:
            if default is not None:
                return cls.from_connection_string(default, prefix=prefix)
            raise StorageSettingsError(
                f"missing storage setting: {CONNECTION} (a connection string) or {ACCOUNT_NAME} (identity-based)")
        return cls._from_identity_settings(values, prefix)

    @classmethod
    def _from_identity_settings(cls, values: Mapping[str, str], prefix: str) -> Storage:
        account, uris = values[ACCOUNT_NAME], {kind: values[name] for kind, name in SERVICE_URIS.items()}
        given = [SERVICE_URIS[kind] for kind, uri in uris.items() if uri]
        if account and given:
            raise StorageSettingsError(f"{ACCOUNT_NAME} and {', '.join(given)} are both set: keep one form")
        if account:
            uris = {kind: f"https://{account}.{kind}.core.windows.net" for kind in uris}
        missing = [SERVICE_URIS[kind] for kind, uri in uris.items() if not uri]
        if missing:
            raise StorageSettingsError(
                f"incomplete identity-based storage settings: {', '.join(missing)} missing (the app uses blobs, "
                f"queues and tables), or set {ACCOUNT_NAME} alone")
        plain = [SERVICE_URIS[kind] for kind, uri in uris.items() if not uri.lower().startswith("https://")]
        if plain:
            raise StorageSettingsError(f"{', '.join(plain)} must be https:// (tokens are never sent in clear)")
        credential = values[CREDENTIAL]
        if credential and credential.lower() != "managedidentity":
            raise StorageSettingsError(f"{CREDENTIAL} must be managedidentity (or unset), not {credential!r}")
        return cls(blob_url=uris["blob"].rstrip("/"), queue_url=uris["queue"].rstrip("/"),
                   table_url=uris["table"].rstrip("/"), managed_identity=bool(credential),
                   client_id=values[CLIENT_ID] or None, prefix=prefix)


@cache
def credential(managed_identity: bool, client_id: str | None) -> TokenCredential:
    """One token credential per process: it caches its tokens, so a warm call never asks the token endpoint.

    `managed_identity`: the platform's identity only (IDENTITY_ENDPOINT in Azure). Otherwise the default
    chain, which is the managed identity in Azure and the developer's `az login` on a laptop.
    """
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    if managed_identity:  # one quick retry: the storage call's own retries ask it again, and Zapier has 1 s
        return ManagedIdentityCredential(client_id=client_id, retry_total=1, retry_backoff_factor=0.2)
    return DefaultAzureCredential(managed_identity_client_id=client_id)


def _credential(storage: Storage) -> TokenCredential:
    return credential(storage.managed_identity, storage.client_id)


_lock = threading.Lock()
_created: set[tuple[str, Storage, str]] = set()


def _ensure(kind: str, storage: Storage, name: str, create: Any) -> None:
    """Create the resource if missing: only with a connection string (Azurite). In Azure the template creates
    every queue, table and container, so the app's identity needs no create rights and a cold start saves a call."""
    key = (kind, storage, name)
    if storage.uses_identity or key in _created:
        return
    from azure.core.exceptions import ResourceExistsError

    try:
        create()
    except ResourceExistsError:
        pass
    with _lock:
        _created.add(key)


@cache
def table(storage: Storage, name: str) -> TableClient:
    """A table client (`name` as the app calls it, the storage's prefix put before it); with a connection string
    the table is created on first use."""
    from azure.data.tables import TableClient

    name = storage.name(name)
    if storage.connection_string is not None:
        client = TableClient.from_connection_string(storage.connection_string, table_name=name, **_CLIENT_OPTIONS)
    else:
        assert storage.table_url is not None
        client = TableClient(storage.table_url, table_name=name, credential=_credential(storage), **_CLIENT_OPTIONS)
    _ensure("table", storage, name, client.create_table)
    return client


@cache
def queue(storage: Storage, name: str = ACTIVITY_QUEUE) -> QueueClient:
    """A queue client speaking base64, as host.json's messageEncoding tells the trigger to expect (`name` as the
    app calls it, the storage's prefix put before it)."""
    from azure.storage.queue import BinaryBase64DecodePolicy, BinaryBase64EncodePolicy, LinearRetry, QueueClient

    name = storage.name(name)
    options: dict[str, Any] = dict(
        message_encode_policy=BinaryBase64EncodePolicy(),
        message_decode_policy=BinaryBase64DecodePolicy(),
        retry_policy=LinearRetry(**_STORAGE_RETRY),
        **_CLIENT_OPTIONS,
    )
    if storage.connection_string is not None:
        client = QueueClient.from_connection_string(storage.connection_string, name, **options)
    else:
        assert storage.queue_url is not None
        client = QueueClient(storage.queue_url, name, credential=_credential(storage), **options)
    _ensure("queue", storage, name, client.create_queue)
    return client


@cache
def container(storage: Storage, name: str = PAYLOAD_CONTAINER) -> ContainerClient:
    """A blob container client (`name` as the app calls it, the storage's prefix put before it); with a connection
    string the container is created on first use."""
    from azure.storage.blob import ContainerClient, LinearRetry

    name = storage.name(name)
    options: dict[str, Any] = dict(retry_policy=LinearRetry(**_STORAGE_RETRY), **_CLIENT_OPTIONS)
    if storage.connection_string is not None:
        client = ContainerClient.from_connection_string(storage.connection_string, name, **options)
    else:
        assert storage.blob_url is not None
        client = ContainerClient(storage.blob_url, name, credential=_credential(storage), **options)
    _ensure("container", storage, name, client.create_container)
    return client
