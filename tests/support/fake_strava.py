"""A fake Strava: a real threaded HTTP server on 127.0.0.1 that behaves as Strava's documentation and API
reference (developers.strava.com) describe it.

Every part's tests talk to it over real HTTP (never patch `requests`). Start it with the `fake_strava`
fixture (tests/fixtures_strava.py) or `FakeStrava().start()` / `.stop()`; `fake.url` is the base URL
(the app's STRAVA_BASE_URL). Everything is in memory and thread-safe.

Endpoints
- `GET /oauth/authorize` → 302 to `redirect_uri` with `state`, `code`, `scope` (always with `read`, as Strava).
- `POST /oauth/token`: `authorization_code` (single-use code; answer includes `athlete`) and `refresh_token`
  (1-hour rule: while the access token has over an hour left the same tokens come back; otherwise new
  ones, and the old refresh token stops working at once). `POST /oauth/deauthorize` revokes everything.
- `POST /api/v3/uploads` (multipart; gpx / gpx.gz parsed, fit/tcx refused at processing),
  `GET /api/v3/uploads/{id}`, `POST /api/v3/activities` (manual, form or JSON, no dedup),
  `PUT /api/v3/activities/{id}` (JSON: name, description, sport_type, commute, trainer, hide_from_home,
  gear_id; a read call), `GET /api/v3/athlete/activities` (before/after/page/per_page ≤ 200; ascending
  when `after` is given, else newest first), `GET /api/v3/activities/{id}`, `GET /api/v3/athlete`.
- Every answer carries `X-RateLimit-Limit/Usage` and `X-ReadRateLimit-Limit/Usage` (`15min,daily`).
  Only `/api/v3` requests are counted; `POST /uploads` and `POST /activities` count as overall only.

Knobs (attributes and methods; set them at any time)
- Identity: `client_id`, `client_secret`; `athlete` (the default `FakeAthlete`), `add_athlete(...)`,
  `authorizing_athlete` (id of who approves at /oauth/authorize), `issue_code(athlete_id, scope)` to skip
  the browser step.
- Authorize page: `authorize_mode = "approve" | "deny"` (deny → `error=access_denied`);
  `granted_scope` = None (what was asked) or e.g. `"read,activity:read_all"` (the athlete unticked some).
- Tokens: `token_lifetime` (s, default 6 h) for tokens issued from now on; `expire_access_tokens(athlete_id=None)`
  (the current access tokens answer 401 and the next refresh rotates); `revoke(athlete_id)`.
- Uploads: `processing_polls` (GET /uploads/{id} answers "still being processed" that many times before the
  outcome; default 0); `fail_next_processing(message)` (the next upload ends in a processing error whose
  `error` is exactly `message`).
  Duplicates: same first `<time>` (to the second) as an uploaded activity of that athlete, or same
  `external_id` → error `"<filename> duplicate of activity N"`. A file it cannot parse → status
  "There was an error processing your activity." with a message. The activity exists (listed) from upload
  time; only the status lags. `delete_activity(id)`; `add_activity(...)` seeds existing activities: with
  the default `manual=False` (recorded by a device) an upload starting at the same second is a duplicate of
  it; `manual=True` ones never are.
- Rate limits: `set_limits(overall=(15min, daily), read=(15min, daily))` (defaults 200/2000, 100/1000);
  past a limit → 429 with Strava's body (`overall rate limit` / `read rate limit`); refused requests still
  count toward the daily usage. Virtual clock, frozen unless a test moves it: `now` (settable, aware UTC;
  starts at the real time, to the second, when the fake is created, then stands still), `advance(seconds)`,
  `advance_window()` (to the next :00/:15/:30/:45), `advance_day()` (to the next midnight UTC). Nothing
  else moves it, so a test that spends a window gets its 429 however long it runs. Access tokens expire on
  this clock (`expires_at` = its `now` + `token_lifetime`) while the app compares `expires_at` with its
  own real clock (shared/strava/tokens.py, `time.time()`): starting at real time keeps the two within a
  test's running time of each other, far inside the 6-hour lifetime and the app's 5-minute margin. Move it
  forward only: an earlier `now` makes the app see tokens it thinks are stale.
- Faults: `fail_next(count=1, status=500, path_prefix="/api/v3/", method=None, after_apply=False, delay=0.0)`:
  the next `count` matching requests get `status` (after_apply=True: the request takes effect first, e.g. the
  activity is created, then the error answer); `delay` holds the answer that long (longer than the client's
  read timeout = a timeout). `hold_next(count=1, seconds=..., ...)`: applied normally, answer held
  (a timeout after Strava acted). Faulted requests still count toward the rate limits.
- Official spec: with ../shared/data/strava/strava_swagger.json present, every /api/v3 request is checked
  against it (tests/support/strava_spec.py): one outside it answers 400 naming the parameter in the spec's
  words and is recorded in `spec_violations` (the `fake_strava` fixture fails the test at teardown);
  `take_spec_violations()` takes them for a test that sends such requests on purpose. `spec` is None
  (nothing checked) without the file.
- Hidden start times: `hide_start_times = True` (every athlete) or `FakeAthlete.hide_start_times` (one):
  listings and activity answers give start_date/start_date_local as midnight + 1 s of their day (FACTS.md);
  the listing's before/after filters still use the real start. Inspection keeps the real starts.
- Helper: `make_gpx(start, points=3, heart_rate=False)` builds a small valid GPX (a point every 10 s).
- Inspection: `activities(athlete_id=None)` (copies of `FakeActivity`: name, sport_type, start_date,
  start_date_local, elapsed_time, distance, description, trainer, commute, external_id, upload_id, manual,
  points, has_heart_rate, gpx), `activity(id)`, `uploads()`, `calls` (Counter of "METHOD /path/{id}"),
  `call_count(method, path)`, `api_calls` (all /api/v3 requests), `refresh_count` (every refresh_token
  request, refused ones included), `rate_limited_count` (429s), `usage()`, `requests_log` (method, path,
  status per request, without bodies), `reset_counters()`.
"""

