"""Write the synthetic Runkeeper/Zapier data set the tests run on when `../shared/data` is absent.

Every file has a shape the real data shows (see tests/data/synthetic/README.md): both CSV header
generations, kilometres and miles, manual rows, pauses as new `<trkseg>`s, heart rate in GPX and on
its own timestamps in a Zapier payload, a zip with a top folder and `__MACOSX/` junk, a big payload.
Nothing is copied from real data: tracks are random walks from fixed seeds, so every run writes the
same bytes.

Standard library only, and it imports nothing from the app or its tests, so it stays a fixture maker:

    python scripts/make_synthetic_data.py            # (re)write tests/data/synthetic/
    python scripts/make_synthetic_data.py --check    # exit 1 if the files there differ from a fresh run

Tests can import it (by file path) for the payloads it does not write to disk: `big_payload(points)`.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shutil
import struct
import sys
import tempfile
import uuid
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from pathlib import Path
from typing import NamedTuple

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "tests" / "data" / "synthetic"
SEED = 20160301
MAX_WRITTEN_PAYLOAD = 1 << 20  # payload-big.json is only written when smaller than this (it never is)

OLD_HEADER = ("Date", "Type", "Route Name", "Distance (km)", "Duration", "Average Pace", "Average Speed (km/h)",
              "Calories Burned", "Climb (m)", "Average Heart Rate (bpm)", "Notes", "GPX File")
NEW_HEADER = ("Activity Id", "Date", "Type", "Route Name", "Distance (mi)", "Duration", "Average Pace",
              "Average Speed (mph)", "Calories Burned", "Climb (ft)", "Average Heart Rate (bpm)", "Friend's Tagged",
              "Notes", "GPX File")
ZAPIER_KEYS = ("activityType", "activityStartTimeIso", "activityNotes", "activityPathLatitude",
               "activityPathLongitude", "activityPathAltitude", "activityPathTimestamp", "activityPathType",
               "activityHeartRateTimestamp", "activityHeartRateBpm")  # what the user's existing Zap sends
GPX_NS = ('  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"\n'
          '  xmlns="http://www.topografix.com/GPX/1/1"\n'
          '  xsi:schemaLocation="http://www.topografix.com/GPX/1/1 http://www.topografix.com/GPX/1/1/gpx.xsd"\n'
          '  xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v1">\n')
CREATOR_2016 = "RunKeeper - http://www.runkeeper.com"
CREATOR_2019 = "Runkeeper - http://www.runkeeper.com"
ZIP_TOP = "01-runkeeper-data-export-2019-07-08-090512"
METRES_PER_MILE = 1609.344
METRES_PER_FOOT = 0.3048
KCAL_PER_KM = {"Running": 70.0, "Walking": 55.0, "Cycling": 28.0}  # a 70 kg athlete, roughly
KCAL_PER_MIN = {"Swimming": 9.0, "Strength Training": 6.0}


class Spec(NamedTuple):  # not a dataclass: those need the module in sys.modules, which loading by path skips
    """One export activity: the CSV row's facts, and how to draw its track when it has one."""

    local: datetime  # the CSV's wall clock
    utc_offset: float  # hours, that day (London: 0 or +1; Hong Kong: +8)
    type: str
    moving: int  # seconds: the CSV's Duration (Runkeeper's moving time)
    speed: float  # m/s while moving
    step: tuple[int, int] = (4, 9)  # seconds between GPS fixes, drawn uniformly
    gps: bool = True
    pauses: tuple[tuple[int, int], ...] = ()  # (moving seconds when paused, pause length): a <trkseg> after each
    heart_rate: bool = False  # gpxtpx:hr on every point, and the CSV's average
    notes: str = ""
    route: str = ""
    origin: tuple[float, float, float] = (51.5308, -0.1238, 25.0)  # lat, lon, ele of the start (London)

    @property
    def start_utc(self) -> datetime:
        return (self.local - timedelta(hours=self.utc_offset)).replace(tzinfo=UTC)


class Fix(NamedTuple):
    """One GPS fix of a drawn track."""

    time: datetime  # UTC, whole seconds
    lat: float
    lon: float
    ele: float
    hr: int | None = None


