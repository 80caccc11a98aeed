"""Helpers for the status, replay and several-athletes tests: HTTP calls as the host makes them, invitations."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import azure.functions as func
import requests

from shared.owner.connect import callback, connect
from shared.storage import users
from shared.storage.clients import Storage
from tests.support.fake_strava import FakeStrava
from tests.support.host import function

APP = "http://localhost:7071"
PERSONAL_KEY = re.compile(r"rk_[A-Za-z0-9_-]{20,}")


def request(method: str, url: str, *, headers: dict[str, str] | None = None, body: bytes | Any = b"",
            route_params: dict[str, str] | None = None) -> func.HttpRequest:
    """An HttpRequest as the Functions host builds it: the query parsed into params."""
    query = {k: v[-1] for k, v in parse_qs(urlsplit(url).query, keep_blank_values=True).items()}
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return func.HttpRequest(method, url, headers=headers or {}, params=query, route_params=route_params or {},
                            body=raw)


def call(name: str, req: func.HttpRequest) -> func.HttpResponse:
    """The registered function `name` of function_app, as the host calls it."""
    return function(name)(req)


def body(resp: func.HttpResponse) -> Any:
    return json.loads(resp.get_body())


def list_log(key: str, query: str = "") -> func.HttpResponse:
    return call("activities", request("GET", f"{APP}/api/activities{query}", headers={"X-Api-Key": key}))


def retry(key: str | None, sync_id: str, payload: Any = b"") -> func.HttpResponse:
    headers = {"X-Api-Key": key} if key else {}
    return call("activity_retry", request("POST", f"{APP}/api/activities/{sync_id}/retry", headers=headers,
                                          body=payload, route_params={"id": sync_id}))


def post_activity(key: str, payload: dict[str, Any], *, in_body: bool = False) -> func.HttpResponse:
    """POST /api/runkeeper with `key` in the X-Api-Key header, or in the body as the original Zap sends it."""
    if in_body:
        return call("runkeeper", request("POST", f"{APP}/api/runkeeper", body={**payload, "apiKey": key}))
    return call("runkeeper", request("POST", f"{APP}/api/runkeeper", headers={"X-Api-Key": key}, body=payload))


def consent(answer: func.HttpResponse) -> str:
    """Follow the connect page's 302 to the fake's consent page; the callback URL Strava sends the browser to."""
    assert answer.status_code == 302, answer.get_body()
    page = requests.get(answer.headers["Location"], allow_redirects=False, timeout=5)
    assert page.status_code == 302, page.text
    return page.headers["Location"]


def connect_with(key: str, fake: FakeStrava, athlete_id: int) -> func.HttpResponse:
    """Open /api/strava/connect?key=... and approve on Strava as `athlete_id`; answers the callback's page."""
    fake.authorizing_athlete = athlete_id
    back = consent(connect(request("GET", f"{APP}/api/strava/connect?key={key}")))
    return callback(request("GET", back))


def invite(storage: Storage, fake: FakeStrava, athlete_id: int) -> str:
    """An invitation used by `athlete_id` through the real connect flow: their personal key, read off the page."""
    invitation, _ = users.create_invitation(storage)
    page = connect_with(invitation, fake, athlete_id)
    text = page.get_body().decode()
    assert page.status_code == 200, text
    found = PERSONAL_KEY.search(text)
    assert found, text
    return found.group(0)