from __future__ import annotations

import gzip
import itertools
import json
import math
import re
import secrets
import socket
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

from defusedxml import ElementTree as SafeET

from tests.support.strava_spec import StravaSpec, Violation, load_spec

STATUS_PROCESSING = "Your activity is still being processed."
STATUS_READY = "Your activity is ready."
STATUS_ERROR = "There was an error processing your activity."
STATUS_DELETED = "The created activity has been deleted."
DATA_TYPES = frozenset({"fit", "fit.gz", "tcx", "tcx.gz", "gpx", "gpx.gz"})
SPORT_TYPES = frozenset(
    "AlpineSki BackcountrySki Badminton Basketball Canoeing Cricket Crossfit Dance EBikeRide Elliptical "
    "EMountainBikeRide Golf GravelRide Handcycle HighIntensityIntervalTraining Hike IceSkate InlineSkate "
    "Kayaking Kitesurf MountainBikeRide NordicSki Padel PhysicalTherapy Pickleball Pilates Racquetball Ride "
    "RockClimbing RollerSki Rowing Run Sail Skateboard Snowboard Snowshoe Soccer Squash StairStepper "
    "StandUpPaddling Surfing Swim TableTennis Tennis TrailRun Velomobile VirtualRide VirtualRow VirtualRun "
    "Volleyball Walk WeightTraining Wheelchair Windsurf Workout Yoga".split()
)
WRITE_ENDPOINTS = frozenset({("POST", "/api/v3/uploads"), ("POST", "/api/v3/activities")})
ALL_SCOPES = frozenset({"read", "read_all", "profile:read_all", "profile:write", "activity:read",
                        "activity:read_all", "activity:write"})
ONE_HOUR = 3600


def make_gpx(start: datetime, points: int = 3, heart_rate: bool = False, name: str = "Running") -> bytes:
    """A small valid GPX 1.1 track starting at `start` (aware), one point every 10 s, optionally with gpxtpx:hr."""
    hr = "<extensions><gpxtpx:TrackPointExtension><gpxtpx:hr>140</gpxtpx:hr></gpxtpx:TrackPointExtension></extensions>"
    pts = "".join(
        f'<trkpt lat="{51.5 + i * 0.001:.6f}" lon="-0.100000"><ele>10</ele>'
        f"<time>{_iso((start + timedelta(seconds=10 * i)).astimezone(UTC))}</time>{hr if heart_rate else ''}</trkpt>"
        for i in range(points)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n<gpx version="1.1" creator="fake" '
        'xmlns="http://www.topografix.com/GPX/1/1" '
        'xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v1">'
        f"<trk><name>{name}</name><trkseg>{pts}</trkseg></trk></gpx>\n"
    ).encode()


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in {"1", "true", "yes", "on"}


@dataclass
class FakeAthlete:
    id: int
    firstname: str
    lastname: str
    timezone: str = "Europe/London"
    default_sport: str = "Ride"  # Strava falls back to the athlete's default sport without a type
    hide_start_times: bool = False  # privacy setting: answers give starts as midnight + 1 s (FACTS.md)

    @property
    def name(self) -> str:
        return f"{self.firstname} {self.lastname}".strip()

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "username": f"athlete{self.id}", "resource_state": 2,
                "firstname": self.firstname, "lastname": self.lastname, "city": None, "country": None}


@dataclass
class FakeActivity:
    id: int
    athlete_id: int
    name: str
    sport_type: str
    start_date: datetime  # aware UTC
    start_date_local: datetime  # naive wall clock in the athlete's zone
    elapsed_time: int
    distance: float | None = None
    description: str | None = None
    trainer: bool = False
    commute: bool = False
    external_id: str | None = None
    upload_id: int | None = None
    manual: bool = True
    points: int = 0
    has_heart_rate: bool = False
    data_type: str | None = None
    deleted: bool = False
    gear_id: str | None = None
    hide_from_home: bool = False
    updates: int = 0  # PUT /activities/{id} applied to it
    gpx: bytes | None = field(default=None, repr=False)  # the uploaded file, decompressed

    def summary(self, timezone: str, hidden: bool = False) -> dict[str, Any]:
        """As Strava answers; `hidden`: the owner hides start times, so both starts read midnight + 1 s of their day."""
        start, local = self.start_date, self.start_date_local
        if hidden:
            start = start.replace(hour=0, minute=0, second=1, microsecond=0)
            local = local.replace(hour=0, minute=0, second=1, microsecond=0)
        return {
            "id": self.id, "resource_state": 2, "athlete": {"id": self.athlete_id, "resource_state": 1},
            "name": self.name, "distance": self.distance or 0.0, "moving_time": self.elapsed_time,
            "elapsed_time": self.elapsed_time, "type": self.sport_type, "sport_type": self.sport_type,
            "start_date": _iso(start), "start_date_local": _iso(local),
            "timezone": f"(GMT) {timezone}", "trainer": self.trainer, "commute": self.commute,
            "manual": self.manual, "external_id": self.external_id, "upload_id": self.upload_id,
            "gear_id": self.gear_id, "hide_from_home": self.hide_from_home,
            "upload_id_str": None if self.upload_id is None else str(self.upload_id),
        }


