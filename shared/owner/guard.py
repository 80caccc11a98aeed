"""What every owner route does first, and how it fails: settings, the caller's key, a bounded JSON body.

The activity list, the retry and the invitation handlers check the key first (the owner's
SYNC_API_KEY or an athlete's personal key, as the X-Api-Key header) and then work on that caller's own
log only. A refusal is raised as `Answer` and given back as is; anything else unexpected (storage down,
a bug) is a 503 that says so, never a stack trace.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

import azure.functions as func

from shared.config import Settings, SettingsError, current
from shared.live import intake
from shared.web.auth import Caller
from shared.web.callers import caller_for
from shared.web.responses import error

log = logging.getLogger(__name__)


class Answer(Exception):
    """Stop handling and give this response."""

    def __init__(self, response: func.HttpResponse) -> None:
        super().__init__(response.status_code)
        self.response = response


def guarded(handler: Callable[[func.HttpRequest], func.HttpResponse], req: func.HttpRequest,
            name: str) -> func.HttpResponse:
    """Run `handler`: its answer, the `Answer` it raised, or a 503 for anything else."""
    try:
        return handler(req)
    except Answer as answer:
        return answer.response
    except Exception as exc:  # storage down or a bug: a clear 503, never a stack trace
        log.warning("%s failed (%s)", name, type(exc).__name__, exc_info=True)
        return error(503, "the activity log is unavailable right now; try again later")


def settings() -> Settings:
    """The process's settings, or a 503 naming what is wrong with them."""
    try:
        return current()
    except SettingsError as exc:
        raise Answer(error(503, str(exc))) from None


def caller(req: func.HttpRequest, cfg: Settings) -> Caller:
    """Whom the X-Api-Key header speaks for, if it is someone with a log (not an invitation); else a 401."""
    found = caller_for(cfg, req.headers.get("x-api-key"))
    if found is None or found.user is None:
        raise Answer(error(401, "missing or wrong API key: send the owner's or your personal key as the "
                                "X-Api-Key header"))
    return found


def json_body(req: func.HttpRequest) -> dict[str, Any] | None:
    """The body as a JSON object, or None for an empty body; a 413 or a 400 otherwise."""
    body = req.get_body() or b""
    if len(body) > intake.MAX_BODY:
        raise Answer(error(413, f"body is larger than {intake.MAX_BODY // (1024 * 1024)} MB; nothing was queued"))
    if not body.strip():
        return None

    def no_constants(name: str) -> None:
        raise ValueError(f"{name} is not valid JSON")

    try:
        value = json.loads(body.decode("utf-8-sig"), parse_constant=no_constants)
    except (UnicodeDecodeError, RecursionError, ValueError) as exc:
        why = "body is not UTF-8 text" if isinstance(exc, UnicodeDecodeError) else "body is not valid JSON"
        raise Answer(error(400, why, problems=[{"field": "body", "message": why}])) from None
    if not isinstance(value, dict):
        why = "body must be the corrected activity as a JSON object (or empty, to send the kept one again)"
        raise Answer(error(400, why, problems=[{"field": "body", "message": why}]))
    return value
