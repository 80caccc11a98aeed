"""The owner's functions: Connect with Strava, the activity log, retries and invitations; and the owner's page
(`page_bp`, a blueprint of its own, registered beside `bp`). Bindings only.

Each body imports its handler when called, so none of this loads on a cold start of the HTTP ack. The page's
bindings live here, not in shared/page, so importing function_app loads no module more than before.
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


# ---- the owner's page (shared/page): anonymous at the Functions level, since a browser cannot send a function
# key; every handler checks the page's own signed session instead (and a CSRF token on every POST).
page_bp = func.Blueprint()
ANONYMOUS = func.AuthLevel.ANONYMOUS


@page_bp.route(route="page", methods=["GET"], auth_level=ANONYMOUS)
def page(req: func.HttpRequest) -> func.HttpResponse:
    """The page itself: the sign-in form, or the caller's connection, chart, activities (and invitations)."""
    from shared.page.handlers import show

    return show(req)


@page_bp.route(route="page/signin", methods=["POST"], auth_level=ANONYMOUS)
def page_sign_in(req: func.HttpRequest) -> func.HttpResponse:
    """The key, posted once from the form; answers with the session cookie."""
    from shared.page.handlers import sign_in

    return sign_in(req)


@page_bp.route(route="page/signout", methods=["POST"], auth_level=ANONYMOUS)
def page_sign_out(req: func.HttpRequest) -> func.HttpResponse:
    from shared.page.handlers import sign_out

    return sign_out(req)


@page_bp.route(route="page/activities/{id}/retry", methods=["POST"], auth_level=ANONYMOUS)
def page_retry(req: func.HttpRequest) -> func.HttpResponse:
    """The Retry button: the same retry as POST /api/activities/{id}/retry, behind the session and a CSRF token."""
    from shared.page.handlers import retry

    return retry(req)


@page_bp.route(route="page/connect", methods=["POST"], auth_level=ANONYMOUS)
def page_connect(req: func.HttpRequest) -> func.HttpResponse:
    """Connect / Reconnect: starts the OAuth flow from the session, so no key goes into a URL."""
    from shared.page.handlers import connect

    return connect(req)


@page_bp.route(route="page/invitations", methods=["POST"], auth_level=ANONYMOUS)
def page_invite(req: func.HttpRequest) -> func.HttpResponse:
    from shared.page.handlers import invite

    return invite(req)


@page_bp.route(route="page/invitations/revoke", methods=["POST"], auth_level=ANONYMOUS)
def page_revoke_invitation(req: func.HttpRequest) -> func.HttpResponse:
    from shared.page.handlers import revoke

    return revoke(req)


@page_bp.route(route="page/static/{name}", methods=["GET"], auth_level=ANONYMOUS)
def page_static(req: func.HttpRequest) -> func.HttpResponse:
    """The stylesheet (the only asset: no inline styles or scripts, so the CSP can forbid them)."""
    from shared.page.handlers import static

    return static(req)
