"""The data sets the data-driven tests run on: the real one (../shared/data) and the synthetic one in the repo.

A test takes its input *and* the facts it asserts from one entry here, so the same behaviour runs on both: the
real entry skips when `../shared/data` is absent (see `tests.conftest.data_path`), the synthetic one always runs.
Synthetic facts are computed from the generator's own tables (`ACTIVITIES_2016`, `ACTIVITIES_2019`) where they
can be; the rest are what tests/data/synthetic/README.md lists.
"""

from __future__ import annotations

import importlib.util
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta, timezone
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from shared.model.sports import strava_sport
from shared.model.syncid import sync_id

ROOT = Path(__file__).resolve().parent.parent.parent
SYNTHETIC = ROOT / "tests" / "data" / "synthetic"
KINDS = ("real", "synthetic")


@cache
def generator() -> ModuleType:
    """scripts/make_synthetic_data.py, loaded by path (scripts/ is not a package)."""
    spec = importlib.util.spec_from_file_location("make_synthetic_data", ROOT / "scripts" / "make_synthetic_data.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _real(*parts: str) -> Path:
    from tests.conftest import data_path  # skips the test when ../shared/data is absent

    return data_path(*parts)


def _synthetic(*parts: str) -> Path:
    path = SYNTHETIC.joinpath(*parts)
    assert path.exists(), f"synthetic data missing: {path} (python scripts/make_synthetic_data.py)"
    return path


# ---- the Zapier payload the live path is tested with -------------------------------------------------------------


@dataclass(frozen=True)
class Seed:
    """A real-shaped Zapier payload and what the app makes of it."""

    kind: str
    file: tuple[str, ...]  # under the data set's root
    start: datetime  # UTC
    utc_offset_hours: int
    points: int
    segments: tuple[int, ...]  # points per GPX segment
    heart_rate: int  # samples
    name: str  # on Strava
    notes_start: str
    elapsed_time: int  # what Strava is told
    sport_type: str = "Run"

    @property
    def sync_id(self) -> str:
        return sync_id(self.start, self.sport_type)

    @property
    def path(self) -> Path:
        return _real(*self.file) if self.kind == "real" else _synthetic(*self.file)

    def payload(self) -> dict[str, Any]:
        """A fresh copy each time (tests change it)."""
        return json.loads(self.path.read_text(encoding="utf-8"))


SEEDS = {
    "real": Seed(
        kind="real", file=("zapier", "example-seed-app.json"), start=datetime(2022, 9, 26, 17, 52, 22, tzinfo=UTC),
        utc_offset_hours=1, points=298, segments=(298,), heart_rate=257,
        name="Running activity on Monday 26th September 2022 at 18:52",
        notes_start="Just wanted to go for a light run", elapsed_time=1311),
    "synthetic": Seed(
        kind="synthetic", file=("zapier", "payload-small.json"), start=datetime(2023, 4, 15, 6, 12, 5, tzinfo=UTC),
        utc_offset_hours=1, points=300, segments=(150, 150), heart_rate=272,
        name="Running activity on Saturday 15th April 2023 at 07:12",
        notes_start="Synthetic easy run", elapsed_time=1328),  # the payload's duration, not the track's 1,423 s
}


# ---- Runkeeper exports -------------------------------------------------------------------------------------------


def _sports(specs: tuple[Any, ...]) -> dict[str, int]:
    return dict(Counter(strava_sport(s.type).sport_type for s in specs))


@dataclass(frozen=True)
class Export:
    """An export (folder or zip) and the facts the importer, the CLI and the readers must find in it."""

    kind: str
    file: tuple[str, ...]
    timezone: str  # the athlete's, for rows without a GPX file
    activities: int
    gpx: int  # activities from a GPX file
    manual: int
    unlisted: list[str]  # GPX files the CSV does not list
    sports: dict[str, int]  # Strava sport type → count, as the CSV types say
    first_gpx: str  # the oldest activity's GPX file
    first_start: datetime  # its UTC start
    first_name: str  # its Strava name
    first_start_iso: str  # its start as Zapier would have posted it live
    early: date  # `until` for a first slice with GPX and manual rows
    early_count: int  # activities in that slice
    early_gpx: tuple[str, ...] = ()  # GPX files up to `slice_until`, oldest first
    slice_until: str = ""  # a slightly longer first slice, cut by hand (tests/history/test_run.py's _copy_export)
    manual_local: datetime | None = None  # a manual row with notes over two lines ...
    manual_notes: str = ""  # ... those notes
    manual_duration: int = 0  # seconds
    manual_distance: float = 0.0  # metres
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return _real(*self.file) if self.kind == "real" else _synthetic(*self.file)


def _synthetic_2016() -> Export:
    g = generator()
    specs = g.ACTIVITIES_2016
    oldest = specs[-1]
    with_gpx = [s for s in reversed(specs) if s.gps]
    early = date(2016, 1, 31)
    treadmill = next(s for s in specs if not s.gps and "\n" in s.notes)
    return Export(
        kind="synthetic", file=("exports", "export-2016-km"), timezone="Europe/London",
        activities=len(specs), gpx=len(with_gpx), manual=len(specs) - len(with_gpx), unlisted=[g.UNLISTED_2016],
        sports=_sports(specs), first_gpx=g.gpx_file_name(oldest, seconds=False), first_start=oldest.start_utc,
        first_name="Running activity on Sunday 10th January 2016 at 11:11",
        first_start_iso=oldest.local.replace(tzinfo=timezone(timedelta(hours=oldest.utc_offset))).isoformat(),
        early=early, early_count=sum(s.local.date() <= early for s in specs),
        early_gpx=tuple(g.gpx_file_name(s, seconds=False) for s in with_gpx if s.local.date() <= date(2016, 2, 29)),
        slice_until="2016-02-29",
        manual_local=treadmill.local, manual_notes=treadmill.notes, manual_duration=treadmill.moving,
        manual_distance=5000.0,
    )


def _real_2016() -> Export:
    return Export(
        kind="real", file=("exports", "runkeeper-export-2016"), timezone="Europe/London",  # its GPX say Chicago
        activities=288, gpx=154, manual=134, unlisted=["2016-08-09-0529.gpx"],
        sports={"Run": 266, "Walk": 11, "Ride": 8, "Swim": 3}, first_gpx="2013-07-25-0653.gpx",
        first_start=datetime(2013, 7, 25, 11, 53, 27, tzinfo=UTC),
        first_name="Running activity on Thursday 25th July 2013 at 06:53", first_start_iso="2013-07-25T06:53:27-05:00",
        early=date(2013, 7, 31), early_count=8, early_gpx=("2013-07-25-0653.gpx", "2013-07-27-0648.gpx",
                                                            "2013-07-28-1207.gpx"), slice_until="2013-08-31",
        manual_local=datetime(2014, 5, 19, 8, 37, 16), manual_notes="+ bball\n+ jumps", manual_duration=37 * 60,
        manual_distance=5 * 1609.344,
    )


def _synthetic_2019() -> Export:
    g = generator()
    specs = g.ACTIVITIES_2019
    oldest = specs[-1]
    with_gpx = [s for s in reversed(specs) if s.gps]
    return Export(
        kind="synthetic", file=("exports", "export-2019-mi.zip"), timezone="Asia/Hong_Kong",
        activities=len(specs), gpx=len(with_gpx), manual=len(specs) - len(with_gpx), unlisted=[],
        sports=_sports(specs), first_gpx=g.gpx_file_name(oldest, seconds=True), first_start=oldest.start_utc,
        first_name="Running activity on Monday 1st July 2019 at 18:20",
        first_start_iso=oldest.local.replace(tzinfo=timezone(timedelta(hours=oldest.utc_offset))).isoformat(),
        early=date(2019, 7, 31), early_count=len(specs),
        early_gpx=tuple(g.gpx_file_name(s, seconds=True) for s in with_gpx),
        extra={"prefix": f"{g.ZIP_TOP}/", "first_points": 1012,
               "first_id": "7842d163-5985-4bc4-b406-f750264166dc"},
    )


def _real_2019() -> Export:
    return Export(
        kind="real", file=("exports", "runkeeper-export-2019.zip"), timezone="Europe/London",
        activities=1, gpx=1, manual=0, unlisted=[], sports={"Run": 1}, first_gpx="2019-07-01-182012.gpx",
        first_start=datetime(2019, 7, 1, 10, 20, 12, tzinfo=UTC),
        first_name="Running activity on Monday 1st July 2019 at 18:20", first_start_iso="2019-07-01T18:20:12+08:00",
        early=date(2019, 7, 31), early_count=1, early_gpx=("2019-07-01-182012.gpx",),
        extra={"prefix": "01-runkeeper-data-export-2019-07-04-131816/", "first_points": 863,
               "first_id": "4434be7c-8999-4566-afae-869b1c223d32"},
    )


_EXPORTS: dict[tuple[str, str], Callable[[], Export]] = {
    ("2016", "real"): _real_2016, ("2016", "synthetic"): _synthetic_2016,
    ("2019", "real"): _real_2019, ("2019", "synthetic"): _synthetic_2019,
}


@cache
def export(year: str, kind: str) -> Export:
    """The 2016-style folder (old header) or the 2019-style zip (new header) of one data set."""
    return _EXPORTS[(year, kind)]()