@dataclass
class FakeUpload:
    id: int
    athlete_id: int
    filename: str
    data_type: str
    external_id: str | None
    activity_id: int | None  # the outcome, revealed after `polls_needed` status requests
    error: str | None
    polls_needed: int
    polls: int = 0
    fields: dict[str, str] = field(default_factory=dict)


@dataclass
class _Grant:
    athlete_id: int
    scopes: frozenset[str]
    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: int


@dataclass
class _Fault:
    remaining: int
    status: int | None
    path_prefix: str
    method: str | None
    after_apply: bool
    delay: float


@dataclass
class _Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class _HttpError(Exception):
    def __init__(self, status: int, message: str, errors: Iterable[tuple[str, str, str]] = ()) -> None:
        super().__init__(message)
        self.status = status
        self.body = {"message": message,
                     "errors": [{"resource": r, "field": f, "code": c} for r, f, c in errors]}


def _bad(resource: str, fld: str, code: str = "invalid") -> _HttpError:
    return _HttpError(400, "Bad Request", [(resource, fld, code)])


@dataclass
class _GpxInfo:
    start: datetime
    end: datetime
    points: int
    has_heart_rate: bool
    name: str | None
    distance: float


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _parse_time(text: str) -> datetime:
    dt = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    return (dt if dt.tzinfo else dt.replace(tzinfo=UTC)).astimezone(UTC)


def _parse_gpx(data: bytes, filename: str) -> _GpxInfo:
    """What Strava would read from a GPX; a ValueError's text is the processing error."""
    if not data.strip():
        raise ValueError(f"{filename}: The file is empty.")
    try:
        root = SafeET.fromstring(data)
    except Exception as exc:  # ParseError, defusedxml's entity errors
        raise ValueError(f"{filename}: Improperly formatted data ({type(exc).__name__}).") from exc
    if _local(root.tag) != "gpx":
        raise ValueError(f"{filename}: Improperly formatted data (not a GPX file).")
    points: list[tuple[datetime, float, float]] = []
    hr = False
    name = None
    for el in root.iter():
        tag = _local(el.tag)
        if tag == "name" and name is None and el.text:
            name = el.text.strip()
        elif tag == "hr":
            hr = True
        elif tag == "trkpt":
            when = next((c.text for c in el if _local(c.tag) == "time" and c.text), None)
            if when is None:
                raise ValueError(f"{filename}: Time information is missing from the file.")
            try:
                points.append((_parse_time(when), float(el.get("lat", "nan")), float(el.get("lon", "nan"))))
            except ValueError as exc:
                raise ValueError(f"{filename}: Improperly formatted data (bad time or position).") from exc
    if not points:
        raise ValueError(f"{filename}: The file contains no track points.")
    distance = 0.0
    for (_, la1, lo1), (_, la2, lo2) in itertools.pairwise(points):
        p1, p2 = math.radians(la1), math.radians(la2)
        a = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(math.radians(lo2 - lo1) / 2) ** 2
        distance += 2 * 6371000 * math.asin(min(1.0, math.sqrt(a)))
    return _GpxInfo(points[0][0], max(p[0] for p in points), len(points), hr, name, round(distance, 1))


