"""POST /api/runkeeper: the HTTP side of taking an activity in, inside Zapier's second.

The key check (header, or the body's apiKey as the original Zap sends it), the body's decoding
(strict JSON: one value per key, no NaN, no lone surrogates), and the answers: 401, 413, 400 naming
every problem, 202/200, or 503 when storage is down. What is stored, and how a replay is told apart,
is shared.live.intake's, which the owner's retry uses too. Nothing here imports gpxpy or a Strava module.
"""

from __future__ import annotations

import json
import logging
import re
from typing import TYPE_CHECKING, Any

import azure.functions as func

from shared.config import Settings, SettingsError, current
from shared.live import intake
from shared.live.intake import Unavailable
from shared.model.activity import Activity, Problem
from shared.storage import activitylog
from shared.web.auth import redact_problems
from shared.web.callers import caller_for
from shared.web.responses import error, json_response

if TYPE_CHECKING:
    from shared.runkeeper.payload import Checked

log = logging.getLogger("shared.live.ack")


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
    """The function's answer to one POST; storage trouble or a bug is a 503 Zapier retries, never a stack trace."""
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
    if len(body) > intake.MAX_BODY:
        return error(413, f"body is larger than {intake.MAX_BODY // (1024 * 1024)} MB; nothing was stored")
    checked = _checked(cfg, header_key, user, body)
    if isinstance(checked, func.HttpResponse):
        return checked
    user, payload, parsed = checked
    outcome = intake.accept(cfg.storage, user, payload, parsed, cfg.timezone)
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
        intake.record_rejected(cfg.storage, body[: 4 * activitylog.EXCERPT_CHARS].decode("utf-8", "replace"),
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
    intake.drop_keys(payload)  # stored without them: never the body as sent
    parsed = intake.validate(payload, cfg.timezone)
    if isinstance(parsed, list):
        parsed = redact_problems(parsed, cfg.api_key, caller_key)  # bad values are quoted in the messages
        intake.record_rejected(cfg.storage, json.dumps(payload, ensure_ascii=False, separators=(",", ":")),
                               parsed, cfg.api_key, user, caller_key)
        return _problems(400, "the activity has problems; nothing was queued", parsed)
    return user, payload, parsed


def _user_for(cfg: Settings, key: str | None) -> str | None:
    """The activity-log partition a key posts to: the owner's, an athlete's (one point read), or None."""
    try:
        caller = caller_for(cfg, key)
    except Exception as exc:
        log.warning("could not look up an API key (%s)", type(exc).__name__)
        raise Unavailable("storage is unavailable; nothing was stored, retry later") from None
    return caller.user if caller is not None else None
