"""Strava calls per activity, counted at the fake Strava: the real 2016 export imported, and 100 live posts.

Import: ../shared/data/exports/runkeeper-export-2016/ (288 activities: 154 GPX, 134 manual) through the
importer, at Strava's default limits on the fake's virtual clock (waits cost nothing). Live: 100 distinct
activities made from the real seed payload, POSTed to the ack as Zapier would and drained by the
host-like drain (tests/drain.py), against a second fake with limits high enough that no 429 is counted
(a burst of 100 at the default 200 per 15 minutes would defer part of them). Every /api/v3 request
counts; OAuth token calls do not (they are not rate limited). The floor is 1: one upload or create.
The fake decides an upload at the first status check; real Strava takes ~1-2 s, so its live figure
would be higher by the extra polls.

Run: .venv/bin/python -m bench.calls   [--live N]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from bench.common import DATA, QUICK, Row, azurite, connection_storage, payload, print_table

if TYPE_CHECKING:
    from shared.storage.clients import Storage

SOURCE = DATA / "exports" / "runkeeper-export-2016"
BUDGETS = {"import": 1.1, "live": 2.0}  # Strava calls per activity


def _calls(fake: object) -> str:
    keys = (("POST", "/api/v3/uploads"), ("GET", "/api/v3/uploads/{id}"), ("POST", "/api/v3/activities"),
            ("GET", "/api/v3/athlete/activities"))
    names = ("uploads", "status checks", "creates", "listings")
    parts = [f"{fake.call_count(m, p)} {n}" for (m, p), n in zip(keys, names, strict=True)]  # type: ignore[attr-defined]
    return ", ".join(parts)


@dataclass
class ImportRun:
    activities: int
    calls: int
    detail: str  # calls by kind, activities on Strava, 429s
    simulated: timedelta  # on the fake's virtual clock
    floor: timedelta  # least_time for one call per activity at these limits
    real_seconds: float


def run_import(storage: Storage, folder: Path, overall: tuple[int, int] = (200, 2000),
               read: tuple[int, int] = (100, 1000)) -> ImportRun:
    """Import an export folder into a fresh fake Strava with these limits; the importer's waits move the
    fake's virtual clock instead of sleeping, so hours of rate-limit waits take seconds."""
    from shared.config import load
    from shared.history.estimate import least_time
    from shared.history.plan import build_plan
    from shared.history.run import Importer
    from shared.runkeeper.export import open_export
    from shared.strava.tokens import client_from_settings
    from tests.support.drain import storage_settings
    from tests.support.fake_strava import FakeStrava
    from tests.support.fixtures_strava import connect_athlete

    with FakeStrava(overall=overall, read=read) as fake:
        cfg = load({**storage_settings(storage), "STRAVA_CLIENT_ID": fake.client_id,
                    "STRAVA_CLIENT_SECRET": fake.client_secret, "STRAVA_BASE_URL": fake.url})
        connect_athlete(storage, fake)
        fake.advance_window()  # start at a window's beginning, as the floor assumes
        client = client_from_settings(cfg)
        client.clock = lambda: fake.now
        began, began_real = fake.now, time.perf_counter()
        with open_export(folder) as export:
            plan = build_plan(export, timezone=cfg.timezone)
            Importer(client, storage, export=export, clock=lambda: fake.now, sleep=fake.advance).run(plan)
        n = len(plan.items)
        if len(fake.activities()) != n:
            raise RuntimeError(f"only {len(fake.activities())} of {n} imported activities reached the fake Strava")
        detail = (f"{fake.api_calls} calls ({_calls(fake)}); {len(fake.activities())} activities on Strava; "
                  f"{fake.rate_limited_count} answered 429")
        return ImportRun(n, fake.api_calls, detail, fake.now - began, least_time(n, *overall),
                         time.perf_counter() - began_real)


def import_calls(storage: Storage) -> Row:
    run = run_import(storage, SOURCE)
    per = run.calls / run.activities
    return Row(f"import, 2016 export ({run.activities} activities)", f"{per:.3f}", "-",
               f"≤ {BUDGETS['import']:g}", per <= BUDGETS["import"], note=run.detail)


def live_calls(storage: Storage, count: int) -> Row:
    import azure.functions as func

    from tests.support.drain import Drain, storage_settings
    from tests.support.fake_strava import FakeStrava
    from tests.support.fixtures_strava import connect_athlete
    from tests.support.host import function

    key = "bench-" + secrets.token_hex(8)
    with FakeStrava(overall=(10_000, 100_000), read=(10_000, 100_000)) as fake:
        os.environ.update({**storage_settings(storage), "SYNC_API_KEY": key, "STRAVA_CLIENT_ID": fake.client_id,
                           "STRAVA_CLIENT_SECRET": fake.client_secret, "STRAVA_BASE_URL": fake.url})
        connect_athlete(storage, fake)
        fake.reset_counters()
        ack = function("runkeeper")
        for i in range(count):
            body = payload(300, start_shift=timedelta(days=1000 + i))
            req = func.HttpRequest("POST", "http://localhost/api/runkeeper", headers={"X-Api-Key": key},
                                   body=json.dumps(body).encode())
            status = ack(req).status_code
            if status != 202:
                raise RuntimeError(f"ack answered {status}")
        with Drain(storage, workers=4, release_delay=0) as drain:
            stats = drain.run(timeout=600)
        on_strava = len(fake.activities())
        if on_strava != count:  # calls per activity of activities that never arrived would flatter the figure
            errors = "; ".join(sorted({repr(e)[:200] for e in stats.errors}))
            raise RuntimeError(f"only {on_strava} of {count} activities reached the fake Strava: {errors}")
        per = fake.api_calls / count
        return Row(f"live sync, {count} POSTs of the seed track", f"{per:.3f}", "-", f"≤ {BUDGETS['live']:g}",
                   per <= BUDGETS["live"],
                   note=f"{fake.api_calls} calls ({_calls(fake)}); {on_strava} activities on Strava; "
                        f"{stats.succeeded} deliveries, {stats.failed} failed; {fake.rate_limited_count} answered 429")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--live", type=int, default=10 if QUICK else 100, help="live activities to post")
    parser.add_argument("--no-import", action="store_true", default=QUICK,
                        help="skip the export import (skipped in the tiny mode: bench.import_wall covers it)")
    args = parser.parse_args(argv)
    rows = []
    with azurite() as server:
        storage = connection_storage(server.connection_string)
        if not args.no_import and SOURCE.exists():
            rows.append(import_calls(storage))
        rows.append(live_calls(storage, args.live))
    print_table("Strava calls per activity, counted at the fake Strava (the floor is 1: one upload or create)",
                rows, value="per activity", worst=None)


if __name__ == "__main__":
    main()
