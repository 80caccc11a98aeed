"""The importer against a hostile archive, end to end through `python -m shared.cli import` in its own process.

tests/test_export.py, test_gpxfile.py and test_importer.py check each hostile member on its own (zip-slip
names, a 70 MB member, billion laughs, an external entity, a folder named .gpx, binary junk). This adds
what only a whole run shows: one archive holding all of them plus the rest (1 GB zip bombs, one lying
about its size; a parameter entity; one 24 MB token; a zip or gzip posing as GPX; a name that would
drive the terminal) imports its good files, names every bad one with its reason, writes nothing
anywhere on disk, and keeps the process's peak memory far below what a bomb would take.
"""

from __future__ import annotations

import gzip
import io
import subprocess
import sys
import uuid
import zipfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT
from tests.support.fake_strava import FakeStrava, make_gpx

BOMB_BYTES = 1024 * 1024 * 1024  # deflates to ~1 MB
# Seen: 160 MB (30 MB to start, then a few copies of the 24 MB token while expat holds it); a bomb is 1 GB.
PEAK_RSS_LIMIT = 512 * 1024 * 1024

# Runs the command line (this test's storage names come with STORAGE_NAME_PREFIX in the environment), then
# reports the process's peak memory.
RUNNER = """
import resource, sys
from shared.cli.app import main
try:
    code = main(sys.argv[1:])
finally:
    sys.stderr.write("\\nPEAK_RSS_KB=%d\\n" % resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
sys.exit(code)
"""


def _bomb(zf: zipfile.ZipFile, name: str) -> None:
    with zf.open(name, "w") as member:
        chunk = b"\0" * (1 << 20)
        for _ in range(BOMB_BYTES // len(chunk)):
            member.write(chunk)


def _lie_about_the_first_member(path: Path, size: int) -> None:
    """Declare `size` uncompressed bytes for the archive's first member (local header and central directory)."""
    raw = bytearray(path.read_bytes())
    for signature, offset in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = raw.find(signature)
        raw[at + offset:at + offset + 4] = size.to_bytes(4, "little")
    path.write_bytes(bytes(raw))


def _archive(path: Path, absolute_target: Path) -> dict[str, str]:
    """The hostile export; answers member name -> the reason the run must give (good ones: "")."""
    start = datetime(2021, 5, 1, 7, 0, tzinfo=UTC)
    good = {f"export/2021-05-0{i + 1}-0700.gpx": make_gpx(start + timedelta(days=i), points=30) for i in range(2)}
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as z:
        z.writestr("a.gpx", make_gpx(start, points=3))
    param_entity = (b'<?xml version="1.0"?><!DOCTYPE gpx [<!ENTITY % x SYSTEM "file:///etc/passwd"> %x;]>'
                    b'<gpx version="1.1"/>')
    bad = {
        "export/../../evil.gpx": (make_gpx(start + timedelta(days=9)), "zip-slip"),
        str(absolute_target): (make_gpx(start + timedelta(days=8)), "zip-slip"),
        "export/param-entity.gpx": (param_entity, "declares XML entities"),
        "export/one-token.gpx": (b'<gpx a="' + b"x" * (24 * 1024 * 1024) + b'"/>', "no track points"),
        "export/nested-zip.gpx": (inner.getvalue(), "binary data"),
        "export/gzipped.gpx": (gzip.compress(make_gpx(start)), "binary data"),
        "export/terminal\x1b[2J\nname.gpx": (bytes(range(256)) * 8, "binary data"),
        "export/folder.gpx/": (b"", "is a folder"),
    }
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        _bomb(zf, "export/liar.gpx")  # first: its headers will claim 10 kB
        for name, data in good.items():
            zf.writestr(name, data)
        for name, (data, _) in bad.items():
            zf.writestr(zipfile.ZipInfo(name) if name.endswith("/") else name, data)
        _bomb(zf, "export/bomb.gpx")
    _lie_about_the_first_member(path, 10_000)
    reasons = {name: "" for name in good}
    reasons.update({name: reason for name, (_, reason) in bad.items()})
    reasons["export/bomb.gpx"] = "too large"
    reasons["export/liar.gpx"] = "cannot be read"
    return reasons


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.fixture
def env(sync_env: Any, connected_athlete: Any, fake_strava: FakeStrava) -> Any:
    return sync_env


def test_a_hostile_archive_imports_the_good_files_and_touches_nothing_else(env: Any, fake_strava: FakeStrava,
                                                                         tmp_path: Path) -> None:
    source = tmp_path / "in"
    work = tmp_path / "work"
    source.mkdir()
    work.mkdir()
    absolute_target = Path("/tmp") / f"rk-hostile-{uuid.uuid4().hex}.gpx"
    archive = source / "01-runkeeper-data-export-2021-06-01-000000.zip"
    reasons = _archive(archive, absolute_target)
    assert archive.stat().st_size < 5 * 1024 * 1024
    before = _tree(tmp_path)

    environ = {**env.subprocess_env(), "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", RUNNER, "import", str(archive), "--verbose"], cwd=work,
                            env=environ, capture_output=True, text=True, timeout=240, check=False)

    out, err = result.stdout, result.stderr
    assert result.returncode == 1, err[-3000:]
    assert len(fake_strava.activities()) == 2 and fake_strava.call_count("POST", "/api/v3/uploads") == 2
    failed = out.split("Failed (", 1)[1]
    for name, reason in reasons.items():
        if not reason:
            continue
        shown = name.removeprefix("export/").rstrip("/")
        line = next((ln for ln in failed.splitlines() if reason in ln and shown.split("/")[-1][:8] in ln), None)
        assert line is not None, f"{name!r} is not reported with {reason!r}:\n{failed}"
    assert "\x1b" not in out and "\x1b" not in err  # a member's name cannot drive the terminal
    assert "  terminal\\x1b[2J\\nname.gpx: not a GPX file (binary data)\n" in out  # nor start a line
    rows = {row.status for row in env.entries()}
    assert rows <= {"synced", "failed"}

    assert _tree(tmp_path) == before  # nothing extracted, nothing written next to or above the archive
    assert not absolute_target.exists()
    assert not (ROOT / "evil.gpx").exists() and not (ROOT.parent / "evil.gpx").exists()
    peak = int(err.rsplit("PEAK_RSS_KB=", 1)[1].split()[0]) * 1024
    assert peak < PEAK_RSS_LIMIT, f"peak memory {peak / 2**20:.0f} MB"
