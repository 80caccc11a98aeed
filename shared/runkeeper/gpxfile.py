"""A GPX file from an export, treated as untrusted input.

Parsed with defusedxml, so an entity bomb or an external entity is refused at its declaration, before
any expansion (fast, bounded memory); the size is capped before parsing. The bytes are uploaded as
they are: only the two things Strava rejects in Runkeeper's files are repaired (a stray `</trkseg>`
left by the website's editor, and track points outside any segment), by editing just those tags.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import UTC, datetime

MAX_GPX_BYTES = 64 * 1024 * 1024

# Opening/closing/self-closing trk, trkseg and trkpt tags, with an optional namespace prefix.
_TAG = re.compile(rb"<(/?)((?:[A-Za-z_][\w.-]*:)?)(trk|trkseg|trkpt)(?=[\s/>])([^>]*?)(/?)>")


class GpxError(ValueError):
    """The file cannot be uploaded; the message says why, for the user."""


class NotRepairable(GpxError):
    """Hostile, too large or not GPX at all: no tag repair can make it uploadable, so none is tried."""


@dataclass(frozen=True, slots=True)
class GpxFile:
    data: bytes  # what to upload: the original bytes, or the repaired ones
    start: datetime | None  # first track point's time, UTC
    end: datetime | None  # last track point's time, UTC
    points: int
    segments: int
    name: str | None  # `<trk><name>` (Runkeeper: "Running 7/25/13 6:53 am")
    creator: str | None
    repairs: tuple[str, ...] = ()


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _time(text: str | None) -> datetime | None:
    """A GPX time; GPX times are UTC, so one without a zone is taken as UTC."""
    if not text:
        return None
    value = datetime.fromisoformat(text.strip())
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def repair(data: bytes) -> tuple[bytes, list[str]]:
    """Drop stray `</trkseg>` and put track points that sit outside a segment into one; nothing else changes."""
    out: list[bytes] = []
    repairs: dict[str, int] = {}

    def note(what: str) -> None:
        repairs[what] = repairs.get(what, 0) + 1

    pos = 0
    in_trk = in_seg = ours = False  # `ours`: the open segment is one this repair opened
    for m in _TAG.finditer(data):
        closing, prefix, tag, self_closing = m.group(1), m.group(2), m.group(3), m.group(5)
        out.append(data[pos:m.start()])
        pos = m.end()
        token = m.group(0)
        close_seg = b"</" + prefix + b"trkseg>"
        if tag == b"trk":
            if closing and in_seg:
                out.append(close_seg)
                if not ours:
                    note("unclosed <trkseg> closed")
                in_seg = ours = False
            in_trk = not closing
        elif tag == b"trkseg" and not self_closing:
            if closing and not in_seg:
                note("stray </trkseg> removed")
                continue
            if not closing and in_seg:
                out.append(close_seg)
                if not ours:
                    note("unclosed <trkseg> closed")
            in_seg, ours = not closing, False
        elif tag == b"trkpt" and not closing and in_trk and not in_seg:
            out.append(b"<" + prefix + b"trkseg>")
            note("points outside a segment put into one")
            in_seg = ours = True
        out.append(token)
    out.append(data[pos:])
    return b"".join(out), [f"{what} ({n}x)" if n > 1 else what for what, n in repairs.items()]


@dataclass
class _Scan:
    start: datetime | None = None
    end: datetime | None = None
    points: int = 0
    untimed: int = 0
    segments: int = 0
    loose: int = 0  # track points outside a segment
    waypoints: int = 0
    name: str | None = None
    creator: str | None = None


class _Feed(io.BytesIO):
    """iterparse's source: reads grow while no element starts or ends, and shrink back when one does.

    expat 2.5 rescans an unfinished token on every feed, so one 50 MB attribute read 16 KB at a time
    costs minutes; doubling the read while nothing completes keeps that linear (seconds).
    """

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.events = 0  # bumped by the consumer per event
        self._seen = -1
        self._size = 0

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            return super().read()
        self._size = min(max(n, self._size * 2), 1 << 24) if self.events == self._seen else n
        self._seen = self.events
        return super().read(self._size)


def _scan(data: bytes) -> _Scan:
    from xml.etree.ElementTree import ParseError
    from xml.parsers.expat import errors

    from defusedxml import DefusedXmlException
    from defusedxml.ElementTree import iterparse

    scan = _Scan()
    stack: list[str] = []
    try:
        source = _Feed(data)
        for event, elem in iterparse(source, events=("start", "end"), forbid_dtd=False):
            source.events += 1
            tag = _local(elem.tag)
            if event == "start":
                if not stack and tag != "gpx":
                    raise NotRepairable(f"not a GPX file (the root element is <{tag}>, not <gpx>)")
                if not stack:
                    scan.creator = elem.get("creator")
                stack.append(tag)
                continue
            stack.pop()
            parent = stack[-1] if stack else ""
            if tag == "trkpt":
                scan.points += 1
                scan.loose += parent != "trkseg"
                t = next((_time(c.text) for c in elem if _local(c.tag) == "time"), None)
                if t is None:
                    scan.untimed += 1
                else:
                    scan.start = scan.start or t
                    scan.end = t
                elem.clear()  # keeps memory flat on long tracks
            elif tag == "trkseg":
                scan.segments += 1
                elem.clear()
            elif tag == "wpt":
                scan.waypoints += 1
                elem.clear()
            elif tag == "name" and parent == "trk" and scan.name is None:
                scan.name = (elem.text or "").strip() or None
    except GpxError:
        raise
    except DefusedXmlException:
        raise NotRepairable(
            "refused: the file declares XML entities or external references (a possible XML bomb)") from None
    except ParseError as exc:
        line, col = exc.position
        message = str(exc).split(":")[0]
        ends_early = (errors.XML_ERROR_NO_ELEMENTS, errors.XML_ERROR_UNCLOSED_TOKEN,
                      errors.XML_ERROR_UNCLOSED_CDATA_SECTION)
        if exc.code in {errors.codes[e] for e in ends_early}:
            raise GpxError(f"truncated: the XML ends too early (line {line}, column {col}: {message})") from None
        raise GpxError(f"not well-formed XML (line {line}, column {col}: {message})") from None
    except ValueError as exc:  # a <time> that is not ISO 8601
        raise GpxError(f"a track point has an unreadable <time> ({exc})") from None
    return scan


def read_gpx(data: bytes, *, max_bytes: int = MAX_GPX_BYTES) -> GpxFile:
    """Check and describe one GPX file; GpxError (one clear reason) when Strava could not take it."""
    if len(data) > max_bytes:
        raise NotRepairable(
            f"too large ({len(data) // (1024 * 1024)} MB); the limit is {max_bytes // (1024 * 1024)} MB")
    if not data.strip():
        raise GpxError("the file is empty")
    if b"\0" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise NotRepairable("not a GPX file (binary data)")
    repairs: list[str] = []
    try:
        scan = _scan(data)
        if scan.loose:
            raise GpxError("points outside a segment")
    except NotRepairable:
        raise
    except GpxError as first:
        fixed, repairs = repair(data)
        if not repairs:
            raise
        try:
            scan = _scan(fixed)
        except GpxError:
            raise first from None
        if scan.loose:
            raise GpxError(f"{scan.loose} track points outside a segment could not be repaired") from None
        data = fixed
    if scan.points == 0:
        extra = f" (only {scan.waypoints} waypoints)" if scan.waypoints else ""
        raise GpxError(f"no track points{extra}: nothing Strava could make an activity from")
    if scan.untimed:
        raise GpxError(f"{scan.untimed} of {scan.points} track points have no <time>; Strava needs one on every point")
    return GpxFile(
        data=data,
        start=scan.start,
        end=scan.end,
        points=scan.points,
        segments=scan.segments,
        name=scan.name,
        creator=scan.creator,
        repairs=tuple(repairs),
    )
