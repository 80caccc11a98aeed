"""The owner's day-to-day commands: `status`, `retry`, `connect`, `invite` and `athletes`.

Registered on the parser by shared.cli.app (`add_commands`). They use the same settings as the app
(environment or local.settings.json) and act on its storage directly, so they work without the
Function App running. `--athlete ID` picks an invited athlete's log instead of the owner's.
"""

from __future__ import annotations

import argparse
import html
import json
import secrets
import threading
import time
from collections import Counter
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import parse_qs, urlsplit

from shared.cli.common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, Context, athlete_id_arg, user_of
from shared.model.status import Status
from shared.model.users import OWNER

if TYPE_CHECKING:
    from shared.config import Settings
    from shared.storage.activitylog import Entry

RECENT = 20


def _since(text: str) -> datetime:
    """argparse type for `status --since`: a date, as the start of that day in UTC."""
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2024-05-01") from None
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _count(text: str) -> int:
    """argparse type for `status --limit`: 1 to 10,000 rows."""
    if not text.isdigit() or not 1 <= int(text) <= 10_000:
        raise argparse.ArgumentTypeError("must be a whole number from 1 to 10000")
    return int(text)


def add_commands(commands: Any) -> None:
    """Register the subcommands on the top parser's subparsers."""
    from shared.storage.activitylog import STATUSES

    who = argparse.ArgumentParser(add_help=False)
    who.add_argument("--athlete", type=athlete_id_arg, metavar="ID",
                     help="an invited athlete's Strava id (default: the owner's log)")

    status = commands.add_parser("status", parents=[who], help="recent activities and failures from the activity log",
                                 description="A table of recent activities, then every failure with its reason.")
    status.add_argument("--status", choices=STATUSES, help="only activities with this status")
    status.add_argument("--since", type=_since, metavar="DATE", help="only activities from this date (UTC) on")
    status.add_argument("--limit", type=_count, default=RECENT, metavar="N", help=f"rows to show (default {RECENT})")
    status.add_argument("--json", action="store_true", help="the rows as JSON, as GET /api/activities gives them")
    status.set_defaults(run=run_status)

    retry = commands.add_parser("retry", parents=[who], help="send failed activities to Strava again",
                                description="Queue a failed activity again with the payload it kept (the queue "
                                            "worker of the running app then sends it), or a rejected one with a "
                                            "corrected payload (--payload FILE).")
    which = retry.add_mutually_exclusive_group(required=True)
    which.add_argument("id", nargs="?", metavar="ID", help="the activity's id, as `status` shows it")
    which.add_argument("--all-failed", action="store_true", help="every failed activity")
    retry.add_argument("--payload", metavar="FILE", help="the corrected activity as a JSON file (for ID)")
    retry.set_defaults(run=run_retry)

    connect = commands.add_parser("connect", help="connect the owner's Strava account from this terminal",
                                  description="Opens Strava's consent page, catches its answer on "
                                              "http://127.0.0.1:<port>/callback and stores the tokens where the "
                                              "app reads them (the deployment's default athlete).")
    connect.add_argument("--no-browser", action="store_true", help="only print the URL to open")
    connect.add_argument("--port", type=int, default=0, help="local port for the answer (default: any free one)")
    connect.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the answer (default 300)")
    connect.set_defaults(run=run_connect)

    invite = commands.add_parser("invite", help="invite an athlete to connect their own Strava account",
                                 description="A single-use invitation (valid 7 days): the athlete opens "
                                             "<app>/api/strava/connect?key=<invitation>, approves on Strava and is "
                                             "shown their own API key for their Zap.")
    invite.add_argument("--note", default="", help="who it is for (kept with the invitation)")
    invite.add_argument("--app-url", metavar="URL", help="the app's address, e.g. https://<name>.azurewebsites.net")
    invite.set_defaults(run=run_invite)

    athletes = commands.add_parser("athletes", help="the athletes on this deployment and their keys")
    athletes.add_argument("--revoke", type=athlete_id_arg, metavar="ID",
                          help="stop this athlete's personal key working")
    athletes.set_defaults(run=run_athletes)


