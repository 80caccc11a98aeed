"""Conversion throughput: Zapier payload → GPX bytes (parse, validate, write) against a bare f-string loop.

The payloads and both writers are bench/bench_convert.py's: the baseline splits the lists and writes each
trackpoint with one f-string (no validation, segments or heart rate), the floor of the job in Python.
Ratio = the baseline's time / ours, i.e. the share of the bare loop's throughput we keep (higher is better).

Run: .venv/bin/python -m bench.convert   [--sizes 1000,50000,200000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from bench.bench_convert import baseline, make_payload, ours
from bench.common import QUICK, Row, median_p99, ms, print_table

GOAL = 0.5  # of the bare loop's throughput
LIMIT_50K = 0.5  # seconds
RUNS = {1_000: 200, 50_000: 15, 200_000: 7}


def _times(fn: Callable[[dict[str, str]], bytes], payload: dict[str, str], runs: int) -> list[float]:
    fn(payload)
    samples = []
    for _ in range(runs):
        began = time.perf_counter()
        fn(payload)
        samples.append(time.perf_counter() - began)
    return samples


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000" if QUICK else "1000,50000,200000")
    args = parser.parse_args(argv)
    rows: list[Row] = []
    for n in (int(s) for s in args.sizes.split(",")):
        payload = make_payload(n)
        runs = 5 if QUICK else RUNS.get(n, 10)
        theirs: list[float] = []
        mine: list[float] = []
        for _ in range(runs):  # alternated, so drift on a shared machine hits both alike
            theirs += _times(baseline, payload, 1)
            mine += _times(ours, payload, 1)
        med, p99 = median_p99(mine)
        base_med, _ = median_p99(theirs)
        size = len(ours(payload))
        rows.append(Row(f"{n:,} points ({size / 1e6:.1f} MB GPX)", ms(med), ms(p99), ms(base_med), base_med / med,
                        GOAL, higher=True, note=f"{n / med / 1000:,.0f}k points/s; {runs} runs"))
        if n == 50_000:
            rows.append(Row("50,000 points, seconds", f"{med:.3f} s", f"{p99:.3f} s", "-", med, LIMIT_50K,
                            note="goal: under half a second (ratio column = median seconds)"))
    print_table("Conversion: payload → GPX bytes (ratio: the bare f-string loop's time / ours)", rows)


if __name__ == "__main__":
    main()