LONDON_PARK = (51.5605, -0.1635, 95.0)
HONG_KONG = (22.3834, 114.2042, 8.0)
TOLO = (22.4190, 114.2100, 5.0)
PEAK = (22.2705, 114.1760, 140.0)

# Newest first, as Runkeeper writes the CSV. London athlete; clocks went forward on 2016-03-27.
ACTIVITIES_2016: tuple[Spec, ...] = (
    Spec(datetime(2016, 4, 10, 9, 15, 3), 1, "Cycling", 72 * 60 + 10, 6.4, step=(8, 14), route="Thames Path"),
    Spec(datetime(2016, 4, 3, 8, 2, 44), 1, "Running", 41 * 60 + 13, 3.2, heart_rate=True, origin=LONDON_PARK),
    Spec(datetime(2016, 3, 26, 10, 30, 0), 0, "Walking", 48 * 60 + 20, 1.4, step=(10, 16)),
    Spec(datetime(2016, 3, 20, 7, 45, 12), 0, "Walking", 72 * 60 + 30, 1.3, step=(10, 16)),
    Spec(datetime(2016, 3, 13, 14, 20, 31), 0, "Walking", 55 * 60 + 2, 1.35, step=(10, 16), route="Canal loop"),
    Spec(datetime(2016, 3, 6, 18, 30, 0), 0, "Running", 30 * 60, 5000 / 1800, gps=False,
         notes="Treadmill at the gym\n6 x 400 m"),
    Spec(datetime(2016, 3, 1, 7, 0, 41), 0, "Running", 24 * 60 + 18, 3.3,
         notes="Easy run before work, café after ✓"),
    Spec(datetime(2016, 2, 21, 10, 5, 17), 0, "Cycling", 62 * 60 + 45, 6.0, step=(8, 14)),
    Spec(datetime(2016, 2, 7, 8, 12, 55), 0, "Running", 65 * 60 + 20, 3.05, origin=LONDON_PARK,
         pauses=((14 * 60, 41), (31 * 60 + 7, 322), (50 * 60, 95)), notes="Long run, three stops at the lights"),
    Spec(datetime(2016, 1, 24, 9, 30, 20), 0, "Running", 35 * 60 + 7, 3.1),
    Spec(datetime(2016, 1, 17, 12, 0, 0), 0, "Swimming", 35 * 60, 1500 / 2100, gps=False, notes="Pool, 60 lengths"),
    Spec(datetime(2016, 1, 10, 11, 11, 11), 0, "Running", 52 * 60 + 40, 3.15, pauses=((25 * 60, 185),),
         notes="Stopped to tie a shoelace", origin=LONDON_PARK),  # the oldest, like the real export's first run
)
UNLISTED_2016 = "2016-04-17-0529.gpx"  # like the real export's GPSBabel file: waypoints only, not in the CSV

# Hong Kong athlete (UTC+8): the CSV in local time, the GPX files in UTC.
ACTIVITIES_2019: tuple[Spec, ...] = (
    Spec(datetime(2019, 7, 6, 6, 45, 10), 8, "Running", 46 * 60 + 30, 2.9, step=(1, 5), pauses=((22 * 60, 140),),
         notes="Bowen Road, water stop at the fountain", origin=PEAK),
    Spec(datetime(2019, 7, 4, 19, 2, 33), 8, "Cycling", 70 * 60 + 5, 6.2, step=(2, 6), route="Tolo Harbour",
         origin=TOLO),
    Spec(datetime(2019, 7, 3, 12, 30, 0), 8, "Strength Training", 45 * 60, 0.0, gps=False, notes="Gym: legs, core"),
    Spec(datetime(2019, 7, 1, 18, 20, 12), 8, "Running", 51 * 60 + 22, 3.25, step=(1, 5), origin=HONG_KONG),
)


# ---- tracks --------------------------------------------------------------------------------------------------


def _rng(name: str) -> random.Random:
    return random.Random(f"{SEED}-{name}")  # a str seed is hashed with SHA-512: the same in every process


def _metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance (haversine)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6_371_000 * math.asin(math.sqrt(h))


