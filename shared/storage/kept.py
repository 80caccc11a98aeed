"""Kept payloads: what a definitively failed activity leaves behind so the owner can send it again.

A definitive failure keeps its payload as a claim check at ``failed/<user>/<sync id>.json`` (a fixed
name, so no log field points at it and a repeated failure overwrites it); the worker deletes it once the
activity is on Strava. The retry (shared.owner.retry) queues a message naming that blob.
"""

from __future__ import annotations

import json
import logging
from typing import TYPE_CHECKING, Any

from shared.storage import clients, messages
from shared.storage.clients import Storage

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient

KEPT_PREFIX = "failed/"

log = logging.getLogger(__name__)


def kept_name(user: str, sync_id: str) -> str:
    return f"{KEPT_PREFIX}{user}/{sync_id}.json"


def _container(storage: Storage) -> ContainerClient:
    return clients.container(storage, clients.PAYLOAD_CONTAINER)


def keep_failed(storage: Storage, user: str, sync_id: str, *, payload: dict[str, Any] | None = None,
                blob: str | None = None) -> bool:
    """Keep a failed activity's payload (given, or read from the message's blob) for a retry. Best effort.

    The caller deletes the message's own blob afterwards (unless it is the kept one: `kept_name`).
    """
    name = kept_name(user, sync_id)
    if blob == name:
        return True  # a retry that failed again: the kept copy is already there
    try:
        if payload is None and blob:
            payload = messages.load_payload(storage, messages.Job(sync_id=sync_id, user=user, blob=blob))
        if payload is None:
            return False
        data = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        _container(storage).upload_blob(name, data, overwrite=True)
    except messages.JobError:
        return False  # the payload itself is gone: nothing to keep
    except Exception as exc:  # the failure is recorded either way; a retry will then say nothing was kept
        log.warning("could not keep the payload of failed activity sync_id=%s (%s)", sync_id, type(exc).__name__)
        return False
    return True


def discard(storage: Storage, user: str, sync_id: str, blob: str | None) -> None:
    """Delete a message's blob once its payload is kept (or not needed), never the kept copy itself."""
    if blob and blob != kept_name(user, sync_id):
        messages.delete_payload(storage, blob)


def drop_kept(storage: Storage, user: str, sync_id: str) -> None:
    """The activity is on Strava (or superseded): its kept payload is no longer needed."""
    messages.delete_payload(storage, kept_name(user, sync_id))


def has_kept(storage: Storage, user: str, sync_id: str) -> bool:
    return bool(_container(storage).get_blob_client(kept_name(user, sync_id)).exists())
