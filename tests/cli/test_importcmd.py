"""`python -m shared.cli import`: whole exports through the command line, real Azurite, the fake Strava over HTTP."""

from __future__ import annotations

import io
import re
import shutil
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.cli.app import main
from shared.cli.common import EXIT_FAILED, EXIT_OK, EXIT_TEMPFAIL, EXIT_USAGE
from tests.conftest import ROOT, data_path
from tests.support.fake_strava import FakeStrava

EXPORT_2016 = ("exports", "runkeeper-export-2016")


@pytest.fixture
def env(sync_env: Any, connected_athlete: Any, fake_strava: FakeStrava) -> Any:
    """This test's own log table, the settings in os.environ, and the fake's athlete connected."""
    return sync_env


def cli(*argv: str, fake: FakeStrava | None = None) -> tuple[int, str, str]:
    """Run the command in this process (the fake's clock, so its windows and ours agree); (code, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    clock = (lambda: fake.now) if fake is not None else None
    sleep = fake.advance if fake is not None else None
    code = main(list(argv), out=out, err=err, clock=clock, sleep=sleep)
    return code, out.getvalue(), err.getvalue()


def test_help_explains_every_option() -> None:
    result = subprocess.run([sys.executable, "-m", "shared.cli", "import", "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0
    for option in ("PATH", "--dry-run", "--since DATE", "--until DATE", "--limit N", "--no-wait", "--verbose",
                   "--retry-failed", "exit code", "75"):
        assert option in result.stdout
    top = subprocess.run([sys.executable, "-m", "shared.cli", "--help"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, check=False)
    assert top.returncode == 0 and "import" in top.stdout


@pytest.mark.parametrize(("argv", "message"), [
    (["import"], "the following arguments are required: PATH"),
    (["import", "x.zip", "--limit", "0"], "must be at least 1"),
    (["import", "x.zip", "--since", "last week"], "is not a date like 2016-01-31"),
    (["frobnicate"], "invalid choice"),
])
def test_bad_arguments(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == EXIT_USAGE
    assert message in capsys.readouterr().err


def test_since_after_until_is_refused() -> None:
    code, _, err = cli("import", "x.zip", "--since", "2016-02-01", "--until", "2016-01-01")
    assert code == EXIT_USAGE and "--since 2016-02-01 is after --until 2016-01-01" in err


def test_missing_export(env: Any, tmp_path: Path) -> None:
    code, _, err = cli("import", str(tmp_path / "nope.zip"))
    assert code == EXIT_FAILED and "no such file or folder" in err


def test_dry_run_reads_everything_and_calls_nothing(env: Any, fake_strava: FakeStrava) -> None:
    code, out, _ = cli("import", str(data_path(*EXPORT_2016)), "--dry-run", "--verbose")
    assert code == EXIT_OK
    assert "Would import 288 activities: 154 from GPX files, 134 as manual activities." in out
    assert "Running → Run" in out and "Swimming → Swim" in out and "Walking → Walk" in out
    assert "Cycling → Ride" in out
    assert "2016-08-09-0529.gpx" in out  # the GPSBabel file, not in the CSV
    assert "Running activity on Thursday 25th July 2013 at 06:53" in out
    assert "Strava calls expected: about" in out
    assert fake_strava.api_calls == 0 and env.entries() == []


def test_2016_export_in_windows_of_40_calls(env: Any, fake_strava: FakeStrava) -> None:
    fake_strava.set_limits(overall=(40, 2000), read=(40, 1000))
    path = str(data_path(*EXPORT_2016))
    runs: list[tuple[int, str]] = []
    for _ in range(15):
        code, out, _err = cli("import", path, "--no-wait", fake=fake_strava)
        runs.append((code, out))
        if code != EXIT_TEMPFAIL:
            break
        assert "Run the same command again after" in out
        fake_strava.advance_window()
    code, out = runs[-1]
    assert code == EXIT_OK, out
    assert len(runs) >= 8  # 288 activities at 40 calls a window
    assert fake_strava.rate_limited_count == 0
    acts = fake_strava.activities()
    assert len(acts) == 288
    assert sum(not a.manual for a in acts) == 154 and sum(a.manual for a in acts) == 134
    assert Counter(a.sport_type for a in acts) == {"Run": 266, "Walk": 11, "Ride": 8, "Swim": 3}
    assert not [a for a in acts if a.start_date.date() == datetime(2016, 8, 9, tzinfo=UTC).date()]
    assert "GPX files not listed in cardioActivities.csv, skipped (1): 2016-08-09-0529.gpx" in out
    calls = fake_strava.api_calls
    assert calls / 288 <= 1.1
    assert all(re.search(r"Strava calls: \d+ \(\d\.\d\d per activity sent\)", o) for _, o in runs)
    assert "On Strava: 288 of the 288 activities in this export (all of them)." in out
    assert {e.status for e in env.entries()} == {"synced"} and len(env.entries()) == 288

    code, out, _ = cli("import", path, fake=fake_strava)  # after completion: nothing to do, no call at all
    assert code == EXIT_OK
    assert fake_strava.api_calls == calls and len(fake_strava.activities()) == 288
    assert re.search(r"done in an earlier run or by the live sync +288\n", out)


def test_2019_zip_straight_from_the_archive(env: Any, fake_strava: FakeStrava) -> None:
    code, out, _ = cli("import", str(data_path("exports", "runkeeper-export-2019.zip")), fake=fake_strava)
    assert code == EXIT_OK, out
    (act,) = fake_strava.activities()
    assert (act.name, act.sport_type, act.points) == ("Running activity on Monday 1st July 2019 at 18:20", "Run", 863)
    assert act.start_date == datetime(2019, 7, 1, 10, 20, 12, tzinfo=UTC)  # Hong Kong, UTC+8
    assert re.search(r"uploaded from GPX files +1\n", out)
    assert (entry := env.entries()[0]).runkeeper_id == "4434be7c-8999-4566-afae-869b1c223d32"
    assert entry.source == "import" and entry.status == "synced"


def test_failures_are_listed_with_how_to_retry(env: Any, fake_strava: FakeStrava, tmp_path: Path) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    src = data_path(*EXPORT_2016)
    shutil.copy(src / "2013-07-25-0653.gpx", folder)
    (folder / "2013-07-27-0648.gpx").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 10)
    code, out, _ = cli("import", str(folder), fake=fake_strava)
    assert code == EXIT_FAILED
    assert "Failed (1):\n  2013-07-27-0648.gpx: not a GPX file (binary data)" in out
    assert "--retry-failed" in out
    assert len(fake_strava.activities()) == 1


def test_not_connected_says_what_to_do(sync_env: Any, strava_env: Any, fake_strava: FakeStrava) -> None:
    code, _, err = cli("import", str(data_path("exports", "runkeeper-export-2019.zip")), fake=fake_strava)
    assert code == EXIT_FAILED
    assert "not connected" in err and "/api/strava/connect" in err
    assert fake_strava.api_calls == 0


def test_secrets_never_reach_the_output(env: Any, fake_strava: FakeStrava) -> None:
    code, out, err = cli("import", str(data_path("exports", "runkeeper-export-2019.zip")), "--verbose",
                         fake=fake_strava)
    assert code == EXIT_OK
    tokens = fake_strava.current_tokens()
    assert tokens is not None
    for secret in (fake_strava.client_secret, tokens[0], tokens[1]):
        assert secret not in out and secret not in err
    assert "status=synced" in err  # --verbose shows each state change
