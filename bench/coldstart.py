"""Cold start: a fresh interpreter importing function_app and serving its first POST, against one importing
azure.functions alone (what any Python function app pays before its own code runs).

Both are timed from the process's start to its exit, the same way, so interpreter start-up and teardown
count on both sides. Azurite is warm (started once); each run posts a new activity (a full 202 path).
`--importtime` prints what the first request imports, heaviest first (python -X importtime).

Run: .venv/bin/python -m bench.coldstart   [--runs N] [--importtime]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from bench.common import QUICK, ROOT, Row, azurite, median_p99, ms, payload, print_table

GOAL = 1.3
FLOOR = "import azure.functions"
ACK = """
import sys
import azure.functions as func
import function_app
body = open(sys.argv[1], "rb").read()
req = func.HttpRequest("POST", "http://localhost:7071/api/runkeeper",
                       headers={"Content-Type": "application/json", "X-Api-Key": sys.argv[2]}, body=body)
status = function_app.runkeeper.build().get_user_function()(req).status_code
if status != 202:
    raise SystemExit(f"ack answered {status}")
"""


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(code: str, args: list[str], env: dict[str, str], importtime: bool = False) -> tuple[float, float, str]:
    """(wall seconds, CPU seconds of the child, its stderr)."""
    flags = ["-X", "importtime"] if importtime else []
    cpu = _cpu()
    began = time.perf_counter()
    done = subprocess.run([sys.executable, *flags, "-c", code, *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, check=False)
    took = time.perf_counter() - began
    if done.returncode != 0:
        raise RuntimeError(f"cold run failed: {done.stderr[-2000:]}")
    return took, _cpu() - cpu, done.stderr


def _write_payload(folder: Path, i: int) -> str:
    path = folder / f"payload-{i}.json"
    path.write_text(json.dumps(payload(300, start_shift=timedelta(days=i))), encoding="utf-8")
    return str(path)


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
    parser.add_argument("--runs", type=int, default=3 if QUICK else 25)
    parser.add_argument("--importtime", action="store_true", help="list what the first request imports")
    args = parser.parse_args(argv)
    key = "bench-" + secrets.token_hex(8)
    rows = []
    with azurite() as server, tempfile.TemporaryDirectory() as tmp:
        base = dict(os.environ, AzureWebJobsStorage=server.connection_string, SYNC_API_KEY=key)
        base.pop("PYTHONDONTWRITEBYTECODE", None)
        # Bytecode cached (a dev machine, or a package shipped with it), kept out of the tree by a prefix;
        # and the app's own modules compiled at every start (PYTHONDONTWRITEBYTECODE, as on this machine,
        # or a read-only package without __pycache__, which .funcignore leaves out). Site-packages keep
        # the bytecode pip wrote in both.
        variants = (("bytecode cached", dict(base, PYTHONPYCACHEPREFIX=str(Path(tmp) / "pycache"))),
                    ("app compiled at start", dict(base, PYTHONDONTWRITEBYTECODE="1")))
        count = 0
        for variant, env in variants:
            count += 1
            _run(ACK, [_write_payload(Path(tmp), count), key], env)  # creates the storage; fills the cache
            _run(FLOOR, [], env)
            if args.importtime and variant == "bytecode cached":
                count += 1
                _, _, stderr = _run(ACK, [_write_payload(Path(tmp), count), key], env, importtime=True)
                print("What a cold ack imports (cumulative ms, top-level modules; bytecode cached):")
                for micros, name in heaviest_imports(stderr):
                    print(f"  {micros / 1000:8.1f}  {name}")
                print()
            ours: list[tuple[float, float, str]] = []
            floor: list[tuple[float, float, str]] = []
            for _ in range(args.runs):  # interleaved: drift on a shared machine hits both alike
                count += 1
                floor.append(_run(FLOOR, [], env))
                ours.append(_run(ACK, [_write_payload(Path(tmp), count), key], env))
            for label, idx in (("wall", 0), ("CPU", 1)):
                if variant != "bytecode cached" and label == "CPU":
                    continue
                med, p99 = median_p99([r[idx] for r in ours])
                base_med, base_p99 = median_p99([r[idx] for r in floor])
                rows.append(Row(f"{variant}, {label}", ms(med), ms(p99), ms(base_med), med / base_med, GOAL,
                                note=f"baseline p99 {ms(base_p99)}; {len(ours)} runs; extra {ms(med - base_med)}"))
    print_table("Cold start: a fresh interpreter importing function_app and answering its first POST, start to "
                "exit (baseline: one importing azure.functions)", rows)


if __name__ == "__main__":
    main()
