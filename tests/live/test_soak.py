"""Soak: a few hundred activities through the real ack and a host-like drain while Strava misbehaves.

The fake Strava answers a share of calls with 5xx or a timeout (before and after it acted), expires
access tokens every few calls (each refresh rotates the refresh token), and has small 15-minute
limits that are hit again and again. Four workers drain the queue: three threads and one real
process, which is killed with SIGKILL while Strava holds its upload. At the end every activity must
be on Strava exactly once, logged `synced` or `duplicate`, with nothing poisoned and the refresh
token still good. Marked `soak`: run it with `--run-soak` (or `make test-all`). It prints its figures.

Time is the fake's virtual clock: the workers (threads and process) reckon leases and rate-limit
windows in it, and a ticker jumps it to the next window whenever Strava has been quiet for a moment
(no call in flight can then lose its lease to the jump); SYNC_DELAY_SCALE shrinks the real waits.

`python -m tests.live.test_soak --clock-file F` is the worker process (a `tests.support.drain` worker on the fake's
clock, marked by a header so the fake can hold its upload for the kill).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKER_HEADER = "X-Soak-Worker"  # set only by the worker process, so the fake knows whose upload to hold
CLIENT_TIMEOUT = (2.0, 1.0)  # connect, read: a held answer (HOLD) is a timeout for the thread workers
PROCESS_TIMEOUT = (2.0, 3.0)  # the process reads longer, so the kill lands while its upload is held
HOLD = 1.3  # seconds a "timeout" answer is held
KILL_HOLD = 8.0  # the worker process's upload is held this long; it is killed long before
QUIET = 2.0  # seconds without any Strava call before the ticker may jump the clock (> HOLD: nothing in flight)
EXPIRE_EVERY = 23  # API calls between access-token expiries
LIMITS = {"overall": (60, 100_000), "read": (30, 100_000)}  # small 15-minute windows, days never matter
RATES = {  # share of API calls per fault
    "5xx before": 0.025,
    "5xx after": 0.02,
    "timeout after": 0.015,
    "timeout before": 0.01,
}
TOKEN_5XX = 0.1  # share of token requests refused with 503 (before they act: a lost rotation is unrecoverable)
MANUAL_COUNT = 90
SEEDED_COUNT = 10  # tracks already on Strava (recorded by a watch): they end as duplicates
TRACK_LIMIT = 150
REPOST_SHARE = 0.15  # activities posted a second time while they are being synced
REPLAY_COUNT = 30  # posted again once everything is done: answered with their status, nothing queued
KILL_AFTER_UPLOADS = 60  # the worker process's next upload after this many is held, and the process killed


# ---- the fake with random faults ---------------------------------------------------------------------
def _faulty_class() -> type:
    from tests.support.fake_strava import FakeStrava, _Fault, _multipart

    class FaultyStrava(FakeStrava):
        """FakeStrava with seeded random faults, periodic token expiry and a hold for the process's upload."""

        def __init__(self, seed: int) -> None:
            super().__init__()
            self.rng = random.Random(seed)
            self.faults_on = False
            self.faults: Counter[str] = Counter()
            self.expirations = 0
            self.api_seen = 0
            self.in_flight = 0
            self.last_request = time.monotonic()
            self.kill_armed = False
            self.kill_event = threading.Event()
            self.killed_sync_id: str | None = None
            self._tl = threading.local()

        def handle(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> Any:
            with self._lock:
                self.last_request = time.monotonic()
                if self.faults_on and urlsplit(raw_path).path.startswith("/api/v3/"):
                    self.api_seen += 1
                    if self.api_seen % EXPIRE_EVERY == 0:
                        self.expire_access_tokens()
                        self.expirations += 1
                self._tl.headers, self._tl.body = headers, body
                return super().handle(method, raw_path, headers, body)

        def _take_fault(self, method: str, path: str) -> Any:
            chosen = super()._take_fault(method, path)
            if chosen is not None:
                return chosen
            headers = self._tl.headers
            if (self.kill_armed and (method, path) == ("POST", "/api/v3/uploads")
                    and headers.get(WORKER_HEADER) == "process"):
                from shared.model.syncid import sync_id_from_external_id

                fields, _ = _multipart(self._tl.body, headers.get("Content-Type") or "")
                self.kill_armed = False
                self.killed_sync_id = sync_id_from_external_id(fields.get("external_id"))
                self.kill_event.set()
                return _Fault(1, None, path, method, True, KILL_HOLD)  # applied; the answer never arrives
            if not self.faults_on:
                return None
            roll = self.rng.random()
            if path == "/oauth/token":
                if roll < TOKEN_5XX:
                    self.faults["token 503"] += 1
                    return _Fault(1, 503, path, method, False, 0.0)
                return None
            if not path.startswith("/api/v3/"):
                return None
            for kind, rate in RATES.items():
                if roll < rate:
                    self.faults[kind] += 1
                    status = self.rng.choice((500, 502, 503))
                    return {
                        "5xx before": _Fault(1, status, path, method, False, 0.0),
                        "5xx after": _Fault(1, status, path, method, True, 0.0),
                        "timeout after": _Fault(1, None, path, method, True, HOLD),
                        "timeout before": _Fault(1, 504, path, method, False, HOLD),
                    }[kind]
                roll -= rate
            return None

    return FaultyStrava


# ---- activities --------------------------------------------------------------------------------------
@dataclass
class Planned:
    payload: dict[str, Any]
    kind: str  # track | manual | seeded
    start: datetime
    sync_id: str = ""
    seeded_id: int | None = None
    posts: int = 0
    answers: list[int] = field(default_factory=list)


def _track_payload(gpx: bytes, activity_type: str) -> dict[str, Any] | None:
    """A Zapier payload from a GPX track (Runkeeper's point types: start, gps, pause/resume, end)."""
    from defusedxml import ElementTree

    try:
        root = ElementTree.fromstring(gpx)
    except Exception:
        return None
    segments: list[list[tuple[float, float, float | None, datetime]]] = []
    for seg in root.iter():
        if not seg.tag.endswith("trkseg"):
            continue
        points = []
        for pt in seg:
            if not pt.tag.endswith("trkpt"):
                continue
            ele = next((c.text for c in pt if c.tag.endswith("ele")), None)
            when = next((c.text for c in pt if c.tag.endswith("time")), None)
            if not when:
                continue
            moment = datetime.fromisoformat(when.strip().replace("Z", "+00:00"))
            points.append((float(pt.get("lat", "nan")), float(pt.get("lon", "nan")),
                           float(ele) if ele else None, moment))
        if points:
            segments.append(points)
    flat = [(p, i, j) for i, seg in enumerate(segments) for j, p in enumerate(seg)]
    if len(flat) < 2:
        return None
    start = flat[0][0][3]
    kinds = []
    for n, (_, i, j) in enumerate(flat):
        if n == 0:
            kinds.append("start")
        elif n == len(flat) - 1:
            kinds.append("end")
        elif j == 0:
            kinds.append("resume")
        elif j == len(segments[i]) - 1:
            kinds.append("pause")
        else:
            kinds.append("gps")
    return {
        "activityType": activity_type,
        "activityStartTimeIso": start.isoformat(),
        "activityNotes": "soak <test> ]]> & notes",
        "activityPathLatitude": ",".join(f"{p[0]:.6f}" for p, _, _ in flat),
        "activityPathLongitude": ",".join(f"{p[1]:.6f}" for p, _, _ in flat),
        "activityPathAltitude": ",".join("" if p[2] is None else f"{p[2]:.1f}" for p, _, _ in flat),
        "activityPathTimestamp": ",".join(f"{(p[3] - start).total_seconds():g}" for p, _, _ in flat),
        "activityPathType": ",".join(kinds),
    }


def _synthetic_gpx(start: datetime, points: int, rng: random.Random) -> bytes:
    from tests.support.fake_strava import make_gpx

    return make_gpx(start, points=points, heart_rate=rng.random() < 0.5)


def _track_sources(rng: random.Random) -> tuple[str, list[bytes]]:
    """Real Runkeeper GPX files when ../shared/data is there, else synthesised tracks."""
    from tests.conftest import DATA

    folder = DATA / "exports" / "runkeeper-export-2016"
    if folder.is_dir():
        files = sorted(folder.glob("*.gpx"))
        return "real Runkeeper export tracks", [f.read_bytes() for f in files]
    base = datetime(2019, 3, 1, 7, 0, tzinfo=UTC)
    return "synthesised tracks (../shared/data absent)", [
        _synthetic_gpx(base + timedelta(hours=13 * i), rng.randint(20, 600), rng) for i in range(TRACK_LIMIT)
    ]


def _plan(rng: random.Random, timezone: str) -> tuple[str, list[Planned]]:
    from shared.model.sports import strava_sport
    from shared.model.syncid import sync_id
    from shared.runkeeper.payload import parse_payload
    from shared.strava.convert import to_strava

    source, gpx_files = _track_sources(rng)
    planned: list[Planned] = []
    for data in gpx_files:
        payload = _track_payload(data, rng.choice(("Running", "Running", "Cycling", "Walking")))
        if payload is None:
            continue
        parsed = parse_payload(payload, timezone)
        if isinstance(parsed, list):
            continue
        try:
            to_strava(parsed, timezone)
        except ValueError:
            continue
        planned.append(Planned(payload, "track", parsed.start))
        if len(planned) >= TRACK_LIMIT:
            break
    base = datetime(2021, 1, 4, 6, 30, tzinfo=UTC)
    for i in range(MANUAL_COUNT):
        start = base + timedelta(days=i, minutes=rng.randint(0, 600))
        payload = {"activityType": rng.choice(("Running", "Cycling", "Yoga", "Strength Training")),
                   "activityStartTimeIso": start.isoformat(), "activityDuration": str(rng.randint(600, 7200)),
                   "activityTotalDistance": f"{rng.uniform(0, 20000):.1f}", "activityNotes": f"manual {i}"}
        planned.append(Planned(payload, "manual", start))
    for item in planned:
        parsed = parse_payload(item.payload, timezone)
        assert not isinstance(parsed, list), parsed
        sport = strava_sport(parsed.type, parsed.equipment, parsed.secondary_type)
        item.sync_id = sync_id(parsed.start, sport.sport_type)
    assert len({p.sync_id for p in planned}) == len(planned), "planned activities must be distinct"
    for item in rng.sample([p for p in planned if p.kind == "track"], SEEDED_COUNT):
        item.kind = "seeded"
    return source, planned


# ---- the worker process ------------------------------------------------------------------------------
def _write_clock(path: Path, now: datetime) -> None:
    """Publish the fake's virtual time (it stands still between the ticker's jumps) to the worker process."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(now.isoformat(), encoding="utf-8")
    os.replace(tmp, path)


def _file_clock(path: Path) -> Callable[[], datetime]:
    """The fake's virtual time in another process: the time the test last wrote to `path`."""
    last = [datetime.fromisoformat(path.read_text(encoding="utf-8"))]

    def now() -> datetime:
        try:
            last[0] = datetime.fromisoformat(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            pass  # mid-replace on a platform without atomic rename: the last time read
        return last[0]

    return now


def worker_main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="a soak worker process on the fake Strava's clock")
    parser.add_argument("--clock-file", type=Path, required=True)
    parser.add_argument("--timeout", type=float, default=200.0)
    parser.add_argument("--lease", type=float, default=4.0)
    args = parser.parse_args(argv)
    from shared.live import sync
    from shared.strava import api as strava
    from tests.support import drain

    sync._clock = _file_clock(args.clock_file)
    sync.CLIENT_TIMEOUT = PROCESS_TIMEOUT
    strava.http_session().headers[WORKER_HEADER] = "process"
    return drain.main(["--timeout", str(args.timeout), "--release-delay", "0", "--lease", str(args.lease)])


# ---- the test ----------------------------------------------------------------------------------------
@pytest.fixture
def seed() -> int:
    return int(os.environ.get("SOAK_SEED") or random.SystemRandom().randrange(1_000_000))


@pytest.fixture
def fake_strava(seed: int) -> Iterator[Any]:
    """This module's fake: the usual one plus random faults (overrides tests.support.fixtures_strava's fixture)."""
    fake = _faulty_class()(seed).start()
    try:
        yield fake
    finally:
        fake.stop()


class _Outcomes(logging.Handler):
    """Counts the activity log's "queued again" lines: retries after a fault, waits for a rate-limit window."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.counts: Counter[str] = Counter()
        self.failures: list[str] = []  # every fault here is one a retry gets past: no activity may fail, even briefly

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if "status=failed" in text:
            self.failures.append(text)
        if "status=queued" not in text:
            return
        if "temporary Strava failure" in text or "internal error" in text:
            self.counts["retries"] += 1
        elif "rate limit" in text:
            self.counts["rate-limit waits"] += 1


@dataclass
class Figures:
    started: float = field(default_factory=time.monotonic)
    jumps: int = 0
    killed_at: float | None = None
    deliveries: list[tuple[str | None, int]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.mark.soak
@pytest.mark.timeout(420)
def test_soak_nothing_lost_nothing_twice(connected, seed, monkeypatch, tmp_path, capsys) -> None:
    from shared.config import load
    from shared.live import sync
    from shared.model.syncid import external_id
    from shared.storage import activitylog
    from shared.strava.tokens import client_from_settings, get_connection
    from tests.support.host import function

    fake = connected.fake
    env = connected.sync
    rng = random.Random(seed)
    with capsys.disabled():
        print(f"\n[soak] seed={seed} (SOAK_SEED={seed} replays the same plan and fault rolls)")
    source, planned = _plan(rng, "Europe/London")
    for item in planned:
        if item.kind == "seeded":
            item.seeded_id = fake.add_activity(name="From the watch", sport_type="Run",
                                               start_date=item.start).id
    fake.set_limits(**LIMITS)
    monkeypatch.setattr(sync, "_clock", lambda: fake.now)
    monkeypatch.setattr(sync, "CLIENT_TIMEOUT", CLIENT_TIMEOUT)
    clock_file = tmp_path / "clock"
    _write_clock(clock_file, fake.now)
    figures = Figures()

    real_handler = function("sync_activity")

    def handler(msg: Any) -> None:
        try:
            sid = json.loads(msg.get_body()).get("id")
        except ValueError:
            sid = None
        with figures.lock:
            figures.deliveries.append((sid, msg.dequeue_count))
        real_handler(msg)

    outcomes = _Outcomes()
    activity_logger = logging.getLogger("shared.storage.activitylog")
    activity_logger.addHandler(outcomes)
    old_level = activity_logger.level
    activity_logger.setLevel(logging.INFO)
    fake.faults_on = True
    log_file = (tmp_path / "worker.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.live.test_soak", "--clock-file", str(clock_file)],
        cwd=ROOT, env=env.subprocess_env(), stdout=log_file, stderr=subprocess.STDOUT,
    )
    stop = threading.Event()
    posting_done = threading.Event()
    errors: list[BaseException] = []

    def killer() -> None:
        """Arms the hold once Strava has taken a good share of the uploads, then kills the held process."""
        while not stop.is_set():
            if not fake.kill_event.is_set() and fake.call_count("POST", "/api/v3/uploads") >= KILL_AFTER_UPLOADS:
                fake.kill_armed = True
            if fake.kill_event.wait(0.05):
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait()
                figures.killed_at = time.monotonic() - figures.started
                return

    def ticker() -> None:
        """Jump to the next 15-minute window whenever Strava has been quiet (spent windows go quiet fast)."""
        while not stop.wait(0.1):
            if time.monotonic() - fake.last_request < QUIET:
                continue
            _write_clock(clock_file, fake.advance_window())
            fake.last_request = time.monotonic()
            figures.jumps += 1

    def post(item: Planned) -> None:
        resp = env.post(item.payload)
        with figures.lock:
            item.posts += 1
            item.answers.append(resp.status_code)
        assert resp.status_code in (200, 202), resp.get_body()[:500]

    def poster() -> None:
        try:
            order = list(planned)
            rng.shuffle(order)
            later: dict[int, list[Planned]] = {}
            for n, item in enumerate(order):
                post(item)
                for again in later.pop(n, []):
                    post(again)
                if rng.random() >= REPOST_SHARE:
                    continue
                if rng.random() < 0.5:  # at once, from two threads: two acks race for one row
                    other = threading.Thread(target=post, args=(item,))
                    other.start()
                    post(item)
                    other.join()
                else:  # a little later, while it is being synced
                    later.setdefault(n + rng.randint(1, 20), []).append(item)
            for rest in later.values():
                for again in rest:
                    post(again)
        except BaseException as exc:
            errors.append(exc)
        finally:
            posting_done.set()

    threads = [threading.Thread(target=t, name=t.__name__, daemon=True) for t in (killer, ticker, poster)]
    try:
        with env.drain(workers=3, lease=10.0, handler=handler) as drain:
            for t in threads:
                t.start()
            drain.run(timeout=300, until=lambda: posting_done.is_set() and drain.pending() == 0)
            stats = drain.stats
    finally:
        stop.set()
        if proc.poll() is None:
            proc.terminate()
            proc.wait(timeout=30)
        log_file.close()
        activity_logger.removeHandler(outcomes)
        activity_logger.setLevel(old_level)
        for t in threads:
            t.join(timeout=30)
    drained_at = time.monotonic() - figures.started
    assert errors == [], errors

    # Replays once everything is done: the status comes back, nothing is queued again.
    replays = rng.sample(planned, REPLAY_COUNT)
    for item in replays:
        resp = env.post(item.payload)
        assert resp.status_code == 200, resp.get_body()
        assert json.loads(resp.get_body())["status"] in ("synced", "duplicate")
    leftover = env.blobs()
    assert env.queue_count() == 0 and leftover == [], "\n".join(
        f"{name}: " + (repr((row.status, row.attempts, row.error)) if (row := env.entry(name.rsplit("/", 1)[-1][:21]))
                       else "no row")
        for name in leftover)

    # The worker process was killed mid-upload and its message came back after the visibility timeout.
    assert figures.killed_at is not None and proc.returncode == -signal.SIGKILL, "the worker process was not killed"
    assert fake.killed_sync_id is not None
    assert any(sid == fake.killed_sync_id and count >= 2 for sid, count in figures.deliveries), \
        "the killed worker's message never reappeared"

    # Every activity on Strava exactly once, logged synced or duplicate; nothing poisoned or failed.
    assert stats.poisoned == [] and env.queue_count(poison=True) == 0
    assert stats.errors == [], stats.errors[:3]
    assert outcomes.failures == []
    rows = {row.sync_id: row for row in env.entries()}
    on_strava = {a.id: a for a in fake.activities()}
    assert set(rows) == {p.sync_id for p in planned}, "rows for other things than the posted activities"
    bad = {sid: (row.status, row.error) for sid, row in rows.items() if row.status not in activitylog.DONE}
    assert bad == {}
    ids = [row.activity_id for row in rows.values()]
    assert len(set(ids)) == len(ids) == len(planned) == len(on_strava)
    assert {int(i) for i in ids if i} == set(on_strava)
    for item in planned:
        row = rows[item.sync_id]
        activity = on_strava[int(row.activity_id)]
        if item.kind == "seeded":
            assert row.activity_id == str(item.seeded_id) and row.status in ("duplicate", "synced")
        elif item.kind == "track":
            assert activity.external_id == external_id(item.sync_id) and row.status == "synced"
        else:
            assert activity.manual and row.status == "synced"
            assert activity.start_date == item.start.astimezone(UTC).replace(microsecond=0)
    assert sum(1 for r in rows.values() if r.status == "duplicate") >= SEEDED_COUNT // 2

    # No refresh token lost: the stored one is Strava's current one and still works.
    conn = get_connection(env.storage)
    current = fake.current_tokens()
    assert conn is not None and current is not None and conn.refresh_token == current[1]
    fake.faults_on = False
    fake.advance_window()  # a fresh window: the check's own call must not meet the spent limit
    fake.expire_access_tokens()
    client = client_from_settings(load(), timeout=(2, 5))
    assert client.athlete()["id"] == fake.athlete.id

    calls = fake.calls
    endpoints = {key: n for key, n in calls.items() if key.split(" ", 1)[1].startswith("/api/v3/")}
    by_status = Counter(row.status for row in rows.values())
    with capsys.disabled():
        print(
            "[soak] source: {source}\n"
            "[soak] activities: {n} ({tracks} tracks, {manual} manual, {seeded} already on Strava); "
            "posts {posts} (+{replays} replays after the end); outcome {outcome}\n"
            "[soak] strava calls: {api} API ({endpoints}), token requests {tokens}, refreshes {refreshes}, "
            "access-token expiries {expiries}, 429s {limited}, 15-min windows jumped {jumps}\n"
            "[soak] faults injected: {faults}\n"
            "[soak] deliveries {deliveries} (redelivered {redelivered}); in the thread workers {retries} retries "
            "after a fault, {waits} waits for a rate-limit window; "
            "worker process killed at {killed:.1f} s, drained in {drained:.1f} s".format(
                source=source, n=len(planned),
                tracks=sum(p.kind == "track" for p in planned), manual=sum(p.kind == "manual" for p in planned),
                seeded=sum(p.kind == "seeded" for p in planned), posts=sum(p.posts for p in planned),
                replays=len(replays), outcome=dict(by_status), api=fake.api_calls,
                endpoints=", ".join(f"{k} {v}" for k, v in sorted(endpoints.items())),
                tokens=calls["POST /oauth/token"], refreshes=fake.refresh_count, expiries=fake.expirations,
                limited=fake.rate_limited_count, jumps=figures.jumps, faults=dict(fake.faults),
                deliveries=len(figures.deliveries),
                redelivered=sum(1 for _, count in figures.deliveries if count > 1),
                retries=outcomes.counts["retries"], waits=outcomes.counts["rate-limit waits"],
                killed=figures.killed_at, drained=drained_at,
            )
        )


if __name__ == "__main__":
    raise SystemExit(worker_main())
