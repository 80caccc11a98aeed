"""Sending a failed or rejected activity again: the payload a failure keeps, and the retry itself.

A definitive failure keeps its payload as a claim check at ``failed/<user>/<sync id>.json`` (a fixed
name, so no log field points at it and a repeated failure overwrites it); the worker deletes it once the
activity is on Strava. A retry moves the row back to ``queued`` with a compare-and-swap (two retries at
once: one wins) and sends a message naming that blob. A rejected payload failed validation, so it can
only come back corrected: the retry then carries the new payload, which is queued under its own sync id.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from shared.storage import activitylog, clients, messages
from shared.storage.clients import Storage

KEPT_PREFIX = "failed/"

log = logging.getLogger(__name__)


class RetryRefused(Exception):
    """The retry cannot happen as asked; `status` is the HTTP answer (404, 409, 400, 503)."""

    def __init__(self, status: int, message: str, problems: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.problems = problems or []


@dataclass(frozen=True)
class Retried:
    status_code: int  # 202 queued again; 200 the corrected activity was already on Strava
    sync_id: str  # the id now carrying the activity (a corrected payload may have another)
    status: str
    retried: str  # the id that was retried
    activity_id: str | None = None
    replaced: bool = False  # the retried row was superseded by the corrected activity's own row
    notes: list[str] = field(default_factory=list)


def kept_name(user: str, sync_id: str) -> str:
    return f"{KEPT_PREFIX}{user}/{sync_id}.json"


def _container(storage: Storage) -> Any:
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


def retry(storage: Storage, user: str, sync_id: str, *, timezone: str,
          payload: dict[str, Any] | None = None) -> Retried:
    """Queue `sync_id` of `user` again: with its kept payload, or with a corrected `payload`."""
    entry = activitylog.get(storage, user, sync_id)
    if entry is None:
        raise RetryRefused(404, f"no activity {sync_id} in this log")
    if payload is not None:
        return _corrected(storage, entry, payload, timezone)
    if entry.status == "rejected":
        raise RetryRefused(409, "this payload was rejected by validation, so sending it unchanged would fail the "
                                "same way: post the corrected payload as this request's body",
                           entry.problems)
    if entry.status != "failed":
        raise RetryRefused(409, f"activity {sync_id} is {entry.status}: only failed or rejected activities "
                                "can be retried")
    if not has_kept(storage, user, sync_id):
        if entry.source == "import":
            raise RetryRefused(409, "this activity came from a Runkeeper export, which the app does not keep: "
                                    "run `python -m shared.cli import <export> --retry-failed`")
        raise RetryRefused(409, "the payload of this activity was not kept (it failed before payloads were "
                                "kept, or it never arrived whole): replay the Zap run, or post the payload as "
                                "this request's body")
    return _requeue(storage, entry)


def _requeue(storage: Storage, entry: activitylog.Entry) -> Retried:
    try:
        # A failed upload is sent afresh; if Strava has it after all, its "duplicate" then counts as ours.
        queued = activitylog.save(storage, entry, status="queued", error=None, next_try=None, lease_until=None,
                                  lease_owner=None, upload_id=None, problems=[], excerpt=None,
                                  ambiguous=entry.ambiguous or bool(entry.upload_id))
    except activitylog.Conflict:
        now = activitylog.get(storage, entry.user, entry.sync_id)
        raise RetryRefused(409, f"activity {entry.sync_id} changed meanwhile (now "
                                f"{now.status if now else 'gone'}); look again") from None
    job = messages.Job(sync_id=entry.sync_id, user=entry.user, source=entry.source,
                   blob=kept_name(entry.user, entry.sync_id))
    try:
        messages.send(storage, job)
    except Exception as exc:
        log.warning("retry of sync_id=%s could not be queued (%s)", entry.sync_id, type(exc).__name__)
        try:
            activitylog.save(storage, queued, status="failed", error=entry.error)
        except Exception:  # storage failing both ways: the row shows `queued` with no message behind it
            log.error("activity sync_id=%s left queued without a message; post it again", entry.sync_id)
        raise RetryRefused(503, "storage is unavailable; nothing was queued, retry later") from None
    log.info("activity sync_id=%s user=%s requeued by a retry", entry.sync_id, entry.user)
    return Retried(202, entry.sync_id, "queued", entry.sync_id)


def _corrected(storage: Storage, entry: activitylog.Entry, payload: dict[str, Any], timezone: str) -> Retried:
    """Validate the corrected payload like the ack does, queue it, and retire the row it corrects."""
    from shared.live.ack import DROPPED_KEYS, Unavailable, accept, validate

    if entry.status not in activitylog.RETRYABLE:
        raise RetryRefused(409, f"activity {entry.sync_id} is {entry.status}: only failed or rejected activities "
                                "can be retried")
    for key in DROPPED_KEYS:
        payload.pop(key, None)
    parsed = validate(payload, timezone)
    if isinstance(parsed, list):
        raise RetryRefused(400, "the corrected activity has problems; nothing was queued",
                           [p.as_dict() for p in parsed])
    try:
        outcome = accept(storage, entry.user, payload, parsed, timezone)
    except Unavailable as exc:
        raise RetryRefused(503, str(exc)) from None
    replaced = outcome.sync_id != entry.sync_id
    if replaced:
        _retire(storage, entry)
    log.info("activity sync_id=%s user=%s retried with a corrected payload as %s", entry.sync_id, entry.user,
             outcome.sync_id)
    return Retried(outcome.status_code, outcome.sync_id, outcome.status, entry.sync_id, outcome.activity_id,
                   replaced)


def _retire(storage: Storage, entry: activitylog.Entry) -> None:
    """The corrected activity has its own row now: the one it corrects (and its kept payload) goes."""
    from azure.core import MatchConditions
    from azure.core.exceptions import ResourceModifiedError, ResourceNotFoundError

    try:
        activitylog.table(storage).delete_entity(entry.user, entry.sync_id, etag=entry.etag,
                                                 match_condition=MatchConditions.IfNotModified)
    except (ResourceModifiedError, ResourceNotFoundError):
        return  # someone changed it meanwhile: leave it to them
    drop_kept(storage, entry.user, entry.sync_id)


def retry_all_failed(storage: Storage, user: str, *, timezone: str) -> tuple[list[Retried], list[tuple[str, str]]]:
    """Every failed activity of `user` queued again; (retried, [(sync id, why not)])."""
    done: list[Retried] = []
    refused: list[tuple[str, str]] = []
    for entry in activitylog.list_activities(storage, user, status="failed", limit=10**6):
        try:
            done.append(retry(storage, user, entry.sync_id, timezone=timezone))
        except RetryRefused as exc:
            refused.append((entry.sync_id, str(exc)))
    return done, refused
