"""Starts a real Azurite (npm `azurite@3.35.0`, installed under .tools/ by `make test`) on free ports.

Two modes. The default is plain HTTP with the well-known account key (`connection_string`), as local
runs use it. `Azurite(oauth=True, tls=...)` is the identity-path stand-in for Azure Storage: HTTPS with
the session's test certificate and `--oauth basic`, so bearer tokens from tests/fake_identity.py are
accepted. Azurite then still accepts Shared Key as well (it tries Shared Key first), so a test cannot
learn from success which one a client used; the `--debug` log can, because it records every request's
headers. `requests_since(mark)`, `auth_schemes()` and `key_based_requests()` read it.

The debug log line of each request (one line per request; Azurite logs it before authenticating):

    2026-12-01T14:42:54.362Z <request id> info: TableStorageContextMiddleware: RequestMethod=GET
    RequestURL=https://127.0.0.1/devstoreaccount1/Tables RequestHeaders:{"host":"127.0.0.1:20002",...,
    "authorization":"Bearer eyJ...","x-ms-version":"2019-02-02"} ClientIP=127.0.0.1 Protocol=https ...

(one line; Blob/Queue/Table before "StorageContextMiddleware"; header names lower-case; no
"authorization" key for an anonymous or SAS request). The log holds bearer tokens and request bodies
of errors: it lives in a private temp file, is never printed, and is deleted by `stop()`.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from urllib.parse import parse_qs, urlsplit

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "devstoreaccount1"
# Azurite's well-known development key: public, not a secret.
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


def azurite_binary() -> str:
    local = ROOT / ".tools" / "node_modules" / ".bin" / "azurite"
    if local.exists():
        return str(local)
    found = shutil.which("azurite")
    if found:
        return found
    raise RuntimeError("Azurite is not installed: run `make test` (it installs azurite@3.35.0 under .tools/)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_listening(port: int, proc: subprocess.Popen[bytes], deadline: float) -> None:
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"Azurite exited with code {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"Azurite did not listen on port {port} in time") from None
            time.sleep(0.05)  # polling a port that is not up yet, not synchronising test logic


class CertFiles(Protocol):
    """PEM paths Azurite serves HTTPS with (tests/tls.py's TestTLS has them)."""

    @property
    def cert(self) -> Path: ...

    @property
    def key(self) -> Path: ...


# Schemes whose requests prove a client held the account key: Shared Key signatures, and a SAS signed
# with the key (a user delegation SAS, signed with a key obtained by a token, carries `skoid`).
KEY_SCHEMES = frozenset({"SharedKey", "SharedKeyLite", "SAS"})
_REQUEST_LINE = re.compile(
    r"^\S+ (?P<request_id>\S+) info: (?P<service>Blob|Queue|Table)StorageContextMiddleware: "
    r"RequestMethod=(?P<method>\S+) RequestURL=(?P<url>\S*) RequestHeaders:"
)
_SYNC_PATH = "azurite-log-sync-"
_SIGNATURE = re.compile(r"([?&]sig=)[^&]*")


@dataclass(frozen=True)
class AzuriteRequest:
    """One request as Azurite's debug log recorded it (no header values: they may hold tokens)."""

    service: str  # "Blob", "Queue" or "Table"
    method: str
    url: str
    scheme: str  # "Bearer", "SharedKey", "SharedKeyLite", "SAS", "UserDelegationSAS" or "none"

    def __str__(self) -> str:
        url = _SIGNATURE.sub(r"\1<redacted>", self.url)  # a SAS signature is a credential
        return f"{self.scheme} {self.service} {self.method} {url}"


def _scheme(headers: dict[str, object], url: str) -> str:
    auth = headers.get("authorization")
    if isinstance(auth, str) and auth.strip():
        return auth.strip().split(" ", 1)[0]
    query = parse_qs(urlsplit(url).query)
    if "sig" in query:
        return "UserDelegationSAS" if "skoid" in query else "SAS"
    return "none"


def parse_debug_log(text: str) -> list[AzuriteRequest]:
    """Every request line of an Azurite debug log (see the module docstring for the format)."""
    decoder = json.JSONDecoder()
    found = []
    for line in text.splitlines():
        match = _REQUEST_LINE.match(line)
        if not match:
            continue
        try:
            headers, _ = decoder.raw_decode(line, match.end())
        except ValueError:
            headers = {}
        if not isinstance(headers, dict):
            headers = {}
        url = match["url"]
        found.append(AzuriteRequest(match["service"], match["method"], url, _scheme(headers, url)))
    return found


@dataclass
class Azurite:
    """One Azurite process; `location` set means on-disk storage (survives a restart), else in-memory.

    `tls` serves HTTPS with those PEM files; `oauth` (needs `tls`) accepts bearer tokens; `debug`
    (implied by `oauth`) keeps Azurite's debug log, which the request-inspection methods read.
    """

    location: Path | None = None
    blob_port: int = field(default_factory=free_port)
    queue_port: int = field(default_factory=free_port)
    table_port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    oauth: bool = False
    tls: CertFiles | None = None
    debug: bool = False
    _log: Path | None = None
    _debug_log: Path | None = None

    def __post_init__(self) -> None:
        if self.oauth and self.tls is None:
            raise ValueError("Azurite takes bearer tokens over HTTPS only: oauth=True needs tls=")
        self.debug = self.debug or self.oauth

    @property
    def scheme(self) -> str:
        return "https" if self.tls else "http"

    @property
    def blob_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.blob_port}/{ACCOUNT}"

    @property
    def queue_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.queue_port}/{ACCOUNT}"

    @property
    def table_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.table_port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        """With the account key: what local runs use (and, in OAuth mode, what the key detector must catch)."""
        return (
            f"DefaultEndpointsProtocol={self.scheme};AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"BlobEndpoint={self.blob_url};QueueEndpoint={self.queue_url};TableEndpoint={self.table_url};"
        )

    @property
    def debug_log(self) -> Path | None:
        return self._debug_log

    def start(self) -> Azurite:
        args = [
            azurite_binary(),
            "--blobHost", "127.0.0.1", "--blobPort", str(self.blob_port),
            "--queueHost", "127.0.0.1", "--queuePort", str(self.queue_port),
            "--tableHost", "127.0.0.1", "--tablePort", str(self.table_port),
            "--skipApiVersionCheck", "--disableProductStyleUrl", "--silent", "--disableTelemetry",
        ]
        if self.location is None:
            args.append("--inMemoryPersistence")
        else:
            args += ["--location", str(self.location)]
        if self.tls is not None:
            args += ["--cert", str(self.tls.cert), "--key", str(self.tls.key)]
        if self.oauth:
            args += ["--oauth", "basic"]
        if self.debug:
            if self._debug_log is None:  # kept across restart(), so marks stay valid; Azurite appends
                self._debug_log = Path(tempfile.mkstemp(prefix="azurite-debug-", suffix=".log")[1])
            args += ["--debug", str(self._debug_log)]
        self._log = Path(tempfile.mkstemp(prefix="azurite-", suffix=".log")[1])
        with open(self._log, "wb") as log:
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        for port in (self.blob_port, self.queue_port, self.table_port):
            _wait_listening(port, self.proc, deadline)
        return self

    def stop(self) -> None:
        self._stop()
        if self._debug_log and self._debug_log.exists():
            os.unlink(self._debug_log)
        self._debug_log = None

    def _stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if self._log and self._log.exists():
            os.unlink(self._log)

    def restart(self) -> None:
        """Stop and start on the same ports (only meaningful with `location`); the debug log carries on."""
        self._stop()
        self.start()

    # --- what clients sent (debug mode) -------------------------------------------------------------

    def log_mark(self) -> int:
        """A position in the debug log after every request answered so far: pass it as `since`."""
        return self._sync_log()

    def requests_since(self, since: int = 0) -> list[AzuriteRequest]:
        """Every request Azurite received after `since` (a `log_mark()`), oldest first."""
        self._sync_log()
        assert self._debug_log is not None
        with open(self._debug_log, "rb") as log:
            log.seek(since)
            text = log.read().decode("utf-8", errors="replace")
        return [r for r in parse_debug_log(text) if _SYNC_PATH not in r.url]

    def auth_schemes(self, since: int = 0) -> Counter[str]:
        """How many requests used each authorization scheme ("Bearer", "SharedKey", "none", ...)."""
        return Counter(r.scheme for r in self.requests_since(since))

    def key_based_requests(self, since: int = 0) -> list[AzuriteRequest]:
        """Requests authorised with the account key (Shared Key, Shared Key Lite or a key-signed SAS)."""
        return [r for r in self.requests_since(since) if r.scheme in KEY_SCHEMES]

    def _sync_log(self) -> int:
        """Make one marked request and wait until the log shows it, so every earlier request is in the file.

        Azurite writes its debug log asynchronously (one logger for all three services, in order), so a
        request answered a moment ago may not be on disk yet; the marker's line comes after all of them.
        """
        if self._debug_log is None or self.proc is None:
            raise RuntimeError("Azurite is not running with a debug log (start it with debug=True or oauth=True)")
        marker = _SYNC_PATH + uuid.uuid4().hex
        start = self._debug_log.stat().st_size
        conn: http.client.HTTPConnection
        if self.tls is not None:
            context = ssl.create_default_context()
            context.check_hostname = False  # our own child process on loopback; only its log matters here
            context.verify_mode = ssl.CERT_NONE
            conn = http.client.HTTPSConnection("127.0.0.1", self.blob_port, timeout=10, context=context)
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.blob_port, timeout=10)
        try:
            conn.request("GET", f"/{ACCOUNT}/{marker}?restype=container")
            conn.getresponse().read()
        finally:
            conn.close()
        needle = marker.encode()
        deadline = time.monotonic() + 10
        while True:
            with open(self._debug_log, "rb") as log:
                log.seek(start)
                data = log.read()
            at = data.find(needle)
            if at >= 0:
                end = data.find(b"\n", at)
                return start + (len(data) if end < 0 else end + 1)
            if time.monotonic() > deadline:
                raise RuntimeError("Azurite's debug log did not show a request in time")
            time.sleep(0.02)  # polling a file being written by another process, as for a port
