"""`import --mute`, `--no-gear` and STRAVA_GEAR / STRAVA_MUTE on the importer: one PUT per activity a rule applies
to, counted in the plan and the report, inside the rate budget (real Azurite, fake Strava over HTTP, spec-checked)."""

from __future__ import annotations

import re
from typing import Any

import pytest

from shared.storage import activitylog
from tests.cli.test_importcmd import cli
from tests.support.datasets import export
from tests.support.fake_strava import FakeStrava

PUT = "PUT /api/v3/activities/{id}"


@pytest.fixture
def env(sync_env: Any, connected_athlete: Any, fake_strava: FakeStrava) -> Any:
    return sync_env


def _per_activity(out: str) -> float:
    match = re.search(r"Strava calls: \d+ \((\d\.\d\d) per activity sent\)", out)
    assert match, out
    return float(match.group(1))


def test_without_rules_about_one_call_per_activity_and_no_put(env: Any, fake_strava: FakeStrava) -> None:
    facts = export("2016", "synthetic")
    code, out, _ = cli("import", str(facts.path), fake=fake_strava)
    assert code == 0, out
    assert fake_strava.calls[PUT] == 0 and _per_activity(out) <= 1.5
    assert "Rules (gear, mute)" not in out


def test_mute_and_gear_about_two_calls_per_activity(env: Any, fake_strava: FakeStrava, monkeypatch) -> None:
    monkeypatch.setenv("STRAVA_GEAR", "Run=g12345")
    facts = export("2016", "synthetic")
    code, dry, _ = cli("import", str(facts.path), "--dry-run", "--mute")
    plain = cli("import", str(facts.path), "--dry-run", "--no-gear")[1]  # no rule at all
    expected = int(re.search(r"Strava calls expected: about (\d+)", dry).group(1))
    assert expected == int(re.search(r"Strava calls expected: about (\d+)", plain).group(1)) + facts.activities
    code, out, _ = cli("import", str(facts.path), "--mute", fake=fake_strava)
    assert code == 0, out
    acts = fake_strava.activities()
    assert len(acts) == facts.activities and all(a.hide_from_home and a.updates == 1 for a in acts)
    assert all((a.gear_id == "g12345") == (a.sport_type == "Run") for a in acts)
    assert fake_strava.calls[PUT] == facts.activities
    assert 1.8 <= _per_activity(out) <= 2.5
    assert f"Rules (gear, mute) applied to {facts.activities} activities." in out
    assert all(e.rules_pending is None for e in env.entries())


def test_no_gear_skips_gear(env: Any, fake_strava: FakeStrava, monkeypatch) -> None:
    monkeypatch.setenv("STRAVA_GEAR", "Run=g12345")
    facts = export("2016", "synthetic")
    code, _out, _ = cli("import", str(facts.path), "--no-gear", fake=fake_strava)
    assert code == 0 and fake_strava.calls[PUT] == 0
    assert all(a.gear_id is None for a in fake_strava.activities())


def test_rules_spend_the_read_budget_across_windows(env: Any, fake_strava: FakeStrava) -> None:
    facts = export("2016", "synthetic")
    fake_strava.set_limits(overall=(8, 2000), read=(4, 1000))
    for _ in range(30):
        code, out, _ = cli("import", str(facts.path), "--mute", fake=fake_strava)
        if code == 0:
            break
    assert code == 0, out
    assert fake_strava.rate_limited_count == 0
    assert all(a.hide_from_home for a in fake_strava.activities())


def test_a_failed_put_leaves_it_synced_and_retry_applies_it(env: Any, fake_strava: FakeStrava) -> None:
    facts = export("2016", "synthetic")
    fake_strava.fail_next(1, 503, path_prefix="/api/v3/activities/", method="PUT")
    code, out, _ = cli("import", str(facts.path), "--mute", fake=fake_strava)
    assert "failed for 1" in out
    failed = [e for e in env.entries() if e.rule_error]
    assert len(failed) == 1 and failed[0].status == "synced" and "mute" in failed[0].rule_error
    assert sum(not a.hide_from_home for a in fake_strava.activities()) == 1
    code, out, _ = cli("retry", failed[0].sync_id)
    assert code == 0, out
    with env.drain() as drain:  # the worker applies the missing rule
        drain.run(timeout=60)
    assert all(a.hide_from_home for a in fake_strava.activities())
    row = activitylog.get(env.storage, activitylog.OWNER, failed[0].sync_id)
    assert row.rules_pending is None and row.rule_error is None

