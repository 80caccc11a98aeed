"""Sending a failed or rejected activity again: the owner's retry, over HTTP or from the command line.

A failed activity goes back with its kept payload (shared.storage.kept): the row moves back to
``queued`` with a compare-and-swap (two retries at once: one wins) and a message names the kept blob.
A rejected payload failed validation, so it can only come back corrected: the retry then takes the
payload in through shared.live.intake, as the ack would, queued under its own sync id.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from shared.model.status import Status
from shared.storage import activitylog, messages
from shared.storage.clients import Storage
from shared.storage.kept import drop_kept, has_kept, kept_name

log = logging.getLogger(__name__)


class RetryRefused(Exception):
    """The retry cannot happen as asked; `status` is the HTTP answer (404, 409, 400, 503)."""

    def __init__(self, status: int, message: str, problems: list[dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.problems = problems or []


@dataclass(frozen=True)
class Retried:
    """What a retry did, for the HTTP answer and the command line's report."""

    status_code: int  # 202 queued again; 200 the corrected activity was already on Strava
    sync_id: str  # the id now carrying the activity (a corrected payload may have another)
    status: str
    retried: str  # the id that was retried
    activity_id: str | None = None
    replaced: bool = False  # the retried row was superseded by the corrected activity's own row
    notes: list[str] = field(default_factory=list)


def retry(storage: Storage, user: str, sync_id: str, *, timezone: str,
          payload: dict[str, Any] | None = None) -> Retried:
    """Queue `sync_id` of `user` again: with its kept payload, or with a corrected `payload`."""
    entry = activitylog.get(storage, user, sync_id)
    if entry is None:
        raise RetryRefused(404, f"no activity {sync_id} in this log")
    if payload is not None:
        return _corrected(storage, entry, payload, timezone)
    if entry.status == Status.REJECTED:
        raise RetryRefused(409, "this payload was rejected by validation, so sending it unchanged would fail the "
                                "same way: post the corrected payload as this request's body",
                           entry.problems)
    if entry.status == Status.SYNCED and entry.rules_pending and entry.activity_id:
        return _rules_again(storage, entry)
    if entry.status != Status.FAILED:
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


def _rules_again(storage: Storage, entry: activitylog.Entry) -> Retried:
    """A synced activity whose rules (gear, mute) did not apply: the worker applies the missing ones."""
    job = messages.Job(sync_id=entry.sync_id, user=entry.user, source=entry.source, payload={})  # rules only
    try:
        messages.send(storage, job)
    except Exception as exc:
        log.warning("rules retry of sync_id=%s could not be queued (%s)", entry.sync_id, type(exc).__name__)
        raise RetryRefused(503, "storage is unavailable; nothing was queued, retry later") from None
    log.info("activity sync_id=%s user=%s: its rules queued again by a retry", entry.sync_id, entry.user)
    return Retried(202, entry.sync_id, Status.SYNCED, entry.sync_id, entry.activity_id,
                   notes=["the activity is on Strava; its missing rules (" + _rule_names(entry) + ") are applied"])


def _rule_names(entry: activitylog.Entry) -> str:
    from shared.model import rules

    return rules.names(rules.loads(entry.rules_pending))


def _requeue(storage: Storage, entry: activitylog.Entry) -> Retried:
    try:
        # A failed upload is sent afresh; if Strava has it after all, its "duplicate" then counts as ours.
        queued = activitylog.save(storage, entry, status=Status.QUEUED, error=None, next_try=None, lease_until=None,
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
            activitylog.save(storage, queued, status=Status.FAILED, error=entry.error)
        except Exception:  # storage failing both ways: the row shows `queued` with no message behind it
            log.error("activity sync_id=%s left queued without a message; post it again", entry.sync_id)
        raise RetryRefused(503, "storage is unavailable; nothing was queued, retry later") from None
    log.info("activity sync_id=%s user=%s requeued by a retry", entry.sync_id, entry.user)
    return Retried(202, entry.sync_id, Status.QUEUED, entry.sync_id)


def _corrected(storage: Storage, entry: activitylog.Entry, payload: dict[str, Any], timezone: str) -> Retried:
    """Validate the corrected payload like the ack does, queue it, and retire the row it corrects."""
    from shared.live.intake import Unavailable, accept, drop_keys, validate

    if entry.status not in activitylog.RETRYABLE:
        raise RetryRefused(409, f"activity {entry.sync_id} is {entry.status}: only failed or rejected activities "
                                "can be retried")
    drop_keys(payload)
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
    for entry in activitylog.list_activities(storage, user, status=Status.FAILED, limit=10**6):
        try:
            done.append(retry(storage, user, entry.sync_id, timezone=timezone))
        except RetryRefused as exc:
            refused.append((entry.sync_id, str(exc)))
    return done, refused
