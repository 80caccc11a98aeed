"""Slowing down key guessing: after LIMIT wrong keys from one client within WINDOW, sign-in waits.

Per process and in memory: an instance of the app forgets on restart and instances do not share counts,
which is enough to turn guessing a 32-character key from hopeless into more hopeless without storage.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable

LIMIT = 5
WINDOW = 15 * 60.0  # seconds
MAX_CLIENTS = 10_000  # memory bound: the oldest client is forgotten first


class Throttle:
    def __init__(self, *, limit: int = LIMIT, window: float = WINDOW,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self._failures: dict[str, list[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> list[float]:
        times = [t for t in self._failures.get(client, []) if now - t < self.window]
        if times:
            self._failures[client] = times
        else:
            self._failures.pop(client, None)
        return times

    def wait(self, client: str) -> int:
        """Seconds this client must wait before another sign-in attempt is looked at (0: go ahead)."""
        with self._lock:
            now = self.clock()
            times = self._recent(client, now)
            if len(times) < self.limit:
                return 0
            return max(1, math.ceil(times[-self.limit] + self.window - now))

    def failed(self, client: str) -> None:
        with self._lock:
            now = self.clock()
            self._recent(client, now)
            if client not in self._failures and len(self._failures) >= MAX_CLIENTS:
                self._failures.pop(next(iter(self._failures)))
            self._failures.setdefault(client, []).append(now)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(client, None)


THROTTLE = Throttle()


def client_of(forwarded_for: str | None, fallback: str = "unknown") -> str:
    """The client's address: the last X-Forwarded-For entry (the one the platform's front end added), no port."""
    last = (forwarded_for or "").split(",")[-1].strip()
    if not last:
        return fallback
    if last.startswith("["):  # [v6]:port
        return last[1:].split("]")[0]
    if last.count(":") == 1:  # v4:port
        return last.split(":")[0]
    return last
