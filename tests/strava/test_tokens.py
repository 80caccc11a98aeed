"""The connections table and token refresh: one refresh at Strava however many workers race for it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from shared.config import Settings, SettingsError
from shared.storage import clients
from shared.storage.clients import Storage
from shared.strava.errors import NotConnected, Transient
from shared.strava.tokens import (
    PARTITION,
    Connection,
    TokenManager,
    client_from_settings,
    get_connection,
    post_token,
    save_connection,
)
from tests.support.fake_strava import FakeStrava
from tests.support.fixtures_strava import connect_athlete

ROOT = Path(__file__).resolve().parents[2]


def manager(storage: Storage, fake: FakeStrava, athlete_id: str | None = None) -> TokenManager:
    return TokenManager(storage, base_url=fake.url, client_id=fake.client_id, client_secret=fake.client_secret,
                        athlete_id=athlete_id)


def connect_expiring(storage: Storage, fake: FakeStrava) -> Connection:
    """A connection whose access token expires in a minute (inside the 5-minute margin)."""
    fake.token_lifetime = 60
    conn = connect_athlete(storage, fake)
    fake.token_lifetime = 6 * 3600
    return conn


# ---- the table -------------------------------------------------------------------------------------
def test_save_and_get_connection_hides_tokens_in_repr(strava_env: dict, storage: Storage,
                                                      fake_strava: FakeStrava) -> None:
    assert get_connection(storage) is None
    conn = connect_athlete(storage, fake_strava)
    assert conn.athlete_id == str(fake_strava.athlete.id) and conn.name == "Ada Lovelace"
    assert conn.scopes == "read,activity:write,activity:read_all" and conn.can_upload
    assert conn.access_token not in repr(conn) and conn.refresh_token not in repr(conn)
    again = get_connection(storage)
    assert again == conn
    assert get_connection(storage, conn.athlete_id) == conn
    assert get_connection(storage, "424242") is None


def test_default_pointer_and_several_athletes(strava_env: dict, storage: Storage, fake_strava: FakeStrava) -> None:
    first = connect_athlete(storage, fake_strava)
    other = fake_strava.add_athlete("Grace", "Hopper")
    second = connect_athlete(storage, fake_strava, other.id, make_default=False)
    defaulted = get_connection(storage)
    assert defaulted is not None and defaulted.athlete_id == first.athlete_id
    found = get_connection(storage, second.athlete_id)
    assert found is not None and found.name == "Grace Hopper"
    assert manager(storage, fake_strava, second.athlete_id).access_token() == second.access_token
    connect_athlete(storage, fake_strava, other.id)  # reconnecting makes it the default
    defaulted = get_connection(storage)
    assert defaulted is not None and defaulted.athlete_id == second.athlete_id


def test_token_answer_without_athlete_is_refused(strava_env: dict, storage: Storage) -> None:
    with pytest.raises(ValueError, match="athlete"):
        save_connection(storage, {"access_token": "a", "refresh_token": "r", "expires_at": 1}, "activity:write")
    assert get_connection(storage) is None


def test_not_connected(strava_env: dict, storage: Storage, fake_strava: FakeStrava) -> None:
    with pytest.raises(NotConnected, match="/api/strava/connect"):
        manager(storage, fake_strava).access_token()


def test_client_from_settings_names_missing_settings(storage: Storage) -> None:
    with pytest.raises(SettingsError, match="STRAVA_CLIENT_SECRET") as info:
        client_from_settings(Settings(storage=storage, api_key="k", strava_client_id="1", strava_client_secret=None))
    assert "STRAVA_CLIENT_ID" not in str(info.value)


# ---- refresh ---------------------------------------------------------------------------------------
def test_fresh_token_is_used_without_refresh(strava_env: dict, storage: Storage, fake_strava: FakeStrava,
                                             connected_athlete: Connection) -> None:
    tm = manager(storage, fake_strava)
    assert tm.access_token() == connected_athlete.access_token
    assert fake_strava.refresh_count == 0


def test_expiry_leads_to_exactly_one_refresh(strava_env: dict, storage: Storage, fake_strava: FakeStrava) -> None:
    old = connect_expiring(storage, fake_strava)
    tm = manager(storage, fake_strava)
    token = tm.access_token()
    assert token != old.access_token and fake_strava.token_is_valid(token)
    assert tm.access_token() == token
    assert manager(storage, fake_strava).access_token() == token
    assert fake_strava.refresh_count == 1
    stored = get_connection(storage)
    current = fake_strava.current_tokens()
    assert stored is not None and current is not None
    assert (stored.access_token, stored.refresh_token, stored.expires_at) == current  # the newest, rotated
    assert stored.lease_until == 0.0


def test_401_refresh_with_a_stale_token_someone_already_replaced(strava_env: dict, storage: Storage,
                                                                 fake_strava: FakeStrava) -> None:
    old = connect_expiring(storage, fake_strava)
    new = manager(storage, fake_strava).access_token()
    assert manager(storage, fake_strava).refresh(old.access_token) == new  # no second refresh at Strava
    assert fake_strava.refresh_count == 1


def test_eight_threads_at_expiry_cause_one_refresh(strava_env: dict, storage: Storage, fake_strava: FakeStrava) -> None:
    connect_expiring(storage, fake_strava)
    barrier = threading.Barrier(8)
    results: list[str] = []
    errors: list[BaseException] = []

    def work() -> None:
        tm = manager(storage, fake_strava)  # each worker its own manager, as separate invocations would
        barrier.wait()
        try:
            results.append(tm.access_token())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors
    assert len(results) == 8 and len(set(results)) == 1
    assert fake_strava.refresh_count == 1
    assert fake_strava.token_is_valid(results[0])


CHILD = r"""
import json, os, sys, threading
from shared.storage.clients import Storage
from shared.strava.tokens import TokenManager
go = threading.Event()
results, lock = [], threading.Lock()
def work():
    storage = Storage.from_settings(os.environ)  # the test's storage, STORAGE_NAME_PREFIX included
    tm = TokenManager(storage, base_url=os.environ["T_BASE"], client_id=os.environ["T_ID"],
                      client_secret=os.environ["T_SECRET"])
    go.wait()
    try:
        token = tm.access_token()
    except Exception as exc:
        token = "error: " + type(exc).__name__
    with lock:
        results.append(token)
