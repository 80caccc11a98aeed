"""Taking an activity in: validate it, log it as `queued`, queue it; what the ack and a corrected retry share.

No HTTP here: the ack (shared.live.ack) and the owner's retry with a corrected payload
(shared.owner.retry) both hand a decoded payload to `validate` and `accept`, so the same payload gets
the same checks, the same sync id and the same "seen before?" answer whichever way it came in.
Nothing here imports gpxpy or a Strava module at import time: the ack's cold start loads this module.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from shared.model.activity import Activity, Problem
from shared.model.status import Status
from shared.storage import activitylog, cas
from shared.storage import messages as jobs
from shared.storage.clients import Storage
from shared.web.auth import redact, redact_problems

if TYPE_CHECKING:
    from collections.abc import Callable

    from shared.runkeeper.payload import Checked

MAX_BODY = 20 * 1024 * 1024  # the largest body an HTTP function reads (a new activity, or a corrected one)
DROPPED_KEYS = ("apiKey", "apiEndpoint")  # the original Code step's key and target: never stored
# A `queued` row no worker has touched for this long lost its message (e.g. an ack answered 503 after
# the row was written but before the message was): a replay queues it again instead of trusting the row.
STALE_QUEUED = timedelta(minutes=10)

log = logging.getLogger("shared.live.intake")


class Unavailable(Exception):
    """Storage (or configuration) failed: the caller must retry, so the answer is 503, never 202."""


@dataclass
class Accepted:
    """What became of a payload: 202 queued (new, or queued again), or 200 with the status it already had."""

    status_code: int
    sync_id: str
    status: str
    activity_id: str | None = None


def drop_keys(payload: dict[str, Any]) -> None:
    """Remove what must never be stored (the caller's key, the old target URL), in place."""
    for key in DROPPED_KEYS:
        payload.pop(key, None)


def validate(payload: dict[str, Any], timezone: str) -> Activity | Checked | list[Problem]:
    """Every problem with a payload, or what to log as queued; also checks a corrected payload sent on retry.

    A payload with a path is checked, not built (the worker builds it); one without is converted here, so
    a manual activity Strava would refuse is a 400 now rather than a failure later.
    """
    from shared.runkeeper.payload import check_payload, parse_payload

    checked = check_payload(payload, timezone)
    if isinstance(checked, list) or checked.points >= 2:
        return checked
    parsed = parse_payload(payload, timezone)
    if isinstance(parsed, list):
        return parsed
    from shared.strava.convert import to_strava  # without a path this builds no GPX: cheap

    try:
        to_strava(parsed, timezone)
    except ValueError as exc:
        return [Problem("activityDuration", str(exc))]
    return parsed


def record_rejected(storage: Storage, text: str, problems: list[Problem], api_key: str | None,
                    user: str = activitylog.OWNER, caller_key: str | None = None) -> None:
    """Keep what was refused, so the owner sees what Zapier sent; no key ever lands in the table."""
    text = redact(text, api_key, caller_key)  # whole: the row's id is a hash of it
    listed = [p.as_dict() for p in redact_problems(problems, api_key, caller_key)]
    try:
        activitylog.record_rejected(storage, user, payload_text=text, problems=listed)
    except Exception:  # the caller's 400 is about their input: a log-write failure must not turn it into a 503
        log.warning("could not record a rejected payload in the activity log", exc_info=True)


def _entry(user: str, sync_id: str, activity: Activity, sport_type: str, timezone: str,
           points: int) -> activitylog.Entry:
    from shared.model.naming import activity_name

    return activitylog.Entry(
        user=user, sync_id=sync_id, status=Status.QUEUED, source="zapier",
        runkeeper_type=activity.type, runkeeper_id=activity.source_id, sport_type=sport_type,
        name=activity_name(activity.type, activity.start, timezone), start=activity.start,
        points=points, distance=activity.measured_distance(), duration=activity.measured_duration(),
    )


def accept(storage: Storage, user: str, payload: dict[str, Any], activity: Activity | Checked,
           timezone: str) -> Accepted:
    """Log the activity as `queued`, then queue it; a replay gets its current status instead.

    The row first: its conditional insert says whether this activity was seen before, so a replay of
    a synced run sends no message at all. A message that cannot be sent takes our new row back, so
    Zapier's retry (after the 503) is accepted as new.
    """
    from shared.model.sports import strava_sport
    from shared.model.syncid import sync_id as make_sync_id

    if isinstance(activity, Activity):
        points = len(activity.points)
    else:
        activity, points = activity.activity, activity.points
    sport = strava_sport(activity.type, activity.equipment, activity.secondary_type)
    sid = make_sync_id(activity.start, sport.sport_type)
    job = jobs.Job(sync_id=sid, user=user, source="zapier", payload=payload)
    try:
        created = activitylog.create(storage, _entry(user, sid, activity, sport.sport_type, timezone, points))
    except Exception as exc:
        log.warning("activity log unavailable (sync_id=%s): %s", sid, type(exc).__name__)
        raise Unavailable("storage is unavailable; the activity was not stored, retry later") from None
    if created is None:
        return _replay(storage, user, sid, job)
    try:
        jobs.send(storage, job)
    except Exception as exc:
        _quietly(_forget, storage, created)
        log.warning("queue unavailable (sync_id=%s): %s", sid, type(exc).__name__)
        raise Unavailable("storage is unavailable; the activity was not queued, retry later") from None
    return Accepted(202, sid, Status.QUEUED)


def _replay(storage: Storage, user: str, sid: str, job: jobs.Job) -> Accepted:
    """The row existed: answer with its status; queue the activity again only where it needs it.

    The message goes before the row says `queued` (a row that says so without a message would wait for
    STALE_QUEUED), and is taken back if the row turns out not to need it after all.
    """
    sent: jobs.Sent | None = None

    def attempt(current: activitylog.Entry | None) -> Accepted | None:
        nonlocal sent
        if current is None:
            return None  # deleted meanwhile: the caller's retry starts afresh
        if not (current.status in activitylog.RETRYABLE or _stale(current)):
            if sent is not None:
                _quietly(jobs.retract, storage, sent)
            return Accepted(200, sid, current.status, current.activity_id)
        if sent is None:
            try:
                sent = jobs.send(storage, job)
            except Exception as exc:
                log.warning("queue unavailable (sync_id=%s): %s", sid, type(exc).__name__)
                raise Unavailable("storage is unavailable; the activity was not queued, retry later") from None
        activitylog.save(
            storage, current, status=Status.QUEUED, source="zapier", error=None, next_try=None,
            lease_until=None, lease_owner=None, upload_id=None, problems=[], excerpt=None,
        )
        return Accepted(202, sid, Status.QUEUED)

    try:
        accepted = cas.update(lambda: activitylog.get(storage, user, sid), attempt)
    except cas.Exhausted:
        accepted = None
    if accepted is not None:
        return accepted
    if sent is not None:
        _quietly(jobs.retract, storage, sent)
    raise Unavailable("the activity changed while it was being stored; retry")


def _stale(entry: activitylog.Entry) -> bool:
    return (
        entry.status == Status.QUEUED and entry.attempts == 0 and entry.updated is not None
        and activitylog.utcnow() - entry.updated > STALE_QUEUED
    )


def _forget(storage: Storage, entry: activitylog.Entry) -> None:
    """Undo our own `queued` row when its message could not be sent, so a replay is not told "queued"."""
    from azure.core import MatchConditions

    activitylog.table(storage).delete_entity(
        entry.user, entry.sync_id, etag=entry.etag, match_condition=MatchConditions.IfNotModified
    )


def _quietly(fn: Callable[..., Any], *args: Any) -> None:
    """A cleanup step whose failure must not hide the answer the caller is about to get."""
    try:
        fn(*args)
    except Exception:
        log.warning("cleanup step %s failed", getattr(fn, "__name__", fn), exc_info=True)
