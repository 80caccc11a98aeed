"""How every page answer is sent: the security headers, the CSP, the one cookie, redirects after a POST."""

from __future__ import annotations

from urllib.parse import urlsplit

import azure.functions as func


def csp(strava_base_url: str | None) -> str:
    """Only this app's own files; forms may also go to Strava (the Connect form redirects to its consent page,
    and Chrome applies form-action to redirects after a form's POST)."""
    form = "'self'"
    if strava_base_url:
        parts = urlsplit(strava_base_url)
        form += f" {parts.scheme}://{parts.netloc}"
    return (f"default-src 'self'; base-uri 'none'; object-src 'none'; form-action {form}; "
            "frame-ancestors 'none'")


def headers(strava_base_url: str | None) -> dict[str, str]:
    return {
        "Content-Security-Policy": csp(strava_base_url),
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "X-Frame-Options": "DENY",
    }


def html(status: int, body: str, strava_base_url: str | None, *, cookie: str | None = None,
         extra: dict[str, str] | None = None) -> func.HttpResponse:
    """A page. At most one Set-Cookie: func.HttpResponse keeps one value per header name, so the page has one
    cookie (the session; the CSRF token is derived from it)."""
    hdrs = {**headers(strava_base_url), **(extra or {})}
    if cookie:
        hdrs["Set-Cookie"] = cookie
    return func.HttpResponse(body, status_code=status, mimetype="text/html", charset="utf-8", headers=hdrs)


def see_other(location: str, strava_base_url: str | None, *, cookie: str | None = None) -> func.HttpResponse:
    """303 after a POST, so reloading the page does not send the form again."""
    hdrs = {**headers(strava_base_url), "Location": location}
    if cookie:
        hdrs["Set-Cookie"] = cookie
    return func.HttpResponse(status_code=303, headers=hdrs)
