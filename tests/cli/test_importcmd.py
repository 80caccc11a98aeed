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
from tests.support.datasets import KINDS, Export, export, generator
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


def import_window_by_window(path: str, fake: FakeStrava) -> list[tuple[int, str]]:
    """`import --no-wait` run again after each window, as a user following its advice: (code, output) per run."""
    runs: list[tuple[int, str]] = []
    for _ in range(15):
        code, out, _err = cli("import", path, "--no-wait", fake=fake)
        runs.append((code, out))
        if code != EXIT_TEMPFAIL:
            break
        assert "Run the same command again after" in out
        fake.advance_window()
    return runs


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


def test_dry_run_of_the_synthetic_km_export(env: Any, fake_strava: FakeStrava) -> None:
    facts = export("2016", "synthetic")
    code, out, _ = cli("import", str(facts.path), "--dry-run", "--verbose")
    assert code == EXIT_OK
    assert (f"Would import {facts.activities} activities: {facts.gpx} from GPX files, {facts.manual} as manual "
            "activities.") in out
    for arrow in ("Running → Run", "Swimming → Swim", "Walking → Walk", "Cycling → Ride"):
        assert arrow in out
    assert generator().UNLISTED_2016 in out  # the GPSBabel file, not in the CSV
    assert facts.first_name in out
    assert "Strava calls expected: about" in out
    assert fake_strava.api_calls == 0 and env.entries() == []


def test_synthetic_km_export_in_windows_of_6_calls(env: Any, fake_strava: FakeStrava) -> None:
    """The real export's 40-call windows, scaled to 12 activities: several windows, resumed by hand."""
    facts = export("2016", "synthetic")
    fake_strava.set_limits(overall=(6, 2000), read=(6, 1000))
    path = str(facts.path)
    runs = import_window_by_window(path, fake_strava)
    code, out = runs[-1]
    assert code == EXIT_OK, out
    assert len(runs) >= 3  # 12 activities at 6 calls a window
    assert fake_strava.rate_limited_count == 0
    acts = fake_strava.activities()
    assert len(acts) == facts.activities
    assert sum(not a.manual for a in acts) == facts.gpx and sum(a.manual for a in acts) == facts.manual
    assert Counter(a.sport_type for a in acts) == facts.sports
    assert f"GPX files not listed in cardioActivities.csv, skipped (1): {facts.unlisted[0]}" in out
    calls = fake_strava.api_calls
    assert all(re.search(r"Strava calls: \d+ \(\d\.\d\d per activity sent\)", o) for _, o in runs)
    n = facts.activities
    assert f"On Strava: {n} of the {n} activities in this export (all of them)." in out
    assert {e.status for e in env.entries()} == {"synced"} and len(env.entries()) == n

    code, out, _ = cli("import", path, fake=fake_strava)  # after completion: nothing to do, no call at all
    assert code == EXIT_OK
    assert fake_strava.api_calls == calls and len(fake_strava.activities()) == n
    assert re.search(rf"done in an earlier run or by the live sync +{n}\n", out)


def test_2016_export_in_windows_of_40_calls(env: Any, fake_strava: FakeStrava) -> None:
    fake_strava.set_limits(overall=(40, 2000), read=(40, 1000))
    path = str(data_path(*EXPORT_2016))
    runs = import_window_by_window(path, fake_strava)
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


@pytest.fixture(params=KINDS)
def zip2019(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Export:
    """The 2019-style zip of each data set, with the athlete's timezone set (the synthetic one is in Hong Kong)."""
    facts = export("2019", request.param)
    facts.path  # noqa: B018 - the real case skips here without ../shared/data
    monkeypatch.setenv("ACTIVITY_TIMEZONE", facts.timezone)
    return facts


def test_2019_zip_straight_from_the_archive(env: Any, fake_strava: FakeStrava, zip2019: Export) -> None:
    code, out, _ = cli("import", str(zip2019.path), fake=fake_strava)
    assert code == EXIT_OK, out
    acts = fake_strava.activities()
    assert len(acts) == zip2019.activities and Counter(a.sport_type for a in acts) == zip2019.sports
    act = next(a for a in acts if a.start_date == zip2019.first_start)  # Hong Kong, UTC+8
    assert (act.name, act.sport_type, act.points) == (zip2019.first_name, "Run", zip2019.extra["first_points"])
    assert re.search(rf"uploaded from GPX files +{zip2019.gpx}\n", out)
    entry = next(e for e in env.entries() if e.start == zip2019.first_start)
    assert entry.runkeeper_id == zip2019.extra["first_id"]
    assert entry.source == "import" and entry.status == "synced"
    assert {e.status for e in env.entries()} == {"synced"} and len(env.entries()) == zip2019.activities


@pytest.mark.parametrize("kind", KINDS)
def test_failures_are_listed_with_how_to_retry(env: Any, fake_strava: FakeStrava, tmp_path: Path, kind: str) -> None:
    folder = tmp_path / "export"
    folder.mkdir()
    src = export("2016", kind)
    shutil.copy(src.path / src.first_gpx, folder)
    (folder / "2013-07-27-0648.gpx").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 10)
    code, out, _ = cli("import", str(folder), fake=fake_strava)
    assert code == EXIT_FAILED
    assert "Failed (1):\n  2013-07-27-0648.gpx: not a GPX file (binary data)" in out
    assert "--retry-failed" in out
    assert len(fake_strava.activities()) == 1


def test_not_connected_says_what_to_do(sync_env: Any, strava_env: Any, fake_strava: FakeStrava,
                                      zip2019: Export) -> None:
    code, _, err = cli("import", str(zip2019.path), fake=fake_strava)
    assert code == EXIT_FAILED
    assert "not connected" in err and "/api/strava/connect" in err
    assert fake_strava.api_calls == 0


def test_secrets_never_reach_the_output(env: Any, fake_strava: FakeStrava, zip2019: Export) -> None:
    code, out, err = cli("import", str(zip2019.path), "--verbose", fake=fake_strava)
    assert code == EXIT_OK
    tokens = fake_strava.current_tokens()
    assert tokens is not None
    for secret in (fake_strava.client_secret, tokens[0], tokens[1]):
        assert secret not in out and secret not in err
    assert "status=synced" in err  # --verbose shows each state change
