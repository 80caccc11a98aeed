"""Single-use OAuth `state` values in Table Storage, so a callback is only honoured for a connect we started.

The state is random and carries nothing (never the API key). Consuming it is a compare-and-swap on the
row's ETag, so two callbacks racing with the same state cannot both succeed. Used rows are kept a
while to tell "already used" from "unknown", then purged.
"""

from __future__ import annotations

import re
import secrets
import time
from typing import Literal

from shared.storage import clients
from shared.storage.clients import Storage

PARTITION = "state"
TTL_SECONDS = 600
KEEP_USED_SECONDS = 3600
_VALID = re.compile(r"[A-Za-z0-9_-]{16,128}")

StateCheck = Literal["ok", "unknown", "used", "expired"]


def create_state(storage: Storage, *, now: float | None = None, ttl: int = TTL_SECONDS) -> str:
    now = time.time() if now is None else now
    state = secrets.token_urlsafe(32)
    clients.table(storage, clients.OAUTH_STATE_TABLE).create_entity({
        "PartitionKey": PARTITION, "RowKey": state, "created": float(now), "expires_at": float(now + ttl),
        "used": False,
    })
    return state


def consume_state(storage: Storage, state: str | None, *, now: float | None = None) -> StateCheck:
    """Mark the state used; "ok" only for the first use of a known state before it expires."""
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError
    from azure.data.tables import UpdateMode

    if not state or not _VALID.fullmatch(state):
        return "unknown"
    now = time.time() if now is None else now
    table = clients.table(storage, clients.OAUTH_STATE_TABLE)
    try:
        entity = table.get_entity(PARTITION, state)
    except ResourceNotFoundError:
        return "unknown"
    if entity.get("used"):
        return "used"
    try:
        table.update_entity({"PartitionKey": PARTITION, "RowKey": state, "used": True, "used_at": float(now)},
                            mode=UpdateMode.MERGE, etag=entity.metadata.get("etag"),
                            match_condition=MatchConditions.IfNotModified)
    except (ResourceModifiedError, ResourceNotFoundError):
        return "used"  # another callback with the same state got there first
    if float(entity.get("expires_at") or 0) <= now:
        return "expired"
    return "ok"


def purge(storage: Storage, *, now: float | None = None, limit: int = 100) -> int:
    """Delete states that expired over an hour ago (bounded work per call); answers how many went."""
    from azure.core.exceptions import ResourceNotFoundError

    now = time.time() if now is None else now
    table = clients.table(storage, clients.OAUTH_STATE_TABLE)
    rows = table.query_entities("PartitionKey eq @p and expires_at lt @cutoff",
                                parameters={"p": PARTITION, "cutoff": float(now - KEEP_USED_SECONDS)},
                                select=["PartitionKey", "RowKey"], results_per_page=limit)
    deleted = 0
    for row in rows:
        try:
            table.delete_entity(PARTITION, row["RowKey"])
        except ResourceNotFoundError:
            pass
        deleted += 1
        if deleted >= limit:
            break
    return deleted
