"""What the signed-in caller sees, read from storage: their own connection, log rows, weeks and invitations.

Everything is read for `session.user` only (Strava's API agreement: an athlete's data is shown only to that
athlete), and nothing that could act as a credential leaves here: no tokens, no keys, no key hashes other
than a pending invitation's (a SHA-256 of a random key: it cannot be used as one).
"""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

from shared.config import Settings
from shared.model.status import DONE, RETRYABLE, STATUSES
from shared.page import chart, render
from shared.page.session import Session
from shared.storage import activitylog

PAGE_SIZE = 25
SOURCES = {"zapier": "Zapier", "import": "Runkeeper export"}


def distance(metres: float | None) -> str:
    return "—" if not metres else f"{metres / 1000:.2f} km"


def duration(seconds: float | None) -> str:
    if not seconds:
        return "—"
    total = round(seconds)
    h, rest = divmod(total, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def row(entry: activitylog.Entry, zone: ZoneInfo) -> render.Row:
    when = entry.when.astimezone(zone).strftime("%a %d %b %Y, %H:%M") if entry.when else "—"
    problems = [f"{p.get('field')}: {p.get('message')}" if p.get("field") else str(p.get("message"))
                for p in entry.problems] if entry.status == "rejected" else []
    reason = None
    if entry.status == "failed":
        reason = entry.error or "The upload failed without a reason recorded."
    elif entry.status == "rejected":
        reason = "The payload was refused before upload:"
    elif entry.status == "queued" and entry.error:
        reason = f"Waiting to try again: {entry.error}"
    return render.Row(
        sync_id=entry.sync_id, when=when, sport=entry.sport_type or entry.runkeeper_type or "—",
        name=entry.name or ("(rejected payload)" if entry.status == "rejected" else "—"),
        distance=distance(entry.distance), duration=duration(entry.duration),
        source=SOURCES.get(entry.source, entry.source), status=str(entry.status),
        activity_id=entry.activity_id if entry.status in DONE else None, reason=reason, problems=problems,
        retryable=entry.status in RETRYABLE,
    )


def connection(cfg: Settings, session: Session) -> render.Connection:
    """The caller's Strava connection, and whether its token works (a refresh only if it is due)."""
    from shared.strava.errors import NotConnected, Permanent, StravaError
    from shared.strava.tokens import TokenManager, get_connection

    conn = get_connection(cfg.storage, session.athlete_id)
    if conn is None:
        return render.Connection(False)
    base = render.Connection(True, conn.name, ", ".join(sorted(conn.scope_set)), conn.can_upload)
    if not (cfg.strava_client_id and cfg.strava_client_secret):
        return _with(base, "The app's STRAVA_CLIENT_ID or STRAVA_CLIENT_SECRET is not set.", False)
    manager = TokenManager(cfg.storage, base_url=cfg.strava_base_url, client_id=cfg.strava_client_id,
                           client_secret=cfg.strava_client_secret, athlete_id=conn.athlete_id)
    try:
        manager.access_token()
    except NotConnected:
        return render.Connection(False)
    except Permanent:
        return _with(base, "Strava refused to renew access (it was revoked?): reconnect.", False)
    except StravaError:
        return _with(base, "Strava could not be reached to renew access just now; the next upload tries again.",
                     False)
    fresh = get_connection(cfg.storage, conn.athlete_id) or conn
    until = datetime.fromtimestamp(fresh.expires_at, ZoneInfo(cfg.timezone)).strftime("%H:%M")
    return _with(base, f"Access is current (renews itself; this token until {until}).", True)


def _with(base: render.Connection, token: str, ok: bool) -> render.Connection:
    return render.Connection(base.connected, base.name, base.scopes, base.can_upload, token, ok)


def build(cfg: Settings, session: Session, *, base: str, csrf: str, status: str, page: int,
          now: datetime) -> render.View:
    zone = ZoneInfo(cfg.timezone)
    entries = activitylog.list_activities(cfg.storage, session.user, limit=10**6)
    status = status if status in STATUSES else ""
    chosen = [e for e in entries if not status or e.status == status]
    pages = max(1, math.ceil(len(chosen) / PAGE_SIZE))
    page = min(max(1, page), pages)
    shown = chosen[(page - 1) * PAGE_SIZE: page * PAGE_SIZE]
    done = [(e.when.astimezone(zone).date(), e.distance) for e in entries if e.status in DONE and e.when]
    weeks = chart.weekly(done, now.astimezone(zone).date())
    synced = sum(w.synced for w in weeks)
    summary = (f"{sum(w.km for w in weeks):.1f} km in {synced} activities on Strava over the last "
               f"{len(weeks)} weeks; {sum(1 for w in weeks if not w.synced)} weeks with nothing synced.")
    invitations = None
    if session.kind == "owner":
        from shared.storage.users import pending_invitations

        invitations = [render.Invitation(i.digest, i.note, _day(i.created, zone), _day(i.expires_at, zone))
                       for i in pending_invitations(cfg.storage)]
    conn = connection(cfg, session)
    who = "the owner" if session.kind == "owner" else (conn.name or f"athlete {session.athlete_id}")
    return render.View(
        base=base, who=who, owner=session.kind == "owner", csrf=csrf, connection=conn,
        rows=[row(e, zone) for e in shown], status=status, page=page, pages=pages, total=len(chosen),
        logged=len(entries), chart=chart.svg(weeks), chart_summary=summary,
        weeks=[(f"{w.start:%d %b %Y}", f"{w.km:.1f}", w.synced) for w in reversed(weeks)],
        invitations=invitations,
    )


def _day(value: datetime | None, zone: ZoneInfo) -> str:
    return value.astimezone(zone).strftime("%d %b %Y, %H:%M") if value else "—"
