"""zapier/code-step.js run the way "Code by Zapier" runs it, against a local HTTP server that records requests.

Zapier wraps the step's code in an async function that receives `inputData` and `fetch`; the runner
below does the same with node's own fetch, so the file under test is exactly what a user pastes.
"""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import data_path

ROOT = Path(__file__).resolve().parent.parent
SNIPPET = ROOT / "zapier" / "code-step.js"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

API_KEY = "test-sync-key-0123456789"
FUNCTION_KEY = "fn-key-abcdef"

# The keys the original app's Zap sends (FACTS.md, "Zapier payload"), besides apiKey and apiEndpoint.
ORIGINAL_KEYS = [
    "activityType",
    "activityStartTimeIso",
    "activityNotes",
    "activityPathLatitude",
    "activityPathLongitude",
    "activityPathAltitude",
    "activityPathTimestamp",
    "activityPathType",
    "activityHeartRateTimestamp",
    "activityHeartRateBpm",
]

RUNNER = r"""
const fs = require('fs');
const code = fs.readFileSync(process.argv[2], 'utf8');
const inputData = JSON.parse(fs.readFileSync(0, 'utf8'));
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
new AsyncFunction('inputData', 'fetch', code)(inputData, globalThis.fetch).then(
  (output) => process.stdout.write(JSON.stringify({ ok: true, output })),
  (err) => process.stdout.write(JSON.stringify({ ok: false, error: String(err && err.message) })),
);
"""

SMALL_PAYLOAD = {
    "activityType": "Running",
    "activityStartTimeIso": "2022-09-26T18:52:22+01:00",
    "activityNotes": "Short one, ünïcode & \"quotes\"",
    "activityPathLatitude": "51.33598,51.33592",
    "activityPathLongitude": "-0.574555,-0.574431",
    "activityPathAltitude": "23.9,24.1",
    "activityPathTimestamp": "0,11.577",
    "activityPathType": "start,end",
    "activityHeartRateTimestamp": "10.557",
    "activityHeartRateBpm": "160",
}


