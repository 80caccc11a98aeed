"""Memory: the queue worker's peak RSS for 200,000-point activities, one at a time and two at once.

This sizes the Flex instance (`instanceMemoryMB`, 2,048 MB by default in infra/): host.json's batchSize 2
lets one Python worker run two activities at once, and the Functions host (.NET, ~150-250 MB) shares the
instance. The activities are posted through the real ack (their payloads land in claim-check blobs), then
a fresh worker process, configured as in production (identity-based storage, no key; HTTPS Azurite with
OAuth and the fake managed-identity endpoint), drains them with tests/drain.py as the host would (the
queue function of function_app), converting, gzipping and uploading to the fake Strava. It reports its
resident set after importing everything it will use and its peak (VmHWM) after the run.

Budget: the two-at-once peak plus 250 MB for the host within half the instance (2× headroom).

Run: .venv/bin/python -m bench.memory   [--points N] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
from datetime import timedelta

from bench.common import QUICK, ROOT, Row, child_env, identity_stack, payload, print_table

INSTANCE_MB = 2048  # infra/main.bicep's instanceMemoryMB default
HOST_MB = 250  # the Functions host's share, at the top of its usual 150-250 MB
WORKER = """
import json, sys
import function_app, shared.live.worker, shared.live.sync, shared.strava.api, shared.strava.convert, shared.strava.gpx
import shared.runkeeper.payload
import requests, gzip, azure.identity, azure.storage.blob, azure.storage.queue, azure.data.tables
from shared.config import load
from tests.support.drain import Drain

def status_kb(field):
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(field + ":"))

before = status_kb("VmRSS")
with Drain(load().storage, workers=int(sys.argv[1]), run_poison=False) as drain:
    stats = drain.run(timeout=600, wait=False)
peak = status_kb("VmHWM")  # not ru_maxrss: Linux carries that over from the parent across fork and exec
print(json.dumps({"before_kb": before, "peak_kb": peak, "succeeded": stats.succeeded, "failed": stats.failed}))
"""


def _mb(kb: float) -> str:
    return f"{kb / 1024:,.0f} MB"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=2_000 if QUICK else 200_000)
    parser.add_argument("--runs", type=int, default=1 if QUICK else 3, help="fresh workers per case")
    args = parser.parse_args(argv)
    import azure.functions as func

    from tests.support.fake_strava import FakeStrava
    from tests.support.fixtures_strava import connect_athlete

    key = "bench-" + secrets.token_hex(8)
    results: dict[int, list[dict[str, int]]] = {1: [], 2: []}
    size = 0
    with identity_stack() as stack, FakeStrava() as fake:
        strava = {"SYNC_API_KEY": key, "STRAVA_CLIENT_ID": fake.client_id, "STRAVA_CLIENT_SECRET": fake.client_secret,
                  "STRAVA_BASE_URL": fake.url}
        # The posts are the bench's setup (the ack in this process, with the account key); the worker is measured.
        os.environ.update({"AzureWebJobsStorage": stack.azurite.connection_string, **strava})
        connect_athlete(stack.setup_storage, fake)
        from tests.support.host import function

        ack = function("runkeeper")
        worker_env = child_env({**stack.env, **strava})
        posted = 0
        for _ in range(args.runs):
            for at_once in (1, 2):
                for _post in range(at_once):
                    posted += 1
                    body = json.dumps(payload(args.points, start_shift=timedelta(days=posted))).encode()
                    size = len(body)
                    req = func.HttpRequest("POST", "http://localhost/api/runkeeper", headers={"X-Api-Key": key},
                                           body=body)
                    if (status := ack(req).status_code) != 202:
                        raise RuntimeError(f"ack answered {status}")
                    del body, req
                done = subprocess.run([sys.executable, "-c", WORKER, str(at_once)], cwd=ROOT, env=worker_env,
                                      capture_output=True, text=True, check=False)
                if done.returncode != 0:
                    raise RuntimeError(f"worker failed: {done.stderr[-3000:]}")
                result = json.loads(done.stdout.strip().splitlines()[-1])
                if result["succeeded"] != at_once:
                    raise RuntimeError(f"the worker did not sync {at_once} activities: {result} {done.stderr[-2000:]}")
                results[at_once].append(result)
        uploaded = [a for a in fake.activities() if a.points == args.points]
        if len(uploaded) != posted:
            raise RuntimeError(f"expected {posted} activities of {args.points} points on the fake Strava")
    rows = []
    for at_once, label in ((1, "one activity"), (2, "two at once (batchSize 2)")):
        peaks = [r["peak_kb"] for r in results[at_once]]
        growth = [r["peak_kb"] - r["before_kb"] for r in results[at_once]]
        before = statistics.median(r["before_kb"] for r in results[at_once])
        note = (f"growth {_mb(statistics.median(growth))} (max {_mb(max(growth))}) over {_mb(before)} with the app "
                f"and SDKs imported; payload {size / 2**20:.1f} MB each; {len(peaks)} fresh worker process(es)")
        budget, ok = "-", None
        if at_once == 2:
            limit_kb = (INSTANCE_MB // 2 - HOST_MB) * 1024
            budget, ok = f"max ≤ {_mb(limit_kb)}", max(peaks) <= limit_kb
            note += (f"; budget: with {HOST_MB} MB for the host, within half of a {INSTANCE_MB:,} MB instance "
                     f"({_mb(max(peaks) + HOST_MB * 1024)} of {INSTANCE_MB:,} MB)")
        rows.append(Row(f"worker peak RSS, {label}", _mb(statistics.median(peaks)), _mb(max(peaks)), budget, ok,
                        note))
    print_table(f"Memory: a production-configured worker converting and uploading {args.points:,}-point activities",
                rows, worst="max")


if __name__ == "__main__":
    main()
