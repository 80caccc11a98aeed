"""Turn what Zapier (or anyone holding a Runkeeper activity) posts into an `Activity`, or every problem with it.

The HTTP ack imports this on its hot path, so it uses the standard library only and never raises on
JSON-decoded input: bad input comes back as `Problem`s naming the key exactly as the caller sent it.
"""

from __future__ import annotations

import math
import operator
import re
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta, timezone, tzinfo
from functools import cache
from typing import NamedTuple

from shared.model.activity import POINT_KINDS, Activity, HeartRate, Point, Problem

ACTIVITY_KEYS_DROPPED = ("apiKey", "apiEndpoint")

# Bounds that keep datetime arithmetic from overflowing and catch garbage, while never refusing a real activity.
MAX_SECONDS = 14 * 86400.0  # an offset or duration beyond two weeks is not a Runkeeper activity
MAX_DISTANCE_M = 10_000_000.0
MAX_CALORIES = 1_000_000.0
MAX_CLIMB_M = 1_000_000.0
MAX_ALTITUDE_M = 100_000.0
MAX_BPM = 300
MAX_UTC_OFFSET_H = 14.0
MIN_YEAR, MAX_YEAR = 1990, 2100
# Short text fields (notes are free): a Runkeeper type is a few words, an id or URI a few dozen characters.
MAX_TEXT = {"type": 100, "secondary_type": 100, "equipment": 100, "id": 200, "uri": 200}
PROBLEMS_PER_FIELD = 10  # a 50,000-point list of garbage should not become a 50,000-line HTTP answer

# Normalised key (lower case, no spaces/underscores/hyphens, no leading "activity") -> internal field.
_ALIASES: dict[str, str] = {
    "type": "type",
    "starttimeiso": "start_iso",
    "starttime": "start_time",
    "utcoffset": "utc_offset",
    "notes": "notes",
    "pathlatitude": "lat",
    "pathlongitude": "lon",
    "pathaltitude": "ele",
    "pathtimestamp": "t",
    "pathtype": "kind",
    "path": "path",
    "heartratetimestamp": "hr_t",
    "heartratebpm": "hr_bpm",
    "heartrateheartrate": "hr_bpm",
    "heartrate": "hr",
    "totaldistance": "distance",
    "distance": "distance",
    "duration": "duration",
    "totalcalories": "calories",
    "calories": "calories",
    "climb": "climb",
    "equipment": "equipment",
    "secondarytype": "secondary_type",
    "id": "id",
    "uri": "uri",
}

# How a field is named in a problem when the caller did not send it: the original app's spelling.
_DEFAULT_NAMES: dict[str, str] = {
    "type": "activityType",
    "start_iso": "activityStartTimeIso",
    "lat": "activityPathLatitude",
    "lon": "activityPathLongitude",
    "t": "activityPathTimestamp",
    "hr_t": "activityHeartRateTimestamp",
    "hr_bpm": "activityHeartRateBpm",
}

# Sub-keys of Health Graph objects in `path[]` and `heart_rate[]`, normalised like top-level keys.
_PATH_SUBKEYS = {"latitude": "lat", "longitude": "lon", "altitude": "ele", "timestamp": "t", "type": "kind"}
_HR_SUBKEYS = {"timestamp": "hr_t", "heartrate": "hr_bpm", "bpm": "hr_bpm"}

_KIND_SET = frozenset(POINT_KINDS)
_KEY_JUNK = re.compile(r"[\s_\-]+")
_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun",
                                       "jul", "aug", "sep", "oct", "nov", "dec"), start=1)}


# Runkeeper's "Tue, 1 Mar 2011 07:00:00" (weekday optional, not checked: the date is what counts).
@cache
def _rk_time() -> re.Pattern[str]:
    """Compiled on first use: ~5 ms that a cold start with an ISO start time never pays."""
    return re.compile(
        r"\s*(?:[A-Za-z]{3,9},?\s+)?(\d{1,2})\s+([A-Za-z]{3})[A-Za-z]*\.?\s+(\d{4})\s+(\d{1,2}):(\d{2})"
        r"(?::(\d{2})(\.\d+)?)?\s*"
    )


_CLOCK = re.compile(r"\s*(?:(\d+):)?(\d{1,2}):(\d{2}(?:\.\d+)?)\s*")  # H:MM:SS or MM:SS durations

