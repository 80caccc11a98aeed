"""`python -m shared.cli status|retry|connect|invite|athletes` against Azurite and the fake Strava over HTTP."""

from __future__ import annotations

import io
import json
import logging
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from shared.cli.app import main
from shared.storage import activitylog, kept, users
from shared.storage.activitylog import Entry
from shared.strava import tokens
from tests.support import datasets
from tests.support.athletes import body, connect_with, invite, post_activity
from tests.support.builders import track
from tests.support.fixtures_sync import drain_all

START = datetime(2024, 3, 1, 7, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def own_table(monkeypatch: pytest.MonkeyPatch, tmp_path) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)  # no local.settings.json: the environment is the settings
    shared = logging.getLogger("shared")  # an in-process import sets up its own output: undo it for later tests
    saved = (shared.propagate, shared.level, list(shared.handlers))
    yield
    shared.propagate, shared.handlers[:] = saved[0], saved[2]
    shared.setLevel(saved[1])  # setLevel, not .level: it also clears the loggers' cached levels


def cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()




def test_status_shows_recent_activities_and_every_failure(sync_env) -> None:
    rows = [Entry(user="owner", sync_id=f"a{n:020x}", status=s, start=START + timedelta(days=n), name=f"Run {n}",
                  sport_type="Run", activity_id="987654321" if s == "synced" else None,
                  error="Strava could not process the upload" if s == "failed" else None)
            for n, s in enumerate(("failed", "synced", "synced"))]
    for row in rows:
        activitylog.create(sync_env.storage, row)
    activitylog.create(sync_env.storage, Entry(user="athlete-9", sync_id="a" + "9" * 20, status="synced",
                                               start=START, name="Nine's run"))
    code, out, _ = cli("status", "--limit", "2")
    assert code == 0
    assert "The 2 most recent activities of the owner" in out and "2 synced" in out
    assert out.index("Run 2") < out.index("Run 1") and "987654321" in out and "Nine's run" not in out
    failures = out.split("Failures (1):")[1]
    assert rows[0].sync_id in failures and "Strava could not process the upload" in failures
    assert "retry --all-failed" in failures

    code, out, _ = cli("status", "--json", "--status", "synced")
    assert code == 0 and [r["id"] for r in json.loads(out)] == [rows[2].sync_id, rows[1].sync_id]
    code, out, _ = cli("status", "--athlete", "9")
    assert "Nine's run" in out and "Run 1" not in out
    code, out, _ = cli("status", "--since", "2030-01-01")
    assert "no activities matching" in out
    with pytest.raises(SystemExit):
        cli("status", "--athlete", "bob")


def test_retry_one_and_all_failed(connected) -> None:
    connected.fake.fail_next_processing("activity.gpx: Improperly formatted data.")
    sid = body(post_activity(connected.sync.api_key, track("2024-04-01T07:00:00+01:00")))["id"]
    drain_all(connected)
    assert connected.sync.entry(sid).status == "failed"
    code, out, _ = cli("retry", sid)
    assert code == 0 and out.strip() == f"queued: {sid}"
    drain_all(connected)
    assert connected.sync.entry(sid).status == "synced"

    imported = Entry(user="owner", sync_id="a" + "4" * 20, status="failed", source="import", error="x")
    activitylog.create(connected.sync.storage, imported)
    code, out, err = cli("retry", "--all-failed")
    assert code == 1 and "0 queued again, 1 not" in out and "--retry-failed" in err
    code, _, err = cli("retry", "a" + "5" * 20)
    assert code == 1 and "no activity" in err


def test_retry_a_rejected_one_with_the_corrected_payload(connected, tmp_path) -> None:
    bad = {"activityType": "Running", "activityStartTimeIso": "soon", "activityDuration": "600"}
    assert post_activity(connected.sync.api_key, bad).status_code == 400
    [rejected] = connected.sync.entries()
    code, _, err = cli("retry", rejected.sync_id)
    assert code == 1 and "corrected payload" in err and "activityStartTimeIso" in err
    fixed = tmp_path / "fixed.json"
    fixed.write_text(json.dumps({**bad, "activityStartTimeIso": "2024-04-02T07:00:00+01:00"}))
    code, out, _ = cli("retry", rejected.sync_id, "--payload", str(fixed))
    assert code == 0 and "which replaces it" in out
    drain_all(connected)
    assert [e.status for e in connected.sync.entries()] == ["synced"]


def _run_connect(*extra: str) -> tuple[threading.Thread, io.StringIO, io.StringIO, list[int]]:
    out, err, code = io.StringIO(), io.StringIO(), []
    thread = threading.Thread(target=lambda: code.append(
        main(["connect", "--no-browser", "--timeout", "30", *extra], out=out, err=err)), daemon=True)
    thread.start()
    return thread, out, err, code


def _printed_url(out: io.StringIO) -> str:
    deadline = time.monotonic() + 20
    while "/oauth/authorize?" not in out.getvalue():
        assert time.monotonic() < deadline, "connect printed no URL"
        time.sleep(0.05)
    return next(w for w in out.getvalue().split() if "/oauth/authorize?" in w)


