"""The import's plan, pure: small exports written here (no real data, no storage, no Strava)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from shared.history.plan import CannotImport, build_plan, utc_start
from shared.model.syncid import sync_id
from shared.runkeeper.export import open_export

TZ = "Europe/London"
HEADER = ("Date,Type,Route Name,Distance (mi),Duration,Average Pace,Average Speed (mph),Calories Burned,Climb (ft),"
          "Average Heart Rate (bpm),Notes,GPX File")


def track(first: str, name: str = "Running 7/25/13 6:53 am") -> bytes:
    """A small Runkeeper-like GPX whose points start at `first` (UTC, "2013-07-25T11:53:27")."""
    points = "".join(f'<trkpt lat="41.88" lon="-87.63"><ele>180.0</ele><time>{first[:-2]}{s:02d}Z</time></trkpt>\n'
                     for s in range(int(first[-2:]), int(first[-2:]) + 5))
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<gpx version="1.1" creator="Runkeeper - http://www.runkeeper.com"'
            f' xmlns="http://www.topografix.com/GPX/1/1">\n<trk><name><![CDATA[{name}]]></name>\n<trkseg>\n'
            f"{points}</trkseg>\n</trk>\n</gpx>\n").encode()


def export(tmp_path: Path, rows: list[str], files: dict[str, bytes] | None = None, csv: bool = True) -> Path:
    folder = tmp_path / "export"
    folder.mkdir()
    if csv:
        (folder / "cardioActivities.csv").write_text("\n".join([HEADER, *rows]) + "\n", encoding="utf-8")
    for name, data in (files or {}).items():
        (folder / name).write_bytes(data)
    return folder


def test_utc_start_rules() -> None:
    """Moved from test_importer.py."""
    local = datetime(2013, 7, 25, 6, 53, 27)
    gpx = datetime(2013, 7, 25, 11, 53, 28, tzinfo=UTC)  # first point a second after the CSV's start
    assert utc_start(local, gpx, TZ) == (datetime(2013, 7, 25, 11, 53, 27, tzinfo=UTC), None)
    nepal = datetime(2013, 7, 25, 1, 8, 27, tzinfo=UTC)  # UTC+5:45: quarter hours count too
    assert utc_start(local, nepal, TZ)[0] == datetime(2013, 7, 25, 1, 8, 27, tzinfo=UTC)
    start, note = utc_start(local, datetime(2013, 7, 25, 6, 53, 27, tzinfo=UTC), TZ)  # local time marked Z
    assert start == datetime(2013, 7, 25, 5, 53, 27, tzinfo=UTC) and "local time marked Z" in (note or "")
    start, note = utc_start(local, datetime(2013, 7, 25, 9, 20, 0, tzinfo=UTC), TZ)  # unrelated times
    assert start == datetime(2013, 7, 25, 5, 53, 27, tzinfo=UTC) and "not a time-zone offset" in (note or "")
    assert utc_start(local, None, "America/Chicago") == (datetime(2013, 7, 25, 11, 53, 27, tzinfo=UTC), None)
    winter = datetime(2014, 1, 5, 9, 0, 0)
    assert utc_start(winter, datetime(2014, 1, 5, 9, 0, 0, tzinfo=UTC), TZ) == (winter.replace(tzinfo=UTC), None)


def test_gpx_and_manual_rows_oldest_first(tmp_path: Path) -> None:
    folder = export(tmp_path, [
        "2014-05-19 08:37:16,Running,,5.00,37:00,,,,,,+ bball,",
        "2013-07-25 06:53:27,Running,,3.10,25:00,,,,,,,2013-07-25-0653.gpx",
    ], {"2013-07-25-0653.gpx": track("2013-07-25T11:53:27")})
    with open_export(folder) as ex:
        plan = build_plan(ex, timezone=TZ)
    assert (len(plan.items), plan.gpx_count, plan.manual_count, plan.csv_rows) == (2, 1, 1, 2)
    run, manual = plan.items
    assert run.start == datetime(2013, 7, 25, 11, 53, 27, tzinfo=UTC)  # the GPX's offset (Chicago), not London's
    assert run.sync_id == sync_id(run.start, "Run") and run.points == 5 and not run.is_manual
    assert run.name == "Running activity on Thursday 25th July 2013 at 06:53"
    assert manual.is_manual and manual.start == datetime(2014, 5, 19, 7, 37, 16, tzinfo=UTC)  # London, summer
    assert manual.duration == 37 * 60 and manual.distance == pytest.approx(5 * 1609.344)
    assert manual.description == "+ bball" and manual.problem is None


def test_repeated_rows_are_one_activity(tmp_path: Path) -> None:
    row = "2013-07-25 06:53:27,Running,,3.10,25:00,,,,,,,2013-07-25-0653.gpx"
    folder = export(tmp_path, [row, row], {"2013-07-25-0653.gpx": track("2013-07-25T11:53:27")})
    with open_export(folder) as ex:
        plan = build_plan(ex, timezone=TZ)
    assert len(plan.items) == 1
    assert [(r.origin, r.reason) for r in plan.repeated] == [(
        "cardioActivities.csv line 3 (2013-07-25-0653.gpx)",
        "same activity as cardioActivities.csv line 2 (2013-07-25-0653.gpx) (same start and sport)")]


def test_what_cannot_be_sent_is_kept_with_its_reason(tmp_path: Path) -> None:
    folder = export(tmp_path, [
        "2013-07-26 07:00:00,Running,,3.10,,,,,,,,",  # manual, no duration
        "2013-07-27 07:00:00,Running,,3.10,25:00,,,,,,,missing.gpx",
        "not a date,Running,,3.10,25:00,,,,,,,",
    ])
    with open_export(folder) as ex:
        plan = build_plan(ex, timezone=TZ)
    problems = {i.origin: i.problem for i in plan.items}
    assert "no duration" in (problems["cardioActivities.csv line 2"] or "")
    assert problems["cardioActivities.csv line 3 (missing.gpx)"]
    assert [f.origin for f in plan.failures] == ["cardioActivities.csv line 4"]


def test_since_until_and_unlisted_files(tmp_path: Path) -> None:
    folder = export(tmp_path, [
        "2013-07-25 06:53:27,Running,,3.10,25:00,,,,,,,",
        "2014-01-05 09:00:00,Walking,,1.00,20:00,,,,,,,",
        "2015-03-01 10:00:00,Cycling,,10.0,50:00,,,,,,,",
    ], {"stray.gpx": track("2016-08-09T05:29:00")})
    with open_export(folder) as ex:
        plan = build_plan(ex, timezone=TZ, since=date(2014, 1, 1), until=date(2014, 12, 31))
    assert [i.sport_type for i in plan.items] == ["Walk"] and plan.filtered == 2
    assert plan.unlisted == ["stray.gpx"]


def test_without_a_csv_every_gpx_is_an_activity_typed_by_its_name(tmp_path: Path) -> None:
    folder = export(tmp_path, [], {"a.gpx": track("2013-07-25T11:53:27"),
                                   "b.gpx": track("2013-07-27T11:48:00", name="Walking 7/27/13 6:48 am"),
                                   "c.gpx": track("2013-07-28T11:00:00", name="Sunday stroll")}, csv=False)
    with open_export(folder) as ex:
        plan = build_plan(ex, timezone="America/Chicago")
    assert plan.csv_rows is None
    assert [(i.origin, i.sport_type) for i in plan.items] == [("a.gpx", "Run"), ("b.gpx", "Walk"), ("c.gpx", "Workout")]
    assert plan.items[0].start_local == datetime(2013, 7, 25, 6, 53, 27)
    assert "type unknown" in (plan.items[2].note or "")


def test_an_unreadable_index_stops_the_import(tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "cardioActivities.csv").write_text("Date,Type\n2013-07-25 06:53:27,Running\n", encoding="utf-8")
    with open_export(folder) as ex, pytest.raises(CannotImport):
        build_plan(ex, timezone=TZ)
