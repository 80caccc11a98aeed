"""A Runkeeper export (the .zip as Runkeeper sends it, or the unpacked folder), read without trusting it.

Nothing is ever extracted to disk: members are read into memory one at a time with a size cap, so a
zip-slip name can do no harm and a zip bomb or a 2 GB file fails alone, quickly. Member names are
normalised to '/'-separated paths relative to the export's root (a single top folder is dropped), and
only names listed here can be read, so a name taken from the (equally untrusted) CSV cannot escape.
"""

from __future__ import annotations

import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from types import TracebackType

MAX_MEMBER_BYTES = 64 * 1024 * 1024  # a 24 h track at one point a second is ~15 MB of GPX
MAX_MEMBERS = 100_000  # ten years of daily activities is ~4,000 files
JUNK_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini"})


class ExportError(Exception):
    """The export as a whole cannot be read (missing, not a zip or folder, corrupt archive)."""


class MemberError(Exception):
    """One member cannot be read; the message is the reason, fit to show the user."""


@dataclass(frozen=True, slots=True)
class Skipped:
    """A member left out of the export's listing, and why."""

    name: str
    reason: str


def _size(n: int) -> str:
    for unit, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def is_junk(name: str) -> bool:
    """macOS resource forks and folder metadata that archivers add; never part of the export."""
    parts = name.replace("\\", "/").split("/")
    return any(p == "__MACOSX" for p in parts) or parts[-1].startswith("._") or parts[-1].lower() in JUNK_NAMES


def safe_name(raw: str) -> str | None:
    """The member's normalised relative path, or None when it would point outside the export."""
    name = raw.replace("\\", "/")
    if "\0" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return None
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        return None
    return "/".join(parts)


def _strip_top_folder(files: dict[str, object], dirs: set[str]) -> tuple[dict[str, object], set[str], str]:
    """Drop folders every member shares (Runkeeper's zip holds one; users add one more when unpacking)."""
    prefix = ""
    while files and all("/" in n for n in files):
        tops = {n.split("/", 1)[0] for n in files}
        if len(tops) != 1:
            break
        top = tops.pop()
        prefix += top + "/"
        files = {n.split("/", 1)[1]: v for n, v in files.items()}
        dirs = {d.split("/", 1)[1] for d in dirs if "/" in d and d.startswith(top + "/")}
    return files, dirs, prefix


class Export:
    """The members of one export; `names` are the readable files, `skipped` what was left out and why."""

    def __init__(self, source: Path, files: dict[str, object], dirs: set[str], skipped: list[Skipped],
                 max_member_bytes: int) -> None:
        files, dirs, self.prefix = _strip_top_folder(files, dirs)
        self.source = source
        self._files = files
        self._dirs = dirs
        self._lower = {n.lower(): n for n in sorted(files, reverse=True)}
        self.skipped = skipped
        self.max_member_bytes = max_member_bytes

    @property
    def names(self) -> list[str]:
        return sorted(self._files)

    @property
    def folders(self) -> list[str]:
        return sorted(self._dirs)

    def find(self, name: str) -> str | None:
        """The member called `name` (exact, else case-insensitive: exports pass through Windows and macOS)."""
        clean = safe_name(name.strip())
        if clean is None:
            return None
        if clean in self._files or clean in self._dirs:
            return clean
        return self._lower.get(clean.lower())

    def read(self, name: str) -> bytes:
        """The member's bytes, or MemberError saying why not; at most `max_member_bytes` are ever held."""
        clean = self.find(name)
        if clean is None:
            raise MemberError(f"{name}: not found in the export")
        if clean in self._dirs and clean not in self._files:
            raise MemberError(f"{name}: is a folder, not a file")
        return self._read(clean, self._files[clean])

    def _read(self, name: str, handle: object) -> bytes:  # pragma: no cover - overridden
        raise NotImplementedError

    def _too_large(self, name: str, size: int | None) -> MemberError:
        shown = f" ({_size(size)})" if size else ""
        return MemberError(f"{name}: too large{shown}; the limit is {_size(self.max_member_bytes)} per file")

    def close(self) -> None:
        """Release the archive; a folder holds nothing open."""

    def __enter__(self) -> Export:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class ZipExport(Export):
    def __init__(self, path: Path, max_member_bytes: int) -> None:
        try:
            self._zip = zipfile.ZipFile(path)  # closed by close()
        except (zipfile.BadZipFile, OSError) as exc:
            raise ExportError(f"{path}: not a readable zip archive ({exc})") from None
        infos = self._zip.infolist()
        if len(infos) > MAX_MEMBERS:
            self._zip.close()
            raise ExportError(f"{path}: {len(infos)} members, more than an export can have ({MAX_MEMBERS})")
        files: dict[str, object] = {}
        dirs: set[str] = set()
        skipped: list[Skipped] = []
        for info in infos:
            if is_junk(info.filename):
                continue
            name = safe_name(info.filename)
            if name is None:
                skipped.append(Skipped(info.filename, "unsafe path pointing outside the export (zip-slip); not read"))
            elif info.is_dir():
                dirs.add(name)
            elif name:
                files[name] = info
                parts = name.split("/")[:-1]
                dirs.update("/".join(parts[: i + 1]) for i in range(len(parts)))
        super().__init__(path, files, dirs, skipped, max_member_bytes)

    def _read(self, name: str, handle: object) -> bytes:
        assert isinstance(handle, zipfile.ZipInfo)
        if handle.file_size > self.max_member_bytes:
            raise self._too_large(name, handle.file_size)
        try:
            with self._zip.open(handle) as fh:
                data = fh.read(self.max_member_bytes + 1)  # the header's size may lie: never trust it
        except (zipfile.BadZipFile, zipfile.LargeZipFile, NotImplementedError, RuntimeError, OSError,
                EOFError, ValueError) as exc:
            raise MemberError(f"{name}: cannot be read from the archive ({exc})") from None
        if len(data) > self.max_member_bytes:
            raise self._too_large(name, None)
        return data

    def close(self) -> None:
        self._zip.close()


