"""Memory: peak RSS of the queue worker converting and uploading one 200,000-point activity, against the
size of the payload it was given.

The activity is posted through the real ack (so its payload sits in a claim-check blob on Azurite), then a
fresh worker process (the host-like drain, tests/drain.py, calling function_app's queue function) loads,
converts, gzips and uploads it to the fake Strava. The worker reports its resident set after importing
everything it will use and its peak (VmHWM) after the run; the growth is what the activity cost.

Run: .venv/bin/python -m bench.memory   [--points N] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import subprocess
import sys
from datetime import timedelta

from bench.common import QUICK, ROOT, Row, azurite, median_p99, payload, print_table

WORKER = """
import json, sys
import function_app, shared.worker, shared.sync, shared.gpx, shared.convert, shared.strava, shared.runkeeper
import requests, gzip
from tests.drain import Drain

def status_kb(field):
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(field + ":"))

before = status_kb("VmRSS")
with Drain(sys.argv[1], run_poison=False) as drain:
    stats = drain.run(timeout=600, wait=False)
peak = status_kb("VmHWM")  # not ru_maxrss: Linux carries that over from the parent across fork and exec
print(json.dumps({"before_kb": before, "peak_kb": peak, "succeeded": stats.succeeded, "failed": stats.failed}))
"""


def _mb(kb: float) -> str:
    return f"{kb / 1024:.1f} MB"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=2_000 if QUICK else 200_000)
    parser.add_argument("--runs", type=int, default=1 if QUICK else 3)
    args = parser.parse_args(argv)
    import azure.functions as func

    from tests.fake_strava import FakeStrava
    from tests.fixtures_strava import connect_athlete

    key = "bench-" + secrets.token_hex(8)
    with azurite() as server, FakeStrava() as fake:
        env = {"AzureWebJobsStorage": server.connection_string, "SYNC_API_KEY": key,
               "STRAVA_CLIENT_ID": fake.client_id, "STRAVA_CLIENT_SECRET": fake.client_secret,
               "STRAVA_BASE_URL": fake.url}
        os.environ.update(env)
        connect_athlete(server.connection_string, fake)
        import function_app

        ack = function_app.runkeeper.build().get_user_function()
        growth: list[float] = []
        peaks: list[float] = []
        size = 0
        for run in range(args.runs):
            body = json.dumps(payload(args.points, start_shift=timedelta(days=run))).encode()
            size = len(body)
            req = func.HttpRequest("POST", "http://localhost/api/runkeeper", headers={"X-Api-Key": key}, body=body)
            status = ack(req).status_code
            if status != 202:
                raise RuntimeError(f"ack answered {status}")
            del body, req
            done = subprocess.run([sys.executable, "-c", WORKER, server.connection_string], cwd=ROOT,
                                  env=dict(os.environ), capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"worker failed: {done.stderr[-2000:]}")
            result = json.loads(done.stdout.strip().splitlines()[-1])
            if result["succeeded"] != 1:
                raise RuntimeError(f"the worker did not sync the activity: {result} {done.stderr[-2000:]}")
            growth.append(result["peak_kb"] - result["before_kb"])
            peaks.append(result["peak_kb"])
        uploaded = [a for a in fake.activities() if a.points == args.points]
        if len(uploaded) != args.runs:
            raise RuntimeError(f"expected {args.runs} activities of {args.points} points on the fake Strava")
    med, p99 = median_p99(growth)
    peak_med, peak_p99 = median_p99(peaks)
    size_kb = size / 1024
    print_table(f"Memory: worker converting and uploading a {args.points:,}-point activity "
                "(baseline: the payload's size; ratio: RSS growth / payload size)", [
        Row("RSS growth during the run", _mb(med), _mb(p99), _mb(size_kb), med / size_kb, None,
            note=f"peak RSS {_mb(peak_med)} (p99 {_mb(peak_p99)}); {args.runs} fresh worker processes"),
    ])


if __name__ == "__main__":
    main()
