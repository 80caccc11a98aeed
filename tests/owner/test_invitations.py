"""Several athletes on one deployment: invitations, personal keys, and each athlete's activities on their own Strava.

Two fake Strava accounts (Ada, the owner's default connection, and Bob, invited), the real ack, the
host-like drain and the real connect flow over HTTP.
"""

from __future__ import annotations

import logging

import pytest
import requests

from shared.live import sync
from shared.owner.connect import callback, connect
from shared.storage import users
from shared.strava import tokens
from tests.support.athletes import (
    APP,
    body,
    connect_with,
    consent,
    invite,
    list_log,
    post_activity,
    request,
    retry,
)
from tests.support.builders import manual, track
from tests.support.fixtures_sync import drain_all


@pytest.fixture
def two(connected):
    """Ada connected by the owner (the default), Bob invited and connected; answers (live, bob, bob's key)."""
    bob = connected.fake.add_athlete("Bob", "Beamon")
    key = invite(connected.sync.storage, connected.fake, bob.id)
    return connected, bob, key


def _id(resp) -> str:
    assert resp.status_code == 202, resp.get_body()
    return body(resp)["id"]




def test_each_athletes_posts_reach_their_own_strava(two, caplog) -> None:
    live, bob, bob_key = two
    ada = live.fake.athlete
    caplog.set_level(logging.INFO, logger="shared")
    assert tokens.default_athlete_id(live.sync.storage) == str(ada.id)  # Bob's connect left the owner's alone

    mine = _id(post_activity(live.sync.api_key, track("2024-05-01T07:00:00+01:00")))
    his = _id(post_activity(bob_key, track("2024-05-02T07:00:00+01:00"), in_body=True))  # an original-style Zap
    same_for_him = _id(post_activity(bob_key, track("2024-05-01T07:00:00+01:00")))  # same start as Ada's
    assert same_for_him == mine  # the same sync id, but in Bob's own log
    stats = drain_all(live)
    assert stats.failed == 0 and stats.poisoned == []

    assert [a.external_id for a in live.fake.activities(ada.id)] == [f"rk2strava-{mine}"]
    assert sorted(a.external_id for a in live.fake.activities(bob.id)) == sorted(
        [f"rk2strava-{his}", f"rk2strava-{mine}"])
    assert live.sync.entry(mine).status == "synced"
    bob_user = users.user_for_athlete(bob.id)
    assert {e.sync_id: e.status for e in live.sync.entries(bob_user)} == {his: "synced", mine: "synced"}

    owner_view = body(list_log(live.sync.api_key))
    assert owner_view["user"] == "owner" and [a["id"] for a in owner_view["activities"]] == [mine]
    bob_view = body(list_log(bob_key))
    assert bob_view["user"] == bob_user and [a["id"] for a in bob_view["activities"]] == [his, mine]

    # One structured line per state change, naming sync id, status and user.
    lines = [r.getMessage() for r in caplog.records if r.name == "shared.storage.activitylog"]
    assert any(f"sync_id={his} status=queued" in m and f"user={bob_user}" in m for m in lines)
    assert any(f"sync_id={his} status=synced" in m and f"user={bob_user}" in m for m in lines)
    assert any(f"sync_id={mine} status=synced" in m and "user=owner" in m for m in lines)
    assert bob_key not in caplog.text and live.sync.api_key not in caplog.text