class FolderExport(Export):
    def __init__(self, path: Path, max_member_bytes: int) -> None:
        root = path.resolve()
        files: dict[str, object] = {}
        dirs: set[str] = set()
        skipped: list[Skipped] = []

        def walk_error(exc: OSError) -> None:
            skipped.append(Skipped(str(exc.filename or path), f"folder cannot be listed ({exc.strerror})"))

        for top, dirnames, filenames in os.walk(root, onerror=walk_error):
            rel_top = Path(top).relative_to(root).as_posix()
            rel_top = "" if rel_top == "." else rel_top + "/"
            dirnames[:] = [d for d in dirnames if d != "__MACOSX"]
            dirs.update(rel_top + d for d in dirnames)
            for fname in filenames:
                rel = rel_top + fname
                if is_junk(rel):
                    continue
                full = Path(top) / fname
                if full.is_symlink():
                    try:
                        full.resolve(strict=True).relative_to(root)
                    except (OSError, ValueError, RuntimeError):
                        skipped.append(Skipped(rel, "link pointing outside the export; not read"))
                        continue
                files[rel] = full
                if len(files) > MAX_MEMBERS:
                    raise ExportError(f"{path}: more than {MAX_MEMBERS} files, more than an export can have")
        super().__init__(path, files, dirs, skipped, max_member_bytes)

    def _read(self, name: str, handle: object) -> bytes:
        assert isinstance(handle, Path)
        try:
            info = handle.stat()
            if stat.S_ISDIR(info.st_mode):
                raise MemberError(f"{name}: is a folder, not a file")
            if not stat.S_ISREG(info.st_mode):
                raise MemberError(f"{name}: not a regular file")  # a FIFO would block the import
            if info.st_size > self.max_member_bytes:
                raise self._too_large(name, info.st_size)
            with handle.open("rb") as fh:
                data = fh.read(self.max_member_bytes + 1)
        except OSError as exc:
            raise MemberError(f"{name}: cannot be read ({exc.strerror or exc})") from None
        if len(data) > self.max_member_bytes:
            raise self._too_large(name, None)
        return data


def open_export(path: str | os.PathLike[str], *, max_member_bytes: int = MAX_MEMBER_BYTES) -> Export:
    """The export at `path`: a zip archive or a folder (Runkeeper's unpacked export)."""
    p = Path(path)
    if p.is_dir():
        return FolderExport(p, max_member_bytes)
    if p.is_file():
        return ZipExport(p, max_member_bytes)
    if not p.exists():
        raise ExportError(f"{p}: no such file or folder")
    raise ExportError(f"{p}: neither a zip archive nor a folder")


def member_stem(name: str) -> str:
    """The file name without folders, as the CSV's `GPX File` column names it."""
    return PurePosixPath(name).name
