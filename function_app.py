"""Bindings only: every function hands its input to `shared/`.

Imports of `shared.*` happen inside the functions so that a cold start of the HTTP ack loads only
what the ack needs (Zapier's free plan gives the caller one second, cold start included).
"""

from __future__ import annotations

import azure.functions as func

ACTIVITY_QUEUE = "runkeeper-activities"  # = shared.storage.clients.ACTIVITY_QUEUE (checked by tests)
POISON_QUEUE = ACTIVITY_QUEUE + "-poison"

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)


@app.route(route="runkeeper", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def runkeeper(req: func.HttpRequest) -> func.HttpResponse:
    """Zapier posts a Runkeeper activity: key check, cheap validation, store, 202."""
    from shared.live.ack import handle

    return handle(req)


@app.queue_trigger(arg_name="msg", queue_name=ACTIVITY_QUEUE, connection="AzureWebJobsStorage")
def sync_activity(msg: func.QueueMessage) -> None:
    """One queued activity: convert, upload to Strava, record the outcome."""
    from shared.live.worker import handle_message

    handle_message(msg)


@app.queue_trigger(arg_name="msg", queue_name=POISON_QUEUE, connection="AzureWebJobsStorage")
def sync_activity_poison(msg: func.QueueMessage) -> None:
    """A message the host gave up on: make its failure visible in the activity log."""
    from shared.live.worker import handle_poison

    handle_poison(msg)


@app.route(route="strava/connect", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def strava_connect(req: func.HttpRequest) -> func.HttpResponse:
    """Starts "Connect with Strava" (the app's own key is required: a browser link cannot carry a function key)."""
    from shared.owner.connect import connect

    return connect(req)


@app.route(route="strava/callback", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def strava_callback(req: func.HttpRequest) -> func.HttpResponse:
    """Strava redirects here; guarded by the single-use OAuth state instead of a key."""
    from shared.owner.connect import callback

    return callback(req)


@app.route(route="activities", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def activities(req: func.HttpRequest) -> func.HttpResponse:
    """The caller's activity log, newest first (?status=&since=&limit=)."""
    from shared.owner.activities import list_activities

    return list_activities(req)


@app.route(route="activities/{id}/retry", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def activity_retry(req: func.HttpRequest) -> func.HttpResponse:
    """Queue a failed activity again (or a rejected one, with its corrected payload as the body)."""
    from shared.owner.activities import retry

    return retry(req)


@app.route(route="invitations", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def invitations(req: func.HttpRequest) -> func.HttpResponse:
    """The owner invites an athlete: a single-use link to Connect with Strava and get a personal key."""
    from shared.owner.activities import invitations as invite

    return invite(req)
