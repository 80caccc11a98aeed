"""The importer against real Azurite and the fake Strava over HTTP: plan, dedup, budget, failures."""

from __future__ import annotations

import json
import re
import shutil
import zipfile
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from shared.config import Settings, load
from shared.history.listing import StravaIndex, listing_ranges
from shared.history.plan import Item, build_plan
from shared.history.rows import ImportRows, Work
from shared.model.status import Status
from shared.model.syncid import sync_id
from shared.runkeeper.export import open_export
from shared.storage import activitylog
from shared.storage.clients import Storage
from shared.strava.api import StravaClient
from shared.strava.tokens import client_from_settings
from tests.conftest import data_path
from tests.support.builders import BILLION_LAUGHS
from tests.support.datasets import Export, export, generator
from tests.support.fake_strava import FakeStrava
from tests.support.fixtures_sync import drain_all
from tests.support.importing import TZ, new_client, run

EXPORT_2016 = ("exports", "runkeeper-export-2016")


def uploads(fake: FakeStrava) -> int:
    return fake.call_count("POST", "/api/v3/uploads")


def creates(fake: FakeStrava) -> int:
    return fake.call_count("POST", "/api/v3/activities")


# ---- the plan -------------------------------------------------------------------------------------------------


def test_plan_of_the_2016_export() -> None:
    with open_export(data_path(*EXPORT_2016)) as export:
        plan = build_plan(export, timezone=TZ)
    assert (len(plan.items), plan.gpx_count, plan.manual_count) == (288, 154, 134)
    assert plan.unlisted == ["2016-08-09-0529.gpx"]
    assert plan.failures == [] and plan.repeated == []
    assert [i.start for i in plan.items] == sorted(i.start for i in plan.items)
    first_gpx = next(i for i in plan.items if i.gpx_member == "2013-07-25-0653.gpx")
    assert first_gpx.name == "Running activity on Thursday 25th July 2013 at 06:53"
    assert first_gpx.start == datetime(2013, 7, 25, 11, 53, 27, tzinfo=UTC)  # Chicago, from the GPX
    assert first_gpx.sync_id == sync_id(datetime(2013, 7, 25, 11, 53, 27, tzinfo=UTC), "Run")
    manual = next(i for i in plan.items if i.start_local == datetime(2014, 5, 19, 8, 37, 16))
    assert manual.is_manual and manual.description == "+ bball\n+ jumps"
    assert manual.duration == 37 * 60 and manual.distance == pytest.approx(5 * 1609.344)


def test_plan_of_the_synthetic_km_export() -> None:
    facts = export("2016", "synthetic")
    specs = generator().ACTIVITIES_2016
    with open_export(facts.path) as folder:
        plan = build_plan(folder, timezone=facts.timezone)
    assert (len(plan.items), plan.gpx_count, plan.manual_count) == (facts.activities, facts.gpx, facts.manual) == (
        12, 10, 2)
    assert plan.unlisted == facts.unlisted == ["2016-04-17-0529.gpx"]
    assert plan.failures == [] and plan.repeated == []
    assert [i.start for i in plan.items] == sorted(i.start for i in plan.items)
    assert [i.start for i in plan.items] == [s.start_utc for s in reversed(specs)]  # both clocks of the set
    assert Counter(i.sport_type for i in plan.items) == facts.sports == {"Run": 6, "Walk": 3, "Ride": 2, "Swim": 1}
    first = plan.items[0]
    assert (first.gpx_member, first.name, first.start) == (facts.first_gpx, facts.first_name, facts.first_start)
    assert first.sync_id == sync_id(facts.first_start, "Run")
    april = next(i for i in plan.items if i.gpx_member == "2016-04-03-0802.gpx")
    assert april.start == datetime(2016, 4, 3, 7, 2, 44, tzinfo=UTC)  # CSV 08:02:44 in British Summer Time
    manual = next(i for i in plan.items if i.start_local == facts.manual_local)
    assert manual.is_manual and manual.description == facts.manual_notes
    assert manual.duration == facts.manual_duration and manual.distance == pytest.approx(facts.manual_distance)
    with open_export(facts.path) as folder:
        assert len(build_plan(folder, timezone=TZ, until=date(2016, 1, 10)).items) == 1
        assert len(build_plan(folder, timezone=TZ, until=facts.early).items) == facts.early_count == 3
        assert len(build_plan(folder, timezone=TZ, since=date(2016, 3, 1)).items) == 7