def _walk(rng: random.Random, origin: tuple[float, float, float], offsets: list[float],
          speed: float) -> Iterator[tuple[float, float, float]]:
    """(lat, lon, ele) at each moving-time offset: a noisy loop that comes back near where it began."""
    lat, lon, ele = origin
    total = max(offsets[-1], 1.0)
    heading = rng.uniform(0, 2 * math.pi)
    hills = rng.uniform(4, 12)
    previous = 0.0
    for t in offsets:
        dt = t - previous
        previous = t
        turn = heading + 2 * math.pi * t / total + rng.gauss(0, 0.15)
        d = speed * dt * rng.uniform(0.85, 1.15)
        lat += d * math.cos(turn) / 111_320
        lon += d * math.sin(turn) / (111_320 * math.cos(math.radians(lat)))
        ele = origin[2] + hills * math.sin(2 * math.pi * t / total * 3) + rng.gauss(0, 0.3)
        yield lat, lon, ele


def _draw(spec: Spec, name: str) -> list[list[Fix]]:
    """The track's segments: fixes every `step` seconds of moving time, a new segment after each pause."""
    rng = _rng(name)
    moving = [0]
    while moving[-1] < spec.moving:
        moving.append(min(moving[-1] + rng.randint(*spec.step), spec.moving))
    moving = sorted({*moving, *(at for at, _ in spec.pauses)})
    hr = 118.0
    segments: list[list[Fix]] = [[]]
    for t, (lat, lon, ele) in zip(moving, _walk(rng, spec.origin, [float(m) for m in moving], spec.speed),
                                  strict=True):
        paused = [length for at, length in spec.pauses if t > at]
        if len(paused) == len(segments):  # the first fix after a resume
            segments.append([])
        elapsed = t + sum(paused)
        bpm = None
        if spec.heart_rate:
            hr = min(178.0, max(95.0, hr + rng.gauss(0.35 if hr < 150 else -0.2, 1.5)))
            bpm = round(hr)
        segments[-1].append(Fix(spec.start_utc + timedelta(seconds=elapsed), lat, lon, ele, bpm))
    return segments


def _distance(segments: list[list[Fix]]) -> float:
    return sum(_metres((a.lat, a.lon), (b.lat, b.lon)) for seg in segments for a, b in pairwise(seg))


def _climb(segments: list[list[Fix]]) -> float:
    return sum(max(0.0, b.ele - a.ele) for seg in segments for a, b in pairwise(seg))


# ---- Runkeeper's formats -------------------------------------------------------------------------------------


def _z(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def gpx_name(spec: Spec) -> str:
    """`<name>` as Runkeeper writes it in a US locale: `Running 3/1/16 7:00 am`."""
    t = spec.local
    return f"{spec.type} {t.month}/{t.day}/{t:%y} {(t.hour % 12) or 12}:{t:%M} {'am' if t.hour < 12 else 'pm'}"


def gpx_file_name(spec: Spec, *, seconds: bool) -> str:
    """`2016-03-01-0700.gpx` (older exports) or `2019-07-01-182012.gpx` (later ones), from the local time."""
    return spec.local.strftime("%Y-%m-%d-%H%M%S.gpx" if seconds else "%Y-%m-%d-%H%M.gpx")


def runkeeper_gpx(spec: Spec, segments: list[list[Fix]], creator: str) -> bytes:
    """A GPX 1.1 file laid out like Runkeeper's: CDATA name, no <type>/<desc>, UTC times, one <trkseg> per stretch."""
    out = ['<?xml version="1.0" encoding="UTF-8"?>\n<gpx\n  version="1.1"\n', f'  creator="{creator}"\n', GPX_NS,
           f"<trk>\n  <name><![CDATA[{gpx_name(spec)}]]></name>\n  <time>{_z(segments[0][0].time)}</time>\n"]
    for seg in segments:
        out.append("<trkseg>\n")
        for f in seg:
            hr = ("" if f.hr is None else "<extensions><gpxtpx:TrackPointExtension>"
                  f"<gpxtpx:hr>{f.hr}</gpxtpx:hr></gpxtpx:TrackPointExtension></extensions>")
            out.append(f'<trkpt lat="{f.lat:.9f}" lon="{f.lon:.9f}"><ele>{f.ele:.1f}</ele>'
                       f"<time>{_z(f.time)}</time>{hr}</trkpt>\n")
        out.append("</trkseg>\n")
    out.append("</trk>\n</gpx>\n")
    return "".join(out).encode("utf-8")


def gpsbabel_waypoints(rng: random.Random, count: int = 40) -> bytes:
    """A GPX 1.0 file of waypoints only, as GPSBabel writes it: no track, so nothing Strava could upload."""
    wpts = []
    for i in range(count):
        lat, lon = round(rng.uniform(-5, 0), 9) if i % 3 else 0.0, round(rng.uniform(0, 9), 9) if i % 4 else 0.0
        wpts.append(f'  <wpt lat="{lat:.9f}" lon="{lon:.9f}">\n    <name>WPT{15600 + i}</name>\n'
                    f"    <cmt>WPT{15600 + i}</cmt>\n    <desc>WPT{15600 + i}</desc>\n  </wpt>\n")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            '<gpx version="1.0" creator="GPSBabel - http://www.gpsbabel.org" xmlns="http://www.topografix.com/GPX/1/0">\n'
            "  <time>2016-04-19T15:23:12.017Z</time>\n"
            '  <bounds minlat="-5.000000000" minlon="0.000000000" maxlat="0.000000000" maxlon="9.000000000"/>\n'
            + "".join(wpts) + "</gpx>\n").encode("utf-8")


