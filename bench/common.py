"""What every bench shares: payloads built from the real seed, stats, an Azurite, and the table they print."""

from __future__ import annotations

import json
import os
import statistics
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
SEED = DATA / "zapier" / "example-seed-app.json"
PATH_KEYS = ("activityPathLatitude", "activityPathLongitude", "activityPathAltitude", "activityPathType")
QUICK = os.environ.get("BENCH_QUICK") == "1"  # the smoke test's tiny mode: few runs, small sizes


def seed() -> dict[str, str]:
    """The real payload Zapier posted (../shared/data), or a synthetic one of the same shape when absent."""
    if SEED.exists():
        return json.loads(SEED.read_text(encoding="utf-8"))
    from bench.bench_convert import make_payload

    return make_payload(298)


def payload(points: int, *, start_shift: timedelta = timedelta(0)) -> dict[str, str]:
    """The seed's track repeated (times continuing, one pause/resume per lap) to `points` points.

    `start_shift` moves the start, so that repeated posts are distinct activities, not replays.
    """
    base = seed()
    cols = {k: base[k].split(",") for k in (*PATH_KEYS, "activityPathTimestamp")}
    hr_t = [float(x) for x in base["activityHeartRateTimestamp"].split(",")]
    hr_bpm = base["activityHeartRateBpm"].split(",")
    times = [float(x) for x in cols["activityPathTimestamp"]]
    lap = times[-1] + 30.0
    size = len(times)
    out: dict[str, list[str]] = {k: [] for k in cols}
    out_hr_t: list[str] = []
    out_hr_bpm: list[str] = []
    laps = -(-points // size)
    for n in range(laps):
        take = min(size, points - n * size)
        for key in PATH_KEYS:
            out[key].extend(cols[key][:take])
        out["activityPathTimestamp"].extend(f"{t + n * lap:.3f}" for t in times[:take])
        kinds = out["activityPathType"]
        if n:  # a lap after the first resumes; one before it paused
            kinds[-take] = "resume"
            kinds[-take - 1] = "pause"
        last = times[take - 1]
        for t, bpm in zip(hr_t, hr_bpm, strict=True):
            if t <= last:
                out_hr_t.append(f"{t + n * lap:.3f}")
                out_hr_bpm.append(bpm)
    out["activityPathType"][0] = "start"
    out["activityPathType"][-1] = "end"
    start = datetime.fromisoformat(base["activityStartTimeIso"]) + start_shift
    result = dict(base)
    result.update({k: ",".join(v) for k, v in out.items()})
    result["activityHeartRateTimestamp"] = ",".join(out_hr_t)
    result["activityHeartRateBpm"] = ",".join(out_hr_bpm)
    result["activityStartTimeIso"] = start.isoformat()
    return result


def median_p99(samples: Sequence[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


@dataclass
class Row:
    """One line of a figure's table; `ratio` and `goal` are "lower is better" unless `higher` is set."""

    case: str
    median: str
    p99: str
    baseline: str
    ratio: float | None
    goal: float | None
    higher: bool = False
    note: str = ""

    @property
    def met(self) -> str:
        if self.ratio is None or self.goal is None:
            return "-"
        ok = self.ratio >= self.goal if self.higher else self.ratio <= self.goal
        return "yes" if ok else "NO"


def print_table(title: str, rows: Sequence[Row]) -> None:
    """The table every bench prints: case, median, p99, baseline, ratio, goal, met?"""
    head = ("case", "median", "p99", "baseline", "ratio", "goal", "met?")
    cells = [head] + [
        (r.case, r.median, r.p99, r.baseline, "-" if r.ratio is None else f"{r.ratio:.2f}",
         "-" if r.goal is None else ("≥ " if r.higher else "≤ ") + f"{r.goal:g}", r.met)
        for r in rows
    ]
    widths = [max(len(c[i]) for c in cells) for i in range(len(head))]
    print(title)
    for i, c in enumerate(cells):
        print("  " + "  ".join(v.ljust(w) if j == 0 else v.rjust(w) for j, (v, w) in enumerate(zip(c, widths,
                                                                                                    strict=True))))
        if i == 0:
            print("  " + "  ".join("-" * w for w in widths))
    for r in rows:
        if r.note:
            print(f"  * {r.case}: {r.note}")
    print(flush=True)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


@contextmanager
def azurite() -> Iterator[Any]:
    """A real Azurite for the bench's duration (tests/azurite.py), in memory."""
    from tests.azurite import Azurite

    server = Azurite().start()
    try:
        yield server
    finally:
        server.stop()
