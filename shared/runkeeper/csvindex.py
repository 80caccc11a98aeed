"""Runkeeper's `cardioActivities.csv`: the export's index, one row per activity.

Columns are found by name, not position, because the header changed in 2018 (`Activity Id` first,
`Friend's Tagged` before `Notes`) and units follow the athlete's settings (km or mi, m or ft).
A bad row is reported with every problem it has and the rest of the file still counts.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from datetime import datetime

METRES_PER_UNIT = {"km": 1000.0, "mi": 1609.344, "m": 1.0, "ft": 0.3048}
DATE_FORMATS = ("%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M")
REQUIRED = ("Date", "Type", "Duration", "GPX File")
_UNIT_COLUMN = re.compile(r"^(distance|climb)\s*\((\w+)\)$", re.IGNORECASE)
_DURATION = re.compile(r"^(?:(\d+):)?(\d+):(\d{1,2}(?:\.\d+)?)$")


class CsvError(ValueError):
    """The file cannot serve as the index at all; the message names every reason."""


@dataclass(frozen=True, slots=True)
class CsvRow:
    line: int  # the line the row starts on, for messages
    start_local: datetime  # naive: Runkeeper writes the athlete's local wall-clock time
    type: str
    gpx_file: str | None  # None: an activity without GPS (treadmill, manual entry)
    distance: float | None = None  # metres
    duration: float | None = None  # seconds; Runkeeper's moving time
    climb: float | None = None  # metres
    notes: str | None = None
    route_name: str | None = None
    activity_id: str | None = None
    calories: float | None = None
    average_heart_rate: float | None = None

    @property
    def is_manual(self) -> bool:
        return self.gpx_file is None


@dataclass(frozen=True, slots=True)
class RowProblem:
    line: int
    message: str

    def __str__(self) -> str:
        return f"cardioActivities.csv line {self.line}: {self.message}"


@dataclass
class CsvIndex:
    rows: list[CsvRow] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)
    distance_unit: str = "km"
    climb_unit: str = "m"
    new_header: bool = False  # the 2018+ header with `Activity Id`


def parse_duration(text: str) -> float:
    """Seconds from Runkeeper's `MM:SS` or `H:MM:SS` (minutes may exceed 59 in the short form)."""
    m = _DURATION.match(text.strip())
    if not m:
        raise ValueError(f"{text!r} is not MM:SS or H:MM:SS")
    hours, minutes, seconds = int(m.group(1) or 0), int(m.group(2)), float(m.group(3))
    if seconds >= 60 or (m.group(1) is not None and minutes >= 60):
        raise ValueError(f"{text!r} is not MM:SS or H:MM:SS")
    return hours * 3600 + minutes * 60 + seconds


def parse_date(text: str) -> datetime:
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(text.strip(), fmt)
        except ValueError:
            continue
    raise ValueError(f"{text!r} is not YYYY-MM-DD HH:MM:SS")


def _number(text: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")) or value < 0:
        raise ValueError(f"{text!r} is not a non-negative number")
    return value


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        return data.decode("cp1252", errors="replace")  # an export re-saved by Excel on Windows


class _Columns:
    """Where each column we use sits in this file's header, and in what unit."""

    def __init__(self, header: list[str]) -> None:
        self.width = len(header)
        self.index: dict[str, int] = {}
        self.units: dict[str, str] = {}
        problems: list[str] = []
        for i, raw in enumerate(header):
            name = raw.strip().lstrip("\ufeff")
            m = _UNIT_COLUMN.match(name)
            if m:
                kind, unit = m.group(1).title(), m.group(2).lower()
                allowed = ("km", "mi") if kind == "Distance" else ("m", "ft")
                if unit not in allowed:
                    problems.append(f"column {name!r} has unit {unit!r}, expected one of {', '.join(allowed)}")
                self.units[kind] = unit
                name = kind
            self.index.setdefault(name.lower(), i)
        missing = [c for c in REQUIRED if c.lower() not in self.index]
        if missing:
            problems.append("missing column(s): " + ", ".join(missing))
        if problems:
            raise CsvError("cardioActivities.csv: " + "; ".join(problems) + f" (header: {','.join(header)})")

    def get(self, record: list[str], column: str) -> str:
        i = self.index.get(column.lower())
        return record[i].strip() if i is not None and i < len(record) else ""


def parse_csv(data: bytes) -> CsvIndex:
    """Every row of the file, or a RowProblem naming each thing wrong with it."""
    reader = csv.reader(io.StringIO(_decode(data), newline=""))
    try:
        header = next(reader)
    except StopIteration:
        raise CsvError("cardioActivities.csv: the file is empty") from None
    except csv.Error as exc:
        raise CsvError(f"cardioActivities.csv: the header cannot be read ({exc})") from None
    cols = _Columns(header)
    index = CsvIndex(
        distance_unit=cols.units.get("Distance", "km"),
        climb_unit=cols.units.get("Climb", "m"),
        new_header="activity id" in cols.index,
    )
    line = reader.line_num
    while True:
        start_line = line + 1
        try:
            record = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            index.problems.append(RowProblem(start_line, f"cannot be read as CSV ({exc})"))
            line = reader.line_num
            continue
        line = reader.line_num
        if not any(cell.strip() for cell in record):
            continue
        row = _row(record, cols, start_line, index)
        if isinstance(row, RowProblem):
            index.problems.append(row)
        else:
            index.rows.append(row)
    return index


def _row(record: list[str], cols: _Columns, line: int, index: CsvIndex) -> CsvRow | RowProblem:
    problems: list[str] = []
    if len(record) != cols.width:
        problems.append(f"has {len(record)} fields, the header has {cols.width}")
    start: datetime | None = None
    try:
        start = parse_date(cols.get(record, "Date"))
    except ValueError as exc:
        problems.append(f"Date {exc}")
    rk_type = cols.get(record, "Type")
    if not rk_type:
        problems.append("Type is empty")
    values: dict[str, float | None] = {}
    for column, unit in (("Distance", index.distance_unit), ("Climb", index.climb_unit)):
        try:
            raw = _number(cols.get(record, column))
            values[column] = None if raw is None else raw * METRES_PER_UNIT[unit]
        except ValueError as exc:
            problems.append(f"{column} {exc}")
    duration: float | None = None
    text = cols.get(record, "Duration")
    if text:
        try:
            duration = parse_duration(text)
        except ValueError as exc:
            problems.append(f"Duration {exc}")
    if problems or start is None:
        return RowProblem(line, "; ".join(problems))
    notes = cols.get(record, "Notes").replace("\r\n", "\n").replace("\r", "\n").strip()
    return CsvRow(
        line=line,
        start_local=start,
        type=rk_type,
        gpx_file=cols.get(record, "GPX File") or None,
        distance=values["Distance"],
        duration=duration,
        climb=values["Climb"],
        notes=notes or None,
        route_name=cols.get(record, "Route Name") or None,
        activity_id=cols.get(record, "Activity Id") or None,
        calories=_lenient(cols.get(record, "Calories Burned")),
        average_heart_rate=_lenient(cols.get(record, "Average Heart Rate (bpm)")),
    )


def _lenient(text: str) -> float | None:
    """Columns the import does not need: a bad value is dropped rather than failing the activity."""
    try:
        return _number(text)
    except ValueError:
        return None