def _clock(seconds: float) -> str:
    """`MM:SS` under an hour, else `H:MM:SS` (Runkeeper's Duration)."""
    s = round(seconds)
    return f"{s // 3600}:{s % 3600 // 60:02d}:{s % 60:02d}" if s >= 3600 else f"{s // 60}:{s % 60:02d}"


def _pace(seconds: float, distance_units: float) -> str:
    """Minutes per unit as `M:SS` (minutes may pass 59, as for swims)."""
    s = round(seconds / distance_units)
    return f"{s // 60}:{s % 60:02d}"


def _row(spec: Spec, segments: list[list[Fix]] | None, gpx: str, *, miles: bool) -> dict[str, str]:
    """The CSV cells of one activity, in the athlete's units."""
    distance = _distance(segments) if segments else spec.speed * spec.moving
    unit = METRES_PER_MILE if miles else 1000.0
    units = round(distance / unit, 2)
    calories = KCAL_PER_KM.get(spec.type, 0.0) * distance / 1000 + KCAL_PER_MIN.get(spec.type, 0.0) * spec.moving / 60
    bpm = [f.hr for seg in segments or [] for f in seg if f.hr is not None]
    return {
        "Date": spec.local.strftime("%Y-%m-%d %H:%M:%S"),
        "Type": spec.type,
        "Route Name": spec.route,
        "Distance": f"{units:.2f}",
        "Duration": _clock(spec.moving),
        "Average Pace": _pace(spec.moving, units) if units else "",
        "Average Speed": f"{units / (spec.moving / 3600):.2f}" if units else "",
        "Calories Burned": f"{round(calories):.1f}",
        "Climb": _climb_cell(segments, miles=miles),
        "Average Heart Rate (bpm)": str(round(sum(bpm) / len(bpm))) if bpm else "",
        "Notes": spec.notes,
        "GPX File": gpx,
    }


def _climb_cell(segments: list[list[Fix]] | None, *, miles: bool) -> str:
    """Feet with two decimals or whole metres; a manual row has `0` in km exports and nothing in mile ones."""
    if not segments:
        return "" if miles else "0"
    climb = _climb(segments)
    return f"{climb / METRES_PER_FOOT:.2f}" if miles else str(round(climb))


def _csv_line(cells: list[str], always_quoted: frozenset[int] = frozenset()) -> str:
    """One CSV record with minimal quoting, except columns the 2018+ header always quotes (`""` when empty)."""
    return ",".join(_quoted(c) if i in always_quoted or any(ch in c for ch in ',"\n\r') else c
                    for i, c in enumerate(cells)) + "\n"


def _quoted(cell: str) -> str:
    return '"' + cell.replace('"', '""') + '"'


def _measurements(rows: list[tuple[str, float]]) -> bytes:
    return ("Date,Type,Value\n" + "".join(f"{d} 00:00:00,weight,{w}\n" for d, w in rows)).encode()


