"""Every bench, one after the other, each in its own interpreter (cold start and memory need a fresh one).

Run: .venv/bin/python -m bench   [NAME ...]   (names as below; BENCH_QUICK=1 for a tiny smoke run)
"""

from __future__ import annotations

import subprocess
import sys
import time

from bench.common import ROOT

BENCHES = ("convert", "ack", "coldstart", "memory", "calls", "import_wall")


def main(argv: list[str] | None = None) -> int:
    names = list(argv if argv is not None else sys.argv[1:]) or list(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        print(f"unknown bench(es): {', '.join(unknown)}; choose from {', '.join(BENCHES)}", file=sys.stderr)
        return 2
    failed = []
    for name in names:
        began = time.perf_counter()
        print(f"== bench.{name}", flush=True)
        if subprocess.run([sys.executable, "-m", f"bench.{name}"], cwd=ROOT, check=False).returncode != 0:
            failed.append(name)
        print(f"   ({time.perf_counter() - began:.0f} s)\n", flush=True)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
