"""Drains the activity queue the way the Azure Functions host would: the ONE place that knows its semantics.

From host.json's ``extensions.queues``: messages are decoded per ``messageEncoding`` (base64), handed to
the user function as ``azure.functions.queue.QueueMessage`` with their dequeue count, deleted when the
function returns, made visible again after ``visibilityTimeout`` when it raises, and moved to
``<queue>-poison`` once a failing message has been dequeued ``maxDequeueCount`` times (or arrives
already past it, as after a worker killed mid-run). A batch of up to ``batchSize`` messages (or
``workers``) runs concurrently, each message held invisible for ``lease`` seconds while it runs.

Usable as a library (``Drain(storage).run()``) or as a worker process (``python -m tests.support.drain``), so a
test can kill a real worker mid-upload.
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.functions.queue import QueueMessage
from azure.storage.queue import QueueClient

from shared.config import load
from shared.storage import clients as store
from shared.storage.clients import Storage

ROOT = Path(__file__).resolve().parents[2]
HOST_JSON = ROOT / "host.json"
POLL = 0.05  # seconds between looks at a queue whose messages are all invisible (polling, not synchronising)
log = logging.getLogger("tests.support.drain")

Handler = Callable[[func.QueueMessage], None]


def _timespan(text: str) -> float:
    """host.json's "hh:mm:ss" (optionally "d.hh:mm:ss") in seconds."""
    days = 0
    if "." in text.split(":")[0]:
        d, text = text.split(".", 1)
        days = int(d)
    h, m, s = text.split(":")
    return days * 86400 + int(h) * 3600 + int(m) * 60 + float(s)


@dataclass(frozen=True)
class HostQueueSettings:
    max_dequeue_count: int = 5
    visibility_timeout: float = 0.0
    message_encoding: str = "base64"
    batch_size: int = 16


def host_settings(path: Path = HOST_JSON) -> HostQueueSettings:
    queues = json.loads(path.read_text(encoding="utf-8")).get("extensions", {}).get("queues", {})
    return HostQueueSettings(
        max_dequeue_count=int(queues.get("maxDequeueCount", 5)),
        visibility_timeout=_timespan(queues.get("visibilityTimeout", "00:00:00")),
        message_encoding=str(queues.get("messageEncoding", "base64")).lower(),
        batch_size=int(queues.get("batchSize", 16)),
    )


def _default_handler() -> Handler:
    from tests.support.host import function

    return function("sync_activity")


def _default_poison_handler() -> Handler:
    from tests.support.host import function

    return function("sync_activity_poison")


@dataclass
class Stats:
    succeeded: int = 0
    failed: int = 0  # function raised: released for a retry
    poisoned: list[bytes] = field(default_factory=list)  # bodies moved to the poison queue
    poison_handled: int = 0
    errors: list[BaseException] = field(default_factory=list)
    dequeue_counts: list[int] = field(default_factory=list)  # of every delivery, in order


def raw_queue(storage: Storage, name: str) -> QueueClient:
    """A queue client without the app's base64 policies: the drain applies host.json's encoding itself.

    `name` as the app calls it (store.ACTIVITY_QUEUE): the storage's prefix goes before it, as store.queue does.
    """
    name = storage.name(name)
    if storage.connection_string is not None:
        return QueueClient.from_connection_string(storage.connection_string, name)
    assert storage.queue_url is not None
    return QueueClient(storage.queue_url, name, credential=store.credential(storage.managed_identity,
                                                                              storage.client_id))


def storage_settings(storage: Storage) -> dict[str, str]:
    """The app settings that describe `storage`, in the form it came in (Storage.from_settings reads them back),
    with its name prefix (STORAGE_NAME_PREFIX) when it has one."""
    prefix = {store.NAME_PREFIX: storage.prefix} if storage.prefix else {}
    if storage.connection_string is not None:
        return {store.CONNECTION: storage.connection_string, **prefix}
    found = {store.SERVICE_URIS[kind]: url or "" for kind, url in
             (("blob", storage.blob_url), ("queue", storage.queue_url), ("table", storage.table_url))}
    found.update(prefix)
    if storage.managed_identity:
        found[store.CREDENTIAL] = "managedidentity"
    if storage.client_id:
        found[store.CLIENT_ID] = storage.client_id
    return found


def set_storage_env(monkeypatch: Any, storage: Storage) -> None:
    """Put `storage` in the environment in the form it came in, the other form removed, as the host reads it
    (and its name prefix, so `shared.config.load()` and any child process reach the same tables and queues)."""
    for name in (store.CONNECTION, *store.IDENTITY_SETTINGS, store.NAME_PREFIX):
        monkeypatch.delenv(name, raising=False)
    for name, value in storage_settings(storage).items():
        monkeypatch.setenv(name, value)