NameOf = Callable[[int], str]


def _list_of(number: str) -> re.Pattern[str]:
    """A whole comma-separated column of `number`s, matched in C: far cheaper than float() per value."""
    return re.compile(f"(?:(?>{number}),)*+(?>{number})")


# Plain decimals inside each field's range. A column that matches needs no conversion to be valid; one
# that does not (exponents, spaces, out of range, ...) goes through the exact per-value checks instead.
_PLAIN_COLUMNS: dict[str, re.Pattern[str]] = {
    "lat": _list_of(r"-?(?:90(?:\.0+)?|[1-8]?\d(?:\.\d+)?)"),
    "lon": _list_of(r"-?(?:180(?:\.0+)?|(?:1[0-7]\d|[1-9]?\d)(?:\.\d+)?)"),
    "ele": _list_of(r"-?\d{1,5}(?:\.\d+)?"),  # |altitude| < 100,000 m
    "hr_bpm": _list_of(r"300(?:\.0+)?|(?:[12]\d\d|[1-9]?\d)(?:\.\d+)?"),
}
_UNCONVERTED: list[float | None] = []  # stands for a column validated by pattern: valid, values not needed


class Checked(NamedTuple):  # not a dataclass: cheaper to import on a cold start
    """A valid payload whose path was checked but not built (what the HTTP ack needs: see check_payload)."""

    activity: Activity  # without points and heart rate
    points: int  # how many path points the payload has


def normalise_key(key: str) -> str:
    """One spelling per field: `activityPathLatitude`, `path_latitude`, `Activity Path Latitude` -> `pathlatitude`."""
    k = _KEY_JUNK.sub("", key).lower()
    if k.startswith("activity") and len(k) > len("activity"):
        k = k[len("activity"):]
    return k


class _Problems:
    """Collects problems, at most PROBLEMS_PER_FIELD per input key, then one line counting the rest."""

    def __init__(self) -> None:
        self.items: list[Problem] = []
        self._counts: dict[str, int] = {}

    def add(self, group: str, field: str, message: str) -> None:
        n = self._counts.get(group, 0) + 1
        self._counts[group] = n
        if n <= PROBLEMS_PER_FIELD:
            self.items.append(Problem(field, message))

    def finish(self) -> list[Problem]:
        for group, n in self._counts.items():
            if n > PROBLEMS_PER_FIELD:
                self.items.append(Problem(group, f"{n - PROBLEMS_PER_FIELD} more problems in {group} not listed"))
        return self.items


def _kind_of(value: object) -> str:
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, bool):
        return "true/false"
    if value is None:
        return "null"
    return "text" if isinstance(value, str) else "a number"


def _is_absent(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip()) or (
        isinstance(value, list | tuple) and len(value) == 0
    )


def _number(value: object) -> float | str:
    """A finite float, or the reason it is not one (a str)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return f"must be a number, not {_kind_of(value)}"
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return "is empty"
        if "_" in text:
            return f"is not a number: {_quote(text)}"
        try:
            result = float(text)
        except ValueError:
            return f"is not a number: {_quote(text)}"
    else:
        try:
            result = float(value)
        except OverflowError:
            return "is too large"
    if not math.isfinite(result):
        return "must be a finite number"
    return result


def _quote(text: str, limit: int = 40) -> str:
    """Echo a bad value briefly, so an answer stays short whatever was sent."""
    return repr(text if len(text) <= limit else text[:limit] + "…")


def _fmt(x: float) -> str:
    return f"{x:g}" if abs(x) < 1e15 else f"{x:.3e}"


class _Input:
    """The payload's recognised fields, each remembered with the key the caller used."""

    def __init__(self, payload: Mapping[str, object], problems: _Problems) -> None:
        self.values: dict[str, object] = {}
        self.keys: dict[str, str] = {}
        for key, value in payload.items():
            if not isinstance(key, str) or key in ACTIVITY_KEYS_DROPPED:
                continue
            field = _ALIASES.get(normalise_key(key))
            if field is None or _is_absent(value):
                continue
            if field in self.values:
                if self.values[field] != value:
                    problems.add(key, key, f"conflicts with {self.keys[field]}: send only one of them")
                continue
            self.values[field] = value
            self.keys[field] = key

    def has(self, field: str) -> bool:
        return field in self.values

    def name(self, field: str) -> str:
        return self.keys.get(field) or _DEFAULT_NAMES.get(field, field)