def test_one_athletes_broken_connection_does_not_hold_up_another(two) -> None:
    live, bob, bob_key = two
    live.fake.revoke(bob.id)  # Bob removed the app on Strava
    his = _id(post_activity(bob_key, manual("2024-06-01T08:00:00+01:00")))
    mine = _id(post_activity(live.sync.api_key, manual("2024-06-01T09:00:00+01:00")))
    stats = drain_all(live, workers=1)
    assert stats.failed == 0 and stats.poisoned == []
    assert live.sync.entry(mine).status == "synced" and len(live.fake.activities(live.fake.athlete.id)) == 1
    failed = live.sync.entry(his, users.user_for_athlete(bob.id))
    assert failed.status == "failed" and "reconnect" in failed.error

    # Bob reconnects with his own key (his key stays the same) and sends the failure again.
    page = connect_with(bob_key, live.fake, bob.id)
    assert page.status_code == 200 and "Reconnected" in page.get_body().decode()
    assert tokens.default_athlete_id(live.sync.storage) == str(live.fake.athlete.id)
    again = retry(bob_key, his)
    assert again.status_code == 202 and body(again) == {"id": his, "status": "queued", "retried": his}
    drain_all(live)
    assert live.sync.entry(his, users.user_for_athlete(bob.id)).status == "synced"
    assert len(live.fake.activities(bob.id)) == 1
    assert live.sync.blobs() == []  # the kept payload went once it was on Strava


def test_a_transient_failure_of_one_athlete_delays_only_that_athlete(two) -> None:
    live, bob, bob_key = two
    live.fake.fail_next(1, 502, path_prefix="/api/v3/activities", method="POST")
    his = _id(post_activity(bob_key, manual("2024-06-02T08:00:00+01:00")))  # first in the queue: gets the 502
    mine = _id(post_activity(live.sync.api_key, manual("2024-06-02T09:00:00+01:00")))
    with live.sync.drain(workers=1) as drain:
        drain.run(timeout=30, wait=False)
        assert live.sync.entry(mine).status == "synced"
        assert live.sync.entry(mine).attempts == 1
        assert live.sync.entry(his, users.user_for_athlete(bob.id)).status == "queued"  # retried later
        drain.run(timeout=60)
    row = live.sync.entry(his, users.user_for_athlete(bob.id))
    assert row.status == "synced" and row.attempts == 2


def test_a_rate_limit_holds_everyone_only_until_the_window_resets(two, monkeypatch) -> None:
    """Strava's limits are the app's, shared by all athletes: a 429 for one defers all, to the next window only."""
    live, bob, bob_key = two
    fake = live.fake
    monkeypatch.setattr(sync, "_clock", lambda: fake.now)
    fake.set_limits(overall=(2, 1000))
    access, _, _ = fake.current_tokens()
    for _ in range(2):  # the window is spent already
        requests.get(fake.url + "/api/v3/athlete", headers={"Authorization": f"Bearer {access}"}, timeout=5)
    his = _id(post_activity(bob_key, manual("2024-06-03T08:00:00+01:00")))
    mine = _id(post_activity(live.sync.api_key, manual("2024-06-03T09:00:00+01:00")))
    with live.sync.drain() as drain:
        drain.run(timeout=30, wait=False)
        bob_user = users.user_for_athlete(bob.id)
        for sid, user in ((his, bob_user), (mine, "owner")):
            row = live.sync.entry(sid, user)
            assert row.status == "queued" and "rate" in row.error
        assert fake.rate_limited_count == 1  # the second learned from the first's 429: no call
        fake.advance_window()
        drain.run(timeout=60)
    assert live.sync.entry(his, bob_user).status == "synced" and live.sync.entry(mine).status == "synced"


def test_a_personal_key_cannot_connect_someone_elses_strava(two, storage) -> None:
    live, _, bob_key = two
    ada_before = tokens.get_connection(live.sync.storage, str(live.fake.athlete.id))
    page = connect_with(bob_key, live.fake, live.fake.athlete.id)
    assert page.status_code == 400 and "another athlete" in page.get_body().decode()
    assert tokens.get_connection(live.sync.storage, str(live.fake.athlete.id)) == ada_before


def test_an_invitation_works_once_and_a_used_one_gets_nowhere(connected) -> None:
    carl = connected.fake.add_athlete("Carl", "Lewis")
    invitation, _ = users.create_invitation(connected.sync.storage)
    first = connect_with(invitation, connected.fake, carl.id)
    assert first.status_code == 200 and "personal API key" in first.get_body().decode()
    again = connect(request("GET", f"{APP}/api/strava/connect?key={invitation}"))
    assert again.status_code == 401
    # Two browsers that both opened the page before either finished: the second callback is refused.
    dan = connected.fake.add_athlete("Dan", "O'Brien")
    second_invite, _ = users.create_invitation(connected.sync.storage)
    connected.fake.authorizing_athlete = dan.id
    backs = [consent(connect(request("GET", f"{APP}/api/strava/connect?key={second_invite}"))) for _ in range(2)]
    pages = [callback(request("GET", back)) for back in backs]
    assert [p.status_code for p in pages] == [200, 400]
    assert "already used" in pages[1].get_body().decode()
    assert len(users.athletes(connected.sync.storage)) == 2


