"""The queue-triggered functions: hand each message to shared.live.sync, and record what the poison queue gets.

Returning normally completes the message (the host deletes it), including when the work was deferred
onto a new message; raising lets the host retry it after host.json's visibilityTimeout and, after
maxDequeueCount deliveries, move it to the poison queue, where `handle_poison` marks it failed.
"""

from __future__ import annotations

import logging

import azure.functions as func

from shared.live import sync
from shared.storage import messages

log = logging.getLogger("shared.live.worker")

POISONED = ("the worker failed on every delivery and the host moved the message to the poison queue; "
            "see the function's logs, then replay the activity")


def handle_message(msg: func.QueueMessage) -> None:
    body = msg.get_body()
    try:
        job = messages.decode(body)
    except messages.JobError as exc:
        # Not ours or damaged: no retry can fix it. Record it if it still names an activity.
        user, sync_id = messages.peek_id(body)
        log.error("queue message %s dropped: %s", msg.id, exc)
        sync.give_up(user, sync_id, None, f"the queue message was unreadable ({exc})")
        return
    sync.process(job)


def handle_poison(msg: func.QueueMessage) -> None:
    body = msg.get_body()
    try:
        job = messages.decode(body)
    except messages.JobError:
        user, sync_id = messages.peek_id(body)
        sync.give_up(user, sync_id, None, POISONED)
        return
    sync.give_up(job.user, job.sync_id, job.blob, POISONED, payload=job.payload)
