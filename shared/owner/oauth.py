"""Strava's consent page: the address that asks the athlete to let the app upload and read activities.

Shared by the "Connect with Strava" handler (shared.owner.connect) and the command line's `connect`
(a local callback instead of the app's), so neither imports the other and both ask for the same scopes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlencode

if TYPE_CHECKING:
    from shared.config import Settings

SCOPES = "activity:write,activity:read_all"


def authorize_url(settings: Settings, redirect_uri: str, state: str) -> str:
    """Strava's /oauth/authorize for this app, coming back to `redirect_uri` with `state`."""
    query = urlencode({
        "client_id": settings.strava_client_id, "redirect_uri": redirect_uri, "response_type": "code",
        "approval_prompt": "auto", "scope": SCOPES, "state": state,
    }, safe=":,/")
    return f"{settings.strava_base_url}/oauth/authorize?{query}"
