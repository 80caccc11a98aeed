"""Import wall time at Strava's default limits: 1,550 activities, simulated on the fake Strava's virtual clock,
against the least time the limits allow for one call per activity (shared.history.estimate.least_time).

The export is bench/bench_import.py's: the real 2016 export copied forward in four-year steps to 1,550
activities. Also prints the calls per activity of that run.

Run: .venv/bin/python -m bench.import_wall   [--activities N]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from bench.bench_import import LIMITS, make_export
from bench.calls import run_import
from bench.common import QUICK, Row, azurite, connection_storage, print_table

BUDGET = 1.1  # within 10% of the least time Strava's limits allow


def _hours(seconds: float) -> str:
    return f"{seconds / 3600:.2f} h"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--activities", type=int, default=300 if QUICK else 1550)
    args = parser.parse_args(argv)
    with azurite() as server, tempfile.TemporaryDirectory() as tmp:
        make_export(Path(tmp), args.activities)
        run = run_import(connection_storage(server.connection_string), Path(tmp), LIMITS["overall"], LIMITS["read"])
    simulated, floor = run.simulated.total_seconds(), run.floor.total_seconds()
    per = run.calls / run.activities
    print_table(f"Import of {run.activities:,} activities at Strava's default limits ({LIMITS['overall'][0]}/15 min, "
                f"{LIMITS['overall'][1]}/day), simulated on the fake Strava's clock", [
        Row("simulated wall time", _hours(simulated), "-", f"≤ {_hours(BUDGET * floor)}",
            simulated <= BUDGET * floor,
            note=f"the least time the limits allow is {_hours(floor)} ({simulated / floor:.3f}×); real time of "
                 f"the run {run.real_seconds:.0f} s" if floor else f"real time of the run {run.real_seconds:.0f} s"),
        Row("calls per activity", f"{per:.3f}", "-", f"≤ {BUDGET:g}", per <= BUDGET, note=run.detail),
    ], value="figure", worst=None)


if __name__ == "__main__":
    main()