def export_2016(folder: Path) -> list[Path]:
    """The old-header (km) export folder: CSV, one GPX per GPS row, a waypoints-only file the CSV omits."""
    folder.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    lines = [_csv_line(list(OLD_HEADER))]
    for spec in ACTIVITIES_2016:
        name = gpx_file_name(spec, seconds=False) if spec.gps else ""
        segments = _draw(spec, name) if spec.gps else None
        if segments:
            (folder / name).write_bytes(runkeeper_gpx(spec, segments, CREATOR_2016))
            written.append(folder / name)
        cells = _row(spec, segments, name, miles=False)
        lines.append(_csv_line(list(cells.values())))
    (folder / UNLISTED_2016).write_bytes(gpsbabel_waypoints(_rng(UNLISTED_2016)))
    (folder / "cardioActivities.csv").write_text("".join(lines), encoding="utf-8", newline="")
    (folder / "measurements.csv").write_bytes(_measurements([("2016-01-04", 72.4), ("2016-03-02", 71.8)]))
    return [*written, folder / UNLISTED_2016, folder / "cardioActivities.csv", folder / "measurements.csv"]


def _apple_double() -> bytes:
    """A macOS `._` resource-fork file (AppleDouble): header, a Finder-info entry, a quarantine attribute."""
    quarantine = b"com.apple.quarantine\x00q/0083;5d22f0a1;Safari;00000000-0000-4000-8000-000000000000\x00"
    finder = b"ATTR" + bytes(28)
    header = struct.pack(">II16sH", 0x00051607, 0x00020000, b"Mac OS X        ", 2)
    first = len(header) + 2 * 12
    entries = struct.pack(">III", 9, first, len(finder)) + struct.pack(">III", 2, first + len(finder), len(quarantine))
    return header + entries + finder + quarantine


def _zip_member(zf: zipfile.ZipFile, name: str, data: bytes | None, when: tuple[int, int, int, int, int, int]) -> None:
    """A member with a fixed time and Unix mode, so the archive's bytes are the same on every run."""
    info = zipfile.ZipInfo(name, date_time=when)
    info.create_system = 3
    if data is None:
        info.external_attr = (0o40700 << 16) | 0x10
        zf.writestr(info, b"")
    else:
        info.external_attr = 0o100644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, data)


def export_2019(path: Path) -> list[Path]:
    """The new-header (mi/ft/mph) zip: files inside a top folder, `__MACOSX/` junk beside them."""
    members: dict[str, bytes] = {}
    lines = [_csv_line(list(NEW_HEADER))]
    quoted = frozenset({NEW_HEADER.index("Friend's Tagged"), NEW_HEADER.index("Notes")})
    for spec in ACTIVITIES_2019:
        name = gpx_file_name(spec, seconds=True) if spec.gps else ""
        segments = _draw(spec, name) if spec.gps else None
        if segments:
            members[name] = runkeeper_gpx(spec, segments, CREATOR_2019)
        cells = _row(spec, segments, name, miles=True)
        activity_id = str(uuid.UUID(int=_rng(f"id-{spec.local}").getrandbits(128), version=4))
        ordered = [activity_id, *list(cells.values())[:10], "", *list(cells.values())[10:]]
        lines.append(_csv_line(ordered, quoted))
    members["measurements.csv"] = _measurements([("2019-03-02", 67.13167076), ("2016-09-21", 65.0)])
    members["cardioActivities.csv"] = "".join(lines).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    junk = _apple_double()
    with zipfile.ZipFile(path, "w") as zf:
        _zip_member(zf, f"{ZIP_TOP}/", None, (2019, 7, 8, 17, 5, 40))
        macosx_started = False
        for name, data in members.items():
            _zip_member(zf, f"{ZIP_TOP}/{name}", data, (2019, 7, 8, 9, 5, 12))
            if not macosx_started:
                _zip_member(zf, "__MACOSX/", None, (2019, 7, 9, 8, 21, 24))
                _zip_member(zf, f"__MACOSX/{ZIP_TOP}/", None, (2019, 7, 9, 8, 21, 24))
                macosx_started = True
            _zip_member(zf, f"__MACOSX/{ZIP_TOP}/._{name}", junk, (2019, 7, 8, 9, 5, 12))
        _zip_member(zf, f"__MACOSX/._{ZIP_TOP}", junk, (2019, 7, 8, 17, 5, 40))
    return [path]


