"""Activity -> GPX 1.1 bytes for Strava's upload, with heart rate in Garmin's TrackPointExtension.

Written by hand rather than with gpxpy: gpxpy's writer is several times slower at 50,000 points (see
bench/bench_convert.py), and the output is simple. Tests parse it back with gpxpy.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from shared.model.activity import Activity, HeartRate

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)
# Characters XML 1.0 forbids (and lone surrogates, which UTF-8 cannot encode): dropped from text.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")

_HEADER = (
    '<?xml version="1.0" encoding="UTF-8"?>\n'
    '<gpx version="1.1" creator="runkeeper-strava-sync"'
    ' xmlns="http://www.topografix.com/GPX/1/1"'
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
    ' xmlns:gpxtpx="http://www.garmin.com/xmlschemas/TrackPointExtension/v1"'
    ' xsi:schemaLocation="http://www.topografix.com/GPX/1/1 http://www.topografix.com/GPX/1/1/gpx.xsd'
    ' http://www.garmin.com/xmlschemas/TrackPointExtension/v1'
    ' http://www.garmin.com/xmlschemas/TrackPointExtensionv1.xsd">\n'
)
_HR_OPEN = "<extensions><gpxtpx:TrackPointExtension><gpxtpx:hr>"
_HR_CLOSE = "</gpxtpx:hr></gpxtpx:TrackPointExtension></extensions>"
_TPX_OPEN = "<extensions><gpxtpx:TrackPointExtension>"
_TPX_CLOSE = "</gpxtpx:TrackPointExtension></extensions>"
# "HH:" and "MM:SS" by table: string lookups instead of formatting three numbers per point.
# Points written, joined and encoded at a time: a long track's text never exists twice in full (memory).
_CHUNK = 4096
_HOURS = [f"{h:02d}:" for h in range(24)]
_MINUTES_SECONDS = [f"{m:02d}:{s:02d}" for m in range(60) for s in range(60)]


def xml_text(text: str) -> str:
    """Any string made safe as XML character data: escaped, and without characters XML cannot carry."""
    text = _NOT_XML.sub("", text)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _decimal(x: float) -> str:
    """Shortest exact form, but never exponent notation, which xsd:decimal does not allow."""
    text = repr(x)
    if "e" in text:
        text = format(Decimal(text), "f")  # the same digits written out: 5.96e-08 -> 0.0000000596, exact
    return text


def utc_times(start: datetime, offsets: list[float]) -> list[str]:
    """`start + offset` as UTC `Z` times, exact to the microsecond; one tight loop, since this is the hot spot."""
    start_us = (start - _EPOCH) // _MICRO
    out: list[str] = []
    append = out.append
    current_day, date = -1, ""
    hours, minutes_seconds = _HOURS, _MINUTES_SECONDS
    fractions: dict[int, str] = {0: "Z"}  # ".577Z" by microseconds: recorders repeat a few sub-second phases
    for offset in offsets:
        second, micro = divmod(start_us + round(offset * 1_000_000), 1_000_000)
        day, second = divmod(second, 86400)
        if day != current_day:
            current_day, date = day, (_EPOCH + timedelta(days=day)).strftime("%Y-%m-%dT")
        hour, second = divmod(second, 3600)
        fraction = fractions.get(micro)
        if fraction is None:
            fraction = fractions[micro] = f".{micro:06d}".rstrip("0") + "Z"
        append(date + hours[hour] + minutes_seconds[second] + fraction)
    return out


def _heart_rates(samples: list[HeartRate]) -> tuple[list[float], list[int]]:
    ordered = sorted(samples, key=lambda s: s.offset)
    return [s.offset for s in ordered], [s.bpm for s in ordered]


def _add_air_temps(out: list[str], temps: Sequence[float | None]) -> None:
    """Put `gpxtpx:atemp` into each point's line, before its heart rate as the extension's schema orders them.

    A second pass over the written lines, so the common case (no enrichment) pays nothing in the hot loop.
    """
    points = [i for i, line in enumerate(out) if line.startswith("<trkpt ")]
    if len(points) != len(temps):
        raise ValueError(f"{len(temps)} air temperatures for {len(points)} points")
    for i, temp in zip(points, temps, strict=True):
        if temp is None:
            continue
        atemp = f"<gpxtpx:atemp>{temp!r}</gpxtpx:atemp>"
        line = out[i]
        if _HR_OPEN in line:
            out[i] = line.replace(_TPX_OPEN, _TPX_OPEN + atemp, 1)
        else:
            out[i] = line.replace("</trkpt>", f"{_TPX_OPEN}{atemp}{_TPX_CLOSE}</trkpt>", 1)


def activity_to_gpx(activity: Activity, air_temps: Sequence[float | None] | None = None) -> bytes:
    """GPX 1.1 (UTF-8): a new <trkseg> at each start/resume after the first, and a pause ends one.

    Each point gets the latest heart-rate sample at or before its time, none before the first sample
    (a 0 bpm sample means no reading and writes nothing). `air_temps` (°C, one per point, None where
    unknown: the optional weather enrichment) become `gpxtpx:atemp`.
    """
    if not activity.points:
        raise ValueError("an activity without points has no GPX track (send it as a manual activity)")
    if activity.start.tzinfo is None:
        raise ValueError("the activity's start time must be timezone-aware")
    points = activity.points
    if air_temps is not None and len(air_temps) != len(points):
        raise ValueError(f"{len(air_temps)} air temperatures for {len(points)} points")
    hr_times, hr_bpms = _heart_rates(activity.heart_rate)
    n_hr = len(hr_times)
    began = utc_times(activity.start, [0.0])[0]
    out: list[str] = [_HEADER, f"<metadata><time>{began}</time></metadata>\n<trk><name>", xml_text(activity.type),
                      "</name>"]
    if activity.notes:
        out += ["<desc>", xml_text(activity.notes), "</desc>"]
    out.append("\n")
    chunks = ["".join(out).encode("utf-8")]
    out.clear()
    append = out.append
    in_segment = False
    j = 0  # heart-rate samples[:j] are at or before the current point (a cursor, since points rarely go back)
    last_offset = float("-inf")
    hr_tags = [f"{_HR_OPEN}{bpm}{_HR_CLOSE}" if bpm > 0 else "" for bpm in hr_bpms]  # written once per sample
    for first in range(0, len(points), _CHUNK):
        part = points[first:first + _CHUNK]
        for point, stamp in zip(part, utc_times(activity.start, [p.offset for p in part]), strict=True):
            kind = point.kind
            if in_segment and kind != "gps" and (kind == "start" or kind == "resume"):
                append("</trkseg>\n")
                in_segment = False
            if not in_segment:
                append("<trkseg>\n")
                in_segment = True
            if n_hr:
                offset = point.offset
                if offset < last_offset:
                    j = bisect_right(hr_times, offset)
                else:
                    while j < n_hr and hr_times[j] <= offset:
                        j += 1
                last_offset = offset
            lat, lon = repr(point.lat), repr(point.lon)
            if "e" in lat or "e" in lon:
                lat, lon = _decimal(point.lat), _decimal(point.lon)
            ele = point.ele
            if ele is None:
                ele_tag = ""
            else:
                ele_text = repr(ele)
                ele_tag = f"<ele>{_decimal(ele) if 'e' in ele_text else ele_text}</ele>"
            hr = hr_tags[j - 1] if j else ""
            append(f'<trkpt lat="{lat}" lon="{lon}">{ele_tag}<time>{stamp}</time>{hr}</trkpt>\n')
            if kind == "pause":
                append("</trkseg>\n")
                in_segment = False
        if air_temps is not None:
            _add_air_temps(out, air_temps[first:first + _CHUNK])
        chunks.append("".join(out).encode("utf-8"))
        out.clear()
    if in_segment:
        append("</trkseg>\n")
    append("</trk>\n</gpx>\n")
    chunks.append("".join(out).encode("utf-8"))
    return b"".join(chunks)