def _settings(ctx: Context) -> Settings | None:
    """The app's settings, or None after saying on stderr what is wrong with them."""
    from shared.config import SettingsError, load_for_cli

    try:
        return load_for_cli()
    except SettingsError as exc:
        print(f"error: {exc}", file=ctx.err)
        return None


# ---- status ------------------------------------------------------------------------------------------------
def _local(moment: datetime | None, timezone: str) -> str:
    if moment is None:
        return "-"
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo(timezone)).strftime("%Y-%m-%d %H:%M")


def _cut(text: str | None, width: int) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= width else text[: width - 1] + "…"


def print_table(entries: list[Entry], timezone: str, out: TextIO) -> None:
    print(f"  {'WHEN':<16}  {'STATUS':<9}  {'SPORT':<12}  {'NAME':<40}  {'ID':<21}  STRAVA", file=out)
    for e in entries:
        print(f"  {_local(e.when, timezone):<16}  {e.status:<9}  {_cut(e.sport_type, 12):<12}  "
              f"{_cut(e.name or e.runkeeper_type or '', 40):<40}  {e.sync_id:<21}  {e.activity_id or ''}".rstrip(),
              file=out)


def run_status(args: argparse.Namespace, ctx: Context) -> int:
    from shared.storage import activitylog

    cfg = _settings(ctx)
    if cfg is None:
        return EXIT_FAILED
    user = user_of(args)
    try:
        rows = activitylog.list_activities(cfg.storage, user, status=args.status, since=args.since, limit=args.limit)
        failures = [e for s in (Status.FAILED, Status.REJECTED)
                    for e in activitylog.list_activities(cfg.storage, user, status=s, since=args.since, limit=200)]
    except Exception as exc:
        print(f"error: could not read the activity log ({type(exc).__name__}); is the storage running?", file=ctx.err)
        return EXIT_FAILED
    if args.json:
        print(json.dumps([e.public() for e in rows], ensure_ascii=False, indent=1), file=ctx.out)
        return EXIT_OK
    who = "the owner" if user == OWNER else f"athlete {args.athlete}"
    if not rows:
        print(f"The activity log of {who} has no activities" + (" matching that." if args.status or args.since
                                                                 else " yet."), file=ctx.out)
    else:
        counts = Counter(e.status for e in rows)
        print(f"The {len(rows)} most recent activities of {who} (times in {cfg.timezone}): "
              + ", ".join(f"{n} {s}" for s, n in counts.most_common()), file=ctx.out)
        print_table(rows, cfg.timezone, ctx.out)
    if failures and args.status in (None, Status.FAILED, Status.REJECTED):
        failures.sort(key=lambda e: (activitylog.iso(e.when), e.sync_id), reverse=True)
        print(f"\nFailures ({len(failures)}):", file=ctx.out)
        for e in failures:
            print(f"  {e.sync_id}  {e.status:<8}  {_local(e.when, cfg.timezone)}  {_cut(e.error, 200)}",
                  file=ctx.out)
        print("Send failed ones again: python -m shared.cli retry --all-failed (or retry ID); a rejected one needs "
              "its corrected payload: retry ID --payload FILE.", file=ctx.out)
    return EXIT_OK


