"""Cold start of the ack: a fresh interpreter importing function_app and answering its first POST, budget 1 s.

Zapier's free Code step gives a request one second. Each run starts a new Python process in a copy of
the deployed files (function_app.py, host.json, shared/: no __pycache__, and none written, as on Flex's
read-only package mount where the app's own modules are compiled at every start; site-packages keep
the bytecode pip wrote, as a remote build does). It imports azure.functions and function_app, indexes
the app's functions as the worker does, then calls the HTTP function with a new 300-point activity: the
ack imports the storage SDKs (and azure-identity), gets a token, opens connections and stores the
activity. Timed from just before the process is spawned to the 202, on the wall clock; teardown is not
counted. The budget is on the worst run. The process's CPU time is reported too: on a loaded machine
the wall clock also counts waiting for a core, the CPU time does not.

"identity" is production's way: HTTPS Azurite with OAuth and the fake managed-identity endpoint on
loopback, no key in the child's environment (the first ack fetches a token). "connection string" (plain
HTTP Azurite, the first ack also creates the log table and the queue if missing) is for comparison.
What this cannot show: the Functions host's and the Python worker's own start and the package mount on
Flex (seconds), and the DNS/TLS/token round-trips to real Azure endpoints.

Run: .venv/bin/python -m bench.coldstart   [--runs N] [--importtime]
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from bench.common import MODES, QUICK, ROOT, Row, azurite, child_env, identity_stack, ms, payload, print_table

BUDGET = 1.0  # seconds, process start to the first 202
HEAVY = ("azure.identity", "msal", "cryptography", "jwt", "azure.core", "azure.storage.blob", "azure.storage.queue",
         "azure.data.tables", "requests", "urllib3", "gpxpy", "shared.strava.api", "shared.strava.gpx",
         "shared.live.worker")
CHILD = r"""
import time
began = time.time()
import json, sys
t0 = time.perf_counter()
import azure.functions as func
import function_app
functions = {fn.get_function_name(): fn for fn in function_app.app.get_functions()}  # the worker's indexing
t1 = time.perf_counter()
body = open(sys.argv[1], "rb").read()
req = func.HttpRequest("POST", "http://localhost:7071/api/runkeeper",
                       headers={"Content-Type": "application/json", "X-Api-Key": sys.argv[2]}, body=body)
status = functions["runkeeper"].get_user_function()(req).status_code
t2 = time.perf_counter()
answered = time.time()
cpu = time.process_time()
heavy = [m for m in sys.argv[3].split(",") if m in sys.modules]
print(json.dumps({"status": status, "began": began, "answered": answered, "import": t1 - t0, "ack": t2 - t1,
                  "cpu": cpu, "heavy": heavy, "modules": len(sys.modules)}))
