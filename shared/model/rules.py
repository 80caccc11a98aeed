"""The owner's rules after upload (pure): which fields one `PUT /activities/{id}` sets for an activity.

`gear` (STRAVA_GEAR: sport type → gear id) sets `gear_id`; `mute` (STRAVA_MUTE, or `import --mute` for
every imported activity) sets `hide_from_home`. No rule applies → no call. What is still to be applied
is kept on the activity log row as the JSON of these changes (`Entry.rules_pending`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

RULE_OF_FIELD = {"gear_id": "gear", "hide_from_home": "mute"}


def changes(sport_type: str | None, *, gear: Iterable[tuple[str, str]] = (), mute: Iterable[str] = (),
            use_gear: bool = True, mute_all: bool = False) -> dict[str, Any]:
    """The PUT body for an activity of `sport_type`: {} when no rule applies."""
    body: dict[str, Any] = {}
    gear_id = dict(gear).get(sport_type or "") if use_gear else None
    if gear_id:
        body["gear_id"] = gear_id
    if mute_all or (sport_type and sport_type in set(mute)):
        body["hide_from_home"] = True
    return body


def names(body: Mapping[str, Any]) -> str:
    """The rules a body applies, for people: "gear, mute"."""
    return ", ".join(RULE_OF_FIELD.get(k, k) for k in body)


def dumps(body: Mapping[str, Any]) -> str | None:
    return json.dumps(dict(body), separators=(",", ":"), sort_keys=True) if body else None


def loads(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
