"""One id per real activity, computed the same way by the live path and the importer, so neither syncs it twice."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime

from shared.model.times import TIME_FORMAT

EXTERNAL_ID_PREFIX = "rk2strava-"
_SYNC_ID = re.compile(r"a[0-9a-f]{20}")
_IN_EXTERNAL_ID = re.compile(re.escape(EXTERNAL_ID_PREFIX) + r"(a[0-9a-f]{20})")


def sync_id(start: datetime, sport_type: str) -> str:
    """'a' + 20 hex digits: safe in URLs, Table keys and blob names; the start counts to the second, in UTC.

    Sub-seconds are dropped because the export's CSV has whole seconds while a payload may not.
    """
    if start.tzinfo is None or start.utcoffset() is None:
        raise ValueError("sync_id needs a timezone-aware start time")
    moment = start.astimezone(UTC).strftime(TIME_FORMAT)
    digest = hashlib.sha256(f"{moment}|{sport_type}".encode()).hexdigest()
    return "a" + digest[:20]


def is_sync_id(text: str) -> bool:
    return bool(_SYNC_ID.fullmatch(text or ""))


def external_id(sync_id: str) -> str:
    """What Strava stores as the upload's `external_id`, so a later listing shows which activity it was."""
    return f"{EXTERNAL_ID_PREFIX}{sync_id}"


def sync_id_from_external_id(value: str | None) -> str | None:
    """The sync id in an external_id Strava gives back (it may add a file extension), or None if it is not ours."""
    match = _IN_EXTERNAL_ID.search(value or "")
    return match.group(1) if match else None
