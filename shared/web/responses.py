"""HTTP answers the app gives: JSON for machines, small HTML pages (with security headers) for people."""

from __future__ import annotations

import html
import json
from typing import Any

import azure.functions as func

_HTML_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    # The owner page's stylesheet (shared/page/static) and icon, nothing else; no inline style or script.
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


# These pages are served under /api/strava/…: the owner page's assets are a sibling path, whatever the prefix.
PAGE_ASSETS = "../page/static"


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps(body, separators=(",", ":"), ensure_ascii=False),
        status_code=status,
        mimetype="application/json",
        charset="utf-8",
        headers={"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", **(headers or {})},
    )


def error(status: int, message: str, **extra: Any) -> func.HttpResponse:
    return json_response(status, {"error": message, **extra})


def html_page(status: int, title: str, message: str) -> func.HttpResponse:
    """A minimal page; both strings are escaped, so anything echoed from Strava or a query is inert."""
    body = (
        "<!doctype html><html lang=en><meta charset=utf-8>"
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{html.escape(title)}</title>"
        f'<link rel="stylesheet" href="{PAGE_ASSETS}/app.css"><link rel="icon" href="{PAGE_ASSETS}/icon.svg">'
        '<body><main class="narrow">'
        f"<h1>{html.escape(title)}</h1><p>{html.escape(message)}</p>"
        f'<p><a href="{PAGE_ASSETS[:-len("/static")]}">Open the activities page</a></p></main></body></html>'
    )
    return func.HttpResponse(body, status_code=status, mimetype="text/html", charset="utf-8", headers=_HTML_HEADERS)


def redirect(location: str) -> func.HttpResponse:
    return func.HttpResponse(status_code=302, headers={"Location": location, "Cache-Control": "no-store"})