def test_plan_of_the_synthetic_miles_zip() -> None:
    facts = export("2019", "synthetic")
    with open_export(facts.path) as archive:
        plan = build_plan(archive, timezone=facts.timezone)
        london = build_plan(archive, timezone=TZ)
    assert (len(plan.items), plan.gpx_count, plan.manual_count) == (facts.activities, facts.gpx, facts.manual) == (
        4, 3, 1)
    assert plan.unlisted == [] and plan.failures == [] and plan.repeated == []
    assert Counter(i.sport_type for i in plan.items) == facts.sports == {"Run": 2, "Ride": 1, "WeightTraining": 1}
    first = plan.items[0]
    assert (first.gpx_member, first.start, first.name) == (facts.first_gpx, facts.first_start, facts.first_name)
    gym = next(i for i in plan.items if i.is_manual)
    gym_london = next(i for i in london.items if i.is_manual)
    assert gym.start == datetime(2019, 7, 3, 4, 30, tzinfo=UTC)  # 12:30 in Hong Kong
    assert gym_london.start - gym.start == timedelta(hours=7)  # a manual row's offset comes from the timezone
    last = next(i for i in plan.items if i.gpx_member == "2019-07-06-064510.gpx")
    assert last.start == datetime(2019, 7, 5, 22, 45, 10, tzinfo=UTC)  # the day before its local date


def test_since_until_and_repeated_rows() -> None:
    with open_export(data_path(*EXPORT_2016)) as export:
        plan = build_plan(export, timezone=TZ, since=date(2015, 1, 1), until=date(2015, 12, 31))
    assert plan.items and all(i.start_local.year == 2015 for i in plan.items)
    assert plan.filtered == 288 - len(plan.items)


def test_repeated_csv_rows_are_one_activity(tmp_path: Path, ex: Export) -> None:
    src = ex.path
    shutil.copy(src / ex.first_gpx, tmp_path)
    header = (src / "cardioActivities.csv").read_text(encoding="utf-8").splitlines()[0]
    local = datetime.fromisoformat(ex.first_start_iso).replace(tzinfo=None)
    row = f"{local},Running,,3.10,25:00,,,,,,,{ex.first_gpx}"
    (tmp_path / "cardioActivities.csv").write_text(f"{header}\n{row}\n{row}\n", encoding="utf-8")
    with open_export(tmp_path) as folder:
        plan = build_plan(folder, timezone=TZ)
    assert len(plan.items) == 1
    assert [r.reason for r in plan.repeated] == [f"same activity as cardioActivities.csv line 2 ({ex.first_gpx}) "
                                                 "(same start and sport)"]


@pytest.mark.parametrize(("kind", "tz", "walk_name"), [
    ("real", "America/Chicago", "Walking activity on Saturday 27th July 2013 at 06:48"),
    ("synthetic", "Europe/London", "Walking activity on Sunday 24th January 2016 at 09:30"),
])
def test_without_a_csv_every_gpx_counts_with_its_type_from_the_name(tmp_path: Path, kind: str, tz: str,
                                                                    walk_name: str) -> None:
    ex = export("2016", kind)
    src = ex.path
    for name in (ex.first_gpx, *ex.unlisted):
        shutil.copy(src / name, tmp_path)
    walk = (src / ex.early_gpx[1]).read_bytes().replace(b"<![CDATA[Running ", b"<![CDATA[Walking ", 1)
    (tmp_path / "walk.gpx").write_bytes(walk)
    with open_export(tmp_path) as folder:
        plan = build_plan(folder, timezone=tz)
    assert [(i.origin, i.sport_type, i.name) for i in plan.items] == [
        (ex.first_gpx, "Run", ex.first_name),
        ("walk.gpx", "Walk", walk_name),
    ]
    assert plan.csv_rows is None
    assert [f.origin for f in plan.failures] == ex.unlisted
    assert "no track points" in plan.failures[0].reason


def _item(start: datetime, sport: str = "Run", local: datetime | None = None) -> Item:
    return Item(origin="x", runkeeper_type="Running", sport_type=sport, trainer=False, start=start,
                start_local=local or start.replace(tzinfo=None), name="n", sync_id=sync_id(start, sport))


