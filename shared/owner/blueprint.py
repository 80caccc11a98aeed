"""The owner's functions: Connect with Strava, the activity log, retries and invitations. Bindings only.

Each body imports its handler when called, so none of this loads on a cold start of the HTTP ack.
"""

from __future__ import annotations

import azure.functions as func

bp = func.Blueprint()


@bp.route(route="strava/connect", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def strava_connect(req: func.HttpRequest) -> func.HttpResponse:
    """Starts "Connect with Strava" (the app's own key is required: a browser link cannot carry a function key)."""
    from shared.owner.connect import connect

    return connect(req)


@bp.route(route="strava/callback", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def strava_callback(req: func.HttpRequest) -> func.HttpResponse:
    """Strava redirects here; guarded by the single-use OAuth state instead of a key."""
    from shared.owner.connect import callback

    return callback(req)


@bp.route(route="activities", methods=["GET"], auth_level=func.AuthLevel.FUNCTION)
def activities(req: func.HttpRequest) -> func.HttpResponse:
    """The caller's activity log, newest first (?status=&since=&limit=)."""
    from shared.owner.activities import list_activities

    return list_activities(req)


@bp.route(route="activities/{id}/retry", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def activity_retry(req: func.HttpRequest) -> func.HttpResponse:
    """Queue a failed activity again (or a rejected one, with its corrected payload as the body)."""
    from shared.owner.activities import retry

    return retry(req)


@bp.route(route="invitations", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
def invitations(req: func.HttpRequest) -> func.HttpResponse:
    """The owner invites an athlete: a single-use link to Connect with Strava and get a personal key."""
    from shared.owner.invitations import invite

    return invite(req)
