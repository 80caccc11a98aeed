"""Untrusted GPX: real files pass untouched, hostile ones are refused with one clear reason, two faults repaired."""

from __future__ import annotations

import tracemalloc
import zipfile
from datetime import UTC, datetime

import pytest

from shared.runkeeper.gpxfile import GpxError, NotRepairable, read_gpx, repair
from tests.conftest import data_path
from tests.support.builders import BILLION_LAUGHS
from tests.support.datasets import KINDS, export, generator

HEADER = b'<?xml version="1.0" encoding="UTF-8"?>\n<gpx version="1.1" creator="test" ' \
         b'xmlns="http://www.topografix.com/GPX/1/1">\n<trk><name><![CDATA[Walking 1/2/20 9:00 am]]></name>\n'


def pt(second: int, time: bool = True) -> bytes:
    t = f"<time>2020-01-02T09:00:{second:02d}Z</time>" if time else ""
    return f'<trkpt lat="51.5" lon="-0.1"><ele>10.0</ele>{t}</trkpt>\n'.encode()


def gpx(body: bytes) -> bytes:
    return HEADER + body + b"</trk>\n</gpx>\n"


def test_every_runkeeper_file_of_the_real_export_passes_unchanged() -> None:
    folder = data_path("exports", "runkeeper-export-2016")
    files = sorted(p for p in folder.glob("*.gpx") if p.name != "2016-08-09-0529.gpx")
    assert len(files) == 154
    for path in files:
        data = path.read_bytes()
        info = read_gpx(data)
        assert info.data is data, path.name  # the original bytes, not a re-serialisation
        assert info.repairs == () and info.points >= 1 and info.start is not None
    first = read_gpx((folder / "2013-07-25-0653.gpx").read_bytes())
    assert first.start == datetime(2013, 7, 25, 11, 53, 27, tzinfo=UTC)
    assert first.name == "Running 7/25/13 6:53 am"
    assert first.creator == "Runkeeper - http://www.runkeeper.com"
    assert first.segments > 1 and first.end is not None and first.end > first.start


def test_gpsbabel_waypoints_only_file_is_refused() -> None:
    data = data_path("exports", "runkeeper-export-2016", "2016-08-09-0529.gpx").read_bytes()
    with pytest.raises(GpxError, match=r"no track points \(only 965 waypoints\)"):
        read_gpx(data)


def test_every_runkeeper_file_of_the_synthetic_export_passes_unchanged() -> None:
    synthetic = generator()
    folder = export("2016", "synthetic").path
    files = sorted(p for p in folder.glob("*.gpx") if p.name != synthetic.UNLISTED_2016)
    assert [p.name for p in files] == sorted(synthetic.gpx_file_name(s, seconds=False)
                                             for s in synthetic.ACTIVITIES_2016 if s.gps)
    for path in files:
        data = path.read_bytes()
        info = read_gpx(data)
        assert info.data is data, path.name  # the original bytes, not a re-serialisation
        assert info.repairs == () and info.points >= 1 and info.start is not None
    first = read_gpx((folder / "2016-03-01-0700.gpx").read_bytes())
    assert (first.points, first.name, first.creator) == (235, "Running 3/1/16 7:00 am", synthetic.CREATOR_2016)
    paused = read_gpx((folder / "2016-01-10-1111.gpx").read_bytes())
    assert (paused.points, paused.segments, paused.start) == (488, 2, datetime(2016, 1, 10, 11, 11, 11, tzinfo=UTC))
    assert paused.end is not None and paused.end > paused.start


def test_synthetic_gpsbabel_waypoints_only_file_is_refused() -> None:
    data = (export("2016", "synthetic").path / generator().UNLISTED_2016).read_bytes()
    with pytest.raises(GpxError, match=r"no track points \(only 40 waypoints\)"):
        read_gpx(data)


@pytest.mark.parametrize("kind", KINDS)
def test_hong_kong_file_from_the_zip(kind: str) -> None:
    """The real zip (863 points), then the synthetic one (1,012); both start 2019-07-01 10:20:12 UTC."""
    facts = export("2019", kind)
    with zipfile.ZipFile(facts.path) as zf:
        data = zf.read(facts.extra["prefix"] + facts.first_gpx)
    info = read_gpx(data)
    assert (info.points, info.start) == (facts.extra["first_points"], facts.first_start)