def test_connect_from_the_terminal_end_to_end(strava_env, fake_strava, storage) -> None:
    thread, out, err, code = _run_connect()
    url = _printed_url(out)
    query = parse_qs(urlsplit(url).query)
    redirect = query["redirect_uri"][0]
    assert url.startswith(fake_strava.url + "/oauth/authorize?") and redirect.startswith("http://127.0.0.1:")
    assert redirect.endswith("/callback") and query["scope"] == ["activity:write,activity:read_all"]

    forged = requests.get(f"{redirect}?state=forged&code=x&scope=activity:write", timeout=5)
    assert forged.status_code == 400 and thread.is_alive()  # a wrong state is refused; still waiting

    back = requests.get(url, allow_redirects=False, timeout=5).headers["Location"]  # the athlete approves
    page = requests.get(back, timeout=10)
    assert page.status_code == 200 and "Connected to Strava as Ada Lovelace" in page.text
    thread.join(timeout=20)
    assert code == [0]
    conn = tokens.get_connection(storage)
    assert conn is not None and conn.athlete_id == str(fake_strava.athlete.id)
    assert tokens.default_athlete_id(storage) == conn.athlete_id
    printed = out.getvalue() + err.getvalue()
    assert "Connected to Strava as Ada Lovelace" in printed
    for secret in (conn.access_token, conn.refresh_token, strava_env["STRAVA_CLIENT_SECRET"],
                   parse_qs(urlsplit(back).query)["code"][0]):
        assert secret not in printed


def test_connect_refused_on_strava_stores_nothing(strava_env, fake_strava, storage) -> None:
    fake_strava.authorize_mode = "deny"
    thread, out, err, code = _run_connect()
    back = requests.get(_printed_url(out), allow_redirects=False, timeout=5).headers["Location"]
    assert requests.get(back, timeout=10).status_code == 400
    thread.join(timeout=20)
    assert code == [1] and "did not authorize" in err.getvalue()
    assert tokens.get_connection(storage) is None


def test_connect_gives_up_after_its_timeout(strava_env) -> None:
    code, _, err = cli("connect", "--no-browser", "--timeout", "0.2")
    assert code == 1 and "no answer from Strava" in err


def test_invite_then_athletes_then_revoke(connected) -> None:
    code, out, _ = cli("invite", "--app-url", "https://rk.example.net/", "--note", "Bob")
    assert code == 0
    link = next(w for w in out.split() if w.startswith("https://rk.example.net/api/strava/connect?key=inv_"))
    invitation = link.split("key=")[1]
    assert users.identify(connected.sync.storage, invitation, None, invitations=True) is not None

    bob = connected.fake.add_athlete("Bob", "Beamon")
    assert connect_with(invitation, connected.fake, bob.id).status_code == 200
    code, out, _ = cli("athletes")
    assert code == 0 and "Owner (SYNC_API_KEY): Ada Lovelace" in out
    assert f"athlete {bob.id}  Bob Beamon" in out and "connected, key since" in out
    code, out, _ = cli("athletes", "--revoke", str(bob.id))
    assert code == 0 and "no longer works" in out
    assert "no key" in cli("athletes")[1]
    assert cli("athletes", "--revoke", str(bob.id))[0] == 1


@pytest.mark.parametrize(("kind", "since", "count"), [("real", "2016-01-01", 7), ("synthetic", "2016-03-01", 7)])
def test_import_for_an_invited_athlete_goes_to_their_log_and_strava(connected, tmp_path, kind, since, count) -> None:
    export = datasets.export("2016", kind).path
    bob = connected.fake.add_athlete("Bob", "Beamon")
    invite(connected.sync.storage, connected.fake, bob.id)
    code, _, err = cli("import", str(export), "--athlete", str(bob.id), "--since", since)
    assert code == 0, err
    bob_rows = connected.sync.entries(users.user_for_athlete(bob.id))
    assert len(bob_rows) == count and all(e.status == "synced" for e in bob_rows)
    assert connected.sync.entries() == []  # nothing in the owner's log
    assert connected.fake.activities(connected.fake.athlete.id) == []
    assert len(connected.fake.activities(bob.id)) == len(bob_rows)
    assert not any(b.startswith(kept.KEPT_PREFIX) for b in connected.sync.blobs())


def test_invite_is_refused_once_the_athlete_limit_is_reached(connected, monkeypatch) -> None:
    monkeypatch.setenv("STRAVA_ATHLETE_LIMIT", "1")
    assert cli("invite", "--note", "Bob")[0] == 0  # the owner's own connection takes no place
    bob = connected.fake.add_athlete("Bob", "Beamon")
    users.revoke_invitation(connected.sync.storage, users.pending_invitations(connected.sync.storage)[0].digest)
    invite(connected.sync.storage, connected.fake, bob.id)
    code, out, err = cli("invite", "--note", "Carl")
    assert code == 1 and "inv_" not in out
    assert "1 athlete(s) connected" in err and "limit of 1" in err and "STRAVA_ATHLETE_LIMIT" in err
    assert users.pending_invitations(connected.sync.storage) == []