threads = [threading.Thread(target=work) for _ in range(4)]
for t in threads:
    t.start()
print("ready", flush=True)
sys.stdin.readline()
go.set()
for t in threads:
    t.join()
print(json.dumps(results), flush=True)
"""


def test_two_processes_at_expiry_cause_one_refresh(strava_env: dict, storage: Storage, fake_strava: FakeStrava) -> None:
    connect_expiring(storage, fake_strava)
    assert os.environ["STORAGE_NAME_PREFIX"] == storage.prefix  # strava_env put the test's storage there
    env = {**os.environ, "T_BASE": fake_strava.url,
           "T_ID": fake_strava.client_id, "T_SECRET": fake_strava.client_secret}
    procs = [subprocess.Popen([sys.executable, "-c", CHILD], cwd=ROOT, env=env, text=True,
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(2)]
    try:
        for proc in procs:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        outputs = [proc.communicate(timeout=120) for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
    tokens = [tok for out, _ in outputs for tok in json.loads(out.strip().splitlines()[-1])]
    assert len(tokens) == 8 and len(set(tokens)) == 1, [err for _, err in outputs]
    assert fake_strava.refresh_count == 1
    assert fake_strava.token_is_valid(tokens[0])


def test_loser_meeting_a_rotated_refresh_token_uses_the_winners(strava_env: dict, storage: Storage,
                                                               fake_strava: FakeStrava) -> None:
    conn = connect_expiring(storage, fake_strava)
    loser = manager(storage, fake_strava)
    leased = loser._claim(loser.connection(), time.time())
    assert leased is not None
    # Meanwhile the winner (whose lease had lapsed for the loser's view) refreshes and stores its tokens.
    winner = post_token(fake_strava.url, fake_strava.client_id, fake_strava.client_secret,
                        grant_type="refresh_token", refresh_token=conn.refresh_token)
    table = clients.table(storage, clients.CONNECTIONS_TABLE)
    table.update_entity({"PartitionKey": PARTITION, "RowKey": conn.athlete_id, "access_token": winner["access_token"],
                         "refresh_token": winner["refresh_token"], "expires_at": winner["expires_at"],
                         "lease_until": 0.0, "lease_owner": ""})
    got = loser._refresh_at_strava(leased)  # Strava answers 400: that refresh token was just rotated
    assert got.access_token == winner["access_token"]
    stored = get_connection(storage)
    assert stored is not None and stored.refresh_token == winner["refresh_token"]
    assert fake_strava.refresh_count == 2


def test_a_newer_stored_token_is_never_overwritten(strava_env: dict, storage: Storage, fake_strava: FakeStrava) -> None:
    conn = connect_athlete(storage, fake_strava)
    tm = manager(storage, fake_strava)
    leased = tm._claim(tm.connection(), time.time())
    assert leased is not None
    table = clients.table(storage, clients.CONNECTIONS_TABLE)
    table.update_entity({"PartitionKey": PARTITION, "RowKey": conn.athlete_id, "access_token": "newer-access",
                         "refresh_token": "newer-refresh", "expires_at": conn.expires_at + 100})
    kept = tm._store(leased, "older-access", "older-refresh", conn.expires_at + 50)
    assert kept.access_token == "newer-access"
    stored = get_connection(storage)
    assert stored is not None and stored.refresh_token == "newer-refresh"


def test_a_store_that_loses_its_race_to_an_older_token_rereads_and_writes(strava_env: dict, storage: Storage,
                                                                         fake_strava: FakeStrava) -> None:
    conn = connect_athlete(storage, fake_strava)
    tm = manager(storage, fake_strava)
    leased = tm._claim(tm.connection(), time.time())
    assert leased is not None
    clients.table(storage, clients.CONNECTIONS_TABLE).update_entity(  # the ETag moves on, the token does not
        {"PartitionKey": PARTITION, "RowKey": conn.athlete_id, "name": "Renamed"})
    stored = tm._store(leased, "new-access", "new-refresh", conn.expires_at + 50)
    assert (stored.access_token, stored.name) == ("new-access", "Renamed")  # re-read, then written on top
    row = get_connection(storage)
    assert row is not None and (row.refresh_token, row.lease_until, row.etag) == ("new-refresh", 0.0, stored.etag)


def test_a_crashed_workers_lease_lapses(strava_env: dict, storage: Storage, fake_strava: FakeStrava) -> None:
    conn = connect_expiring(storage, fake_strava)
    clients.table(storage, clients.CONNECTIONS_TABLE).update_entity(
        {"PartitionKey": PARTITION, "RowKey": conn.athlete_id, "lease_until": time.time() + 1.0,
         "lease_owner": "a-worker-that-died"})
    token = manager(storage, fake_strava).access_token()
    assert token != conn.access_token and fake_strava.token_is_valid(token)
    assert fake_strava.refresh_count == 1


def test_strava_down_during_refresh_is_transient_and_releases_the_lease(strava_env: dict, storage: Storage,
                                                                       fake_strava: FakeStrava) -> None:
    connect_expiring(storage, fake_strava)
    fake_strava.fail_next(1, 503, path_prefix="/oauth/token")
    with pytest.raises(Transient):
        manager(storage, fake_strava).access_token()
    stored = get_connection(storage)
    assert stored is not None and stored.lease_until == 0.0
    assert fake_strava.token_is_valid(manager(storage, fake_strava).access_token())


def test_revoked_connection_is_not_connected(strava_env: dict, storage: Storage, fake_strava: FakeStrava) -> None:
    conn = connect_expiring(storage, fake_strava)
    fake_strava.revoke(int(conn.athlete_id))
    with pytest.raises(NotConnected, match="reconnect"):
        manager(storage, fake_strava).access_token()
    stored = get_connection(storage)
    assert stored is not None and stored.lease_until == 0.0


def test_wrong_client_secret_is_permanent_and_quiet(strava_env: dict, storage: Storage,
                                                    fake_strava: FakeStrava) -> None:
    connect_expiring(storage, fake_strava)
    tm = TokenManager(storage, base_url=fake_strava.url, client_id=fake_strava.client_id,
                      client_secret="not-the-secret-xyz")
    with pytest.raises(Exception, match="STRAVA_CLIENT_SECRET") as info:
        tm.access_token()
    assert "not-the-secret-xyz" not in str(info.value) and "not-the-secret-xyz" not in repr(tm)
