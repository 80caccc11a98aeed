"""POST /api/runkeeper: check the key, validate, store the activity and answer 202 inside Zapier's second.

One exact validation for every size, so a 400 names every problem; then the log row's conditional
insert ("seen before?") and the queue message (the payload inline, or in a claim-check blob when too
big), one after the other on this thread, so every log line stays tied to its invocation. Nothing
here imports gpxpy or a Strava module.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import azure.functions as func

from shared.config import Settings, SettingsError, current
from shared.model.activity import Activity, Problem
from shared.storage import activitylog
from shared.storage import messages as jobs
from shared.storage.clients import Storage
from shared.web.auth import key_matches, redact, redact_problems
from shared.web.responses import error, json_response

if TYPE_CHECKING:
    from shared.runkeeper.payload import Checked

MAX_BODY = 20 * 1024 * 1024
DROPPED_KEYS = ("apiKey", "apiEndpoint")  # the original Code step's key and target: never stored
# A `queued` row no worker has touched for this long lost its message (e.g. an ack answered 503 after
# the row was written but before the message was): a replay queues it again instead of trusting the row.
STALE_QUEUED = timedelta(minutes=10)

log = logging.getLogger("shared.live.ack")


class Unavailable(Exception):
    """Storage (or configuration) failed: the caller must retry, so the answer is 503, never 202."""


@dataclass
class Accepted:
    status_code: int
    sync_id: str
    status: str
    activity_id: str | None = None


def settings() -> Settings:
    """Settings cached per process (see shared.config.current)."""
    return current()


def _unauthorized() -> func.HttpResponse:
    return error(401, "missing or wrong API key: send it as the X-Api-Key header (or the apiKey field)")


def _problems(status: int, message: str, problems: list[Problem]) -> func.HttpResponse:
    return error(status, message, problems=[p.as_dict() for p in problems])


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


class _DuplicateKey(ValueError):
    pass


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """Two values for one key: which one the sender meant is unknowable, so the body is refused, not guessed."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


# JSON can escape a lone UTF-16 surrogate (\ud800); it is not text, and no storage write can encode it.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _surrogate_key(value: Any) -> str | None:
    """The top-level key whose name or value holds a lone surrogate, if any."""
    items = value.items() if isinstance(value, dict) else [("body", value)]
    for key, item in items:
        if _LONE_SURROGATE.search(key):
            return "a key"
        stack = [item]
        while stack:
            v = stack.pop()
            if isinstance(v, str):
                if _LONE_SURROGATE.search(v):
                    return key
            elif isinstance(v, dict):
                if any(_LONE_SURROGATE.search(k) for k in v):
                    return key
                stack.extend(v.values())
            elif isinstance(v, list):
                stack.extend(v)
    return None


def _decode(body: bytes) -> tuple[Any, str | None]:
    """(value, None) or (None, why it is not JSON)."""
    try:
        text = body.decode("utf-8-sig")
        value = json.loads(text, parse_constant=_reject_constant, object_pairs_hook=_unique_keys)
    except UnicodeDecodeError:
        return None, "body is not UTF-8 text"
    except RecursionError:
        return None, "body is nested too deeply"
    except _DuplicateKey as exc:
        return None, f"key {str(exc)[:60]!r} appears more than once; send each key once"
    except ValueError as exc:
        return None, f"body is not valid JSON ({str(exc)[:120]})"
    if b"\\" in body and _SURROGATE_ESCAPE.search(text):  # one memchr spares a regex pass over 4 MB
        where = _surrogate_key(value)
        if where is not None:
            return None, f"{where[:60]!r} holds a lone UTF-16 surrogate escape (\\ud800-\\udfff), which is not text"
    return value, None


def handle(req: func.HttpRequest) -> func.HttpResponse:
    try:
        return _handle(req)
    except Unavailable as exc:
        return error(503, str(exc))
    except Exception:  # the last line of defence: a clear 503 (Zapier retries), never a stack trace
        log.exception("runkeeper ack failed unexpectedly")
        return error(503, "the activity could not be accepted right now; retry later")


def _handle(req: func.HttpRequest) -> func.HttpResponse:
    try:
        cfg = settings()
        cfg.require("SYNC_API_KEY")
    except SettingsError as exc:
        log.error("runkeeper ack not configured: %s", exc)
        raise Unavailable("the app is not configured yet (see its settings); nothing was stored") from None

    header_key = req.headers.get("x-api-key")
    user: str | None = None
    if header_key is not None:
        user = _user_for(cfg, header_key)
        if user is None:
            return _unauthorized()
    body = req.get_body() or b""
    if len(body) > MAX_BODY:
        return error(413, f"body is larger than {MAX_BODY // (1024 * 1024)} MB; nothing was stored")
    checked = _checked(cfg, header_key, user, body)
    if isinstance(checked, func.HttpResponse):
        return checked
    user, payload, parsed = checked
    outcome = accept(cfg.storage, user, payload, parsed, cfg.timezone)
    answer: dict[str, Any] = {"id": outcome.sync_id, "status": outcome.status}
    if outcome.activity_id:
        answer["activity_id"] = outcome.activity_id
    return json_response(outcome.status_code, answer)