def test_strava_index_matching() -> None:
    t = datetime(2020, 5, 1, 7, 0, 0, tzinfo=UTC)
    ours = _item(t)
    index = StravaIndex([
        {"id": k, "sport_type": sport, "start_date": f"2020-05-01T07:00:{sec}Z",
         "start_date_local": f"2020-05-01T08:00:{sec}Z"}
        for k, sport, sec in ((1, "Ride", 10), (2, "Run", 50), (3, "Run", 20))
    ])
    assert index.match(ours).id == "3"  # the closest compatible one
    assert index.match(ours).id == "2"  # each Strava activity matches one of ours at most
    assert index.match(ours) is None
    tagged = StravaIndex([{"id": 9, "sport_type": "Workout", "start_date": "2021-01-01T00:00:00Z",
                           "external_id": f"rk2strava-{ours.sync_id}.gpx.gz"}])
    assert tagged.match(ours).id == "9"  # our external_id wins whatever the time
    manual = _item(t, local=datetime(2020, 5, 1, 9, 0, 0))  # the UTC guess is off; the wall clock agrees
    index = StravaIndex([{"id": 4, "type": "Run", "start_date": "2020-05-01T03:00:30Z",
                          "start_date_local": "2020-05-01T09:00:30Z"}])
    assert index.match(manual).id == "4"


def test_listing_ranges_cover_everything_in_pages() -> None:
    base = datetime(2015, 1, 1, tzinfo=UTC)
    items = [_item(base + timedelta(hours=7 * k)) for k in range(400)]
    ranges = listing_ranges(items)
    assert len(ranges) == 3
    for item in items:
        assert sum(after < item.start < before for after, before in ranges) >= 1
    assert ranges[0][0] < base - timedelta(hours=23) and ranges[-1][1] > items[-1].start + timedelta(hours=23)
    assert listing_ranges([]) == []


# ---- runs against the fake Strava ----------------------------------------------------------------------------


def test_whole_export_with_default_limits(env: Any, client: StravaClient, fake_strava: FakeStrava, ex: Export) -> None:
    report = run(client, env.storage, ex.path, sleep=fake_strava.advance)
    c = report.counts
    assert (c.uploaded, c.manual, c.duplicate, c.failed, c.unconfirmed, c.left) == (ex.gpx, ex.manual, 0, 0, 0, 0)
    acts = fake_strava.activities()
    assert len(acts) == ex.activities and sum(a.manual for a in acts) == ex.manual
    assert Counter(a.sport_type for a in acts) == ex.sports  # from the CSV
    assert report.calls == fake_strava.api_calls
    assert report.calls_per_activity is not None
    if ex.kind == "real":
        assert report.calls_per_activity <= 1.1
    else:  # a small export pays the listing's fixed calls over few activities: the exact count, not the ratio
        assert report.calls == 14
    assert fake_strava.call_count("GET", "/api/v3/uploads/{id}") == 0  # confirmed in bulk by the listing
    entries = {e.sync_id: e for e in env.entries()}
    assert len(entries) == ex.activities
    assert {e.status for e in entries.values()} == {"synced"} and {e.source for e in entries.values()} == {"import"}
    assert all(e.activity_id for e in entries.values())
    run_gpx = next(a for a in acts if a.external_id and a.start_date == ex.first_start)
    assert (run_gpx.name, run_gpx.sport_type) == (ex.first_name, "Run")
    original = (ex.path / ex.first_gpx).read_bytes()
    assert run_gpx.gpx == original and run_gpx.data_type == "gpx.gz"
    manual = next(a for a in acts if a.start_date_local == ex.manual_local)
    assert (manual.manual, manual.elapsed_time, manual.description) == (True, ex.manual_duration, ex.manual_notes)
    assert manual.distance == pytest.approx(ex.manual_distance, abs=0.1)

    fake_strava.reset_counters()
    again = run(client, env.storage, ex.path)
    assert again.counts.done_before == ex.activities and again.counts.imported == 0
    assert fake_strava.api_calls == 0 and len(fake_strava.activities()) == ex.activities