# ---- retry -------------------------------------------------------------------------------------------------
def run_retry(args: argparse.Namespace, ctx: Context) -> int:
    from shared.owner import retry

    cfg = _settings(ctx)
    if cfg is None:
        return EXIT_FAILED
    user = user_of(args)
    if args.all_failed:
        if args.payload:
            print("error: --payload goes with one ID, not --all-failed", file=ctx.err)
            return EXIT_USAGE
        done, refused = retry.retry_all_failed(cfg.storage, user, timezone=cfg.timezone)
        for d in done:
            print(f"queued again: {d.sync_id}", file=ctx.out)
        for sid, why in refused:
            print(f"not queued: {sid}: {why}", file=ctx.err)
        print(f"{len(done)} queued again, {len(refused)} not." + (" The app's queue worker sends them." if done
                                                                   else ""), file=ctx.out)
        return EXIT_FAILED if refused else EXIT_OK
    payload = None
    if args.payload:
        try:
            with open(args.payload, encoding="utf-8-sig") as f:
                payload = json.load(f)
        except (OSError, ValueError) as exc:
            print(f"error: {args.payload}: {exc}", file=ctx.err)
            return EXIT_FAILED
        if not isinstance(payload, dict):
            print(f"error: {args.payload} must hold one JSON object (the activity)", file=ctx.err)
            return EXIT_FAILED
    try:
        done_one = retry.retry(cfg.storage, user, args.id, timezone=cfg.timezone, payload=payload)
    except retry.RetryRefused as exc:
        print(f"not queued: {exc}", file=ctx.err)
        for p in exc.problems:
            print(f"  {p.get('field') or 'payload'}: {p.get('message')}", file=ctx.err)
        return EXIT_FAILED
    extra = f" (as {done_one.sync_id}, which replaces it)" if done_one.replaced else ""
    print(f"{done_one.status}: {args.id}{extra}", file=ctx.out)
    return EXIT_OK


# ---- connect -----------------------------------------------------------------------------------------------
class _Answer:
    """What the one-shot server caught, filled in by the request handler."""

    def __init__(self, state: str) -> None:
        self.state = state
        self.done = threading.Event()
        self.message = ""
        self.ok = False


def _page(title: str, text: str) -> bytes:
    return (f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title>"
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<body style='font-family:sans-serif;max-width:40em;margin:3em auto'><h1>{html.escape(title)}</h1>"
            f"<p>{html.escape(text)}</p>").encode()


def _finish(cfg: Settings, query: dict[str, str]) -> tuple[bool, str]:
    """The code from Strava's redirect exchanged and stored; (ok, what to tell the owner)."""
    from shared.strava.errors import StravaError
    from shared.strava.tokens import exchange_code, save_connection

    if query.get("error"):
        return False, ("You did not authorize the app on Strava; nothing changed." if query["error"] == "access_denied"
                       else f"Strava answered with an error ({query['error'][:100]}); nothing changed.")
    scopes = query.get("scope") or ""
    if "activity:write" not in {s.strip() for s in scopes.split(",")}:
        return False, ("The app needs permission to upload activities: keep \"Upload your activities from the app "
                       "to Strava\" ticked. Nothing was stored; run the command again.")
    if not query.get("code"):
        return False, "Strava's answer had no authorization code; nothing was stored."
    assert cfg.strava_client_id and cfg.strava_client_secret
    try:
        answer = exchange_code(cfg.strava_base_url, cfg.strava_client_id, cfg.strava_client_secret, query["code"])
        conn = save_connection(cfg.storage, answer, scopes)
    except (StravaError, ValueError) as exc:
        return False, f"Strava did not accept the sign-in ({exc}); nothing was stored."
    except Exception as exc:
        return False, f"could not store the connection ({type(exc).__name__}); is the storage running?"
    return True, (f"Connected to Strava as {conn.name} (athlete {conn.athlete_id}). New Runkeeper activities will "
                  "be uploaded to this account.")


def _server(cfg: Settings, answer: _Answer, port: int) -> HTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
            if parts.path != "/callback" or answer.done.is_set():
                self._send(404, _page("Not here", "This address only takes Strava's answer, once."))
                return
            if not secrets.compare_digest(query.get("state", ""), answer.state):
                self._send(400, _page("Not this sign-in", "This answer does not belong to the sign-in the "
                                                          "command started; nothing was stored."))
                return
            answer.ok, answer.message = _finish(cfg, query)
            self._send(200 if answer.ok else 400, _page("Connected to Strava" if answer.ok else "Not connected",
                                                        answer.message + " You can close this tab."))
            answer.done.set()

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("Referrer-Policy", "no-referrer")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # the query holds the code: never log it
            pass

    return HTTPServer(("127.0.0.1", port), Handler)


