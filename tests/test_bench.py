"""Smoke test of the benches: the cheap ones run in their tiny mode and print their tables.

Times are never checked (a shared machine decides them); the tables' shape, the budgets they name and
that both storage modes (connection string, identity) still run are. A bench that no longer runs against
the app as it is would otherwise be found only by the next person who needs its figures.
"""

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


def _table(stdout: str, title: str) -> tuple[list[str], list[list[str]]]:
    """(header cells, body rows split on runs of two spaces) of the table under `title`."""
    lines = stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(title))
    assert "cores; load average" in lines[at + 1]
    header = lines[at + 2].split()
    body = []
    for line in lines[at + 4:]:
        if not line.strip() or line.lstrip().startswith("*"):
            break
        body.append([cell.strip() for cell in line.strip().split("  ") if cell.strip()])
    return header, body


def test_the_conversion_bench_prints_its_budget() -> None:
    done = _run("bench.convert")
    assert done.returncode == 0, done.stderr
    header, rows = _table(done.stdout, "Conversion: payload → GPX bytes")
    assert header == ["case", "median", "p99", "budget", "verdict"]
    [row] = [r for r in rows if r[0].startswith("50,000 points")]
    assert row[-2] == "p99 ≤ 500 ms" and row[-1] in ("PASS", "MISS")


def test_the_ack_bench_runs_with_a_connection_string_and_with_identity() -> None:
    done = _run("bench.ack")
    assert done.returncode == 0, done.stderr
    header, rows = _table(done.stdout, "Warm ack: POST /api/runkeeper")
    assert header == ["case", "median", "p99", "budget", "verdict"]
    assert [r[0].split(",")[0] for r in rows] == ["connection string", "identity"]
    assert all(r[-2] == "p99 ≤ 50 ms" and r[-1] in ("PASS", "MISS") for r in rows)
    assert "1 token request(s)" in done.stdout  # one token, then the credential's cache: none per warm post


def test_the_cold_start_bench_answers_with_identity() -> None:
    done = _run("bench.coldstart", "--runs", "1")
    assert done.returncode == 0, done.stderr
    header, rows = _table(done.stdout, "Cold ack:")
    assert header == ["case", "median", "max", "budget", "verdict"]
    totals = {r[0]: r for r in rows if "total" in r[0]}
    assert set(totals) == {"identity: total, spawn → 202", "connection string: total, spawn → 202"}
    assert all(r[-2] == "max ≤ 1 s" and r[-1] in ("PASS", "MISS") for r in totals.values())
    [note] = [line for line in done.stdout.splitlines() if line.startswith("  * identity: total")]
    assert "azure.identity" in note and "token request" in note  # the identity path really ran


def test_bench_refuses_an_unknown_name() -> None:
    done = _run("bench", "nonsense")
    assert done.returncode == 2 and "choose from" in done.stderr