"""


@dataclass
class Run:
    start: float  # spawn → the child's first line
    imports: float  # azure.functions + function_app, and indexing its functions
    ack: float  # the first request, lazy imports included
    total: float  # spawn → 202
    cpu: float  # CPU seconds of the process until the 202: what a busy machine does not inflate
    heavy: list[str]
    modules: int


def deployed_copy(folder: Path) -> Path:
    """The files Azure runs (see .funcignore), without bytecode: the app's modules compile at each start."""
    app = folder / "app"
    app.mkdir()
    for name in ("function_app.py", "host.json"):
        shutil.copy2(ROOT / name, app / name)
    shutil.copytree(ROOT / "shared", app / "shared", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return app


def cold_run(app: Path, env: dict[str, str], body: Path, key: str, importtime: bool = False) -> tuple[Run, str]:
    """One fresh interpreter's first ack; (its timings, its stderr)."""
    flags = ["-X", "importtime"] if importtime else []
    spawned = time.time()
    done = subprocess.run([sys.executable, *flags, "-c", CHILD, str(body), key, ",".join(HEAVY)], cwd=app, env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"cold run failed: {done.stderr[-3000:]}")
    data = json.loads(done.stdout.strip().splitlines()[-1])
    if data["status"] != 202:
        raise RuntimeError(f"the first ack answered {data['status']}: {done.stderr[-2000:]}")
    return Run(data["began"] - spawned, data["import"], data["ack"], data["answered"] - spawned, data["cpu"],
               data["heavy"], data["modules"]), done.stderr


def heaviest_imports(stderr: str, top: int = 15) -> list[tuple[int, str]]:
    """(cumulative µs, module) of the top-level imports in -X importtime's output, heaviest first."""
    rows = []
    for line in stderr.splitlines():
        if line.startswith("import time:") and line.count("|") == 2:
            _, cumulative, name = line.split("|")
            if cumulative.strip().isdigit() and not name.startswith("  "):  # nested imports are indented more
                rows.append((int(cumulative), name.strip()))
    return sorted(rows, reverse=True)[:top]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=2 if QUICK else 10, help="cold starts per mode")
    parser.add_argument("--importtime", action="store_true", help="also list what a cold identity ack imports")
    args = parser.parse_args(argv)
    key = "bench-" + secrets.token_hex(8)
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-cold-")))
        app = deployed_copy(tmp)
        plain = stack.enter_context(azurite())
        ident = stack.enter_context(identity_stack())
        extra = {"SYNC_API_KEY": key, "PYTHONDONTWRITEBYTECODE": "1"}
        envs = {"connection string": child_env({"AzureWebJobsStorage": plain.connection_string, **extra}),
                "identity": child_env({**ident.env, **extra})}
        count = 0

        def body() -> Path:
            nonlocal count
            count += 1
            path = tmp / f"payload-{count}.json"
            path.write_text(json.dumps(payload(300, start_shift=timedelta(days=count))), encoding="utf-8")
            return path

        for mode in MODES:  # warm-up: the page cache holds the files, as on any machine that ran Python once
            cold_run(app, envs[mode], body(), key)
        tokens_before = ident.identity.token_count
        runs: dict[str, list[Run]] = {mode: [] for mode in MODES}
        for _ in range(args.runs):  # the modes interleaved, so drift on a shared machine hits both alike
            for mode in MODES:
                runs[mode].append(cold_run(app, envs[mode], body(), key)[0])
        tokens = ident.identity.token_count - tokens_before
        if args.importtime:
            _, stderr = cold_run(app, envs["identity"], body(), key, importtime=True)
    rows: list[Row] = []
    for mode in reversed(MODES):  # production's first
        mine = runs[mode]
        heavy = sorted({m for r in mine for m in r.heavy})
        parts = (("interpreter start", lambda r: r.start),
                 ("imports and indexing of function_app", lambda r: r.imports), ("first ack", lambda r: r.ack),
                 ("CPU time of the process until the 202", lambda r: r.cpu))
        for label, get in parts:
            values = [get(r) for r in mine]
            rows.append(Row(f"{mode}: {label}", ms(statistics.median(values)), ms(max(values))))
        totals = [r.total for r in mine]
        note = (f"{len(mine)} fresh processes; modules loaded: {max(r.modules for r in mine)}; "
                f"imported: {', '.join(heavy)}")
        if mode == "identity":
            note += f"; {tokens} token request(s), one per process"
        rows.append(Row(f"{mode}: total, spawn → 202", ms(statistics.median(totals)), ms(max(totals)),
                        f"max ≤ {BUDGET:g} s", max(totals) <= BUDGET, note=note))
    print_table("Cold ack: a fresh interpreter importing function_app and answering its first POST "
                "(Azurite on loopback; no host or worker start, no network)", rows, worst="max")
    if args.importtime:
        print("What a cold identity ack imports (cumulative ms, top-level modules):")
        for micros, name in heaviest_imports(stderr):
            print(f"  {micros / 1000:8.1f}  {name}")
        print()


if __name__ == "__main__":
    main()
