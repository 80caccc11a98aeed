"""shared.live.sync one delivery at a time (real Azurite, fake Strava over HTTP): the retry policy's exact answers."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from shared.config import load
from shared.live import sync
from shared.live.retrypolicy import BACKOFF, MAX_TRIES, RESET_MARGIN
from shared.storage import activitylog
from shared.storage import messages as jobs
from tests.support.builders import manual

MANUAL = manual("2022-10-02T09:15:00+01:00", "Walking", distance="3000")


def _job(payload: dict, sid: str = "a" + "1" * 20) -> jobs.Job:
    return jobs.Job(sync_id=sid, user=activitylog.OWNER, payload=payload)


def _syncer(live, **kwargs) -> sync.Syncer:
    cfg = load()
    return sync.Syncer(cfg.storage, cfg, **kwargs)


@pytest.mark.parametrize(("raw", "expected"), [("", 1.0), ("0.5", 0.5), ("0", 0.0), ("abc", 1.0), ("-1", 1.0)])
def test_delay_scale_setting(raw, expected) -> None:
    """Read with every other setting (shared.config); nonsense is not an error, only the real waits."""
    cfg = load({"AzureWebJobsStorage": "UseDevelopmentStorage=true", "SYNC_DELAY_SCALE": raw})
    assert cfg.sync_delay_scale == expected


def test_transient_failures_back_off_with_growing_delays(connected, seed_payload, monkeypatch) -> None:
    monkeypatch.setenv("SYNC_DELAY_SCALE", "1")
    connected.fake.fail_next(2, 500, path_prefix="/api/v3/uploads", method="POST")
    job = _job(seed_payload)
    first = _syncer(connected).run(job)
    assert (first.status, first.delay) == ("deferred", BACKOFF[0])
    second = _syncer(connected).run(job.again(tries=1))
    assert (second.status, second.delay) == ("deferred", BACKOFF[1])
    # both new messages wait out their delay invisibly, carrying the count of tries
    assert connected.sync.visible_messages() == [] and connected.sync.queue_count() == 2
    row = connected.sync.entry(job.sync_id)
    assert row.status == "queued" and "retry 2" in row.error and "500" in row.error
    assert row.next_try is not None and row.next_try > activitylog.utcnow() + timedelta(seconds=100)
    assert row.ambiguous  # a POST that failed may have been applied: the next attempt looks first
    assert _syncer(connected).run(job.again(tries=2)).status == "synced"


def test_rate_limit_defers_until_the_window_resets(connected, seed_payload, monkeypatch) -> None:
    monkeypatch.setenv("SYNC_DELAY_SCALE", "1")
    clock = datetime(2024, 5, 1, 10, 7, 30, tzinfo=UTC)
    connected.fake.now = clock
    monkeypatch.setattr(sync, "_clock", lambda: connected.fake.now)
    connected.fake.fail_next(1, 429, path_prefix="/api/v3/uploads", method="POST")
    outcome = _syncer(connected).run(_job(seed_payload))
    assert outcome.status == "deferred"
    # 10:07:30 → the window resets at 10:15:00, plus the margin; the message's tries are untouched. The fake's
    # clock stands still, so the delay is exact.
    assert connected.fake.now == clock
    assert outcome.delay == 7.5 * 60 + RESET_MARGIN
    assert connected.sync.visible_messages() == [] and connected.sync.queue_count() == 1


def test_permanent_refusal_fails_at_once(connected) -> None:
    connected.fake.fail_next(1, 400, path_prefix="/api/v3/activities", method="POST")
    failed = _syncer(connected).run(_job(MANUAL, sid="a" + "2" * 20))
    assert failed.status == "failed" and "400" in failed.reason
    assert connected.sync.entry("a" + "2" * 20).status == "failed"
    assert connected.sync.queue_count() == 0


def test_ambiguous_manual_activity_is_found_not_created_again(connected) -> None:
    start = datetime.fromisoformat(MANUAL["activityStartTimeIso"])
    existing = connected.fake.add_activity(name="x", sport_type="Walk", start_date=start + timedelta(seconds=20),
                                           manual=True)
    job = _job(MANUAL)
    row = activitylog.create(connected.sync.storage, activitylog.Entry(
        user=job.user, sync_id=job.sync_id, status="queued", ambiguous=True))
    assert row is not None
    outcome = _syncer(connected).run(job)
    assert (outcome.status, outcome.activity_id) == ("synced", str(existing.id))
    assert connected.fake.call_count("POST", "/api/v3/activities") == 0
    assert connected.fake.call_count("GET", "/api/v3/athlete/activities") == 1


def test_still_processing_too_long_becomes_failed(connected, seed_payload, monkeypatch) -> None:
    monkeypatch.setattr(sync, "UPLOAD_WAIT", 0.0)
    connected.fake.processing_polls = 1000
    job = _job(seed_payload)
    outcome = _syncer(connected).run(job.again(tries=MAX_TRIES - 1))
    assert outcome.status == "failed" and "still processing" in outcome.reason
    assert connected.sync.entry(job.sync_id).upload_id  # kept, so the owner can look it up


def test_a_done_activity_is_skipped_and_its_blob_removed(connected, seed_payload) -> None:
    job = _job(seed_payload)
    sent = jobs.send(connected.sync.storage, job.again(payload={**seed_payload, "activityNotes": "n" * 60_000}))
    assert sent.blob is not None
    activitylog.create(connected.sync.storage, activitylog.Entry(
        user=job.user, sync_id=job.sync_id, status="synced", activity_id="77"))
    outcome = _syncer(connected).run(job.again(payload=None, blob=sent.blob))
    assert (outcome.status, outcome.activity_id) == ("skipped", "77")
    assert connected.sync.blobs() == [] and connected.fake.api_calls == 0


def test_a_payload_the_parser_refuses_is_rejected_with_its_problems(connected) -> None:
    outcome = _syncer(connected).run(_job({"activityType": "Running"}))
    assert outcome.status == "rejected" and "activityStartTimeIso" in outcome.reason
    entry = connected.sync.entry("a" + "1" * 20)
    assert entry.status == "rejected" and [p["field"] for p in entry.problems] == ["activityStartTimeIso"]
    assert entry.excerpt == '{"activityType":"Running"}'
    assert connected.fake.api_calls == 0


def test_a_rejected_payload_delivered_again_stays_rejected(connected) -> None:
    """At-least-once delivery: the second copy finds its blob gone (kept elsewhere) and leaves the row alone."""
    name = jobs.put_payload(connected.sync.storage, activitylog.OWNER, b'{"activityType":"Running"}')
    job = jobs.Job(sync_id="a" + "4" * 20, user=activitylog.OWNER, blob=name)
    assert _syncer(connected).run(job).status == "rejected"
    again = _syncer(connected).run(job)
    assert again.status == "skipped" and "already rejected" in again.reason
    entry = connected.sync.entry(job.sync_id)
    assert entry.status == "rejected" and [p["field"] for p in entry.problems] == ["activityStartTimeIso"]


def test_a_missing_blob_is_failed_not_retried(connected) -> None:
    job = jobs.Job(sync_id="a" + "3" * 20, user=activitylog.OWNER, blob="owner/gone.json")
    outcome = _syncer(connected).run(job)
    assert outcome.status == "failed" and "missing" in outcome.reason


def test_give_up_records_failed_keeping_the_last_error(sync_env) -> None:
    sid = "a" + "4" * 20
    row = activitylog.create(sync_env.storage, activitylog.Entry(user="owner", sync_id=sid, status="queued"))
    activitylog.save(sync_env.storage, row, error="internal error (KeyError); retrying")
    sync.give_up("owner", sid, None, "gave up")
    got = sync_env.entry(sid)
    assert got.status == "failed" and got.error == "gave up (last error: internal error (KeyError); retrying)"
    sync.give_up("owner", "a" + "5" * 20, None, "gave up")  # no row yet: one is made
    assert sync_env.entry("a" + "5" * 20).status == "failed"


def test_outcome_is_logged_per_job(connected, seed_payload, caplog) -> None:
    caplog.set_level("INFO", logger="shared.live.sync")
    job = _job(seed_payload)
    sync.process(job)
    assert any(r.getMessage().startswith(f"job sync_id={job.sync_id} outcome=synced") for r in caplog.records)
    assert json.loads(jobs.encode(job))["id"] == job.sync_id
