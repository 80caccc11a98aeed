"""Reading an export safely: junk ignored, a top folder tolerated, unsafe or oversized members failing alone."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from shared.runkeeper.export import ExportError, MemberError, open_export, safe_name
from tests.conftest import data_path
from tests.support.datasets import export, generator

GPX = b'<?xml version="1.0"?><gpx version="1.1" xmlns="http://www.topografix.com/GPX/1/1"></gpx>'


def make_zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            if name.endswith("/"):
                zf.writestr(zipfile.ZipInfo(name), b"")
            else:
                zf.writestr(name, data)
    return path


def test_real_folder_lists_every_file() -> None:
    with open_export(data_path("exports", "runkeeper-export-2016")) as export:
        gpx = [n for n in export.names if n.endswith(".gpx")]
        assert len(gpx) == 155
        assert "cardioActivities.csv" in export.names
        assert export.skipped == []
        assert export.read("2013-07-25-0653.gpx").startswith(b"<?xml")


def test_real_zip_drops_the_top_folder_and_macos_junk() -> None:
    with open_export(data_path("exports", "runkeeper-export-2019.zip")) as export:
        assert export.names == ["2019-07-01-182012.gpx", "cardioActivities.csv", "measurements.csv"]
        assert export.prefix == "01-runkeeper-data-export-2019-07-04-131816/"
        assert b"Activity Id" in export.read("cardioActivities.csv")
        assert export.skipped == []  # __MACOSX is junk, not a problem worth reporting


def test_synthetic_folder_lists_every_file() -> None:
    synthetic = generator()
    with open_export(export("2016", "synthetic").path) as folder:
        gpx = [n for n in folder.names if n.endswith(".gpx")]
        assert len(gpx) == sum(s.gps for s in synthetic.ACTIVITIES_2016) + 1 == 11  # and the unlisted GPSBabel file
        assert synthetic.UNLISTED_2016 in gpx
        assert {"cardioActivities.csv", "measurements.csv"} <= set(folder.names)
        assert folder.skipped == []
        assert folder.read("2016-01-10-1111.gpx").startswith(b"<?xml")


def test_synthetic_zip_drops_the_top_folder_and_macos_junk() -> None:
    facts = export("2019", "synthetic")
    with open_export(facts.path) as archive:
        assert archive.names == sorted([*facts.early_gpx, "cardioActivities.csv", "measurements.csv"]) == [
            "2019-07-01-182012.gpx", "2019-07-04-190233.gpx", "2019-07-06-064510.gpx", "cardioActivities.csv",
            "measurements.csv"]
        assert archive.prefix == facts.extra["prefix"] == "01-runkeeper-data-export-2019-07-08-090512/"
        assert archive.read("cardioActivities.csv").startswith(b"Activity Id,")
        assert archive.skipped == []  # __MACOSX is junk, not a problem worth reporting


def test_lookup_is_case_insensitive_and_never_escapes(tmp_path: Path) -> None:
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "Run.GPX").write_bytes(GPX)
    (tmp_path / "secret.txt").write_text("outside")
    with open_export(tmp_path / "export") as export:
        assert export.read("run.gpx") == GPX
        with pytest.raises(MemberError, match="not found"):
            export.read("../secret.txt")
        with pytest.raises(MemberError, match="not found"):
            export.read(str(tmp_path / "secret.txt"))


@pytest.mark.parametrize("bad", ["../evil.gpx", "/etc/evil.gpx", "..\\..\\evil.gpx", "C:/evil.gpx", "a/../../evil.gpx"])
def test_zip_slip_members_are_refused_alone(tmp_path: Path, bad: str) -> None:
    path = make_zip(tmp_path / "x.zip", {"good.gpx": GPX, bad: GPX})
    with open_export(path) as export:
        assert export.names == ["good.gpx"]
        assert [s.name for s in export.skipped] == [bad]
        assert "zip-slip" in export.skipped[0].reason
        assert export.read("good.gpx") == GPX
    assert not (tmp_path.parent / "evil.gpx").exists()


def test_safe_name_normalises() -> None:
    assert safe_name("./a//b\\c.gpx") == "a/b/c.gpx"
    assert safe_name("a/./b.gpx") == "a/b.gpx"
    assert safe_name("a\0b") is None


def test_zip_bomb_member_fails_alone(tmp_path: Path) -> None:
    bomb = b"\0" * (70 * 1024 * 1024)  # deflates to ~70 KB; above the default 64 MB cap
    path = make_zip(tmp_path / "bomb.zip", {"bomb.gpx": bomb, "ok.gpx": GPX})
    del bomb
    assert path.stat().st_size < 1024 * 1024
    with open_export(path) as export:
        with pytest.raises(MemberError, match=r"bomb.gpx: too large \(70.0 MB\); the limit is 64.0 MB"):
            export.read("bomb.gpx")
        assert export.read("ok.gpx") == GPX


def test_member_lying_about_its_size_is_still_capped(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "liar.zip", {"big.gpx": b"x" * 300_000, "ok.gpx": GPX})
    raw = bytearray(path.read_bytes())
    # Shrink the declared uncompressed size (local header and central directory) to 10 bytes.
    for sig, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = raw.find(sig)
        raw[at + offset:at + offset + 4] = (10).to_bytes(4, "little")
    path.write_bytes(bytes(raw))
    with open_export(path, max_member_bytes=1000) as export:
        # zipfile stops at the declared size and the CRC then fails: never more than the header promised.
        with pytest.raises(MemberError, match=r"big.gpx: cannot be read from the archive \(Bad CRC-32"):
            export.read("big.gpx")
        assert export.read("ok.gpx") == GPX


def test_oversized_file_in_folder_fails_alone(tmp_path: Path) -> None:
    (tmp_path / "big.gpx").write_bytes(b"x" * 5000)
    (tmp_path / "ok.gpx").write_bytes(GPX)
    with open_export(tmp_path, max_member_bytes=1000) as export:
        with pytest.raises(MemberError, match=r"big.gpx: too large \(4.9 KB\); the limit is 1000 bytes"):
            export.read("big.gpx")
        assert export.read("ok.gpx") == GPX


def test_directory_named_gpx_fails_alone(tmp_path: Path) -> None:
    (tmp_path / "folder.gpx").mkdir()
    (tmp_path / "ok.gpx").write_bytes(GPX)
    with open_export(tmp_path) as export:
        assert "folder.gpx" in export.folders
        with pytest.raises(MemberError, match=r"folder\.gpx: is a folder, not a file"):
            export.read("folder.gpx")
        assert export.read("ok.gpx") == GPX
    path = make_zip(tmp_path / "x.zip", {"top/folder.gpx/": b"", "top/ok.gpx": GPX})
    with open_export(path) as export:
        with pytest.raises(MemberError, match="is a folder"):
            export.read("folder.gpx")


def test_links_out_of_the_folder_and_special_files_are_not_read(tmp_path: Path) -> None:
    (tmp_path / "outside.gpx").write_bytes(GPX)
    root = tmp_path / "export"
    root.mkdir()
    (root / "link.gpx").symlink_to(tmp_path / "outside.gpx")
    (root / "inside.gpx").write_bytes(GPX)
    (root / "alias.gpx").symlink_to(root / "inside.gpx")
    os.mkfifo(root / "fifo.gpx")
    with open_export(root) as export:
        assert [(s.name, s.reason) for s in export.skipped] == [
            ("link.gpx", "link pointing outside the export; not read")
        ]
        assert export.read("alias.gpx") == GPX
        with pytest.raises(MemberError, match=r"fifo\.gpx: not a regular file"):
            export.read("fifo.gpx")


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file_fails_alone(tmp_path: Path) -> None:
    (tmp_path / "locked.gpx").write_bytes(GPX)
    (tmp_path / "locked.gpx").chmod(0)
    with open_export(tmp_path) as export, pytest.raises(MemberError, match=r"locked\.gpx: cannot be read"):
        export.read("locked.gpx")


def test_not_an_export(tmp_path: Path) -> None:
    with pytest.raises(ExportError, match="no such file or folder"):
        open_export(tmp_path / "missing.zip")
    (tmp_path / "junk.zip").write_bytes(os.urandom(2048))
    with pytest.raises(ExportError, match="not a readable zip archive"):
        open_export(tmp_path / "junk.zip")


def test_corrupt_member_fails_alone(tmp_path: Path) -> None:
    path = make_zip(tmp_path / "x.zip", {"a.gpx": b"A" * 5000, "b.gpx": GPX}, zipfile.ZIP_STORED)
    raw = bytearray(path.read_bytes())
    at = raw.find(b"A" * 100)
    raw[at:at + 10] = b"B" * 10  # the CRC no longer matches
    path.write_bytes(bytes(raw))
    with open_export(path) as export:
        with pytest.raises(MemberError, match=r"a\.gpx: cannot be read from the archive"):
            export.read("a.gpx")
        assert export.read("b.gpx") == GPX