class _Column:
    """One list field, from a comma-separated string, a JSON array, or `path[i].<sub>` objects."""

    def __init__(self, label: str, values: list[object] | None, name_of: NameOf, *, plain: bool = False,
                 text: str | None = None) -> None:
        self.label = label
        self._values = values
        self.name_of = name_of
        self.plain = plain  # no booleans and no '_' in numbers (which float() would accept): the fast path is safe
        self.text = text  # the comma-separated string it came from, if it did (split only when needed)
        self.size = text.count(",") + 1 if values is None and text is not None else len(values or ())

    @property
    def values(self) -> list[object]:
        if self._values is None:
            self._values = (self.text or "").split(",")  # type: ignore[assignment]
        return self._values  # type: ignore[return-value]


def _matches(col: _Column | None, field: str) -> bool:
    """The column came as text whose every value is a plain in-range decimal (one regex, no conversion)."""
    return col is not None and col.text is not None and _PLAIN_COLUMNS[field].fullmatch(col.text) is not None


def _column(inp: _Input, field: str, problems: _Problems) -> _Column | None:
    if not inp.has(field):
        return None
    key = inp.name(field)
    value = inp.values[field]
    text = None
    items: list[object] | None
    if isinstance(value, str):
        items = None  # split on first use: a column checked by pattern never is
        plain = "_" not in value
        text = value
    elif isinstance(value, list | tuple):
        items = list(value)
        plain = not any(type(v) is bool or (type(v) is str and "_" in v) for v in items)
    elif isinstance(value, Mapping):
        problems.add(key, key, "must be a list or comma-separated values, not an object")
        return None
    else:
        items = [value]  # a single number is a one-element list
        plain = False
    return _Column(key, items, lambda i: f"{key}[{i}]", plain=plain, text=text)


def _object_columns(
    inp: _Input, field: str, subkeys: Mapping[str, str], problems: _Problems
) -> dict[str, _Column] | None:
    """Health Graph's `path: [{timestamp, latitude, ...}]` turned into the same columns as the flat lists."""
    key = inp.name(field)
    value = inp.values[field]
    if not isinstance(value, list | tuple):
        problems.add(key, key, f"must be a list of objects, not {_kind_of(value)}")
        return None
    columns: dict[str, list[object]] = {sub: [] for sub in set(subkeys.values())}
    names: dict[str, str] = {}
    for i, item in enumerate(value):
        if not isinstance(item, Mapping):
            problems.add(key, f"{key}[{i}]", f"must be an object, not {_kind_of(item)}")
            for col in columns.values():
                col.append(None)
            continue
        seen: dict[str, object] = {}
        for sub_key, sub_value in item.items():
            target = subkeys.get(normalise_key(sub_key)) if isinstance(sub_key, str) else None
            if target is not None:
                seen[target] = sub_value
                names.setdefault(target, sub_key)
        for target, col in columns.items():
            col.append(seen.get(target))
    result: dict[str, _Column] = {}
    for target, col in columns.items():
        sub = names.get(target, next(k for k, v in subkeys.items() if v == target))
        result[target] = _Column(key, col, lambda i, sub=sub: f"{key}[{i}].{sub}")
    return result


def _numbers(
    col: _Column, problems: _Problems, lo: float, hi: float, what: str, *, optional: bool = False
) -> list[float | None]:
    if col.plain and (fast := _all_numbers(col.values, lo, hi)) is not None:
        return fast  # type: ignore[return-value]
    out: list[float | None] = []
    append = out.append
    for i, raw in enumerate(col.values):
        if optional and _is_absent(raw):
            append(None)
            continue
        value = _number(raw) if raw is not None else "is empty"
        if isinstance(value, str):
            problems.add(col.label, col.name_of(i), value)
            append(None)
        elif not lo <= value <= hi:
            problems.add(col.label, col.name_of(i),
                         f"{what} must be between {_fmt(lo)} and {_fmt(hi)}, not {_fmt(value)}")
            append(None)
        else:
            append(value)
    return out


def _all_numbers(values: list[object], lo: float, hi: float) -> list[float] | None:
    """The whole list converted at C speed when every value is a number in range, else None (go one by one)."""
    try:
        numbers = list(map(float, values))  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    if numbers and (min(numbers) < lo or max(numbers) > hi or not math.isfinite(sum(numbers))):
        return None  # out of range, or a NaN somewhere (min/max can miss one; the sum cannot)
    return numbers