# ---- Zapier payloads -----------------------------------------------------------------------------------------


def _seconds(t: float) -> str:
    """Runkeeper's path/heart-rate timestamp: seconds from the start, `0` or like `11.577`."""
    return f"{t:.3f}".rstrip("0").rstrip(".")


def _path_payload(name: str, points: int, *, start: datetime, activity_type: str, notes: str, step: tuple[int, int],
                  speed: float, origin: tuple[float, float, float], pause_len: float,
                  hr_step: tuple[int, int]) -> dict[str, str]:
    """A live activity as Zapier flattens it: parallel comma-separated columns, heart rate on its own clock.

    One pause halfway (a `pause` point, then a `resume` one `pause_len` seconds later), so the GPX has two
    segments; `distance`, `duration` (moving time) and `calories` as Runkeeper reports them.
    """
    if points < 4:
        raise ValueError("a path with a pause needs at least 4 points (start, pause, resume, end)")
    rng = _rng(name)
    phase = rng.randint(100, 999) / 1000  # recorders keep one sub-second phase after the first fix
    moving = [0.0]
    for _ in range(points - 1):
        moving.append(math.floor(moving[-1]) + rng.randint(*step) + phase)
    paused_at = points // 2 - 1
    kinds = ["start"] + ["gps"] * (points - 2) + ["end"]
    kinds[paused_at], kinds[paused_at + 1] = "pause", "resume"
    offsets = [t + (pause_len if i > paused_at else 0.0) for i, t in enumerate(moving)]
    fixes = list(_walk(rng, origin, moving, speed))
    distance = sum(_metres(a[:2], b[:2]) for i, (a, b) in enumerate(pairwise(fixes)) if i != paused_at)
    hr_t: list[str] = []
    hr_bpm: list[str] = []
    t, hr = round(offsets[1] * rng.uniform(0.3, 0.9), 3), 128.0  # first reading between the first two fixes
    if round(t % 1, 3) == round(phase, 3):
        t += 0.111  # its own clock: never a path timestamp
    pause_from, pause_to = offsets[paused_at], offsets[paused_at + 1]
    while t <= offsets[-1]:
        if not pause_from < t < pause_to:  # the strap's readings stop while paused
            hr = min(182.0, max(100.0, hr + rng.gauss(0.25 if hr < 152 else -0.3, 1.8)))
            hr_t.append(_seconds(t))
            hr_bpm.append(str(round(hr)))
        t += rng.randint(*hr_step)
    return {
        "activityType": activity_type,
        "activityStartTimeIso": start.isoformat(),
        "activityNotes": notes,
        "activityPathLatitude": ",".join(f"{lat:.6f}".rstrip("0") for lat, _, _ in fixes),
        "activityPathLongitude": ",".join(f"{lon:.6f}".rstrip("0") for _, lon, _ in fixes),
        "activityPathAltitude": ",".join(repr(ele) for _, _, ele in fixes),
        "activityPathTimestamp": ",".join(map(_seconds, offsets)),
        "activityPathType": ",".join(kinds),
        "activityHeartRateTimestamp": ",".join(hr_t),
        "activityHeartRateBpm": ",".join(hr_bpm),
        "activityTotalDistance": f"{distance:.1f}",
        "activityDuration": _seconds(moving[-1]),
        "activityTotalCalories": f"{KCAL_PER_KM.get(activity_type, 60.0) * distance / 1000:.0f}",
    }


def small_payload() -> dict[str, str]:
    """A 300-point run with one pause and heart rate on its own timestamps, like the real Zapier payload."""
    start = datetime(2023, 4, 15, 7, 12, 5, tzinfo=timezone(timedelta(hours=1)))
    notes = "Synthetic easy run: café stop at the lock, then 5 × 1 min strides. Legs 2 lungs 2."
    return _path_payload("payload-small", 300, start=start, activity_type="Running", notes=notes, step=(3, 6),
                         speed=2.9, origin=LONDON_PARK, pause_len=95.0, hr_step=(1, 9))