class Drain:
    """A host-like consumer of one queue: `queue` as the app calls it (default store.ACTIVITY_QUEUE), under the
    storage's name prefix (the Functions host listens on the unprefixed name: tests give each its own prefix)."""

    def __init__(
        self,
        storage: Storage,
        *,
        queue: str | None = None,
        workers: int = 1,
        release_delay: float | None = None,
        lease: float = 600.0,
        handler: Handler | None = None,
        poison_handler: Handler | None = None,
        run_poison: bool = True,
        host: HostQueueSettings | None = None,
    ) -> None:
        self.host = host or host_settings()
        base = queue or store.ACTIVITY_QUEUE
        self.queue_name = storage.name(base)  # the real names, for messages
        self.poison_name = storage.name(base + "-poison")
        self.workers = max(1, workers)
        # host.json's visibilityTimeout, unless a test shortens it (it cannot wait 30 s per retry).
        self.release_delay = self.host.visibility_timeout if release_delay is None else release_delay
        self.lease = lease
        self.handler = handler or _default_handler()
        self.poison_handler = poison_handler or (_default_poison_handler() if run_poison else None)
        self.run_poison = run_poison
        self.stats = Stats()
        # Raw clients: the encoding is applied here, by the rules of host.json, as the host does.
        self.queue = raw_queue(storage, base)
        self.poison = raw_queue(storage, base + "-poison")
        for client in (self.queue, self.poison):
            try:
                client.create_queue()
            except Exception:  # exists already
                pass
        self._pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="drain")

    # -- encoding -----------------------------------------------------------------------------------
    def _decode(self, content: str | bytes) -> bytes:
        raw = content.encode() if isinstance(content, str) else content
        if self.host.message_encoding == "base64":
            return base64.b64decode(raw)
        return raw

    def _message(self, msg: Any) -> QueueMessage:
        return QueueMessage(
            id=msg.id, body=self._decode(msg.content), dequeue_count=msg.dequeue_count,
            pop_receipt=msg.pop_receipt, insertion_time=msg.inserted_on, expiration_time=msg.expires_on,
            time_next_visible=msg.next_visible_on,
        )

    # -- one delivery -------------------------------------------------------------------------------
    def _to_poison(self, msg: Any) -> None:
        self.poison.send_message(msg.content, time_to_live=-1)  # the same encoded text, as the host copies it
        self.queue.delete_message(msg.id, msg.pop_receipt)
        self.stats.poisoned.append(self._decode(msg.content))

    def _deliver(self, msg: Any) -> None:
        self.stats.dequeue_counts.append(msg.dequeue_count)
        if msg.dequeue_count > self.host.max_dequeue_count:  # came back after a crash past the limit
            self._to_poison(msg)
            return
        try:
            self.handler(self._message(msg))
        except Exception as exc:  # the host logs it and retries; so do we
            self.stats.failed += 1
            self.stats.errors.append(exc)
            log.info("drain: delivery %d of message %s raised %r", msg.dequeue_count, msg.id, exc)
            if msg.dequeue_count >= self.host.max_dequeue_count:
                self._to_poison(msg)
            else:
                self.queue.update_message(msg.id, msg.pop_receipt, visibility_timeout=round(self.release_delay))
            return
        self.stats.succeeded += 1
        self.queue.delete_message(msg.id, msg.pop_receipt)

    def _deliver_poison(self, msg: Any) -> None:
        assert self.poison_handler is not None
        try:
            self.poison_handler(self._message(msg))
        except Exception as exc:
            self.stats.errors.append(exc)
            self.poison.update_message(msg.id, msg.pop_receipt, visibility_timeout=round(self.release_delay))
            return
        self.stats.poison_handled += 1
        self.poison.delete_message(msg.id, msg.pop_receipt)

    # -- loops --------------------------------------------------------------------------------------
    def step(self) -> int:
        """One batch of whatever is visible now, run concurrently; returns how many deliveries it made."""
        batch = list(self.queue.receive_messages(
            max_messages=min(self.workers, 32), visibility_timeout=max(1, round(self.lease))
        ))
        done = list(self._pool.map(self._deliver, batch))
        count = len(done)
        if self.run_poison:
            poison = list(self.poison.receive_messages(max_messages=32, visibility_timeout=max(1, round(self.lease))))
            list(self._pool.map(self._deliver_poison, poison))
            count += len(poison)
        return count

    def pending(self) -> int:
        """Messages in the queue (and poison queue, when it is drained too), visible or not."""
        total = self.queue.get_queue_properties().approximate_message_count or 0
        if self.run_poison:
            total += self.poison.get_queue_properties().approximate_message_count or 0
        return total

    def run(self, timeout: float = 60.0, *, wait: bool = True, until: Callable[[], bool] | None = None) -> Stats:
        """Deliver until the queue is empty (`wait`: also outwait invisible messages), or `until()` holds.

        Without `wait`, stops as soon as nothing is visible (a deferred message stays where it is).
        Raises TimeoutError when messages remain after `timeout` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            if until is not None and until():
                return self.stats
            if self.step():
                continue
            if until is None and (not wait or self.pending() == 0):
                return self.stats
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"drain: {self.pending()} message(s) still in {self.queue_name} after {timeout} s"
                    + ("" if until is None else " (condition not met)")
                )
            time.sleep(POLL)

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    def __enter__(self) -> Drain:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def main(argv: list[str] | None = None) -> int:
    """A worker process: drains the queue of the storage the environment describes, STORAGE_NAME_PREFIX included
    (tests kill these with SIGKILL)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queue", default=None,
                        help="the queue as the app calls it, before the prefix; default: the activity queue")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=120.0)
    parser.add_argument("--release-delay", type=float, default=None)
    parser.add_argument("--lease", type=float, default=600.0)
    parser.add_argument("--no-wait", action="store_true", help="stop when nothing is visible")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    storage = load().storage  # either form, as the host reads it; the test's own names through STORAGE_NAME_PREFIX
    with Drain(storage, queue=args.queue, workers=args.workers, release_delay=args.release_delay,
               lease=args.lease) as drain:
        stats = drain.run(args.timeout, wait=not args.no_wait)
    print(json.dumps({"succeeded": stats.succeeded, "failed": stats.failed, "poisoned": len(stats.poisoned)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