def _not_backwards(col: _Column, values: list[float | None], problems: _Problems) -> None:
    if None not in values and all(map(operator.le, values, values[1:])):  # type: ignore[arg-type]
        return
    previous: float | None = None
    for i, value in enumerate(values):
        if value is None:
            continue
        if previous is not None and value < previous:
            problems.add(col.label, col.name_of(i),
                         f"timestamp {_fmt(value)} goes backwards (previous {_fmt(previous)})")
        previous = value if previous is None else max(previous, value)


def _same_length(reference: _Column, others: list[_Column | None], problems: _Problems) -> bool:
    ok = True
    for col in others:
        if col is not None and col.size != reference.size:
            problems.add(col.label, col.label,
                         f"has {col.size} values but {reference.label} has {reference.size}")
            ok = False
    return ok


def _kinds(col: _Column, problems: _Problems) -> list[str]:
    try:
        if set(col.values) <= _KIND_SET:  # the common case: Runkeeper's own lower-case words
            return col.values  # type: ignore[return-value]
    except TypeError:  # unhashable (nested) values: checked one by one below
        pass
    kinds: list[str] = []
    for i, raw in enumerate(col.values):
        if _is_absent(raw):
            kinds.append("gps")
        elif not isinstance(raw, str):
            problems.add(col.label, col.name_of(i), f"must be text, not {_kind_of(raw)}")
            kinds.append("gps")
        else:
            kind = raw.strip().lower()
            if kind not in POINT_KINDS:
                problems.add(col.label, col.name_of(i),
                             f"unknown point type {_quote(raw)}; use one of {', '.join(POINT_KINDS)}")
            kinds.append(kind)
    return kinds


def _times(col: _Column | None, problems: _Problems) -> list[float | None] | None:
    if col is None:
        return None
    values = _numbers(col, problems, 0.0, MAX_SECONDS, "timestamp (seconds from the start)")
    _not_backwards(col, values, problems)
    return values


def _require(cols: Mapping[str, _Column | None], required: tuple[str, ...], what: str, problems: _Problems) -> bool:
    """Every required list present (naming each missing one) and all present lists the same length."""
    present = [c for c in cols.values() if c is not None]
    if not present:
        return False
    ok = True
    for f in required:
        if cols[f] is None:
            problems.add(_DEFAULT_NAMES[f], _DEFAULT_NAMES[f], f"is missing, but {present[0].label} was sent: {what}")
            ok = False
    return _same_length(present[0], present[1:], problems) and ok


def _path(inp: _Input, problems: _Problems, build: bool = True) -> tuple[list[Point], int]:
    """The path's points (built only if `build`) and how many there are; ([], 0) when it has problems."""
    cols: dict[str, _Column | None] = {f: _column(inp, f, problems) for f in ("lat", "lon", "t", "ele", "kind")}
    if inp.has("path"):
        if any(cols.values()):
            key = inp.name("path")
            problems.add(key, key, "send the path either as objects or as separate lists, not both")
            return [], 0
        objects = _object_columns(inp, "path", _PATH_SUBKEYS, problems)
        if objects is None:
            return [], 0
        cols = dict(objects)
        for f in ("ele", "kind"):  # optional sub-keys that never appear are simply absent
            if all(v is None for v in objects[f].values):
                cols[f] = None
    complete = _require(cols, ("lat", "lon", "t"), "a path needs latitude, longitude and timestamp", problems)
    lat, lon, ele, kind = cols["lat"], cols["lon"], cols["ele"], cols["kind"]
    check = not build  # only validity is wanted: a column whose text matches its pattern is not converted
    lats = (_UNCONVERTED if check and _matches(lat, "lat")
            else _numbers(lat, problems, -90.0, 90.0, "latitude")) if lat else None
    lons = (_UNCONVERTED if check and _matches(lon, "lon")
            else _numbers(lon, problems, -180.0, 180.0, "longitude")) if lon else None
    times = _times(cols["t"], problems)
    eles = (_UNCONVERTED if check and _matches(ele, "ele")
            else _numbers(ele, problems, -MAX_ALTITUDE_M, MAX_ALTITUDE_M, "altitude (m)", optional=True)
            ) if ele else None
    kinds = _kinds(kind, problems) if kind else None
    if not complete or problems.items or lats is None or lons is None or times is None:
        return [], 0
    n = cols["t"].size  # type: ignore[union-attr]  # present: `complete` says so
    if check:
        return [], n
    # No problems means no None left, and _require checked every list has the same length.
    return list(map(Point, lats, lons, eles or [None] * n, times, kinds or ["gps"] * n)), n