def _checked(cfg: Settings, header_key: str | None, user: str | None,
             body: bytes) -> func.HttpResponse | tuple[str, dict[str, Any], Activity | Checked]:
    """Decode, identify a body-key caller, validate: a refusal, or (user, payload without keys, what to log)."""
    payload, why = _decode(body)
    if why is None and not isinstance(payload, dict):
        why = f"body must be a JSON object, not {type(payload).__name__ if payload is not None else 'null'}"
    if why is not None:
        if header_key is None:  # nobody proved who they are: say only that
            return _unauthorized()
        problems = [Problem("body", why)]
        _record_rejected(cfg.storage, body[: 4 * activitylog.EXCERPT_CHARS].decode("utf-8", "replace"),
                         problems, cfg.api_key, user or activitylog.OWNER, header_key)
        return _problems(400, why, problems)
    assert isinstance(payload, dict)
    caller_key = header_key
    if header_key is None:
        body_key = payload.get("apiKey")
        caller_key = body_key if isinstance(body_key, str) else None
        user = _user_for(cfg, caller_key)
        if user is None:
            return _unauthorized()
    assert user is not None
    for key in DROPPED_KEYS:  # stored without them: never the body as sent
        payload.pop(key, None)
    parsed = validate(payload, cfg.timezone)
    if isinstance(parsed, list):
        parsed = redact_problems(parsed, cfg.api_key, caller_key)  # bad values are quoted in the messages
        _record_rejected(cfg.storage, json.dumps(payload, ensure_ascii=False, separators=(",", ":")), parsed,
                         cfg.api_key, user, caller_key)
        return _problems(400, "the activity has problems; nothing was queued", parsed)
    return user, payload, parsed


def _user_for(cfg: Settings, key: str | None) -> str | None:
    """The activity-log partition a key posts to: the owner's, an athlete's (one point read), or None."""
    if key_matches(key, cfg.api_key):
        return activitylog.OWNER
    from shared.storage.users import identify  # only for keys other than the owner's

    try:
        caller = identify(cfg.storage, key, cfg.api_key)
    except Exception as exc:
        log.warning("could not look up an API key (%s)", type(exc).__name__)
        raise Unavailable("storage is unavailable; nothing was stored, retry later") from None
    return caller.user if caller is not None else None


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


def _record_rejected(storage: Storage, text: str, problems: list[Problem], api_key: str | None,
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
        user=user, sync_id=sync_id, status="queued", source="zapier",
        runkeeper_type=activity.type, runkeeper_id=activity.source_id, sport_type=sport_type,
        name=activity_name(activity.type, activity.start, timezone), start=activity.start,
        points=points,
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
    return Accepted(202, sid, "queued")


def _replay(storage: Storage, user: str, sid: str, job: jobs.Job) -> Accepted:
    """The row existed: answer with its status; queue the activity again only where it needs it.

    The message goes before the row says `queued` (a row that says so without a message would wait for
    STALE_QUEUED), and is taken back if the row turns out not to need it after all.
    """
    sent: jobs.Sent | None = None
    for _ in range(5):
        current = activitylog.get(storage, user, sid)
        if current is None:
            break
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
        try:
            activitylog.save(
                storage, current, status="queued", source="zapier", error=None, next_try=None,
                lease_until=None, lease_owner=None, upload_id=None, problems=[], excerpt=None,
            )
        except activitylog.Conflict:
            continue
        return Accepted(202, sid, "queued")
    if sent is not None:
        _quietly(jobs.retract, storage, sent)
    raise Unavailable("the activity changed while it was being stored; retry")


def _stale(entry: activitylog.Entry) -> bool:
    return (
        entry.status == "queued" and entry.attempts == 0 and entry.updated is not None
        and activitylog.utcnow() - entry.updated > STALE_QUEUED
    )


def _forget(storage: Storage, entry: activitylog.Entry) -> None:
    """Undo our own `queued` row when its message could not be sent, so a replay is not told "queued"."""
    from azure.core import MatchConditions

    activitylog.table(storage).delete_entity(
        entry.user, entry.sync_id, etag=entry.etag, match_condition=MatchConditions.IfNotModified
    )


def _quietly(fn: Any, *args: Any) -> None:
    try:
        fn(*args)
    except Exception:
        log.warning("cleanup step %s failed", getattr(fn, "__name__", fn), exc_info=True)
