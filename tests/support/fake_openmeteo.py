"""A fake Open-Meteo weather API: a real threaded HTTP server on 127.0.0.1 serving /v1/archive and /v1/forecast.

Answers like the real one (https://open-meteo.com/en/docs/historical-weather-api): `hourly=temperature_2m`
with `start_date`/`end_date` gives every hour of those days (GMT) as "YYYY-MM-DDTHH:MM"; a missing or bad
parameter is 400 `{"error": true, "reason": ...}`.

Knobs: `temperature(hour)` (aware UTC hour -> °C; default 10 + hour of day / 2), `null_hours` (hours
answered as null, as for days the archive has not got yet), `fail_status` (answer every request with
it), `delay` (hold each answer this long: beyond the client's timeout is a timeout), `garbage` (a 200
that is not JSON). Inspection: `calls` (path and query of every request).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


def default_temperature(hour: datetime) -> float:
    return 10 + hour.hour / 2


class FakeOpenMeteo:
    def __init__(self) -> None:
        self.temperature: Callable[[datetime], float] = default_temperature
        self.null_hours: set[datetime] = set()
        self.fail_status: int | None = None
        self.delay = 0.0
        self.garbage = False
        self.calls: list[tuple[str, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._server: ThreadingHTTPServer | None = None

    def start(self) -> FakeOpenMeteo:
        server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        server.daemon_threads = True
        server.fake = self  # type: ignore[attr-defined]
        self._server = server
        threading.Thread(target=server.serve_forever, name="fake-open-meteo", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def answer(self, path: str, query: dict[str, str]) -> tuple[int, bytes]:
        with self._lock:
            self.calls.append((path, dict(query)))
        if self.fail_status:
            return self.fail_status, json.dumps({"error": True, "reason": "fake failure"}).encode()
        if self.garbage:
            return 200, b"<html>not json</html>"
        if path not in ("/v1/archive", "/v1/forecast"):
            return 404, json.dumps({"error": True, "reason": "Not Found"}).encode()
        problem = _check(query)
        if problem:
            return 400, json.dumps({"error": True, "reason": problem}).encode()
        first, last = date.fromisoformat(query["start_date"]), date.fromisoformat(query["end_date"])
        hours = [datetime(first.year, first.month, first.day, tzinfo=UTC) + timedelta(hours=h)
                 for h in range(((last - first).days + 1) * 24)]
        values = [None if h in self.null_hours else round(self.temperature(h), 1) for h in hours]
        body = {
            "latitude": float(query["latitude"]), "longitude": float(query["longitude"]), "timezone": "GMT",
            "hourly_units": {"time": "iso8601", "temperature_2m": "°C"},
            "hourly": {"time": [h.strftime("%Y-%m-%dT%H:%M") for h in hours], "temperature_2m": values},
        }
        return 200, json.dumps(body).encode()


def _check(q: dict[str, str]) -> str | None:
    for name in ("latitude", "longitude", "start_date", "end_date", "hourly"):
        if not q.get(name):
            return f"Parameter '{name}' is required"
    try:
        lat, lon = float(q["latitude"]), float(q["longitude"])
        first, last = date.fromisoformat(q["start_date"]), date.fromisoformat(q["end_date"])
    except ValueError:
        return "Cannot initialize from invalid String value"
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return "Latitude must be in range of -90 to 90°. Given: " + q["latitude"]
    if last < first:
        return "End-date must be larger or equals than start-date"
    if q["hourly"] != "temperature_2m":
        return "Cannot initialize WeatherVariable from invalid String value " + q["hourly"]
    return None


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_GET(self) -> None:
        fake: FakeOpenMeteo = self.server.fake  # type: ignore[attr-defined]
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        status, body = fake.answer(parts.path, query)
        if fake.delay and fake._stopping.wait(fake.delay):
            self.close_connection = True
            return
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except OSError:  # the client gave up first (its timeout)
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        pass