def test_an_invited_athlete_never_becomes_the_owners_default(live) -> None:
    """Nobody connected the owner's account yet: an invitee's connection must not become the owner's."""
    bob = live.fake.add_athlete("Bob", "Beamon")
    bob_key = invite(live.sync.storage, live.fake, bob.id)
    assert tokens.default_athlete_id(live.sync.storage) is None
    mine = _id(post_activity(live.sync.api_key, manual("2024-06-04T09:00:00+01:00")))
    his = _id(post_activity(bob_key, manual("2024-06-04T10:00:00+01:00")))
    drain_all(live)
    assert live.sync.entry(mine).status == "failed" and "not connected" in live.sync.entry(mine).error
    assert live.sync.entry(his, users.user_for_athlete(bob.id)).status == "synced"
    assert [a.athlete_id for a in live.fake.activities()] == [bob.id]


def test_a_revoked_or_made_up_personal_key_posts_nothing(two) -> None:
    live, bob, bob_key = two
    assert users.revoke(live.sync.storage, str(bob.id))
    for key in (bob_key, "rk_" + "A" * 43):
        resp = post_activity(key, manual("2024-06-05T10:00:00+01:00"))
        assert resp.status_code == 401
        assert list_log(key).status_code == 401
    assert live.sync.queue_count() == 0


# ---- Strava's athlete limit ---------------------------------------------------------------------------------
def _invite_over_http(key: str):
    from tests.support.athletes import call

    return call("invitations", request("POST", f"{APP}/api/invitations", headers={"X-Api-Key": key}))


def test_strava_refusing_one_athlete_too_many_says_so_and_stores_nothing(connected) -> None:
    carl = connected.fake.add_athlete("Carl", "Lewis")
    invitation, _ = users.create_invitation(connected.sync.storage)
    connected.fake.athlete_limit_reached = True
    page = connect_with(invitation, connected.fake, carl.id)
    text = page.get_body().decode()
    assert page.status_code == 403 and 'name="viewport"' in text
    assert "limit of connected athletes is reached" in text and "nothing was stored" in text
    assert "owner plus 10 athletes" in text and "developer program" in text and "revoke" in text
    assert "used already" not in text
    assert tokens.get_connection(connected.sync.storage, str(carl.id)) is None
    assert users.athletes(connected.sync.storage) == []
    assert users.identify(connected.sync.storage, invitation, None, invitations=True) is not None  # still unused
    assert connected.fake.take_spec_violations() == []


def test_invitations_stop_at_the_athlete_limit_over_http(connected, monkeypatch) -> None:
    monkeypatch.setenv("STRAVA_ATHLETE_LIMIT", "2")
    owner_key = connected.sync.api_key
    bob = connected.fake.add_athlete("Bob", "Beamon")
    invite(connected.sync.storage, connected.fake, bob.id)  # one connected athlete (the owner does not count)
    pending = _invite_over_http(owner_key)
    assert pending.status_code == 201, pending.get_body()  # under the limit: still works
    refused = _invite_over_http(owner_key)  # one connected + one pending fill a limit of 2
    assert refused.status_code == 409
    message = body(refused)["error"]
    assert "STRAVA_ATHLETE_LIMIT" in message and "1 athlete(s) connected and 1 pending" in message
    assert len(users.pending_invitations(connected.sync.storage)) == 1
    assert users.revoke_invitation(connected.sync.storage, users.pending_invitations(connected.sync.storage)[0].digest)
    assert _invite_over_http(owner_key).status_code == 201  # a revoked invitation frees its place
