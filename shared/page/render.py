"""The page's HTML, from plain data: every value escaped, no inline script or style (the CSP forbids both).

Pure functions of the view (shared.page.view builds it), so what a page can show is decided in one place
and nothing here reads storage, settings or the request.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape
from urllib.parse import urlencode

from shared.model.status import STATUSES

STRAVA_ACTIVITY = "https://www.strava.com/activities/"


@dataclass(frozen=True)
class Row:
    sync_id: str
    when: str
    sport: str
    name: str
    distance: str
    duration: str
    source: str
    status: str
    activity_id: str | None
    reason: str | None
    problems: list[str]
    retryable: bool


@dataclass(frozen=True)
class Connection:
    connected: bool
    name: str = ""
    scopes: str = ""
    can_upload: bool = False
    token: str = ""  # one sentence: working, or what is wrong
    token_ok: bool = False


@dataclass(frozen=True)
class Invitation:
    digest: str
    note: str
    created: str
    expires: str


@dataclass(frozen=True)
class View:
    base: str  # the page's path, e.g. /api/page
    who: str  # "the owner" or the athlete's name
    owner: bool
    csrf: str
    connection: Connection
    rows: list[Row]
    status: str  # the filter ("" for all)
    page: int
    pages: int
    total: int  # rows matching the filter
    logged: int  # rows in the whole log
    chart: str  # SVG markup from shared.page.chart (already escaped)
    chart_summary: str
    weeks: list[tuple[str, str, int]] = field(default_factory=list)  # (week of, km, synced) for the table
    invitations: list[Invitation] | None = None  # None: not the owner
    notice: str = ""
    notice_error: bool = False
    new_link: str = ""  # an invitation's link, shown once


def layout(title: str, base: str, body: str) -> str:
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<title>{escape(title)}</title><link rel="stylesheet" href="{escape(base)}/static/app.css">'
        f'<link rel="icon" href="{escape(base)}/static/icon.svg" type="image/svg+xml">'
        f'</head><body><a class="skip" href="#main">Skip to content</a>{body}</body></html>'
    )


def sign_in(base: str, message: str = "", *, status_text: str = "") -> str:
    alert = f'<p class="notice error" role="alert">{escape(message)}</p>' if message else ""
    extra = f'<p class="notice" role="status">{escape(status_text)}</p>' if status_text else ""
    return layout("Sign in · Runkeeper → Strava", base, (
        '<main id="main" class="narrow"><h1>Runkeeper → Strava</h1>'
        f'{extra}{alert}'
        f'<form method="post" action="{escape(base)}/signin" class="card">'
        '<label for="key">Your key</label>'
        '<input id="key" name="key" type="password" autocomplete="current-password" required '
        'spellcheck="false" autocapitalize="off">'
        "<p class=\"hint\">The deployment's <code>SYNC_API_KEY</code> (the owner) or the personal key you were "
        "shown after connecting to Strava. You stay signed in on this browser for 30 days.</p>"
        '<button type="submit">Sign in</button></form></main>'
    ))


def _hidden(csrf: str) -> str:
    return f'<input type="hidden" name="csrf" value="{escape(csrf)}">'


def _connection(v: View) -> str:
    c = v.connection
    action = f'<form method="post" action="{escape(v.base)}/connect">{_hidden(v.csrf)}' \
             f'<button type="submit">{"Reconnect" if c.connected else "Connect with Strava"}</button></form>'
    if not c.connected:
        return ('<section aria-labelledby="conn-h" class="card"><h2 id="conn-h">Strava connection</h2>'
                '<p><span class="chip chip-failed">not connected</span> Activities cannot reach Strava until '
                f'you connect your Strava account.</p>{action}</section>')
    scopes = escape(c.scopes or "none")
    upload = "" if c.can_upload else ('<p class="notice error">Upload permission is missing: reconnect and keep '
                                      '"Upload your activities" ticked.</p>')
    token_chip = "chip-synced" if c.token_ok else "chip-failed"
    return (
        '<section aria-labelledby="conn-h" class="card"><h2 id="conn-h">Strava connection</h2><dl class="facts">'
        f'<dt>Athlete</dt><dd>{escape(c.name)}</dd><dt>Permissions</dt><dd>{scopes}</dd>'
        f'<dt>Token</dt><dd><span class="chip {token_chip}">{"working" if c.token_ok else "problem"}</span> '
        f'{escape(c.token)}</dd></dl>{upload}{action}</section>'
    )


def _chart(v: View) -> str:
    rows = "".join(f"<tr><th scope=\"row\">{escape(w)}</th><td>{escape(km)}</td><td>{n}</td></tr>"
                   for w, km, n in v.weeks)
    return (
        '<section aria-labelledby="chart-h" class="card"><h2 id="chart-h">Distance per week</h2>'
        f'<p>{escape(v.chart_summary)}</p><div class="chart-box">{v.chart}</div>'
        '<p class="legend"><span class="key-bar" aria-hidden="true"></span> km synced that week '
        '<span class="key-gap" aria-hidden="true"></span> nothing synced</p>'
        '<details><summary>The same as a table</summary><table><caption>Distance per week</caption>'
        '<thead><tr><th scope="col">Week of</th><th scope="col">km</th><th scope="col">Synced</th></tr></thead>'
        f'<tbody>{rows}</tbody></table></details></section>'
    )


def _filters(v: View) -> str:
    options = [f'<option value=""{" selected" if not v.status else ""}>all</option>']
    options += [f'<option value="{s}"{" selected" if v.status == s else ""}>{s}</option>' for s in STATUSES]
    return (
        f'<form method="get" action="{escape(v.base)}" class="filters">'
        f'<label for="status">Status</label><select id="status" name="status">{"".join(options)}</select>'
        '<button type="submit">Filter</button></form>'
    )


def _row(v: View, r: Row) -> str:
    link = (f'<a href="{STRAVA_ACTIVITY}{escape(r.activity_id)}" rel="noreferrer">View on Strava'
            '<span class="visually-hidden"> (opens Strava)</span></a>') if r.activity_id else ""
    reason = f'<p class="reason">{escape(r.reason)}</p>' if r.reason else ""
    if r.problems:
        items = "".join(f"<li>{escape(p)}</li>" for p in r.problems)
        reason += (f'<ul class="problems">{items}</ul><p class="hint">Fix the Zap (or the activity in Runkeeper) '
                   'and let it run again, or send the corrected payload as the body of '
                   f'<code>POST /api/activities/{escape(r.sync_id)}/retry</code> with your key.</p>')
    action = ""
    if r.retryable:
        action = (f'<form method="post" action="{escape(v.base)}/activities/{escape(r.sync_id)}/retry">'
                  f'{_hidden(v.csrf)}<button type="submit" aria-label="Retry {escape(r.name)}">Retry</button></form>')
    return (
        f'<tr id="row-{escape(r.sync_id)}" data-status="{escape(r.status)}">'
        f'<td data-label="Date">{escape(r.when)}</td><td data-label="Sport">{escape(r.sport)}</td>'
        f'<th scope="row" data-label="Name">{escape(r.name)}</th>'
        f'<td data-label="Distance" class="num">{escape(r.distance)}</td>'
        f'<td data-label="Duration" class="num">{escape(r.duration)}</td>'
        f'<td data-label="Source">{escape(r.source)}</td>'
        f'<td data-label="Status"><span class="chip chip-{escape(r.status)}">{escape(r.status)}</span>{reason}</td>'
        f'<td data-label="Strava">{link}{action}</td></tr>'
    )


def _pager(v: View) -> str:
    if v.pages <= 1:
        return ""

    def href(page: int) -> str:
        query = {k: val for k, val in (("status", v.status), ("page", str(page))) if val}
        return f"{escape(v.base)}?{escape(urlencode(query))}"

    prev = f'<a href="{href(v.page - 1)}" rel="prev">Newer</a>' if v.page > 1 else ""
    nxt = f'<a href="{href(v.page + 1)}" rel="next">Older</a>' if v.page < v.pages else ""
    return f'<nav class="pager" aria-label="Pages">{prev}<span>Page {v.page} of {v.pages}</span>{nxt}</nav>'


def _empty(v: View) -> str:
    if v.logged and v.status:
        return f'<p class="empty">No {escape(v.status)} activities. <a href="{escape(v.base)}">Show all</a>.</p>'
    steps = []
    if not v.connection.connected:
        steps.append("<li>Connect your Strava account (above).</li>")
    steps.append("<li>Set up the Zap (Runkeeper → New Activity → Webhooks POST to <code>/api/runkeeper</code>, "
                 "see the README), and new runs appear here within a minute.</li>")
    steps.append("<li>Bring your history over: <code>python -m shared.cli import &lt;export.zip&gt;</code>.</li>")
    return f'<div class="empty"><p>No activities yet. Next:</p><ol>{"".join(steps)}</ol></div>'


def _activities(v: View) -> str:
    if not v.rows:
        table = _empty(v)
    else:
        table = (
            '<div class="table-box"><table class="activities"><caption>'
            f'{v.total} {escape(v.status) + " " if v.status else ""}activities, newest first'
            '</caption><thead><tr><th scope="col">Date</th><th scope="col">Sport</th><th scope="col">Name</th>'
            '<th scope="col">Distance</th><th scope="col">Duration</th><th scope="col">Source</th>'
            '<th scope="col">Status</th><th scope="col">Strava</th></tr></thead><tbody>'
            + "".join(_row(v, r) for r in v.rows) + "</tbody></table></div>"
        )
    return (f'<section aria-labelledby="act-h" class="card"><h2 id="act-h">Activities</h2>{_filters(v)}{table}'
            f'{_pager(v)}</section>')


def _invitations(v: View) -> str:
    if v.invitations is None:
        return ""
    link = ""
    if v.new_link:
        link = ('<div class="notice" role="status"><p>Invitation created. Send this link to the athlete; it is shown '
                'only now, works once, for 7 days:</p>'
                f'<p><output class="link" id="new-link">{escape(v.new_link)}</output></p></div>')
    rows = "".join(
        f'<tr><th scope="row">{escape(i.note or "(no note)")}</th><td>{escape(i.created)}</td>'
        f'<td>{escape(i.expires)}</td><td><form method="post" action="{escape(v.base)}/invitations/revoke">'
        f'{_hidden(v.csrf)}<input type="hidden" name="invitation" value="{escape(i.digest)}">'
        f'<button type="submit" aria-label="Revoke invitation {escape(i.note)}">Revoke</button></form></td></tr>'
        for i in v.invitations)
    listing = ('<table><caption>Pending invitations</caption><thead><tr><th scope="col">Note</th>'
               '<th scope="col">Created</th><th scope="col">Expires</th><th scope="col">Action</th></tr></thead>'
               f'<tbody>{rows}</tbody></table>') if rows else '<p class="empty">No pending invitations.</p>'
    return (
        '<section aria-labelledby="inv-h" class="card"><h2 id="inv-h">Invitations</h2>'
        '<p>Invite another athlete: they connect their own Strava account and get a personal key; they see '
        'only their own activities.</p>'
        f'{link}<form method="post" action="{escape(v.base)}/invitations" class="filters">{_hidden(v.csrf)}'
        '<label for="note">Note (who it is for)</label><input id="note" name="note" maxlength="200">'
        f'<button type="submit">Create invitation</button></form>{listing}</section>'
    )


def page(v: View) -> str:
    notice = ""
    if v.notice:
        role = "alert" if v.notice_error else "status"
        notice = f'<p class="notice{" error" if v.notice_error else ""}" role="{role}">{escape(v.notice)}</p>'
    header = (
        '<header class="top"><h1>Runkeeper → Strava</h1>'
        f'<p>Signed in as {escape(v.who)}</p>'
        f'<form method="post" action="{escape(v.base)}/signout">{_hidden(v.csrf)}'
        '<button type="submit" class="quiet">Sign out</button></form></header>'
    )
    body = (f'{header}<main id="main">{notice}{_connection(v)}{_activities(v)}{_chart(v)}'
            f'{_invitations(v)}</main>')
    return layout("Activities · Runkeeper → Strava", v.base, body)


def message(base: str, title: str, text: str) -> str:
    """A page that only says something (not signed in, refused, unavailable), with a way back."""
    return layout(f"{title} · Runkeeper → Strava", base, (
        f'<main id="main" class="narrow"><h1>{escape(title)}</h1><p>{escape(text)}</p>'
        f'<p><a href="{escape(base)}">Back to the page</a></p></main>'
    ))
