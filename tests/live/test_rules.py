"""The owner's rules after upload on the live path (STRAVA_GEAR, STRAVA_MUTE): one PUT when a rule applies,
never a failed sync because of it (real Azurite, fake Strava over HTTP, spec-checked)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.config import load
from shared.live import sync
from shared.storage import activitylog
from shared.storage import messages as jobs
from tests.support.builders import manual, track

WALK = manual("2022-10-02T09:15:00+01:00", "Walking", distance="3000")
RUN = track("2022-10-03T07:00:00+01:00")


def _run(payload: dict, sid: str) -> sync.Outcome:
    cfg = load()
    return sync.Syncer(cfg.storage, cfg).run(jobs.Job(sync_id=sid, user=activitylog.OWNER, payload=payload))


@pytest.fixture
def rules_env(connected, monkeypatch):
    monkeypatch.setenv("STRAVA_GEAR", "Run=g12345,Walk=g777")
    monkeypatch.setenv("STRAVA_MUTE", "Walk")
    return connected


def test_gear_and_mute_with_one_put_each_and_none_without_a_rule(rules_env, monkeypatch) -> None:
    fake = rules_env.fake
    assert _run(WALK, "w" + "1" * 20).status == "synced"
    assert _run(RUN, "r" + "1" * 20).status == "synced"
    walk, run = sorted(fake.activities(), key=lambda a: a.sport_type, reverse=True)
    assert (walk.sport_type, walk.gear_id, walk.hide_from_home, walk.updates) == ("Walk", "g777", True, 1)
    assert (run.sport_type, run.gear_id, run.hide_from_home, run.updates) == ("Run", "g12345", False, 1)
    assert fake.calls["PUT /api/v3/activities/{id}"] == 2
    row = rules_env.sync.entry("w" + "1" * 20)
    assert row.status == "synced" and row.rules_pending is None and row.rule_error is None
    monkeypatch.setenv("STRAVA_GEAR", "")
    monkeypatch.setenv("STRAVA_MUTE", "")
    assert _run(manual("2022-10-04T09:15:00+01:00", "Walking"), "x" + "1" * 20).status == "synced"
    assert fake.calls["PUT /api/v3/activities/{id}"] == 2  # no rule: no call


@pytest.mark.parametrize("status", [500, 404])
def test_a_failing_put_keeps_the_activity_synced_and_a_retry_applies_the_rules(rules_env, status) -> None:
    from shared.owner.retry import retry
    from tests.support.fixtures_sync import drain_all

    fake = rules_env.fake
    fake.fail_next(1, status, path_prefix="/api/v3/activities/", method="PUT")
    sid = "w" + "2" * 20
    outcome = _run(WALK, sid)
    assert outcome.status == "synced" and str(status) in (outcome.reason or "")
    row = rules_env.sync.entry(sid)
    assert row.status == "synced" and row.activity_id and "gear, mute" in row.rule_error
    assert row.rules_pending and fake.activity(row.activity_id).gear_id is None
    done = retry(load().storage, activitylog.OWNER, sid, timezone="Europe/London")
    assert done.status_code == 202
    drain_all(rules_env)
    act = fake.activity(row.activity_id)
    assert (act.gear_id, act.hide_from_home) == ("g777", True)
    row = rules_env.sync.entry(sid)
    assert row.status == "synced" and row.rules_pending is None and row.rule_error is None
    assert len(fake.activities()) == 1


def test_a_429_defers_the_rules_then_they_apply(rules_env, monkeypatch) -> None:
    from tests.support.fixtures_sync import drain_all

    monkeypatch.setenv("SYNC_DELAY_SCALE", "0")
    fake = rules_env.fake
    fake.fail_next(1, 429, path_prefix="/api/v3/activities/", method="PUT")
    sid = "w" + "3" * 20
    outcome = _run(WALK, sid)
    assert outcome.status == "synced" and outcome.delay is not None  # deferred on a new message, not dropped
    assert rules_env.sync.entry(sid).rules_pending
    later = activitylog.utcnow() + timedelta(minutes=16)  # past the window the 429 spent, on the worker's clock
    monkeypatch.setattr(sync, "_clock", lambda: later)
    fake.advance_window()
    drain_all(rules_env)
    act = fake.activities()[0]
    assert (act.gear_id, act.hide_from_home) == ("g777", True)
    assert rules_env.sync.entry(sid).rules_pending is None


@pytest.mark.parametrize(("name", "raw", "words"), [
    ("STRAVA_GEAR", "Running=g1", "'Running' is not a Strava sport type"),
    ("STRAVA_GEAR", "run=g1", "did you mean Run?"),
    ("STRAVA_GEAR", "Run=x12", "'x12' (for Run) is not a Strava gear id"),
    ("STRAVA_GEAR", "Run=g1,,Ride=b2", "item 2 is empty"),
    ("STRAVA_GEAR", "Run", "'Run' is not sport=gear id"),
    ("STRAVA_GEAR", "Run=g1,Run=g2", "Run is given twice"),
    ("STRAVA_MUTE", "Walk,Strolling", "'Strolling' is not a Strava sport type"),
    ("STRAVA_MUTE", "Walk,", "item 2 is empty"),
    ("STRAVA_ATHLETE_LIMIT", "ten", "STRAVA_ATHLETE_LIMIT must be a whole number"),
])
def test_bad_rule_settings_fail_at_start_naming_the_item(name, raw, words) -> None:
    from shared.config import SettingsError

    with pytest.raises(SettingsError, match=name) as err:
        load({"AzureWebJobsStorage": "UseDevelopmentStorage=true", name: raw})
    assert words in str(err.value)


def test_good_rule_settings() -> None:
    cfg = load({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "STRAVA_GEAR": " Run=g12345 , Ride=b67890",
                "STRAVA_MUTE": "Walk,Workout", "STRAVA_ATHLETE_LIMIT": "25"})
    assert cfg.gear == (("Run", "g12345"), ("Ride", "b67890")) and cfg.mute == {"Walk", "Workout"}
    assert cfg.athlete_limit == 25 and load({"AzureWebJobsStorage": "UseDevelopmentStorage=true"}).athlete_limit == 10
