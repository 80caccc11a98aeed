"""Storage clients (tables, queues, blobs) built once per process from one connection string.

Every module that touches storage gets its clients here, so timeouts, retries, the queue's
base64 encoding (matching host.json) and "create if missing" are decided in one place.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the SDKs are imported lazily: the HTTP ack's cold start counts against Zapier's second
    from azure.data.tables import TableClient
    from azure.storage.blob import ContainerClient
    from azure.storage.queue import QueueClient

# Resource names: one place, so the host bindings (function_app.py) and the code agree.
ACTIVITY_QUEUE = "runkeeper-activities"
POISON_QUEUE = ACTIVITY_QUEUE + "-poison"
PAYLOAD_CONTAINER = "runkeeper-payloads"
CONNECTIONS_TABLE = "stravaconnections"
ACTIVITY_LOG_TABLE = "activitylog"
OAUTH_STATE_TABLE = "oauthstates"
USERS_TABLE = "syncusers"  # personal API keys (as hashes), invitations, athletes (shared.users)

# Fail fast rather than hang: an HTTP caller (Zapier) has one second, and a 503 is better than a timeout.
_CLIENT_OPTIONS = {"connection_timeout": 5, "read_timeout": 20, "retry_total": 2, "retry_backoff_factor": 0.2}

# Queue and blob SDKs ignore retry_backoff_factor and default to 15 s + 3^n s between retries (45 s to fail).
_STORAGE_RETRY = {"backoff": 0.2, "random_jitter_range": 0.1, "retry_total": 2}

_lock = threading.Lock()
_created: set[tuple[str, str, str]] = set()


def _ensure(kind: str, conn: str, name: str, create: object) -> None:
    key = (kind, conn, name)
    if key in _created:
        return
    from azure.core.exceptions import ResourceExistsError

    try:
        create()  # type: ignore[operator]
    except ResourceExistsError:
        pass
    with _lock:
        _created.add(key)


@cache
def table(conn: str, name: str) -> TableClient:
    """A table client; the table is created on first use."""
    from azure.data.tables import TableClient

    client = TableClient.from_connection_string(conn, table_name=name, **_CLIENT_OPTIONS)
    _ensure("table", conn, name, client.create_table)
    return client


@cache
def queue(conn: str, name: str = ACTIVITY_QUEUE) -> QueueClient:
    """A queue client speaking base64, as host.json's messageEncoding tells the trigger to expect."""
    from azure.storage.queue import BinaryBase64DecodePolicy, BinaryBase64EncodePolicy, LinearRetry, QueueClient

    client = QueueClient.from_connection_string(
        conn,
        name,
        message_encode_policy=BinaryBase64EncodePolicy(),
        message_decode_policy=BinaryBase64DecodePolicy(),
        retry_policy=LinearRetry(**_STORAGE_RETRY),
        **_CLIENT_OPTIONS,
    )
    _ensure("queue", conn, name, client.create_queue)
    return client


@cache
def container(conn: str, name: str = PAYLOAD_CONTAINER) -> ContainerClient:
    from azure.storage.blob import ContainerClient, LinearRetry

    client = ContainerClient.from_connection_string(
        conn, name, retry_policy=LinearRetry(**_STORAGE_RETRY), **_CLIENT_OPTIONS
    )
    _ensure("container", conn, name, client.create_container)
    return client
