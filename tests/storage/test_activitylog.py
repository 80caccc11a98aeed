from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

import pytest

from shared.model.status import Status
from shared.storage import activitylog as al


def _entry(sync_id: str, start: datetime | None, status: str = "queued", user: str = al.OWNER) -> al.Entry:
    return al.Entry(user=user, sync_id=sync_id, status=status, source="zapier", runkeeper_type="Running",
                    sport_type="Run", name="Running activity", start=start, points=3)


def test_create_is_conditional_and_round_trips_every_field(sync_env) -> None:
    start = datetime(2022, 9, 26, 17, 52, 22, tzinfo=UTC)
    first = al.create(sync_env.storage, _entry("a1", start))
    assert first is not None and first.etag
    assert al.create(sync_env.storage, _entry("a1", start)) is None  # already there: answered by the insert

    got = al.get(sync_env.storage, al.OWNER, "a1")
    assert got is not None
    assert (got.status, got.source, got.start, got.points, got.name) == ("queued", "zapier", start, 3,
                                                                         "Running activity")
    assert got.created is not None and got.updated is not None
    assert got.activity_id is None and got.error is None and got.problems == []
    assert al.get(sync_env.storage, al.OWNER, "missing") is None


def test_save_is_a_compare_and_swap(sync_env) -> None:
    created = al.create(sync_env.storage, _entry("a2", datetime(2024, 1, 1, tzinfo=UTC)))
    assert created is not None
    won = al.save(sync_env.storage, created, status="uploading", attempts=1)
    with pytest.raises(al.Conflict):
        al.save(sync_env.storage, created, status="uploading", attempts=1)  # stale ETag loses
    done = al.save(sync_env.storage, won, status="synced", activity_id="12345678901", lease_owner=None)
    assert al.get(sync_env.storage, al.OWNER, "a2").activity_id == "12345678901"
    # a value set to None is cleared in the table, not left behind by the merge
    cleared = al.save(sync_env.storage, done, activity_id=None)
    assert al.get(sync_env.storage, al.OWNER, "a2").activity_id is None
    assert cleared.etag != done.etag


def test_one_structured_line_per_state_change(sync_env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="shared.storage.activitylog")
    created = al.create(sync_env.storage, _entry("a3", datetime(2024, 1, 1, tzinfo=UTC)))
    assert created is not None
    al.save(sync_env.storage, created, status="failed", error="Strava said no")
    lines = [r.getMessage() for r in caplog.records if r.name == "shared.storage.activitylog"]
    assert lines[0].startswith("activity sync_id=a3 status=queued source=zapier user=owner")
    assert lines[1].startswith("activity sync_id=a3 status=failed") and 'error="Strava said no"' in lines[1]
    assert len(lines) == 2


def test_listing_is_newest_first_filtered_by_status_and_time(sync_env) -> None:
    base = datetime(2024, 3, 1, 8, 0, tzinfo=UTC)
    for i in range(6):
        al.create(sync_env.storage, _entry(f"s{i}", base + timedelta(days=i), "failed" if i % 2 else "synced"))
    al.create(sync_env.storage, _entry("other-user", base, user="someone-else"))

    everything = al.list_activities(sync_env.storage, al.OWNER)
    assert [e.sync_id for e in everything] == ["s5", "s4", "s3", "s2", "s1", "s0"]
    assert [e.sync_id for e in al.list_activities(sync_env.storage, al.OWNER, status="failed")] == ["s5", "s3", "s1"]
    recent = al.list_activities(sync_env.storage, al.OWNER, since=base + timedelta(days=3))
    assert [e.sync_id for e in recent] == ["s5", "s4", "s3"]
    assert [e.sync_id for e in al.list_activities(sync_env.storage, al.OWNER, limit=2)] == ["s5", "s4"]
    with pytest.raises(ValueError, match="unknown status"):
        al.list_activities(sync_env.storage, al.OWNER, status="lost")


def test_rejected_payload_keeps_a_bounded_excerpt_and_one_row_per_payload(sync_env) -> None:
    text = '{"activityType":"Running","junk":"' + "x" * 10_000 + '"}'
    problems = [{"field": "activityStartTimeIso", "message": "is missing"}]
    first = al.record_rejected(sync_env.storage, al.OWNER, payload_text=text, problems=problems)
    again = al.record_rejected(sync_env.storage, al.OWNER, payload_text=text, problems=problems)
    assert first.sync_id == again.sync_id and again.attempts == 2
    row = al.get(sync_env.storage, al.OWNER, first.sync_id)
    assert row is not None and row.status == "rejected"
    assert row.problems == problems
    assert row.error == "activityStartTimeIso: is missing"
    assert row.excerpt is not None and len(row.excerpt) <= al.EXCERPT_CHARS
    assert row.excerpt.startswith('{"activityType":"Running"')
    # listed by arrival time, since a rejected payload has no trustworthy start
    assert [e.sync_id for e in al.list_activities(sync_env.storage, al.OWNER, status="rejected")] == [row.sync_id]


def test_public_view_hides_bookkeeping() -> None:
    entry = _entry("a9", datetime(2024, 1, 1, tzinfo=UTC))
    entry.lease_owner, entry.lease_until = "worker-1", datetime(2024, 1, 1, tzinfo=UTC)
    view = entry.public()
    assert view["id"] == "a9" and view["start"] == "2024-01-01T00:00:00Z"
    assert "lease_owner" not in view and "lease_until" not in view and "etag" not in view


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError):
        al.iso(datetime(2024, 1, 1))


def test_status_is_a_str_enum_stored_as_its_plain_string(sync_env) -> None:
    entry = _entry("a10", datetime(2024, 1, 1, tzinfo=UTC), status="queued")
    assert entry.status is Status.QUEUED and entry.status == "queued"  # a string given becomes its Status
    created = al.create(sync_env.storage, entry)
    assert created is not None
    synced = al.save(sync_env.storage, created, status="synced")
    assert synced.status is Status.SYNCED and synced.status in al.DONE and "synced" in al.DONE
    raw = al.table(sync_env.storage).get_entity(al.OWNER, "a10")
    assert type(raw["status"]) is str and raw["status"] == "synced"  # rows hold what they always held
    read = al.get(sync_env.storage, al.OWNER, "a10")
    assert read is not None and read.status is Status.SYNCED
    assert json.dumps(read.public()["status"]) == '"synced"'
    with pytest.raises(ValueError):
        _entry("a11", None, status="lost")


def test_statuses_and_their_sets_are_the_stored_strings() -> None:
    assert al.STATUSES == ("queued", "uploading", "synced", "duplicate", "failed", "rejected")
    assert al.DONE == {"synced", "duplicate"} and al.RETRYABLE == {"failed", "rejected"}
    assert f"status={Status.FAILED}" == "status=failed"
