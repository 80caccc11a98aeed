"""Smoke test of the benches: the cheapest runs in its tiny mode and prints its table (times are not checked)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, BENCH_QUICK="1")
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=240, check=False)


def test_the_conversion_bench_prints_its_table() -> None:
    done = _run("bench.convert")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Conversion: payload → GPX bytes")
    header = lines[1].split()
    assert header == ["case", "median", "p99", "baseline", "ratio", "goal", "met?"]
    [row] = [line for line in lines if line.strip().startswith("1,000 points")]
    cells = row.split()
    assert cells[-1] in ("yes", "NO") and cells[-2] == "0.5" and cells[-3] == "≥"
    assert float(cells[-4]) > 0  # the ratio is a number, whatever it is on this machine


def test_bench_refuses_an_unknown_name() -> None:
    done = _run("bench", "nonsense")
    assert done.returncode == 2 and "choose from" in done.stderr