@dataclass
class Recorder:
    """What the fake app received, and how it answers."""

    status: int = 202
    body: str = '{"id":"abc","status":"queued"}'
    stall: bool = False
    requests: list[dict[str, Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    stalled: threading.Event = field(default_factory=threading.Event)
    still_stalled: bool = False


@pytest.fixture
def app() -> Iterator[tuple[Recorder, str]]:
    rec = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length)
            rec.requests.append({"method": "POST", "path": self.path, "headers": dict(self.headers), "raw": raw})
            if rec.stall:
                rec.still_stalled = True
                rec.stalled.set()
                rec.release.wait(timeout=60)
                rec.still_stalled = False
            payload = rec.body.encode()
            try:
                self.send_response(rec.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except OSError:
                pass  # the snippet gave up and closed the connection

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield rec, f"http://127.0.0.1:{server.server_address[1]}/api/runkeeper?code={FUNCTION_KEY}"
    finally:
        rec.release.set()
        server.shutdown()
        server.server_close()


def run_snippet(input_data: dict[str, Any], tmp_path: Path, code: str | None = None) -> dict[str, Any]:
    runner = tmp_path / "runner.js"
    runner.write_text(RUNNER)
    snippet = SNIPPET
    if code is not None:
        snippet = tmp_path / "code-step.js"
        snippet.write_text(code)
    done = subprocess.run(
        [NODE or "node", str(runner), str(snippet)],
        input=json.dumps(input_data),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "UnhandledPromiseRejection" not in done.stderr
    return json.loads(done.stdout)


def closed_port() -> int:
    """A local port with nothing listening on it (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_no_secret(text: str) -> None:
    assert API_KEY not in text
    assert FUNCTION_KEY not in text


def test_posts_the_real_zapier_payload_with_the_key_in_a_header(app: tuple[Recorder, str], tmp_path: Path) -> None:
    rec, url = app
    payload = json.loads(data_path("zapier", "example-seed-app.json").read_text())
    assert set(ORIGINAL_KEYS) <= set(payload)
    result = run_snippet({**payload, "apiKey": API_KEY, "apiEndpoint": url}, tmp_path)

    assert result == {"ok": True, "output": {"status": 202, "body": '{"id":"abc","status":"queued"}'}}
    (req,) = rec.requests
    assert req["method"] == "POST"
    assert req["path"] == f"/api/runkeeper?code={FUNCTION_KEY}"
    headers = {k.lower(): v for k, v in req["headers"].items()}
    assert headers["x-api-key"] == API_KEY
    assert headers["content-type"].startswith("application/json")
    assert json.loads(req["raw"]) == payload  # every trigger field, unchanged; apiKey/apiEndpoint dropped


def test_small_payload_round_trips_exactly_including_unicode(app: tuple[Recorder, str], tmp_path: Path) -> None:
    rec, url = app
    rec.status, rec.body = 200, '{"id":"abc","status":"synced"}'
    result = run_snippet({**SMALL_PAYLOAD, "apiKey": API_KEY, "apiEndpoint": url}, tmp_path)
    assert result["output"] == {"status": 200, "body": '{"id":"abc","status":"synced"}'}
    body = json.loads(rec.requests[0]["raw"].decode("utf-8"))
    assert body == SMALL_PAYLOAD
    assert "apiKey" not in body and "apiEndpoint" not in body


def test_constants_are_used_when_input_data_has_no_endpoint_or_key(app: tuple[Recorder, str], tmp_path: Path) -> None:
    rec, url = app
    code = SNIPPET.read_text()
    code = code.replace("const ENDPOINT = '';", f"const ENDPOINT = '{url}';", 1)
    code = code.replace("const API_KEY = '';", f"const API_KEY = '{API_KEY}';", 1)
    result = run_snippet(SMALL_PAYLOAD, tmp_path, code)
    assert result["output"]["status"] == 202
    assert rec.requests[0]["headers"]["X-Api-Key"] == API_KEY


def test_input_data_wins_over_the_constants(app: tuple[Recorder, str], tmp_path: Path) -> None:
    rec, url = app
    code = SNIPPET.read_text()
    code = code.replace("const ENDPOINT = '';", "const ENDPOINT = 'http://127.0.0.1:9/nowhere';", 1)
    code = code.replace("const API_KEY = '';", "const API_KEY = 'the-constant-key';", 1)
    result = run_snippet({**SMALL_PAYLOAD, "apiKey": API_KEY, "apiEndpoint": url}, tmp_path, code)
    assert result["ok"] is True
    assert rec.requests[0]["headers"]["X-Api-Key"] == API_KEY


def test_error_answer_fails_the_zap_with_status_and_problems_but_no_secret(
    app: tuple[Recorder, str], tmp_path: Path
) -> None:
    rec, url = app
    rec.status = 400
    rec.body = json.dumps(
        {"error": "invalid payload", "problems": [{"field": "activityType", "message": "missing"}]}
    )
    result = run_snippet({**SMALL_PAYLOAD, "apiKey": API_KEY, "apiEndpoint": url}, tmp_path)
    assert result["ok"] is False
    assert "HTTP 400" in result["error"] and "activityType" in result["error"] and "127.0.0.1" in result["error"]
    assert_no_secret(result["error"])


def test_wrong_key_answer_fails_the_zap(app: tuple[Recorder, str], tmp_path: Path) -> None:
    rec, url = app
    rec.status, rec.body = 401, '{"error":"missing or wrong API key"}'
    result = run_snippet({**SMALL_PAYLOAD, "apiKey": API_KEY, "apiEndpoint": url}, tmp_path)
    assert result["ok"] is False and "HTTP 401" in result["error"]
    assert_no_secret(result["error"])


def test_slow_app_times_out_before_zapiers_limit_and_abandons_the_request(
    app: tuple[Recorder, str], tmp_path: Path
) -> None:
    rec, url = app
    rec.stall = True
    result = run_snippet({**SMALL_PAYLOAD, "apiKey": API_KEY, "apiEndpoint": url}, tmp_path)
    assert rec.stalled.is_set()  # the request did reach the app
    assert result["ok"] is False
    assert "no answer" in result["error"] and "800 ms" in result["error"] and "replay" in result["error"]
    assert_no_secret(result["error"])
    # node finished while the app was still holding the request: the snippet did not wait for it.
    assert rec.still_stalled is True


def test_timeout_constant_stays_under_zapiers_one_second() -> None:
    match = re.search(r"const TIMEOUT_MS = (\d+);", SNIPPET.read_text())
    assert match and 0 < int(match.group(1)) <= 900


def test_unreachable_app_gives_a_clear_error_without_the_function_key(tmp_path: Path) -> None:
    port = closed_port()
    endpoint = f"http://127.0.0.1:{port}/api/runkeeper?code={FUNCTION_KEY}"
    result = run_snippet({**SMALL_PAYLOAD, "apiKey": API_KEY, "apiEndpoint": endpoint}, tmp_path)
    assert result["ok"] is False
    assert "could not reach" in result["error"] and f"127.0.0.1:{port}" in result["error"]
    assert_no_secret(result["error"])


def test_missing_endpoint_and_key_are_both_named(tmp_path: Path) -> None:
    result = run_snippet(SMALL_PAYLOAD, tmp_path)
    assert result["ok"] is False
    assert "apiEndpoint" in result["error"] and "apiKey" in result["error"]


def test_bad_endpoint_is_named(tmp_path: Path) -> None:
    result = run_snippet({**SMALL_PAYLOAD, "apiKey": API_KEY, "apiEndpoint": "not a url"}, tmp_path)
    assert result["ok"] is False and "apiEndpoint is not a URL" in result["error"]


def test_readme_maps_every_key_the_snippet_forwards() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "## Zapier set-up" in readme
    section = readme.split("## Zapier set-up", 1)[1].split("\n## ", 1)[0]
    for key in [*ORIGINAL_KEYS, "apiKey", "apiEndpoint"]:
        assert f"`{key}`" in section, f"README's Zapier table does not map {key}"
    assert "zapier/code-step.js" in section
