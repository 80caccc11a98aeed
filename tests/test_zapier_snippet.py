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
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from tests.support.datasets import Seed

ROOT = Path(__file__).resolve().parent.parent
SNIPPET = ROOT / "zapier" / "code-step.js"
NODE = shutil.which("node")

pytestmark = pytest.mark.skipif(NODE is None, reason="node is not installed")

API_KEY = "test-sync-key-0123456789"
FUNCTION_KEY = "fn-key-abcdef"

# The keys the original app's Zap sends (fields of Zapier's Runkeeper "New Activity" trigger), besides apiKey
# and apiEndpoint.
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
const exitWhenSettled = process.argv[3] === '--exit-when-settled';
const inputData = JSON.parse(fs.readFileSync(0, 'utf8'));
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
// One line on stdout as soon as the step settles: the test reads it while node may still be running
// (a request the step stopped waiting for keeps node alive until its answer comes).
const settle = (result) => {
  fs.writeSync(1, JSON.stringify(result) + '\n');
  if (exitWhenSettled) process.exit(0); // like Zapier ending the step's sandbox the moment the step ends
};
new AsyncFunction('inputData', 'fetch', code)(inputData, globalThis.fetch).then(
  (output) => settle({ ok: true, output }),
  (err) => settle({ ok: false, error: String(err && err.message) }),
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
    delay: float = 0.0  # seconds between reading the whole request and answering (a cold start)
    requests: list[dict[str, Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    stalled: threading.Event = field(default_factory=threading.Event)
    still_stalled: bool = False
    received: threading.Event = field(default_factory=threading.Event)  # a request was read to its end (or failed)
    answered: threading.Event = field(default_factory=threading.Event)  # its answer was written (or failed)
    answer_error: str | None = None
    caller_connected: bool | None = None  # whether the caller still held the connection open when the answer was ready


def caller_connected(conn: socket.socket) -> bool:
    """True while the peer keeps the connection open (no FIN, no reset), without consuming anything."""
    try:
        return conn.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
    except BlockingIOError:
        return True  # open, nothing more sent
    except OSError:
        return False  # reset


@pytest.fixture
def app() -> Iterator[tuple[Recorder, str]]:
    rec = Recorder()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw, read_error = b"", None
            try:
                while len(raw) < length:  # read as it arrives: a reset or an early close shows as a short body
                    chunk = self.rfile.read1(length - len(raw))
                    if not chunk:
                        break
                    raw += chunk
            except OSError as exc:
                read_error = repr(exc)
            rec.requests.append({
                "method": "POST", "path": self.path, "headers": dict(self.headers), "raw": raw,
                "content_length": length, "read_error": read_error,
            })
            rec.received.set()
            if rec.stall:
                rec.still_stalled = True
                rec.stalled.set()
                rec.release.wait(timeout=60)
                rec.still_stalled = False
            if rec.delay:
                time.sleep(rec.delay)  # the app is starting: this is the scenario, not synchronisation
            rec.caller_connected = caller_connected(self.connection)
            payload = rec.body.encode()
            try:
                self.send_response(rec.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                self.wfile.flush()
            except OSError as exc:
                rec.answer_error = repr(exc)  # the caller had gone (node exited)
            rec.answered.set()

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


class Step:
    """The snippet running in node; `result()` is the step's outcome, available before node exits."""

    def __init__(self, input_data: dict[str, Any], tmp_path: Path, code: str | None = None,
                 *, exit_when_settled: bool = False) -> None:
        runner = tmp_path / "runner.js"
        runner.write_text(RUNNER)
        snippet = SNIPPET
        if code is not None:
            snippet = tmp_path / "code-step.js"
            snippet.write_text(code)
        args = [NODE or "node", str(runner), str(snippet)]
        if exit_when_settled:
            args.append("--exit-when-settled")
        source = tmp_path / "input.json"
        source.write_text(json.dumps(input_data))
        with source.open() as stdin:
            self.proc = subprocess.Popen(args, stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def result(self, timeout: float = 30) -> dict[str, Any]:
        assert self.proc.stdout is not None
        lines: list[str] = []
        reader = threading.Thread(target=lambda: lines.append(self.proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        assert lines and lines[0], f"the step did not settle within {timeout} s"
        return json.loads(lines[0])

    def finish(self, timeout: float = 30) -> None:
        """Node exits by itself (nothing left hanging for ever), cleanly, with no unhandled rejection."""
        _, stderr = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, stderr
        assert "UnhandledPromiseRejection" not in stderr and "Unhandled" not in stderr, stderr

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=30)
        for pipe in (self.proc.stdout, self.proc.stderr):
            if pipe is not None and not pipe.closed:
                pipe.close()


@pytest.fixture
def start_step() -> Iterator[Callable[..., Step]]:
    steps: list[Step] = []

    def start(*args: Any, **kwargs: Any) -> Step:
        steps.append(Step(*args, **kwargs))
        return steps[-1]

    yield start
    for step in steps:
        step.kill()


def run_snippet(input_data: dict[str, Any], tmp_path: Path, code: str | None = None) -> dict[str, Any]:
    step = Step(input_data, tmp_path, code)
    try:
        result = step.result()
        step.finish()
        return result
    finally:
        step.kill()


def closed_port() -> int:
    """A local port with nothing listening on it (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def assert_no_secret(text: str) -> None:
    assert API_KEY not in text
    assert FUNCTION_KEY not in text


def test_posts_the_zapier_payload_with_the_key_in_a_header(app: tuple[Recorder, str], tmp_path: Path,
                                                           seed: Seed) -> None:
    """The real payload, then the synthetic one (tests/conftest.py's `seed`)."""
    rec, url = app
    payload = seed.payload()
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


def big_payload(points: int) -> dict[str, str]:
    """A Zapier-style activity with `points` GPS points (about 45 bytes of JSON each)."""
    def column(fmt: Callable[[int], str]) -> str:
        return ",".join(fmt(i) for i in range(points))

    types = ["start", *["gps"] * (points - 2), "end"]
    return {
        **SMALL_PAYLOAD,
        "activityPathLatitude": column(lambda i: f"{51.3 + i * 1e-5:.6f}"),
        "activityPathLongitude": column(lambda i: f"{-0.57 + i * 1e-5:.6f}"),
        "activityPathAltitude": column(lambda i: f"{20 + (i % 50) / 10:.1f}"),
        "activityPathTimestamp": column(lambda i: f"{i * 1.5:.1f}"),
        "activityPathType": ",".join(types),
        "activityHeartRateTimestamp": column(lambda i: f"{i * 1.5:.1f}"),
        "activityHeartRateBpm": column(lambda i: str(120 + i % 40)),
    }


def assert_cold_start_message(error: str) -> None:
    assert "127.0.0.1" in error and "did not answer within 900 ms" in error
    assert "starting" in error and "cold start" in error
    assert "was sent" in error and "will most likely still be processed" in error
    assert "GET http://127.0.0.1:" in error and "/api/activities?code=<function key>" in error
    assert "X-Api-Key" in error
    assert "Replaying this run is always safe" in error
    assert "replay this run" not in error  # the old advice, given while aborting the request
    assert_no_secret(error)


def assert_whole_request_arrived(rec: Recorder, payload: dict[str, str]) -> None:
    assert rec.received.wait(timeout=10), "the request never reached the server"
    (req,) = rec.requests
    assert req["read_error"] is None  # the client did not reset the connection under the server
    expected = json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    assert req["content_length"] == len(expected)
    assert req["raw"] == expected  # every byte of the body, as the snippet sent it
    assert req["headers"]["X-Api-Key"] == API_KEY


def test_slow_app_fails_the_step_before_zapiers_limit_without_abandoning_the_request(
    app: tuple[Recorder, str], tmp_path: Path, start_step: Callable[..., Step]
) -> None:
    # Was: the snippet aborted its request at 800 ms and asked for a replay. Now it stops waiting and
    # says the activity was sent, while the request stays open for the app to answer.
    rec, url = app
    rec.stall = True
    step = start_step({**SMALL_PAYLOAD, "apiKey": API_KEY, "apiEndpoint": url}, tmp_path)
    result = step.result()
    assert rec.stalled.is_set()  # the request did reach the app
    assert result["ok"] is False
    assert_cold_start_message(result["error"])
    # The step ended while the app was still holding the request: the snippet did not wait for it...
    assert rec.still_stalled is True
    # ...and did not cut it off either: the app's late answer is delivered and node then exits cleanly.
    rec.release.set()
    assert rec.answered.wait(timeout=10)
    assert rec.caller_connected is True and rec.answer_error is None
    step.finish()


def test_cold_start_fails_the_step_and_the_app_still_receives_the_whole_request(
    app: tuple[Recorder, str], tmp_path: Path, start_step: Callable[..., Step]
) -> None:
    rec, url = app
    rec.delay = 1.5  # the app answers 1.5 s after it has read the request, like a cold start
    payload = big_payload(5000)
    step = start_step({**payload, "apiKey": API_KEY, "apiEndpoint": url}, tmp_path)
    result = step.result()
    assert result["ok"] is False  # the step failed before the app answered (a 202 would have made it pass)
    assert_cold_start_message(result["error"])
    assert_whole_request_arrived(rec, payload)
    assert rec.answered.wait(timeout=10)
    assert rec.caller_connected is True  # the connection was still open for the answer: nothing was aborted
    assert rec.answer_error is None
    step.finish()


def test_cold_start_request_is_whole_even_when_the_sandbox_ends_with_the_step(
    app: tuple[Recorder, str], tmp_path: Path, start_step: Callable[..., Step]
) -> None:
    # Zapier may freeze or end the step's sandbox as soon as the step fails. Node exits at that moment
    # here: the whole request has already been written, so the app still has all of it.
    rec, url = app
    rec.delay = 1.5
    payload = big_payload(5000)
    step = start_step({**payload, "apiKey": API_KEY, "apiEndpoint": url}, tmp_path, exit_when_settled=True)
    result = step.result()
    assert result["ok"] is False
    assert_cold_start_message(result["error"])
    assert_whole_request_arrived(rec, payload)
    step.finish()


def test_snippet_never_aborts_its_request() -> None:
    code = SNIPPET.read_text()
    assert "new AbortController" not in code and ".abort(" not in code
    assert "signal" not in code  # no abort signal handed to fetch


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
