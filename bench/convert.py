"""Conversion throughput: Zapier payload → GPX bytes (parse, validate, write), as the queue worker does it.

The payloads and writers are bench/bench_convert.py's. Budget: 50,000 points (a long run) within half a
second at p99, so a worker is never busy long and its memory is freed soon. For scale, each row's note
gives the time of a bare f-string loop over the same lists (no validation, segments or heart rate), the
floor of the job in Python.

Run: .venv/bin/python -m bench.convert   [--sizes 1000,50000,200000]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from bench.bench_convert import baseline, make_payload, ours
from bench.common import QUICK, Row, median_p99, ms, print_table

BUDGETS = {50_000: 0.5}  # p99 seconds
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
    parser.add_argument("--sizes", default="1000,50000" if QUICK else "1000,50000,200000")
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
        bare, _ = median_p99(theirs)
        size = len(ours(payload))
        budget = BUDGETS.get(n)
        rows.append(Row(f"{n:,} points ({size / 1e6:.1f} MB GPX)", ms(med), ms(p99),
                        "-" if budget is None else f"p99 ≤ {budget * 1000:g} ms",
                        None if budget is None else p99 <= budget,
                        note=f"{n / med / 1000:,.0f}k points/s; bare loop {ms(bare)} ({bare / med:.2f} of its "
                             f"throughput); {runs} runs"))
    print_table("Conversion: payload → GPX bytes", rows)


if __name__ == "__main__":
    main()
