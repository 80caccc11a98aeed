"""The queue message that carries one activity to the worker, and its claim check for big payloads.

A message is JSON: ``{"v": 1, "id": sync id, "user": ..., "source": ..., "tries": n}`` plus either
``"payload"`` (the Zapier JSON object, inline) or ``"blob"`` (its name in the payload container) when
the message would not fit the queue's 64 KiB (48 KiB before base64).
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field, replace
from typing import Any

from shared.storage import clients
from shared.storage.clients import Storage

VERSION = 1
# 64 KiB per message after base64 (4/3): 48 KiB of raw bytes, minus a margin for the envelope.
INLINE_LIMIT = 48 * 1024 - 512
MAX_VISIBILITY = 7 * 24 * 3600 - 60  # the queue refuses a longer invisibility


class JobError(ValueError):
    """A message that is not one of ours, or whose payload blob is gone: retrying cannot help."""


@dataclass(frozen=True)
class Job:
    sync_id: str
    user: str
    source: str = "zapier"
    payload: dict[str, Any] | None = field(default=None, repr=False)
    blob: str | None = None
    tries: int = 0  # transient failures so far (a rate-limit deferral does not count)
    backoffs: int = 0  # times this job stepped aside for another worker's lease

    def again(self, **changes: Any) -> Job:
        return replace(self, **changes)


@dataclass(frozen=True)
class Sent:
    """What the queue answered for a message we sent: enough to take it back."""

    message_id: str
    pop_receipt: str
    blob: str | None


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def encode(job: Job, payload_json: str | None = None) -> bytes:
    """The message body; `payload_json` is the payload already serialised (big payloads are serialised once)."""
    head: dict[str, Any] = {"v": VERSION, "id": job.sync_id, "user": job.user, "source": job.source}
    if job.tries:
        head["tries"] = job.tries
    if job.backoffs:
        head["backoffs"] = job.backoffs
    if job.blob is not None:
        head["blob"] = job.blob
        return _dumps(head).encode("utf-8")
    if payload_json is None:
        payload_json = _dumps(job.payload)
    return (_dumps(head)[:-1] + ',"payload":' + payload_json + "}").encode("utf-8")


def decode(body: bytes | str) -> Job:
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise JobError("queue message is not JSON") from exc
    if not isinstance(data, dict) or data.get("v") != VERSION:
        raise JobError("queue message is not a sync job (missing or unknown version)")
    problems = [k for k in ("id", "user", "source") if not isinstance(data.get(k), str) or not data.get(k)]
    payload, blob = data.get("payload"), data.get("blob")
    if (payload is None) == (blob is None):
        problems.append("exactly one of payload/blob")
    elif payload is not None and not isinstance(payload, dict):
        problems.append("payload (must be an object)")
    elif blob is not None and not isinstance(blob, str):
        problems.append("blob (must be a name)")
    tries, backoffs = data.get("tries", 0), data.get("backoffs", 0)
    if not isinstance(tries, int) or not isinstance(backoffs, int):
        problems.append("tries/backoffs (must be integers)")
    if problems:
        raise JobError("queue message has bad field(s): " + ", ".join(problems))
    return Job(sync_id=data["id"], user=data["user"], source=data["source"], payload=payload, blob=blob,
               tries=tries, backoffs=backoffs)


def peek_id(body: bytes | str) -> tuple[str | None, str | None]:
    """(user, sync id) of a message even when the rest is broken, so the poison handler can still name it."""
    try:
        data = json.loads(body)
        if isinstance(data, dict):
            user, sid = data.get("user"), data.get("id")
            return (user if isinstance(user, str) else None, sid if isinstance(sid, str) else None)
    except (ValueError, UnicodeDecodeError):
        pass
    return None, None


def prepare(storage: Storage, job: Job) -> tuple[Job, bytes]:
    """The message body for `job`, moving its payload to a blob first when it would not fit inline."""
    if job.blob is not None:
        return job, encode(job)
    payload_json = _dumps(job.payload)
    body = encode(job, payload_json)
    if len(body) <= INLINE_LIMIT:
        return job, body
    name = put_payload(storage, job.user, payload_json.encode("utf-8"), job.sync_id)
    job = replace(job, payload=None, blob=name)
    return job, encode(job)


def put_payload(storage: Storage, user: str, data: bytes, sync_id: str | None = None) -> str:
    """Store a payload (JSON bytes) as a claim-check blob; its name is unique, so a replay never overwrites one."""
    from azure.storage.blob import ContentSettings

    name = f"{user}/{sync_id or 'incoming'}/{os.urandom(16).hex()}.json"  # not uuid: it imports platform
    clients.container(storage, clients.PAYLOAD_CONTAINER).upload_blob(
        name, data, overwrite=True, content_settings=ContentSettings(content_type="application/json"))
    return name


def send(storage: Storage, job: Job, delay: float = 0) -> Sent:
    """Queue `job` (inline or via a blob), invisible for `delay` seconds. Messages never expire on their own."""
    job, body = prepare(storage, job)
    visibility = max(0, min(math.ceil(delay), MAX_VISIBILITY))  # whole seconds; never sooner than asked
    message = clients.queue(storage, clients.ACTIVITY_QUEUE).send_message(
        body, visibility_timeout=visibility or None, time_to_live=-1)
    return Sent(message_id=message.id, pop_receipt=message.pop_receipt, blob=job.blob)


def retract(storage: Storage, sent: Sent, *, delete_blob: bool = True) -> None:
    """Take back a message we sent (and its blob). A worker may already hold it: then it is simply left."""
    from azure.core.exceptions import HttpResponseError

    try:
        clients.queue(storage, clients.ACTIVITY_QUEUE).delete_message(sent.message_id, sent.pop_receipt)
    except HttpResponseError:  # received by a worker meanwhile (new pop receipt) or gone: it is idempotent
        return
    if delete_blob and sent.blob:
        delete_payload(storage, sent.blob)


def load_payload(storage: Storage, job: Job) -> dict[str, Any]:
    if job.payload is not None:
        return job.payload
    from azure.core.exceptions import ResourceNotFoundError

    assert job.blob is not None
    try:
        data = clients.container(storage, clients.PAYLOAD_CONTAINER).download_blob(job.blob).readall()
    except ResourceNotFoundError as exc:
        raise JobError(f"payload blob {job.blob} is missing") from exc
    try:
        payload = json.loads(data)
    except ValueError as exc:
        raise JobError(f"payload blob {job.blob} is not JSON") from exc
    if not isinstance(payload, dict):
        raise JobError(f"payload blob {job.blob} is not a JSON object")
    return payload


def delete_payload(storage: Storage, blob: str | None) -> None:
    """Remove a claim-check blob; already gone is fine."""
    if not blob:
        return
    from azure.core.exceptions import ResourceNotFoundError

    try:
        clients.container(storage, clients.PAYLOAD_CONTAINER).delete_blob(blob)
    except ResourceNotFoundError:
        pass