def _heart_rate(inp: _Input, problems: _Problems, build: bool = True) -> list[HeartRate]:
    cols: dict[str, _Column | None] = {f: _column(inp, f, problems) for f in ("hr_t", "hr_bpm")}
    if inp.has("hr"):
        key = inp.name("hr")
        value = inp.values["hr"]
        if isinstance(value, list | tuple) and any(isinstance(v, Mapping) for v in value):
            if any(cols.values()):
                problems.add(key, key, "send heart rate either as objects or as separate lists, not both")
                return []
            objects = _object_columns(inp, "hr", _HR_SUBKEYS, problems)
            if objects is None:
                return []
            cols = dict(objects)
        elif cols["hr_bpm"] is not None:
            problems.add(key, key, f"conflicts with {cols['hr_bpm'].label}: send only one of them")
            return []
        else:
            cols["hr_bpm"] = _column(inp, "hr", problems)
    complete = _require(cols, ("hr_t", "hr_bpm"), "heart rate needs timestamps and bpm", problems)
    times = _times(cols["hr_t"], problems)
    bpm = cols["hr_bpm"]
    bpms = (_UNCONVERTED if not build and _matches(bpm, "hr_bpm")
            else _numbers(bpm, problems, 0.0, MAX_BPM, "heart rate (bpm)")) if bpm else None
    if not complete or problems.items or times is None or bpms is None or not build:
        return []
    return [HeartRate(t, round(b)) for t, b in zip(times, bpms, strict=True)]  # type: ignore[arg-type]


def _text(inp: _Input, field: str, problems: _Problems) -> str | None:
    if not inp.has(field):
        return None
    value = inp.values[field]
    if isinstance(value, str):
        text = value.strip()
        limit = MAX_TEXT.get(field)
        if limit is not None and len(text) > limit:  # it lands in a table cell (64 KiB) and in names
            key = inp.name(field)
            problems.add(key, key, f"is {len(text):,} characters long; at most {limit} are allowed")
            return None
        return text or None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(int(value)) if isinstance(value, float) and value.is_integer() else str(value)
    key = inp.name(field)
    problems.add(key, key, f"must be text, not {_kind_of(value)}")
    return None


def _scalar(inp: _Input, field: str, problems: _Problems, hi: float, what: str, *, clock: bool = False) -> float | None:
    if not inp.has(field):
        return None
    key = inp.name(field)
    raw = inp.values[field]
    if clock and isinstance(raw, str) and (m := _CLOCK.fullmatch(raw)):
        hours, minutes, seconds = m.groups()
        raw = int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
    value = _number(raw)
    if isinstance(value, str):
        problems.add(key, key, value)
        return None
    if not 0 <= value <= hi:
        problems.add(key, key, f"{what} must be between 0 and {_fmt(hi)}, not {_fmt(value)}")
        return None
    return value


def _zone(name: str) -> tzinfo:
    from zoneinfo import ZoneInfo  # only needed for times without an offset

    return ZoneInfo(name)


def _parse_time_text(text: str) -> tuple[datetime | None, str | None]:
    """(datetime, None) for ISO 8601 or Runkeeper's format, naive when no offset was given; else (None, reason)."""
    text = text.strip()
    if m := _rk_time().fullmatch(text):
        day, month, year, hour, minute, second, fraction = m.groups()
        number = _MONTHS.get(month.lower())
        if number is None:
            return None, f"has an unknown month {_quote(month)}"
        try:
            micro = round(float(fraction) * 1_000_000) if fraction else 0
            micro = min(micro, 999_999)
            moment = datetime(int(year), number, int(day), int(hour), int(minute), int(second or 0), micro)
            return moment, None
        except ValueError as exc:
            return None, f"is not a valid date/time: {exc}"
    if not re.search(r"\d{1,2}:\d{2}", text):
        return None, f"is not a date and time (ISO 8601 like 2022-09-26T18:52:22+01:00): {_quote(text)}"
    try:
        return datetime.fromisoformat(text), None
    except ValueError:
        return None, f"is not a date and time (ISO 8601 like 2022-09-26T18:52:22+01:00): {_quote(text)}"


