"""Ack latency of POST /api/runkeeper against the bare storage writes it must make, on a real Azurite.

The function is called as the host calls it (the registered user function with an HttpRequest); every
post is a new activity (its start moved on), so each one does the full work. The baseline, measured in
the same run and interleaved with it, is what no ack can avoid: the same bytes written with the SDKs
directly, over warm clients (one queue message; for a payload too big for a message, one blob and then
one message).

Run: .venv/bin/python -m bench.ack   [--runs N] [--sizes 300,5000,60000] [--profile SIZE] [--chart PNG]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import secrets
import time
import uuid
from datetime import timedelta

from bench.common import QUICK, Row, azurite, median_p99, ms, payload, print_table

GOAL = 1.5
SIZES = (300, 5_000, 60_000)
API_KEY = "bench-" + secrets.token_hex(8)  # a throwaway key for the bench's own Azurite


def _configure(storage: str) -> None:
    os.environ["AzureWebJobsStorage"] = storage
    os.environ["SYNC_API_KEY"] = API_KEY


class Ack:
    """POSTs as the Functions host would, each time a distinct activity."""

    def __init__(self) -> None:
        import function_app

        self.fn = function_app.runkeeper.build().get_user_function()
        self.count = 0

    def body(self, points: int, *, key_in_body: bool = False) -> bytes:
        """`key_in_body`: as the original app's Code step sends it (apiKey and apiEndpoint, no header)."""
        self.count += 1
        data: dict[str, str] = payload(points, start_shift=timedelta(hours=self.count))
        if key_in_body:
            data = {**data, "apiKey": API_KEY, "apiEndpoint": "https://example.invalid/api/runkeeper"}
        return json.dumps(data).encode("utf-8")

    def post(self, body: bytes) -> float:
        import azure.functions as func

        headers = {"Content-Type": "application/json"}
        if b'"apiKey"' not in body:
            headers["X-Api-Key"] = API_KEY
        req = func.HttpRequest("POST", "http://localhost:7071/api/runkeeper", headers=headers, body=body)
        began = time.perf_counter()
        resp = self.fn(req)
        took = time.perf_counter() - began
        if resp.status_code != 202:
            raise RuntimeError(f"ack answered {resp.status_code}: {resp.get_body()[:300]!r}")
        return took


class Bare:
    """The floor: the same bytes through the SDKs directly, clients built once and warm."""

    def __init__(self, storage: str) -> None:
        from azure.storage.blob import ContainerClient
        from azure.storage.queue import QueueClient

        self.queue = QueueClient.from_connection_string(storage, "bench-bare")
        self.container = ContainerClient.from_connection_string(storage, "bench-bare")
        self.queue.create_queue()
        self.container.create_container()

    def write(self, body: bytes) -> float:
        from shared.jobs import INLINE_LIMIT

        began = time.perf_counter()
        if len(body) > INLINE_LIMIT:  # what the ack must do: the payload to a blob, its name in the message
            name = uuid.uuid4().hex
            self.container.upload_blob(name, body, overwrite=True)
            self.queue.send_message(base64.b64encode(json.dumps({"blob": name}).encode()).decode())
        else:
            self.queue.send_message(base64.b64encode(body).decode())
        return time.perf_counter() - began


def measure(points: int, runs: int, ack: Ack, bare: Bare, *, key_in_body: bool = False
            ) -> tuple[list[float], list[float], int]:
    bodies = [ack.body(points, key_in_body=key_in_body) for _ in range(runs + 3)]
    ours: list[float] = []
    floor: list[float] = []
    for i, body in enumerate(bodies):  # interleaved, so drift on a shared machine hits both alike
        b = bare.write(body)
        o = ack.post(body)
        if i >= 3:  # warm-up
            floor.append(b)
            ours.append(o)
    return ours, floor, len(bodies[0])


def profile(points: int, runs: int, ack: Ack) -> None:
    from pyinstrument import Profiler

    bodies = [ack.body(points) for _ in range(runs)]
    ack.post(ack.body(points))
    profiler = Profiler(interval=0.0002)
    profiler.start()
    for body in bodies:
        ack.post(body)
    profiler.stop()
    print(profiler.output_text(unicode=True, color=False, show_all=False))


def chart(results: list[tuple[int, int, list[float], list[float]]], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.4), dpi=110)
    points = [r[0] for r in results]
    for label, idx, style in (("ack (median)", 2, "o-"), ("bare storage writes (median)", 3, "s--")):
        ax.plot(points, [median_p99(r[idx])[0] * 1000 for r in results], style, label=label)
    ax.plot(points, [median_p99(r[2])[1] * 1000 for r in results], "o:", label="ack (p99)")
    ax.set_xscale("log")
    ax.set_xlabel("points in the activity (payload: " + ", ".join(f"{r[1] / 1e3:.0f} KB" for r in results) + ")")
    ax.set_ylabel("ms")
    ax.set_title("POST /api/runkeeper on Azurite (2 shared cores)")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    print(f"chart written to {path}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5 if QUICK else 60)
    parser.add_argument("--sizes", default="300" if QUICK else ",".join(map(str, SIZES)))
    parser.add_argument("--profile", type=int, metavar="POINTS", help="profile the ack at this size instead")
    parser.add_argument("--chart", metavar="PNG", help="also draw median/p99 against size (needs matplotlib)")
    parser.add_argument("--key-in-body", action="store_true",
                        help="also post each size as the original Zap does (apiKey in the body, no header)")
    args = parser.parse_args(argv)
    with azurite() as server:
        _configure(server.connection_string)
        ack, bare = Ack(), Bare(server.connection_string)
        ack.post(ack.body(300))  # creates the table, queue and container, as the first request in Azure would
        if args.profile:
            profile(args.profile, args.runs, ack)
            return
        rows: list[Row] = []
        results: list[tuple[int, int, list[float], list[float]]] = []
        sizes = [int(s) for s in args.sizes.split(",")]
        for key_in_body in (False, True) if args.key_in_body else (False,):
            for points in sizes:
                ours, floor, size = measure(points, args.runs, ack, bare, key_in_body=key_in_body)
                med, p99 = median_p99(ours)
                base_med, base_p99 = median_p99(floor)
                if key_in_body:
                    label, note = f"{points:,} points, key in body", "the original Zap's shape: stored without its key"
                else:
                    results.append((points, size, ours, floor))
                    label, note = f"{points:,} points ({size / 1e3:,.0f} KB)", f"baseline p99 {ms(base_p99)}"
                rows.append(Row(label, ms(med), ms(p99), ms(base_med), med / base_med, GOAL,
                                note=f"{note}; {len(ours)} runs"))
        print_table("Ack latency: POST /api/runkeeper → 202, real Azurite (baseline: the bare storage writes)", rows)
        if args.chart:
            chart(results, args.chart)


if __name__ == "__main__":
    main()