def test_synthetic_miles_zip_with_its_timezone(env: Any, client: StravaClient, fake_strava: FakeStrava) -> None:
    facts = export("2019", "synthetic")
    report = run(client, env.storage, facts.path, timezone=facts.timezone)
    c = report.counts
    assert (c.uploaded, c.manual, c.failed, c.left) == (facts.gpx, facts.manual, 0, 0)
    acts = fake_strava.activities()
    assert Counter(a.sport_type for a in acts) == facts.sports
    first = next(a for a in acts if a.start_date == facts.first_start)
    assert (first.name, first.points) == (facts.first_name, facts.extra["first_points"])
    gym = next(a for a in acts if a.manual)
    assert (gym.sport_type, gym.elapsed_time, gym.start_date_local) == (
        "WeightTraining", 45 * 60, datetime(2019, 7, 3, 12, 30))
    assert {e.runkeeper_id for e in env.entries()} >= {facts.extra["first_id"]}


def test_already_on_strava_is_recorded_as_duplicate(env: Any, client: StravaClient,
                                                    fake_strava: FakeStrava, ex: Export) -> None:
    fake_strava.add_activity(name="from my watch", sport_type="TrailRun",
                             start_date=ex.first_start + timedelta(seconds=13), elapsed_time=1500)
    report = run(client, env.storage, ex.path, until=ex.early)
    assert report.counts.duplicate == 1
    assert len([a for a in fake_strava.activities() if a.start_date.date() == ex.first_start.date()]) == 1
    dup = next(e for e in env.entries() if e.status == "duplicate")
    assert dup.start == ex.first_start and dup.activity_id


def zapier_payload_from_gpx(path: Path, start_iso: str) -> dict[str, str]:
    """What Zapier would have posted live for the activity behind one export GPX file."""
    times = re.findall(r"<trkpt lat=\"([^\"]+)\" lon=\"([^\"]+)\"><ele>([^<]+)</ele><time>([^<]+)</time>",
                       path.read_text(encoding="utf-8"))
    t0 = datetime.fromisoformat(times[0][3])
    kinds = ["start"] + ["gps"] * (len(times) - 2) + ["end"]
    return {
        "activityType": "Running",
        "activityStartTimeIso": start_iso,
        "activityPathLatitude": ",".join(t[0] for t in times),
        "activityPathLongitude": ",".join(t[1] for t in times),
        "activityPathAltitude": ",".join(t[2] for t in times),
        "activityPathTimestamp": ",".join(str((datetime.fromisoformat(t[3]) - t0).total_seconds()) for t in times),
        "activityPathType": ",".join(kinds),
    }


def test_synced_by_the_live_path_first_is_not_uploaded_again(connected: Any, strava_env: dict[str, str],
                                                               ex: Export) -> None:
    """Zapier posted the oldest run live; importing the export later sends it no second time."""
    fake = connected.fake
    gpx = ex.path / ex.first_gpx
    resp = connected.sync.post(zapier_payload_from_gpx(gpx, ex.first_start_iso))
    assert resp.status_code == 202
    live_id = json.loads(resp.get_body())["id"]
    drain_all(connected)
    assert connected.sync.entry(live_id).status == "synced"
    assert len(fake.activities()) == 1

    client = new_client(load(strava_env), fake)
    report = run(client, connected.sync.storage, ex.path, until=ex.early)
    assert report.counts.done_before == 1  # the same sync id: the log alone says it is there
    assert len([a for a in fake.activities() if a.start_date == ex.first_start]) == 1
    entry = connected.sync.entry(live_id)
    assert entry.source == "zapier" and entry.status == "synced"
    assert report.counts.imported == len(fake.activities()) - 1 > 0