def manual_payload() -> dict[str, str]:
    """A manual activity as Zapier posts it: no GPS path (the path and heart-rate fields arrive empty)."""
    return {
        "activityType": "Cycling",
        "activityStartTimeIso": "2023-04-16T17:30:00+01:00",
        "activityNotes": "Commute home, GPS forgotten",
        **{k: "" for k in ZAPIER_KEYS[3:]},
        "activityTotalDistance": "20000",
        "activityDuration": "3600",
        "activityTotalCalories": "560",
    }


def big_payload(points: int = 60_000, *, start: datetime | None = None) -> dict[str, str]:
    """A run of `points` fixes, one a second, with one pause and heart rate: far over a queue message's 48 KiB.

    At 60,000 points it is about 3.3 MB of JSON, the claim-check (blob) path; built when needed, never stored.
    `start` moves the start, so that several big posts are distinct activities rather than replays.
    """
    start = start or datetime(2023, 5, 20, 5, 0, 0, tzinfo=timezone(timedelta(hours=1)))
    return _path_payload(f"payload-big-{points}", points, start=start, activity_type="Running",
                         notes=f"Synthetic ultra: {points:,} points, one a second", step=(1, 1), speed=2.6,
                         origin=LONDON_PARK, pause_len=300.0, hr_step=(2, 8))


def _json(payload: dict[str, str]) -> bytes:
    """Compact, as Zapier posts it."""
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# ---- the whole set -------------------------------------------------------------------------------------------


def write_all(root: Path = OUT) -> list[Path]:
    """Write every file of the data set under `root` (replacing earlier generated ones); the paths written."""
    root = Path(root)
    exports, zapier = root / "exports", root / "zapier"
    folder = exports / "export-2016-km"
    if folder.exists():
        shutil.rmtree(folder)
    written = export_2016(folder)
    written += export_2019(exports / "export-2019-mi.zip")
    zapier.mkdir(parents=True, exist_ok=True)
    for name, payload in (("payload-small.json", small_payload()), ("payload-manual.json", manual_payload())):
        (zapier / name).write_bytes(_json(payload))
        written.append(zapier / name)
    big = _json(big_payload())
    (zapier / "payload-big.json").unlink(missing_ok=True)
    if len(big) < MAX_WRITTEN_PAYLOAD:
        (zapier / "payload-big.json").write_bytes(big)
        written.append(zapier / "payload-big.json")
    return written


def _same(a: Path, b: Path) -> bool:
    """Equal files; zips by their members (names, times, modes, bytes), since another zlib may deflate differently."""
    if not a.is_file():
        return False
    if a.suffix != ".zip":
        return a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as za, zipfile.ZipFile(b) as zb:
        def members(z: zipfile.ZipFile) -> list[tuple[str, tuple[int, ...], int, bytes]]:
            return [(i.filename, i.date_time, i.external_attr, z.read(i)) for i in z.infolist()]

        return members(za) == members(zb)


def check(root: Path = OUT) -> list[str]:
    """What differs between the files under `root` and a fresh run (empty: the set is current)."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = write_all(Path(tmp))
        rels = {p.relative_to(tmp) for p in fresh}
        problems = [f"{rel}: differs from a fresh run" for rel in sorted(rels)
                    if not _same(root / rel, Path(tmp) / rel)]
    for sub in ("exports/export-2016-km", "zapier"):
        for path in sorted((root / sub).glob("*")) if (root / sub).is_dir() else []:
            if path.relative_to(root) not in rels:
                problems.append(f"{path.relative_to(root)}: not made by this script")
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT, help=f"where to write (default: {OUT.relative_to(ROOT)})")
    parser.add_argument("--check", action="store_true", help="only compare the files there with a fresh run")
    args = parser.parse_args(argv)
    if args.check:
        problems = check(args.out)
        for line in problems:
            print(line, file=sys.stderr)
        return 1 if problems else 0
    for path in write_all(args.out):
        print(f"{path.stat().st_size:>9,}  {path.relative_to(args.out) if path.is_relative_to(args.out) else path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
