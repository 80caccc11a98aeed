"""The live flow's functions: Zapier's POST, the queue worker and the poison queue's handler. Bindings only.

Each body imports its work when called, so a cold start of the HTTP ack loads only what the ack needs
(Zapier's free plan gives the caller one second, cold start included): this module imports nothing
of the app, and the worker's Strava code is never loaded by the ack.
"""

from __future__ import annotations

import azure.functions as func

ACTIVITY_QUEUE = "runkeeper-activities"  # = shared.storage.clients.ACTIVITY_QUEUE (checked by tests)
POISON_QUEUE = ACTIVITY_QUEUE + "-poison"

bp = func.Blueprint()


@bp.route(route="runkeeper", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def runkeeper(req: func.HttpRequest) -> func.HttpResponse:
    """Zapier posts a Runkeeper activity: key check, cheap validation, store, 202."""
    from shared.live.ack import handle

    return handle(req)


@bp.queue_trigger(arg_name="msg", queue_name=ACTIVITY_QUEUE, connection="AzureWebJobsStorage")
def sync_activity(msg: func.QueueMessage) -> None:
    """One queued activity: convert, upload to Strava, record the outcome."""
    from shared.live.worker import handle_message

    handle_message(msg)


@bp.queue_trigger(arg_name="msg", queue_name=POISON_QUEUE, connection="AzureWebJobsStorage")
def sync_activity_poison(msg: func.QueueMessage) -> None:
    """A message the host gave up on: make its failure visible in the activity log."""
    from shared.live.worker import handle_poison

    handle_poison(msg)
