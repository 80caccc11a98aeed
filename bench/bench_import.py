"""Historical import: Strava calls per activity, and simulated wall time at Strava's default limits.

A 1,550-activity export is made from the real 2016 export (../shared/data), copied forward in steps of
four years (times in the CSV and inside the GPX files shifted alike). It is imported into the fake
Strava with Strava's default limits (200 / 15 min and 2,000 a day overall; 100 and 1,000 read) on a
virtual clock: the importer's sleeps move the fake's clock instead of the real one, so hours of
rate-limit waits take seconds. Real Azurite holds the activity log.

Figures: calls per activity against the floor of 1 (one upload or create each), and the simulated
wall time against the floor the limits set (least_time: full 15-minute windows before the last call).

Run: .venv/bin/python -m bench.bench_import   [--activities N]   (prints a table; no asserts)
"""

from __future__ import annotations

import argparse
import csv
import re
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from shared.config import load
from shared.history.estimate import least_time
from shared.history.plan import build_plan
from shared.history.run import Importer
from shared.runkeeper.export import open_export
from shared.storage import activitylog
from shared.strava.tokens import client_from_settings
from tests.conftest import DATA
from tests.support.azurite import Azurite
from tests.support.fake_strava import FakeStrava
from tests.support.fixtures_strava import connect_athlete

SOURCE = DATA / "exports" / "runkeeper-export-2016"
LIMITS = {"overall": (200, 2000), "read": (100, 1000)}


def make_export(folder: Path, activities: int) -> None:
    """The 2016 export repeated, each copy four years later (leap days stay valid)."""
    with (SOURCE / "cardioActivities.csv").open(encoding="utf-8", newline="") as fh:
        header, *rows = list(csv.reader(fh))
    gpx_column = header.index("GPX File")
    out: list[list[str]] = []
    for copy in range(activities // len(rows) + 1):
        years = 4 * copy
        for row in rows[: activities - len(out)]:
            row = [f"{int(row[0][:4]) + years}{row[0][4:]}", *row[1:]]
            gpx = row[gpx_column]
            if gpx:
                row[gpx_column] = f"{int(gpx[:4]) + years}{gpx[4:]}"
                data = (SOURCE / gpx).read_bytes()
                data = re.sub(rb"<time>(\d{4})", lambda m, y=years: b"<time>%d" % (int(m.group(1)) + y), data)
                (folder / row[gpx_column]).write_bytes(data)
            out.append(row)
    with (folder / "cardioActivities.csv").open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh).writerows([header, *out])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activities", type=int, default=1550)
    args = parser.parse_args()
    azurite = Azurite().start()
    fake = FakeStrava(overall=LIMITS["overall"], read=LIMITS["read"]).start()
    try:
        settings = load({"AzureWebJobsStorage": azurite.connection_string, "STRAVA_CLIENT_ID": fake.client_id,
                         "STRAVA_CLIENT_SECRET": fake.client_secret, "STRAVA_BASE_URL": fake.url})
        connect_athlete(settings.storage, fake)
        with tempfile.TemporaryDirectory() as tmp:
            make_export(Path(tmp), args.activities)
            fake.advance_window()  # start at a window's beginning, as the floor assumes
            client = client_from_settings(settings)
            client.clock = lambda: fake.now
            started_real = time.perf_counter()
            started = fake.now
            with open_export(tmp) as export:
                plan = build_plan(export, timezone=settings.timezone)
                report = Importer(client, settings.storage, export=export, clock=lambda: fake.now,
                                  sleep=fake.advance).run(plan)
            simulated = fake.now - started
            real = time.perf_counter() - started_real
        n = len(plan.items)
        logged = activitylog.list_activities(settings.storage, activitylog.OWNER, limit=10**9)
        floor = least_time(n, *LIMITS["overall"])
        c = report.counts
        rows = [
            ("activities in the export", f"{n} ({plan.gpx_count} GPX, {plan.manual_count} manual)"),
            ("on Strava afterwards", f"{len(fake.activities())} (log: {sum(e.status == 'synced' for e in logged)} "
                                     f"synced, {c.failed} failed, {c.unconfirmed} unconfirmed)"),
            ("Strava calls", f"{fake.api_calls} (uploads {fake.call_count('POST', '/api/v3/uploads')}, creates "
                             f"{fake.call_count('POST', '/api/v3/activities')}, listings "
                             f"{fake.call_count('GET', '/api/v3/athlete/activities')}, upload checks "
                             f"{fake.call_count('GET', '/api/v3/uploads/{id}')})"),
            ("calls per activity", f"{fake.api_calls / n:.3f}  (floor 1.000, ratio {fake.api_calls / n:.3f})"),
            ("429 answers", str(fake.rate_limited_count)),
            ("simulated wall time", f"{_hours(simulated)}  (floor {_hours(floor)}, "
                                    f"ratio {simulated / floor:.3f})" if floor else _hours(simulated)),
            ("real time of this run", f"{real:.1f} s"),
        ]
        width = max(len(k) for k, _ in rows)
        print(f"Historical import at Strava's default limits ({LIMITS['overall'][0]}/15 min, "
              f"{LIMITS['overall'][1]}/day; read {LIMITS['read'][0]}/{LIMITS['read'][1]})")
        for key, value in rows:
            print(f"  {key:<{width}}  {value}")
    finally:
        fake.stop()
        azurite.stop()


def _hours(delta: timedelta) -> str:
    minutes = delta.total_seconds() / 60
    return f"{minutes / 60:.2f} h ({minutes:.0f} min)"


if __name__ == "__main__":
    main()