def _multipart(body: bytes, content_type: str) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    """(fields, files) of a multipart/form-data body; files map name -> (filename, bytes)."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not match:
        raise _bad("Upload", "file", "not a multipart body")
    boundary = b"--" + match.group(1).encode()
    fields: dict[str, str] = {}
    files: dict[str, tuple[str, bytes]] = {}
    for chunk in body.split(boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        data = data.removesuffix(b"\r\n")
        disposition = next((line for line in head.decode("utf-8", "replace").split("\r\n")
                            if line.lower().startswith("content-disposition")), "")
        name = re.search(r'\bname="([^"]*)"', disposition)
        filename = re.search(r'\bfilename="([^"]*)"', disposition)
        if not name:
            continue
        if filename:
            files[name.group(1)] = (filename.group(1), data)
        else:
            fields[name.group(1)] = data.decode("utf-8", "replace")
    return fields, files


def _form(headers: Mapping[str, str], body: bytes, query: dict[str, str]) -> dict[str, str]:
    """Parameters from the query, a urlencoded body or a JSON body (Strava takes all three)."""
    values = dict(query)
    ctype = (headers.get("Content-Type") or "").lower()
    if "application/json" in ctype:
        try:
            data = json.loads(body or b"{}")
        except ValueError as exc:
            raise _HttpError(400, "Bad Request", [("Request", "body", "invalid json")]) from exc
        if isinstance(data, dict):
            values.update({k: ("" if v is None else str(v).lower() if isinstance(v, bool) else str(v))
                           for k, v in data.items()})
    elif body:
        values.update({k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items()})
    return values


def _route_key(path: str) -> str:
    return re.sub(r"/\d+(?=/|$)", "/{id}", path)


class FakeStrava:
    """State and behaviour of the fake; `start()` serves it over HTTP on a free port."""

    def __init__(self, *, client_id: str = "24680", client_secret: str | None = None,
                 overall: tuple[int, int] = (200, 2000), read: tuple[int, int] = (100, 1000)) -> None:
        self.client_id = client_id
        self.client_secret = client_secret or "fake-client-secret-" + secrets.token_hex(8)
        self._lock = threading.RLock()
        self._stopping = threading.Event()
        self._ids = itertools.count(9_000_000_001)  # ids beyond 32 bits, as Strava's are
        self._now = datetime.now(UTC).replace(microsecond=0)  # the virtual clock: only advance*/the setter move it
        self.limits: dict[str, list[int]] = {"overall": list(overall), "read": list(read)}
        self._usage: dict[str, list[int]] = {"overall": [0, 0], "read": [0, 0]}
        self._window: tuple[datetime, Any] | None = None
        self.athletes: dict[int, FakeAthlete] = {}
        self.athlete = self.add_athlete("Ada", "Lovelace", athlete_id=1234567)
        self.authorizing_athlete: int = self.athlete.id
        self.authorize_mode = "approve"
        self.granted_scope: str | None = None
        self.token_lifetime = 6 * ONE_HOUR
        self.processing_polls = 0
        self.hide_start_times = False  # every athlete hides start times (or per athlete: FakeAthlete.hide_start_times)
        self.callback_domains: set[str] = {"localhost", "127.0.0.1"}
        self.athlete_limit_reached = False  # True: code exchanges answer 403 "Limit of connected athletes exceeded"
        self._codes: dict[str, tuple[int, frozenset[str]]] = {}
        self._grants: dict[int, _Grant] = {}
        self._access: dict[str, tuple[int, frozenset[str], int]] = {}
        self._refresh: dict[str, int] = {}
        self._activities: dict[int, FakeActivity] = {}
        self._uploads: dict[int, FakeUpload] = {}
        self._faults: list[_Fault] = []
        self._processing_errors: list[str] = []
        self._calls: Counter[str] = Counter()
        self.requests_log: list[tuple[str, str, int]] = []
        self.refresh_count = 0
        self.rate_limited_count = 0
        self.spec: StravaSpec | None = load_spec()  # None without ../shared/data: nothing checked
        self.spec_violations: list[Violation] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------------
    def start(self) -> FakeStrava:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.fake = self
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-strava", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()  # wakes held answers
        if self._server:
            self._server.shutdown()
            self._server.close_connections()
            self._server.server_close()
        if self._thread:
            self._thread.join(timeout=10)
        self._server = None

    def __enter__(self) -> FakeStrava:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "FakeStrava not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    # ---- clock -----------------------------------------------------------------------------------
    @property
    def now(self) -> datetime:
        """The virtual time (aware UTC): it stands still until `advance*` or the setter moves it."""
        with self._lock:
            return self._now

    @now.setter
    def now(self, value: datetime) -> None:
        if value.tzinfo is None:
            raise ValueError("FakeStrava.now needs an aware datetime")
        with self._lock:
            self._now = value.astimezone(UTC)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=seconds)

    def advance_window(self) -> datetime:
        """Jump to the start of the next 15-minute window; answers the new `now`."""
        with self._lock:
            now = self._now
            self._now = now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0) + timedelta(
                minutes=15)
            return self._now

    def advance_day(self) -> datetime:
        """Jump to the next midnight UTC; answers the new `now`."""
        with self._lock:
            now = self._now
            self._now = now.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
            return self._now

    def _epoch(self) -> int:
        return int(self.now.timestamp())

    # ---- identity and tokens ---------------------------------------------------------------------
    def add_athlete(self, firstname: str, lastname: str = "", *, athlete_id: int | None = None,
                    timezone: str = "Europe/London", default_sport: str = "Ride") -> FakeAthlete:
        with self._lock:
            aid = athlete_id or next(self._ids)
            athlete = FakeAthlete(aid, firstname, lastname, timezone, default_sport)
            self.athletes[aid] = athlete
            return athlete

    def issue_code(self, athlete_id: int | None = None, scope: str = "read,activity:write,activity:read_all") -> str:
        """An authorization code as if the athlete had approved in the browser."""
        with self._lock:
            code = secrets.token_hex(20)
            self._codes[code] = (athlete_id or self.authorizing_athlete, frozenset(scope.split(",")))
            return code

    def expire_access_tokens(self, athlete_id: int | None = None) -> None:
        with self._lock:
            now = self._epoch()
            for grant in self._grants.values():
                if athlete_id is None or grant.athlete_id == athlete_id:
                    grant.expires_at = now - 1
            for token, (aid, scopes, _) in list(self._access.items()):
                if athlete_id is None or aid == athlete_id:
                    self._access[token] = (aid, scopes, now - 1)

    def revoke(self, athlete_id: int) -> None:
        with self._lock:
            self._grants.pop(athlete_id, None)
            self._access = {t: v for t, v in self._access.items() if v[0] != athlete_id}
            self._refresh = {t: a for t, a in self._refresh.items() if a != athlete_id}

    def current_tokens(self, athlete_id: int | None = None) -> tuple[str, str, int] | None:
        """(access, refresh, expires_at) Strava currently considers current, for assertions."""
        with self._lock:
            grant = self._grants.get(athlete_id or self.athlete.id)
            return None if grant is None else (grant.access_token, grant.refresh_token, grant.expires_at)

    def token_is_valid(self, access_token: str) -> bool:
        with self._lock:
            entry = self._access.get(access_token)
            return entry is not None and entry[2] > self._epoch()

    # ---- activities ------------------------------------------------------------------------------
    def add_activity(self, athlete_id: int | None = None, *, name: str, sport_type: str, start_date: datetime,
                     elapsed_time: int = 1800, manual: bool = False, external_id: str | None = None,
                     distance: float | None = None, description: str | None = None) -> FakeActivity:
        """Seed an activity that already exists on Strava (e.g. recorded by a watch)."""
        with self._lock:
            athlete = self.athletes[athlete_id or self.athlete.id]
            start = start_date.astimezone(UTC)
            act = FakeActivity(next(self._ids), athlete.id, name, sport_type, start,
                               start.astimezone(ZoneInfo(athlete.timezone)).replace(tzinfo=None),
                               elapsed_time, distance, description, external_id=external_id, manual=manual)
            self._activities[act.id] = act
            return replace(act)

    def delete_activity(self, activity_id: int) -> None:
        with self._lock:
            self._activities[activity_id].deleted = True

    def activities(self, athlete_id: int | None = None, *, include_deleted: bool = False) -> list[FakeActivity]:
        with self._lock:
            return [replace(a) for a in sorted(self._activities.values(), key=lambda a: a.id)
                    if (athlete_id is None or a.athlete_id == athlete_id) and (include_deleted or not a.deleted)]

    def activity(self, activity_id: int | str) -> FakeActivity:
        with self._lock:
            return replace(self._activities[int(activity_id)])

    def uploads(self) -> list[FakeUpload]:
        with self._lock:
            return [replace(u) for u in sorted(self._uploads.values(), key=lambda u: u.id)]

    def fail_next_processing(self, message: str = "Improperly formatted data.") -> None:
        with self._lock:
            self._processing_errors.append(message)

    def take_spec_violations(self) -> list[Violation]:
        """The requests outside Strava's spec so far (then forgotten): for tests that send them on purpose."""
        with self._lock:
            taken, self.spec_violations = self.spec_violations, []
            return taken

    # ---- limits, faults, counters ----------------------------------------------------------------
    def set_limits(self, overall: tuple[int, int] | None = None, read: tuple[int, int] | None = None) -> None:
        with self._lock:
            if overall:
                self.limits["overall"] = list(overall)
            if read:
                self.limits["read"] = list(read)

    def usage(self) -> dict[str, tuple[int, int]]:
        with self._lock:
            self._roll()
            return {k: (v[0], v[1]) for k, v in self._usage.items()}

    def fail_next(self, count: int = 1, status: int | None = 500, *, path_prefix: str = "/api/v3/",
                  method: str | None = None, after_apply: bool = False, delay: float = 0.0) -> None:
        with self._lock:
            self._faults.append(_Fault(count, status, path_prefix, method and method.upper(),
                                       after_apply or status is None, delay))

    def hold_next(self, count: int = 1, *, seconds: float, path_prefix: str = "/api/v3/",
                  method: str | None = None) -> None:
        """The request takes effect but its answer is held `seconds` (beyond a read timeout: a timeout)."""
        self.fail_next(count, None, path_prefix=path_prefix, method=method, after_apply=True, delay=seconds)

    @property
    def calls(self) -> Counter[str]:
        with self._lock:
            return Counter(self._calls)

    def call_count(self, method: str, path: str) -> int:
        with self._lock:
            return self._calls[f"{method.upper()} {_route_key(path)}"]

    @property
    def api_calls(self) -> int:
        with self._lock:
            return sum(n for k, n in self._calls.items() if k.split(" ", 1)[1].startswith("/api/v3/"))

    def reset_counters(self) -> None:
        with self._lock:
            self._calls.clear()
            self.requests_log.clear()
            self.refresh_count = 0
            self.rate_limited_count = 0

    def _roll(self) -> None:
        now = self.now
        key = (now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0), now.date())
        if self._window is None:
            self._window = key
        if key[1] != self._window[1]:
            self._usage = {"overall": [0, 0], "read": [0, 0]}
        elif key[0] != self._window[0]:
            for v in self._usage.values():
                v[0] = 0
        self._window = key

    def _rate_headers(self) -> dict[str, str]:
        lim, use = self.limits, self._usage
        return {
            "X-RateLimit-Limit": f"{lim['overall'][0]},{lim['overall'][1]}",
            "X-RateLimit-Usage": f"{use['overall'][0]},{use['overall'][1]}",
            "X-ReadRateLimit-Limit": f"{lim['read'][0]},{lim['read'][1]}",
            "X-ReadRateLimit-Usage": f"{use['read'][0]},{use['read'][1]}",
        }

    def _spend(self, kinds: tuple[str, ...]) -> str | None:
        """Count one request; the kind whose limit refused it, or None."""
        self._roll()
        for kind in kinds:
            (u15, uday), (l15, lday) = self._usage[kind], self.limits[kind]
            if u15 >= l15 or uday >= lday:
                for k in kinds:
                    self._usage[k][1] += 1  # refused requests still count toward the daily limit
                return kind
        for kind in kinds:
            self._usage[kind][0] += 1
            self._usage[kind][1] += 1
        return None

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        for fault in self._faults:
            if fault.remaining > 0 and path.startswith(fault.path_prefix) and fault.method in (None, method):
                fault.remaining -= 1
                self._faults = [f for f in self._faults if f.remaining > 0]
                return fault
        return None

    # ---- HTTP ------------------------------------------------------------------------------------
    def handle(self, method: str, raw_path: str, headers: Mapping[str, str], body: bytes) -> _Answer:
        url = urlsplit(raw_path)
        path = url.path.rstrip("/") or "/"
        query = {k: v[-1] for k, v in parse_qs(url.query, keep_blank_values=True).items()}
        with self._lock:
            self._calls[f"{method} {_route_key(path)}"] += 1
            is_api = path.startswith("/api/v3/")
            if is_api:
                kinds = ("overall",) if (method, path) in WRITE_ENDPOINTS else ("overall", "read")
                refused = self._spend(kinds)
                if refused:
                    self.rate_limited_count += 1
                    self.requests_log.append((method, path, 429))
                    body_429 = {"message": "Rate Limit Exceeded",
                                "errors": [{"resource": "Application", "field": f"{refused} rate limit",
                                            "code": "exceeded"}]}
                    return _Answer(429, json.dumps(body_429).encode(), self._rate_headers())
            if is_api and self.spec is not None:
                problems = self.spec.check(method, path, parse_qs(url.query, keep_blank_values=True),
                                           headers.get("Content-Type") or "", body)
                if problems:  # outside Strava's official spec: 400 in the spec's words, and the test fails
                    self.spec_violations.extend(problems)
                    self.requests_log.append((method, path, 400))
                    errors = [{"resource": "Spec", "field": v.param, "code": v.problem} for v in problems]
                    return _Answer(400, json.dumps({"message": "Bad Request", "errors": errors}).encode(),
                                   self._rate_headers())
            fault = self._take_fault(method, path)
            extra = self._rate_headers() if is_api else {}
            if fault and not fault.after_apply:
                answer = _Answer(fault.status or 500, json.dumps({"message": "Internal Server Error"}).encode(),
                                 extra, fault.delay)
            else:
                try:
                    status, payload, more = self._route(method, path, query, headers, body)
                except _HttpError as exc:
                    status, payload, more = exc.status, exc.body, {}
                if is_api:
                    extra = self._rate_headers()
                extra.update(more)
                data = b"" if payload is None else json.dumps(payload).encode()
                answer = _Answer(status, data, extra)
                if fault:
                    answer.delay = fault.delay
                    if fault.status is not None:
                        answer.status = fault.status
                        answer.body = json.dumps({"message": "Internal Server Error"}).encode()
            self.requests_log.append((method, path, answer.status))
            return answer

    def _route(self, method: str, path: str, query: dict[str, str], headers: Mapping[str, str],
               body: bytes) -> tuple[int, Any, dict[str, str]]:
        if (method, path) == ("GET", "/oauth/authorize"):
            return self._authorize(query)
        if (method, path) == ("POST", "/oauth/token"):
            return 200, self._token(_form(headers, body, query)), {}
        if (method, path) == ("POST", "/oauth/deauthorize"):
            return 200, self._deauthorize(_form(headers, body, query)), {}
        if not path.startswith("/api/v3/"):
            raise _HttpError(404, "Record Not Found", [("resource", "path", "invalid")])
        athlete, scopes = self._authenticate(headers, query)
        write = "activity:write" in scopes
        read = bool(scopes & {"activity:read", "activity:read_all"})
        if (method, path) == ("GET", "/api/v3/athlete"):
            return 200, athlete.summary(), {}
        if (method, path) == ("POST", "/api/v3/uploads"):
            self._need(write, "activity:write_permission")
            return 201, self._upload(athlete, headers, body), {}
        if method == "GET" and (m := re.fullmatch(r"/api/v3/uploads/(\d+)", path)):
            self._need(write or read, "activity:write_permission")
            return 200, self._upload_status(athlete, int(m.group(1))), {}
        if (method, path) == ("POST", "/api/v3/activities"):
            self._need(write, "activity:write_permission")
            return 201, self._create_activity(athlete, _form(headers, body, query)), {}
        if (method, path) == ("GET", "/api/v3/athlete/activities"):
            self._need(read, "activity:read_permission")
            return 200, self._list(athlete, query), {}
        if method == "GET" and (m := re.fullmatch(r"/api/v3/activities/(\d+)", path)):
            self._need(read, "activity:read_permission")
            act = self._activities.get(int(m.group(1)))
            if act is None or act.athlete_id != athlete.id or act.deleted:
                raise _HttpError(404, "Record Not Found", [("Activity", "id", "not found")])
            return 200, {**act.summary(athlete.timezone, self._hides(athlete)), "description": act.description}, {}
        if method == "PUT" and (m := re.fullmatch(r"/api/v3/activities/(\d+)", path)):
            self._need(write, "activity:write_permission")
            return 200, self._update_activity(athlete, int(m.group(1)), body), {}
        raise _HttpError(404, "Record Not Found", [("resource", "path", "invalid")])

    @staticmethod
    def _need(ok: bool, permission: str) -> None:
        if not ok:
            raise _HttpError(401, "Authorization Error", [("AccessToken", permission, "missing")])

    def _authenticate(self, headers: Mapping[str, str], query: dict[str, str]) -> tuple[FakeAthlete, frozenset[str]]:
        auth = headers.get("Authorization") or ""
        token = auth[7:].strip() if auth.lower().startswith("bearer ") else query.get("access_token", "")
        if not token:
            raise _HttpError(401, "Authorization Error", [("Application", "", "invalid")])
        entry = self._access.get(token)
        if entry is None or entry[2] <= self._epoch():
            raise _HttpError(401, "Authorization Error", [("Athlete", "access_token", "invalid")])
        return self.athletes[entry[0]], entry[1]

    # ---- OAuth -----------------------------------------------------------------------------------
    def _authorize(self, q: dict[str, str]) -> tuple[int, Any, dict[str, str]]:
        if q.get("client_id") != self.client_id:
            raise _bad("Application", "client_id")
        redirect = q.get("redirect_uri", "")
        parts = urlsplit(redirect)
        if parts.scheme not in ("http", "https") or parts.hostname not in self.callback_domains:
            raise _bad("Application", "redirect_uri")
        if q.get("response_type") != "code":
            raise _bad("Application", "response_type")
        asked = [s for s in q.get("scope", "read").split(",") if s]
        if not set(asked) <= ALL_SCOPES:
            raise _bad("Authorize", "scope")
        answer: dict[str, str] = {"state": q.get("state", "")}
        if self.authorize_mode == "deny":
            answer["error"] = "access_denied"
        else:
            granted = self.granted_scope if self.granted_scope is not None else ",".join(asked)
            scopes = ["read", *(s for s in granted.split(",") if s and s != "read")]  # Strava always adds read
            code = secrets.token_hex(20)
            self._codes[code] = (self.authorizing_athlete, frozenset(scopes))
            answer.update(code=code, scope=",".join(scopes))
        sep = "&" if parts.query else ""
        location = urlunsplit(parts._replace(query=parts.query + sep + urlencode(answer)))
        return 302, None, {"Location": location}

    def _new_grant(self, athlete_id: int, scopes: frozenset[str]) -> _Grant:
        old = self._grants.get(athlete_id)
        if old:
            self._refresh.pop(old.refresh_token, None)
        grant = _Grant(athlete_id, scopes, secrets.token_hex(20), secrets.token_hex(20),
                       self._epoch() + self.token_lifetime)
        self._grants[athlete_id] = grant
        self._access[grant.access_token] = (athlete_id, scopes, grant.expires_at)
        self._refresh[grant.refresh_token] = athlete_id
        return grant

    def _token_answer(self, grant: _Grant) -> dict[str, Any]:
        return {"token_type": "Bearer", "access_token": grant.access_token, "refresh_token": grant.refresh_token,
                "expires_at": grant.expires_at, "expires_in": max(0, grant.expires_at - self._epoch())}

    def _token(self, f: dict[str, str]) -> dict[str, Any]:
        if f.get("grant_type") == "refresh_token":
            self.refresh_count += 1
        if f.get("client_id") != self.client_id:
            raise _bad("Application", "client_id")
        if f.get("client_secret") != self.client_secret:
            raise _HttpError(401, "Authorization Error", [("Application", "client_secret", "invalid")])
        grant_type = f.get("grant_type")
        if grant_type == "authorization_code":
            entry = self._codes.pop(f.get("code", ""), None)
            if entry is None:
                raise _bad("AuthorizationCode", "code")
            if self.athlete_limit_reached:  # Strava's answer for an athlete beyond the app's capacity
                raise _HttpError(403, "Forbidden", [("Athlete", "limit", "Limit of connected athletes exceeded")])
            grant = self._new_grant(*entry)
            return {**self._token_answer(grant), "athlete": self.athletes[entry[0]].summary()}
        if grant_type == "refresh_token":
            athlete_id = self._refresh.get(f.get("refresh_token", ""))
            if athlete_id is None:
                raise _bad("RefreshToken", "refresh_token")
            grant = self._grants[athlete_id]
            if grant.expires_at - self._epoch() > ONE_HOUR:
                return self._token_answer(grant)  # the 1-hour rule: same tokens
            return self._token_answer(self._new_grant(athlete_id, grant.scopes))
        raise _bad("Application", "grant_type")

    def _deauthorize(self, f: dict[str, str]) -> dict[str, Any]:
        entry = self._access.get(f.get("access_token", ""))
        if entry is None:
            raise _HttpError(401, "Authorization Error", [("Athlete", "access_token", "invalid")])
        self.revoke(entry[0])
        return {"access_token": f["access_token"]}

    # ---- uploads and activities ------------------------------------------------------------------
    def _upload(self, athlete: FakeAthlete, headers: Mapping[str, str], body: bytes) -> dict[str, Any]:
        fields, files = _multipart(body, headers.get("Content-Type") or "")
        if "file" not in files:
            raise _bad("Upload", "file", "not a file")
        data_type = fields.get("data_type", "").lower()
        if data_type not in DATA_TYPES:
            raise _bad("Upload", "data_type")
        sport = fields.get("sport_type") or fields.get("activity_type") or ""
        if sport and sport not in SPORT_TYPES:
            sport = next((s for s in SPORT_TYPES if s.lower() == sport.lower()), "")
            if not sport:
                raise _bad("Upload", "sport_type")
        filename, data = files["file"]
        external_id = fields.get("external_id") or None
        upload = FakeUpload(next(self._ids), athlete.id, filename, data_type, external_id or filename, None, None,
                            self.processing_polls, fields=fields)
        try:
            act = self._process(athlete, upload, data, fields, sport or athlete.default_sport)
            upload.activity_id = act.id
        except ValueError as exc:
            upload.error = str(exc)
        self._uploads[upload.id] = upload
        return {"id": upload.id, "id_str": str(upload.id), "external_id": upload.external_id, "error": None,
                "status": STATUS_PROCESSING, "activity_id": None}

    def _process(self, athlete: FakeAthlete, upload: FakeUpload, data: bytes, fields: dict[str, str],
                 sport: str) -> FakeActivity:
        if self._processing_errors:
            raise ValueError(self._processing_errors.pop(0))  # verbatim: the test chose Strava's words
        name = upload.filename
        if upload.data_type.endswith(".gz"):
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError) as exc:
                raise ValueError(f"{name}: Error reading the gzipped file.") from exc
        elif data[:2] == b"\x1f\x8b":
            raise ValueError(f"{name}: Improperly formatted data (gzipped data sent as {upload.data_type}).")
        if not upload.data_type.startswith("gpx"):
            raise ValueError(f"{name}: the fake Strava reads only GPX files.")
        info = _parse_gpx(data, name)
        for act in self._activities.values():
            if act.athlete_id != athlete.id or act.deleted or act.manual:
                continue
            same_start = int(act.start_date.timestamp()) == int(info.start.timestamp())
            if same_start or (fields.get("external_id") and act.external_id == fields.get("external_id")):
                raise ValueError(f"{name} duplicate of activity {act.id}")
        act = FakeActivity(
            next(self._ids), athlete.id, fields.get("name") or info.name or f"{sport} activity", sport,
            info.start, info.start.astimezone(ZoneInfo(athlete.timezone)).replace(tzinfo=None),
            int((info.end - info.start).total_seconds()), info.distance, fields.get("description") or None,
            _truthy(fields.get("trainer")), _truthy(fields.get("commute")), upload.external_id, upload.id,
            manual=False, points=info.points, has_heart_rate=info.has_heart_rate, data_type=upload.data_type,
            gpx=data,
        )
        self._activities[act.id] = act
        return act

    def _upload_status(self, athlete: FakeAthlete, upload_id: int) -> dict[str, Any]:
        upload = self._uploads.get(upload_id)
        if upload is None or upload.athlete_id != athlete.id:
            raise _HttpError(404, "Record Not Found", [("Upload", "id", "not found")])
        upload.polls += 1
        answer: dict[str, Any] = {"id": upload.id, "id_str": str(upload.id), "external_id": upload.external_id,
                                  "error": None, "status": STATUS_PROCESSING, "activity_id": None}
        if upload.polls <= upload.polls_needed:
            return answer
        if upload.error:
            return {**answer, "error": upload.error, "status": STATUS_ERROR}
        act = self._activities.get(upload.activity_id or 0)
        if act is None or act.deleted:
            return {**answer, "status": STATUS_DELETED}
        return {**answer, "status": STATUS_READY, "activity_id": act.id}

    def _create_activity(self, athlete: FakeAthlete, f: dict[str, str]) -> dict[str, Any]:
        sport = f.get("sport_type") or f.get("type") or ""
        missing = [k for k in ("name", "start_date_local", "elapsed_time") if not f.get(k)]
        if not sport:
            missing.append("sport_type")
        if missing:
            raise _HttpError(400, "Bad Request", [("Activity", k, "missing") for k in missing])
        if sport not in SPORT_TYPES:
            raise _bad("Activity", "sport_type")
        try:
            local = datetime.fromisoformat(f["start_date_local"].replace("Z", "+00:00")).replace(tzinfo=None)
        except ValueError as exc:
            raise _bad("Activity", "start_date_local") from exc
        try:
            elapsed = int(float(f["elapsed_time"]))
            distance = float(f["distance"]) if f.get("distance") else None
        except ValueError as exc:
            raise _bad("Activity", "elapsed_time or distance") from exc
        start = local.replace(tzinfo=ZoneInfo(athlete.timezone)).astimezone(UTC)
        act = FakeActivity(next(self._ids), athlete.id, f["name"], sport, start, local, elapsed, distance,
                           f.get("description") or None, _truthy(f.get("trainer")), _truthy(f.get("commute")),
                           manual=True)
        self._activities[act.id] = act
        return {**act.summary(athlete.timezone, self._hides(athlete)), "description": act.description}

    def _update_activity(self, athlete: FakeAthlete, activity_id: int, body: bytes) -> dict[str, Any]:
        """PUT /activities/{id}: the updatable fields (name, description, sport_type, commute, trainer,
        hide_from_home, gear_id; "none" clears the gear)."""
        act = self._activities.get(activity_id)
        if act is None or act.athlete_id != athlete.id or act.deleted:
            raise _HttpError(404, "Record Not Found", [("Activity", "id", "not found")])
        try:
            data = json.loads(body or b"{}")
        except ValueError as exc:
            raise _HttpError(400, "Bad Request", [("Request", "body", "invalid json")]) from exc
        if not isinstance(data, dict):
            raise _bad("Activity", "body")
        if "sport_type" in data and data["sport_type"] not in SPORT_TYPES:
            raise _bad("Activity", "sport_type")
        for key in ("name", "description", "sport_type"):
            if key in data:
                setattr(act, key, data[key])
        for key in ("commute", "trainer", "hide_from_home"):
            if key in data:
                setattr(act, key, bool(data[key]))
        if "gear_id" in data:
            act.gear_id = None if data["gear_id"] in (None, "none") else str(data["gear_id"])
        act.updates += 1
        return {**act.summary(athlete.timezone, self._hides(athlete)), "description": act.description}

    def _list(self, athlete: FakeAthlete, q: dict[str, str]) -> list[dict[str, Any]]:
        try:
            before = int(q["before"]) if q.get("before") else None
            after = int(q["after"]) if q.get("after") else None
            page = max(1, int(q.get("page") or 1))
            per_page = min(200, max(1, int(q.get("per_page") or 30)))
        except ValueError as exc:
            raise _bad("Activity", "before/after/page/per_page") from exc
        acts = [a for a in self._activities.values()
                if a.athlete_id == athlete.id and not a.deleted
                and (before is None or a.start_date.timestamp() < before)
                and (after is None or a.start_date.timestamp() > after)]
        acts.sort(key=lambda a: (a.start_date, a.id), reverse=after is None)
        chosen = acts[(page - 1) * per_page: page * per_page]
        return [a.summary(athlete.timezone, self._hides(athlete)) for a in chosen]

    def _hides(self, athlete: FakeAthlete) -> bool:
        """Does Strava hide this athlete's start times in its answers? (The filters still use the real start.)"""
        return self.hide_start_times or athlete.hide_start_times


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    fake: FakeStrava

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        with self._open_lock:
            for sock in list(self._open):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the client's pooled session expects
    disable_nagle_algorithm = True  # headers and body go out in two writes: without this each answer waits ~40 ms
    timeout = 300  # idle keep-alive connections end on their own (stop() closes the rest)
    server: _Server

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        fake = self.server.fake
        try:
            answer = fake.handle(self.command, self.path, self.headers, body)  # type: ignore[arg-type]
        except Exception as exc:  # a bug in the fake: answer 500 rather than hang the client
            answer = _Answer(500, json.dumps({"message": f"fake error: {exc!r}"}).encode())
        if answer.delay and fake._stopping.wait(answer.delay):
            self.close_connection = True
            return
        try:
            self.send_response(answer.status)
            for key, value in answer.headers.items():
                self.send_header(key, value)
            if answer.body:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            self.wfile.write(answer.body)
        except OSError:  # the client gave up (read timeout) before the held answer
            self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:  # quiet: pytest output stays readable
        pass