def _start(inp: _Input, problems: _Problems, zone_name: str) -> datetime | None:
    field = "start_iso" if inp.has("start_iso") else "start_time" if inp.has("start_time") else None
    if field is None:
        name = _DEFAULT_NAMES["start_iso"]
        problems.add(name, name, "is missing: send the start time (ISO 8601 with offset, or start_time + utc_offset)")
        return None
    key = inp.name(field)
    raw = inp.values[field]
    if not isinstance(raw, str):
        problems.add(key, key, f"must be a date and time as text, not {_kind_of(raw)}")
        return None
    start, reason = _parse_time_text(raw)
    offset: tzinfo | None = None
    if inp.has("utc_offset"):
        okey = inp.name("utc_offset")
        hours = _number(inp.values["utc_offset"])
        if isinstance(hours, str):
            problems.add(okey, okey, hours)
        elif not -MAX_UTC_OFFSET_H <= hours <= MAX_UTC_OFFSET_H:
            problems.add(okey, okey, f"UTC offset (hours) must be between -14 and 14, not {_fmt(hours)}")
        else:
            offset = timezone(timedelta(hours=hours))
    if start is None:
        problems.add(key, key, reason or "is not a date and time")
        return None
    if not MIN_YEAR <= start.year <= MAX_YEAR:
        problems.add(key, key, f"year {start.year} is outside {MIN_YEAR}–{MAX_YEAR}")
        return None
    if start.tzinfo is None:
        start = start.replace(tzinfo=offset or _zone(zone_name))
    return start


def parse_payload(payload: Mapping[str, object], timezone: str = "Europe/London") -> Activity | list[Problem]:
    """The activity a payload describes, or every problem with it; `timezone` places times sent without an offset.

    Never raises for JSON-decoded input (only for an unknown `timezone`, which settings already validate).
    """
    parsed = _parse(payload, timezone, build=True)
    return parsed if isinstance(parsed, list) else parsed.activity


def check_payload(payload: Mapping[str, object], timezone: str = "Europe/London") -> Checked | list[Problem]:
    """The same verdict as parse_payload, without building points and heart-rate samples.

    For the HTTP ack, which answers within Zapier's second and only needs to know the payload is valid:
    at 60,000 points building them costs ~5x the checks (see bench/ack.py).
    """
    return _parse(payload, timezone, build=False)


def _parse(payload: Mapping[str, object], timezone: str, *, build: bool) -> Checked | list[Problem]:
    if not isinstance(payload, Mapping):
        return [Problem("payload", f"must be a JSON object, not {_kind_of(payload)}")]
    problems = _Problems()
    inp = _Input(payload, problems)
    type_ = _text(inp, "type", problems)
    if type_ is None and not inp.has("type"):
        name = _DEFAULT_NAMES["type"]
        problems.add(name, name, "is missing: send the Runkeeper activity type, e.g. Running")
    start = _start(inp, problems, timezone)
    notes = _text(inp, "notes", problems)
    equipment = _text(inp, "equipment", problems)
    secondary = _text(inp, "secondary_type", problems)
    source_id = _text(inp, "id", problems) or _text(inp, "uri", problems)
    distance = _scalar(inp, "distance", problems, MAX_DISTANCE_M, "distance (m)")
    duration = _scalar(inp, "duration", problems, MAX_SECONDS, "duration (s)", clock=True)
    calories = _scalar(inp, "calories", problems, MAX_CALORIES, "calories")
    climb = _scalar(inp, "climb", problems, MAX_CLIMB_M, "climb (m)")
    points, count = _path(inp, problems, build)
    heart_rate = _heart_rate(inp, problems, build)
    found = problems.finish()
    if found or type_ is None or start is None:
        return found or [Problem(_DEFAULT_NAMES["type"], "is missing")]
    return Checked(Activity(
        type=type_,
        start=start,
        points=points,
        heart_rate=heart_rate,
        notes=notes,
        distance=distance,
        duration=duration,
        calories=calories,
        climb=climb,
        equipment=None if equipment is None or equipment.lower() == "none" else equipment,
        secondary_type=secondary,
        source_id=source_id,
    ), count)
