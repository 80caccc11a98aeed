"""Warm ack latency of POST /api/runkeeper against its budgets, on a real Azurite, both ways the app reaches storage.

Budgets (issue 12), on the p99 of warm posts: 50 ms at 300 points, 100 ms at 5,000, 400 ms at 60,000.
Zapier's free Code step gives the whole request one second; in Azure each of the ack's two or three
storage calls also crosses the network (~5-20 ms each), which Azurite on loopback does not show.

Each mode runs in its own child process holding only that mode's settings, as the Functions worker
would: "connection string" (plain HTTP Azurite with the account key, as local runs) and "identity"
(HTTPS Azurite taking bearer tokens from the fake managed-identity endpoint, as production; no key in the
child's environment). The user function is called as the host calls it, with an HttpRequest; every post
is a new activity (its start moved on), so each does the full work: exact validation, the log row, then
the message (and a claim-check blob above a message's 48 KiB). The first post of a child (token, clients,
connections) and three per size are warm-up and not counted.

Run: .venv/bin/python -m bench.ack   [--runs N] [--sizes 300,5000,60000] [--modes identity]
     [--profile POINTS] [--chart docs/ack-latency.png]   (the chart needs requirements-bench.txt)
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from bench.common import MODES, QUICK, ROOT, Row, app_storage, child_env, median_p99, ms, payload, print_table

BUDGETS = {300: 0.050, 5_000: 0.100, 60_000: 0.400}  # p99 seconds
WARMUP = 3


class Ack:
    """POSTs as the Functions host would, each time a distinct activity (in the child process)."""

    def __init__(self, api_key: str) -> None:
        from tests.support.host import function  # as the host finds it: by name among the registered functions

        self.fn = function("runkeeper")
        self.api_key = api_key
        self.count = 0
        self._payloads: dict[int, dict[str, str]] = {}

    def body(self, points: int) -> bytes:
        """The same track each time, started an hour later than the last, so it is never a replay."""
        self.count += 1
        if points not in self._payloads:
            self._payloads[points] = payload(points)
        data = dict(self._payloads[points])
        start = datetime.fromisoformat(data["activityStartTimeIso"]) + timedelta(hours=self.count)
        data["activityStartTimeIso"] = start.isoformat()
        return json.dumps(data).encode("utf-8")

    def post(self, body: bytes) -> float:
        import azure.functions as func

        headers = {"Content-Type": "application/json", "X-Api-Key": self.api_key}
        req = func.HttpRequest("POST", "http://localhost:7071/api/runkeeper", headers=headers, body=body)
        began = time.perf_counter()
        resp = self.fn(req)
        took = time.perf_counter() - began
        if resp.status_code != 202:
            raise RuntimeError(f"ack answered {resp.status_code}: {resp.get_body()[:300]!r}")
        return took


def child(sizes: list[int], runs: int, profile_points: int | None) -> None:
    """The measured process: warm up, then one JSON line per size (points, bytes, samples in seconds)."""
    ack = Ack(os.environ["SYNC_API_KEY"])
    ack.post(ack.body(300))  # the token, the clients and the connections, as a first request in Azure
    if profile_points:
        from pyinstrument import Profiler

        for _ in range(WARMUP):
            ack.post(ack.body(profile_points))
        profiler = Profiler(interval=0.0002)
        for _ in range(runs):
            body = ack.body(profile_points)
            profiler.start()
            ack.post(body)
            profiler.stop()
        print(profiler.output_text(unicode=True, color=False, show_all=False))
        return
    for points in sizes:
        samples = []
        size = 0
        for i in range(WARMUP + runs):
            body = ack.body(points)
            size = len(body)
            took = ack.post(body)
            if i >= WARMUP:
                samples.append(took)
        print(json.dumps({"points": points, "bytes": size, "samples": samples}), flush=True)


@dataclass
class Result:
    mode: str
    points: int
    size: int
    samples: list[float]


def run_mode(mode: str, sizes: list[int], runs: int, profile_points: int | None) -> tuple[list[Result], str]:
    """Start the mode's storage, run the child against it; (results, a note on tokens fetched)."""
    api_key = "bench-" + secrets.token_hex(8)
    with app_storage(mode) as (settings, identity):
        env = child_env({**settings, "SYNC_API_KEY": api_key})
        argv = [sys.executable, "-m", "bench.ack", "--child", "--runs", str(runs),
                "--sizes", ",".join(map(str, sizes))]
        if profile_points:
            argv += ["--profile", str(profile_points)]
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"the {mode} ack child failed:\n{done.stderr[-3000:]}")
        tokens = None if identity is None else identity.token_count
    if profile_points:
        print(f"Profile of the ack at {profile_points:,} points, {mode}:\n{done.stdout}")
        return [], ""
    results = []
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            data = json.loads(line)
            results.append(Result(mode, data["points"], data["bytes"], data["samples"]))
    note = "" if tokens is None else f"; {tokens} token request(s) to the identity endpoint in the whole run"
    return results, note


def chart(results: list[Result], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=110)
    for mode, color in zip(MODES, ("tab:blue", "tab:orange"), strict=True):
        mine = sorted((r for r in results if r.mode == mode), key=lambda r: r.points)
        if not mine:
            continue
        points = [r.points for r in mine]
        ax.plot(points, [median_p99(r.samples)[0] * 1000 for r in mine], "o-", color=color, label=f"{mode}, median")
        ax.plot(points, [median_p99(r.samples)[1] * 1000 for r in mine], "o:", color=color, label=f"{mode}, p99")
    budgets = sorted(BUDGETS.items())
    ax.plot([p for p, _ in budgets], [b * 1000 for _, b in budgets], "_", color="tab:red", markersize=22,
            markeredgewidth=2.5, label="p99 budget")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("points in the activity")
    ax.set_ylabel("ms (log)")
    ax.set_title("Warm POST /api/runkeeper → 202, Azurite on loopback (2 cores)", fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    print(f"chart written to {path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5 if QUICK else 100,
                        help="counted posts per size (p99 is the nearest rank: the worst of up to 100)")
    parser.add_argument("--sizes", default="300" if QUICK else ",".join(map(str, BUDGETS)))
    parser.add_argument("--modes", default=",".join(MODES), help=f"any of: {', '.join(MODES)}")
    parser.add_argument("--profile", type=int, metavar="POINTS", help="profile the ack at this size instead")
    parser.add_argument("--chart", metavar="PNG", help="also draw median/p99 against size (needs matplotlib)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.child:
        child(sizes, args.runs, args.profile)
        return
    modes = [m.strip() for m in args.modes.split(",")]
    if unknown := [m for m in modes if m not in MODES]:
        parser.error(f"unknown mode(s) {unknown}; choose from {', '.join(MODES)}")
    rows: list[Row] = []
    results: list[Result] = []
    for mode in modes:
        found, note = run_mode(mode, sizes, args.runs, args.profile)
        results += found
        for r in found:
            med, p99 = median_p99(r.samples)
            budget = BUDGETS.get(r.points)
            rows.append(Row(f"{mode}, {r.points:,} points ({r.size / 1e3:,.0f} KB)", ms(med), ms(p99),
                            "-" if budget is None else f"p99 ≤ {budget * 1000:g} ms",
                            None if budget is None else p99 <= budget,
                            note=f"{len(r.samples)} posts{note}"))
    if args.profile:
        return
    print_table("Warm ack: POST /api/runkeeper → 202 on Azurite (loopback: no network latency)", rows)
    if args.chart:
        chart(results, args.chart)


if __name__ == "__main__":
    main()