def test_synthetic_truncated_file_is_refused() -> None:
    data = (export("2016", "synthetic").path / "2016-01-10-1111.gpx").read_bytes()
    with pytest.raises(GpxError, match=r"truncated: the XML ends too early \(line \d+"):
        read_gpx(data[: len(data) // 2])


def test_billion_laughs_is_refused_with_bounded_memory() -> None:
    tracemalloc.start()
    try:
        with pytest.raises(GpxError, match="declares XML entities"):
            read_gpx(BILLION_LAUGHS)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 5 * 1024 * 1024  # expanded, it would be ~3 GB


def test_external_entity_is_refused() -> None:
    xxe = b'<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY x SYSTEM "file:///etc/passwd">]><gpx>&x;</gpx>'
    with pytest.raises(GpxError, match="declares XML entities or external references"):
        read_gpx(xxe)


def test_truncated_file_is_refused() -> None:
    data = data_path("exports", "runkeeper-export-2016", "2013-07-25-0653.gpx").read_bytes()
    with pytest.raises(GpxError, match=r"truncated: the XML ends too early \(line \d+"):
        read_gpx(data[: len(data) // 2])


@pytest.mark.parametrize(("data", "reason"), [
    (b"", "the file is empty"),
    (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" * 50, r"not a GPX file \(binary data\)"),
    (b"<html><body>hi</body></html>", r"not a GPX file \(the root element is <html>, not <gpx>\)"),
    (b"just some text", r"not well-formed XML \(line 1"),
    (gpx(b"<trkseg>\n" + pt(1) + pt(2, time=False) + b"</trkseg>\n"), "1 of 2 track points have no <time>"),
    (gpx(b"<trkseg>\n" + pt(1).replace(b"09:00:01Z", b"noon") + b"</trkseg>\n"), "unreadable <time>"),
    (gpx(b""), "no track points: nothing Strava"),
])
def test_bad_files_get_one_clear_reason(data: bytes, reason: str) -> None:
    with pytest.raises(GpxError, match=reason):
        read_gpx(data)


def test_size_cap_is_checked_before_parsing() -> None:
    with pytest.raises(GpxError, match="too large"):
        read_gpx(b"<gpx>" + b" " * 3 * 1024 * 1024 + b"</gpx>", max_bytes=2 * 1024 * 1024)


def test_stray_closing_segment_is_removed_and_nothing_else_changes() -> None:
    good = gpx(b"<trkseg>\n" + pt(1) + pt(2) + b"</trkseg>\n<trkseg>\n" + pt(3) + b"</trkseg>\n")
    broken = good.replace(b"</trkseg>\n<trkseg>", b"</trkseg>\n</trkseg>\n<trkseg>")
    info = read_gpx(broken)
    assert info.repairs == ("stray </trkseg> removed",)
    assert info.data == good.replace(b"</trkseg>\n<trkseg>", b"</trkseg>\n\n<trkseg>")
    assert (info.points, info.segments) == (3, 2)


def test_points_outside_a_segment_are_put_into_one() -> None:
    broken = gpx(pt(1) + pt(2) + b"<trkseg>\n" + pt(3) + b"</trkseg>\n" + pt(4))
    info = read_gpx(broken)
    assert info.repairs == ("points outside a segment put into one (2x)",)
    assert (info.points, info.segments) == (4, 3)
    assert info.data.replace(b"<trkseg>", b"").replace(b"</trkseg>", b"") == \
        broken.replace(b"<trkseg>", b"").replace(b"</trkseg>", b"")
    assert info.start == datetime(2020, 1, 2, 9, 0, 1, tzinfo=UTC)


def test_repair_keeps_namespace_prefixes() -> None:
    data = b"<g:trk><g:trkpt lat='1' lon='2'/></g:trkseg></g:trk>"
    fixed, repairs = repair(data)
    assert fixed == b"<g:trk><g:trkseg><g:trkpt lat='1' lon='2'/></g:trkseg></g:trk>"
    assert repairs == ["points outside a segment put into one"]


def test_unrepairable_file_reports_the_original_fault() -> None:
    broken = gpx(b"<trkseg>\n" + pt(1) + b"</trkseg>\n</trkseg>\n<oops>\n")
    with pytest.raises(GpxError, match="not well-formed XML"):
        read_gpx(broken)


@pytest.mark.parametrize("data", [
    BILLION_LAUGHS,
    b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" * 50,
    b"<html><trk></trkseg></trk></html>",  # a stray </trkseg> a repair could drop: not tried on a non-GPX root
    b"<gpx>" + b" " * 3 * 1024 * 1024 + b"</gpx>",
])
def test_hostile_or_foreign_files_are_typed_as_not_repairable(data: bytes) -> None:
    with pytest.raises(NotRepairable) as info:
        read_gpx(data, max_bytes=2 * 1024 * 1024)
    assert info.value.args[0].startswith(("refused", "not a GPX file", "too large"))


def test_a_file_cut_short_is_truncated_by_the_parser_error_code() -> None:
    whole = gpx(b"<trkseg>\n" + pt(1) + pt(2) + b"</trkseg>\n")
    for cut in (whole[:-20], whole[: whole.index(b"<trkpt") + 4], HEADER + b"<![CDATA[x"):
        with pytest.raises(GpxError, match=r"truncated: the XML ends too early \(line \d+") as info:
            read_gpx(cut)
        assert not isinstance(info.value, NotRepairable)
