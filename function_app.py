"""The Functions host's entry point: one blueprint per flow, registered on the app. No logic here.

The live flow (shared/live/blueprint.py: Zapier's POST, the queue worker, the poison queue) and the
owner's flow (shared/owner/blueprint.py: Connect with Strava, the activity log, retries, invitations)
declare their own functions and bindings; the owner's page (shared/page, bound in shared/owner/blueprint.py) is
anonymous at the Functions level and guarded by its own sign-in, since a browser cannot send a function key.
Importing them loads only `azure.functions`: each function imports its work when called, so a cold start
of the HTTP ack loads only what the ack needs.
"""

from __future__ import annotations

import azure.functions as func

from shared.live.blueprint import bp as live
from shared.owner.blueprint import bp as owner
from shared.owner.blueprint import page_bp as page

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
app.register_functions(live)
app.register_functions(owner)
app.register_functions(page)