def test_limit_and_no_wait_continue_where_they_stopped(env: Any, client: StravaClient, fake_strava: FakeStrava,
                                                       strava_settings: Settings, ex: Export) -> None:
    path = ex.path
    until, window = (date(2013, 9, 30), 10) if ex.kind == "real" else (None, 4)  # several windows either way
    first = run(client, env.storage, path, until=until, limit=5)
    assert first.counts.imported == 5 and first.counts.left > 0
    fake_strava.set_limits(overall=(window, 1000), read=(window, 500))
    fake_strava.advance_window()
    second = run(new_client(strava_settings, fake_strava), env.storage, path, until=until, wait=False)
    assert second.stopped_until is not None and second.stopped_until > fake_strava.now
    assert second.calls == window and fake_strava.rate_limited_count == 0  # never a call it knew would be refused
    total = first.counts.imported + second.counts.imported
    for _ in range(20):
        fake_strava.advance_window()
        nxt = run(new_client(strava_settings, fake_strava), env.storage, path, until=until, wait=False)
        total += nxt.counts.imported
        if nxt.stopped_until is None:
            break
    assert nxt.stopped_until is None
    assert fake_strava.rate_limited_count == 0
    assert total == len(fake_strava.activities()) == first.counts.left + 5
    assert {e.status for e in env.entries()} == {"synced"}