def run_connect(args: argparse.Namespace, ctx: Context) -> int:
    from shared.config import SettingsError
    from shared.owner.oauth import authorize_url

    cfg = _settings(ctx)
    if cfg is None:
        return EXIT_FAILED
    try:
        cfg.require("STRAVA_CLIENT_ID", "STRAVA_CLIENT_SECRET")
    except SettingsError as exc:
        print(f"error: {exc}", file=ctx.err)
        return EXIT_FAILED
    answer = _Answer(secrets.token_urlsafe(32))
    try:
        server = _server(cfg, answer, args.port)
    except OSError as exc:
        print(f"error: cannot listen on 127.0.0.1:{args.port} ({exc.strerror})", file=ctx.err)
        return EXIT_FAILED
    with server:
        port = server.server_address[1]
        url = authorize_url(cfg, f"http://127.0.0.1:{port}/callback", answer.state)
        print(f"Open this address, sign in to Strava and approve the app:\n\n  {url}\n", file=ctx.out, flush=True)
        if not args.no_browser:
            import webbrowser

            webbrowser.open(url)
        print(f"Waiting for Strava's answer on http://127.0.0.1:{port}/callback ...", file=ctx.out, flush=True)
        server.timeout = 0.5
        deadline = time.monotonic() + args.timeout
        while not answer.done.is_set():
            if time.monotonic() > deadline:
                print(f"error: no answer from Strava within {args.timeout:.0f} s; nothing was stored", file=ctx.err)
                return EXIT_FAILED
            server.handle_request()
    print(answer.message, file=ctx.out if answer.ok else ctx.err)
    return EXIT_OK if answer.ok else EXIT_FAILED


# ---- invitations and athletes ------------------------------------------------------------------------------
def run_invite(args: argparse.Namespace, ctx: Context) -> int:
    from shared.owner.invitations import InvitationRefused, new_invitation

    cfg = _settings(ctx)
    if cfg is None:
        return EXIT_FAILED
    try:
        key, expires = new_invitation(cfg.storage, cfg.athlete_limit, args.note)
    except InvitationRefused as exc:
        print(f"error: {exc}", file=ctx.err)
        return EXIT_FAILED
    base = (args.app_url or "https://<your app>.azurewebsites.net").rstrip("/")
    print(f"Invitation (single use, until {expires:%Y-%m-%d %H:%M} UTC; shown only now):\n\n"
          f"  {base}/api/strava/connect?key={key}\n\n"
          "Send the athlete this link. After approving on Strava they see their own API key: it goes in their "
          "Zap as X-Api-Key (or apiKey) and routes their activities to their Strava account.", file=ctx.out)
    return EXIT_OK


def run_athletes(args: argparse.Namespace, ctx: Context) -> int:
    from shared.storage import users
    from shared.strava import tokens

    cfg = _settings(ctx)
    if cfg is None:
        return EXIT_FAILED
    if args.revoke:
        if users.revoke(cfg.storage, args.revoke):
            print(f"The personal key of athlete {args.revoke} no longer works (their log and Strava connection "
                  "stay; a new invitation gives them a new key).", file=ctx.out)
            return EXIT_OK
        print(f"error: athlete {args.revoke} has no personal key", file=ctx.err)
        return EXIT_FAILED
    owner = tokens.get_connection(cfg.storage)
    print("Owner (SYNC_API_KEY): " + (f"{owner.name} (athlete {owner.athlete_id})" if owner
                                      else "Strava not connected yet"), file=ctx.out)
    found = users.athletes(cfg.storage)
    if not found:
        print("No invited athletes yet: python -m shared.cli invite", file=ctx.out)
    for a in found:
        conn = tokens.get_connection(cfg.storage, a.athlete_id)
        state = "connected" if conn else "not connected"
        key = "key since " + (a.key_created.strftime("%Y-%m-%d") if a.key_created else "?") if a.has_key else "no key"
        print(f"  athlete {a.athlete_id}  {a.name or '?':<30}  {state}, {key}", file=ctx.out)
    return EXIT_OK