def test_waits_for_the_window_instead_of_stopping(env: Any, client: StravaClient, fake_strava: FakeStrava,
                                                  ex: Export) -> None:
    fake_strava.set_limits(overall=(6, 1000), read=(6, 500))
    slept: list[float] = []

    def sleep(seconds: float) -> None:  # virtual time: the fake's clock is the client's and the importer's
        slept.append(seconds)
        fake_strava.advance(seconds)

    start = fake_strava.now
    until = date(2013, 8, 10) if ex.kind == "real" else None  # the whole synthetic export: 12 activities
    report = run(client, env.storage, ex.path, until=until, sleep=sleep)
    assert report.stopped_until is None and report.counts.failed == 0
    assert report.counts.imported == len(fake_strava.activities()) >= 10
    assert fake_strava.rate_limited_count == 0
    waited = fake_strava.now - start
    assert waited == timedelta(seconds=sum(slept))  # the clock moved by the importer's sleeps and nothing else
    assert timedelta(minutes=15) * (report.calls // 6 - 1) <= waited <= timedelta(minutes=15) * (report.calls // 6 + 1)


# ---- bad input fails alone -----------------------------------------------------------------------------------


def _copy_export(tmp_path: Path, ex: Export, until: str | None = None) -> Path:
    """The 2016 folder, cut to its first weeks so a test stays quick (rows and their GPX files)."""
    src = ex.path
    until = until or ex.slice_until
    dst = tmp_path / "export"
    dst.mkdir()
    lines = (src / "cardioActivities.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    kept = [lines[0]] + [ln for ln in lines[1:] if ln[:10] <= until and ln[:2] == "20"]
    (dst / "cardioActivities.csv").write_text("".join(kept), encoding="utf-8")
    for ln in kept[1:]:
        gpx = ln.rstrip("\r\n").rsplit(",", 1)[-1]
        if gpx:
            shutil.copy(src / gpx, dst / gpx)
    return dst


def test_xml_bomb_and_truncated_gpx_fail_alone(env: Any, client: StravaClient, fake_strava: FakeStrava,
                                               tmp_path: Path, ex: Export) -> None:
    folder = _copy_export(tmp_path, ex)
    _, bomb, cut = ex.early_gpx[:3]
    (folder / bomb).write_bytes(BILLION_LAUGHS)
    original = (folder / cut).read_bytes()
    (folder / cut).write_bytes(original[: len(original) // 3])
    with open_export(folder) as export:
        total = len(build_plan(export, timezone=TZ).items)
    report = run(client, env.storage, folder)
    reasons = {f.origin: f.reason for f in report.failures}
    assert len(reasons) == 2 and report.counts.failed == 2
    assert "declares XML entities" in next(r for o, r in reasons.items() if bomb in o)
    assert "truncated" in next(r for o, r in reasons.items() if cut in o)
    assert report.counts.imported == total - 2 == len(fake_strava.activities())
    failed = [e for e in env.entries() if e.status == "failed"]
    assert len(failed) == 2 and all(e.error for e in failed)
    again = run(client, env.storage, folder)  # a rerun reports them again and sends nothing
    assert again.counts.imported == 0 and again.counts.failed == 2


def test_hostile_zip_members_fail_alone(env: Any, client: StravaClient, fake_strava: FakeStrava,
                                        tmp_path: Path, ex: Export) -> None:
    src = ex.path
    first, second, third = ex.early_gpx[:3]
    path = tmp_path / "hostile.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.write(src / first, f"export/{first}")
        zf.write(src / second, f"export/{second}")
        zf.writestr("export/../../evil.gpx", (src / third).read_bytes())
        zf.writestr("export/bomb.gpx", b"<" * (70 * 1024 * 1024))
        zf.writestr(zipfile.ZipInfo("export/folder.gpx/"), b"")
        zf.writestr("export/junk.gpx", bytes(range(256)) * 40)
        zf.writestr(f"__MACOSX/export/._{first}", b"\0\5\26\7junk")
    report = run(client, env.storage, path)
    reasons = {f.origin: f.reason for f in report.failures}
    assert set(reasons) == {"export/../../evil.gpx", "bomb.gpx", "folder.gpx", "junk.gpx"}
    assert "zip-slip" in reasons["export/../../evil.gpx"]
    assert "too large" in reasons["bomb.gpx"]
    assert "is a folder" in reasons["folder.gpx"]
    assert "binary data" in reasons["junk.gpx"]
    assert report.counts.uploaded == 2 and len(fake_strava.activities()) == 2


# ---- Strava misbehaving --------------------------------------------------------------------------------------


def test_processing_error_and_polling_only_what_the_listing_misses(env: Any, client: StravaClient,
                                                                   fake_strava: FakeStrava, ex: Export) -> None:
    fake_strava.fail_next_processing("Improperly formatted data.")
    report = run(client, env.storage, ex.path, until=ex.early)
    assert report.counts.failed == 1
    assert "Improperly formatted data." in report.failures[0].reason
    assert fake_strava.call_count("GET", "/api/v3/uploads/{id}") == 1  # only the one the listing lacked
    failed = next(e for e in env.entries() if e.status == "failed")
    assert "Improperly formatted data." in (failed.error or "")


def test_ambiguous_manual_create_is_not_duplicated(env: Any, client: StravaClient,
                                                   fake_strava: FakeStrava, ex: Export) -> None:
    fake_strava.fail_next(1, 502, path_prefix="/api/v3/activities", method="POST", after_apply=True)
    report = run(client, env.storage, ex.path, until=ex.early)
    manual = [a for a in fake_strava.activities() if a.manual]
    assert len(manual) == report.counts.manual == 1  # the listing found it: not created twice
    assert report.counts.failed == 0


def test_transient_failures_are_retried_without_duplicates(env: Any, client: StravaClient,
                                                            fake_strava: FakeStrava, ex: Export) -> None:
    fake_strava.fail_next(1, 500, path_prefix="/api/v3/athlete/activities", method="GET")
    fake_strava.fail_next(2, 503, path_prefix="/api/v3/uploads", method="POST")  # may or may not have applied
    slept: list[float] = []
    report = run(client, env.storage, ex.path, until=ex.early, sleep=slept.append)
    assert slept == [1.0]  # the listing's retry; the ambiguous uploads were looked for, then sent again
    acts = fake_strava.activities()
    assert report.counts.failed == 0 and report.counts.imported == len(acts) == ex.early_count
    assert len({a.start_date for a in acts}) == ex.early_count


def test_not_connected_stops_with_a_clear_message(sync_env: Any, strava_env: Any, fake_strava: FakeStrava,
                                                   ex: Export) -> None:
    from shared.config import load
    from shared.history.plan import CannotImport
    from shared.strava.errors import NotConnected

    client = client_from_settings(load(strava_env))
    with pytest.raises((CannotImport, NotConnected), match="not connected"):
        run(client, sync_env.storage, ex.path, until=ex.early)
    assert fake_strava.api_calls == 0


def test_retry_failed(env: Any, client: StravaClient, fake_strava: FakeStrava, ex: Export) -> None:
    fake_strava.fail_next_processing("Strava hiccup.")
    first = run(client, env.storage, ex.path, until=ex.early)
    assert first.counts.failed == 1
    second = run(client, env.storage, ex.path, until=ex.early)
    assert second.counts.failed_before == 1 and second.counts.imported == 0
    assert "Strava hiccup." in second.failures[0].reason
    third = run(client, env.storage, ex.path, until=ex.early, retry_failed=True)
    assert third.counts.uploaded == 1 and third.counts.failed == 0
    assert {e.status for e in env.entries()} == {"synced"}


def test_queued_on_the_live_path_is_left_to_it(connected: Any, strava_env: dict[str, str], ex: Export) -> None:
    fake = connected.fake
    gpx = ex.path / ex.first_gpx
    resp = connected.sync.post(zapier_payload_from_gpx(gpx, ex.first_start_iso))
    live_id = json.loads(resp.get_body())["id"]
    report = run(new_client(load(strava_env), fake), connected.sync.storage, ex.path,
                 until=ex.early)
    assert report.counts.elsewhere == 1
    start = ex.first_start
    assert not [a for a in fake.activities() if a.start_date == start]
    drain_all(connected)
    assert connected.sync.entry(live_id).status == "synced"
    assert len([a for a in fake.activities() if a.start_date == start]) == 1


def test_a_run_killed_mid_send_resumes_without_duplicates(env: Any, client: StravaClient,
                                                          fake_strava: FakeStrava, ex: Export) -> None:
    """Rows left `uploading` with no upload id: the listing decides whether Strava got them before sending again."""
    with open_export(ex.path) as export:
        plan = build_plan(export, timezone=TZ, until=ex.early)
    manual = next(i for i in plan.items if i.is_manual)
    track = next(i for i in plan.items if not i.is_manual)
    for item in (manual, track):  # both claimed by a run that died; only the manual create reached Strava
        activitylog.create(env.storage, activitylog.Entry(
            user=activitylog.OWNER, sync_id=item.sync_id, status="uploading", source="import", start=item.start,
            lease_until=datetime.now(UTC) - timedelta(minutes=1), lease_owner="import-dead"))
    fake_strava.add_activity(name=manual.name, sport_type=manual.sport_type, start_date=manual.start,
                             elapsed_time=1140, manual=True)
    report = run(client, env.storage, ex.path, until=ex.early)
    assert report.counts.failed == 0 and report.counts.unconfirmed == 0
    acts = fake_strava.activities()
    assert len(acts) == len(plan.items)  # one each: the manual one was found, not created again
    assert sum(a.start_date == track.start for a in acts) == 1
    assert {e.status for e in env.entries()} == {"synced"}


def test_repaired_gpx_is_uploaded_repaired(env: Any, client: StravaClient, fake_strava: FakeStrava,
                                           tmp_path: Path, ex: Export) -> None:
    folder = _copy_export(tmp_path, ex, until=ex.first_gpx[:10])
    path = folder / ex.first_gpx
    original = path.read_bytes()
    path.write_bytes(original.replace(b"</trkseg>\n<trkseg>", b"</trkseg>\n</trkseg>\n<trkseg>", 1))
    report = run(client, env.storage, folder)
    assert report.counts.failed == 0 and report.counts.uploaded == 1
    (act,) = [a for a in fake_strava.activities() if not a.manual]
    assert act.gpx == original.replace(b"</trkseg>\n<trkseg>", b"</trkseg>\n\n<trkseg>", 1)


# ---- the live path's rows are never overwritten ---------------------------------------------------------------


def _rows(storage: Storage) -> ImportRows:
    return ImportRows(storage, activitylog.OWNER, "import-test", lambda: datetime.now(UTC))


def _live_row(storage: Storage, item: Item, **fields: Any) -> activitylog.Entry:
    """What the live path leaves: its own row, or its status written on the importer's row."""
    current = activitylog.get(storage, activitylog.OWNER, item.sync_id)
    if current is None:
        created = activitylog.create(storage, activitylog.Entry(user=activitylog.OWNER, sync_id=item.sync_id,
                                                                **{"status": "queued", **fields}))
        assert created is not None
    else:
        activitylog.save(storage, current, **fields)
    left = activitylog.get(storage, activitylog.OWNER, item.sync_id)
    assert left is not None
    return left


def _same_row(now: activitylog.Entry | None, left: activitylog.Entry) -> bool:
    """Unwritten since the live path left it: the same ETag, and so the same content."""
    assert now is not None
    return now.etag == left.etag and now == left


def test_a_row_the_live_path_made_after_our_read_stays_as_it_left_it(sync_env: Any) -> None:
    """The importer read no row, then found the activity on Strava; meanwhile the live worker claimed it."""
    rows = _rows(sync_env.storage)
    item = _item(datetime(2020, 5, 1, 7, 0, tzinfo=UTC))
    work = Work(item, None)  # the importer's read: nothing there yet
    live = _live_row(sync_env.storage, item, status="uploading", source="zapier", lease_owner="worker-1",
                     lease_until=datetime.now(UTC) + timedelta(minutes=5), attempts=1)
    rows.record(work, Status.DUPLICATE, activity_id="42", error=None)
    assert _same_row(sync_env.entry(item.sync_id), live)
    assert work.entry is not None and work.entry.status == "uploading"  # the run goes on with the row as it is


@pytest.mark.parametrize("live_status", ["synced", "uploading"])
def test_our_row_taken_over_by_the_live_path_is_not_overwritten(sync_env: Any, live_status: str) -> None:
    """Our lease ran out (a day's wait at the rate limit); the live worker took the row between our read and write."""
    rows = _rows(sync_env.storage)
    item = _item(datetime(2020, 5, 2, 7, 0, tzinfo=UTC))
    work = Work(item, None)
    assert rows.claim(work) and work.entry is not None and work.entry.lease_owner == "import-test"
    if live_status == "synced":
        live = _live_row(sync_env.storage, item, status="synced", activity_id="777", lease_owner=None,
                         lease_until=None)
    else:
        live = _live_row(sync_env.storage, item, status="uploading", lease_owner="worker-2",
                         lease_until=datetime.now(UTC) + timedelta(minutes=5))
    rows.save(work, upload_id="u-1", ambiguous=False, error=None)
    rows.release(work)
    rows.record(work, Status.FAILED, error="Strava kept failing")
    rows.record(work, Status.SYNCED, activity_id="999", error=None, ambiguous=False)
    assert not rows.claim(work)  # sending it again is the live path's business now
    assert _same_row(sync_env.entry(item.sync_id), live)


def test_a_row_merely_touched_since_our_read_gets_our_outcome(sync_env: Any) -> None:
    """A lost race is decided again, not given up: a row still ours takes the outcome on top of the change."""
    rows = _rows(sync_env.storage)
    item = _item(datetime(2020, 5, 3, 7, 0, tzinfo=UTC))
    work = Work(item, None)
    assert rows.claim(work)
    _live_row(sync_env.storage, item, error="touched")  # same status, same lease: only the ETag moved on
    rows.record(work, Status.SYNCED, activity_id="5", error=None, ambiguous=False)
    got = sync_env.entry(item.sync_id)
    assert (got.status, got.activity_id, got.error, got.lease_owner) == ("synced", "5", None, None)
    activitylog.table(sync_env.storage).delete_entity(activitylog.OWNER, item.sync_id)  # gone meanwhile
    rows.save(work, upload_id="u-2")
    assert sync_env.entry(item.sync_id).upload_id == "u-2"  # written again from what the run knows


def test_an_import_run_leaves_a_row_the_live_path_claimed_mid_run(env: Any, client: StravaClient,
                                                                  fake_strava: FakeStrava, tmp_path: Path) -> None:
    """End to end: the activity is on Strava already; while the run lists it, Zapier's copy is being uploaded."""
    folder = tmp_path / "export"
    folder.mkdir()
    (folder / "cardioActivities.csv").write_text(
        "Date,Type,Route Name,Distance (mi),Duration,Average Pace,Average Speed (mph),Calories Burned,Climb (ft),"
        "Average Heart Rate (bpm),Notes,GPX File\n2019-06-01 08:00:00,Running,,3.10,25:00,,,,,,,\n", encoding="utf-8")
    with open_export(folder) as export:
        (item,) = build_plan(export, timezone=TZ).items
    fake_strava.add_activity(name="from my watch", sport_type="Run", start_date=item.start, elapsed_time=1500)
    listed = client.list_activities
    live: list[activitylog.Entry] = []

    def list_then_live_claims(after: datetime, before: datetime) -> list[dict[str, Any]]:
        found = listed(after, before)
        live.append(_live_row(env.storage, item, status="uploading", source="zapier", lease_owner="worker-1",
                              lease_until=datetime.now(UTC) + timedelta(minutes=5), attempts=1))
        return found

    client.list_activities = list_then_live_claims  # type: ignore[method-assign]
    report = run(client, env.storage, folder)
    assert report.counts.duplicate == 1 and len(fake_strava.activities()) == 1
    assert _same_row(env.entry(item.sync_id), live[0])
