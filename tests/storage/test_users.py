"""shared.storage.users against Azurite: keys stored only as hashes, invitations single use, the connect note."""

from __future__ import annotations

import json
from datetime import timedelta

from shared.model.times import utcnow
from shared.storage import users
from shared.storage.clients import Storage


def rows(storage: Storage) -> list[dict]:
    return [dict(e) for e in users.table(storage).list_entities()]


def test_owner_key_needs_no_storage_and_wrong_keys_are_none(storage: Storage) -> None:
    assert users.identify("not-a-connection-string", "owner-secret-key", "owner-secret-key") == users.OWNER_CALLER
    for wrong in (None, "", "nope", "rk_" + "x" * 43, "inv_" + "y" * 43, "rk_" + "z" * 500):
        assert users.identify(storage, wrong, "owner-secret-key", invitations=True) is None


def test_personal_key_identifies_its_athlete_and_is_stored_only_as_a_hash(storage: Storage) -> None:
    user, key = users.issue_key(storage, "777", "Bob Beamon")
    assert user == "athlete-777" and key.startswith("rk_") and len(key) > 40
    caller = users.identify(storage, key, "owner-key")
    assert caller == users.Caller("athlete", "athlete-777", "777", users.key_hash(key))
    assert users.athlete_of(caller.user) == "777" and users.athlete_of(users.OWNER) is None
    assert key not in json.dumps(rows(storage), default=str)
    [athlete] = users.athletes(storage)
    assert (athlete.user, athlete.athlete_id, athlete.name, athlete.has_key) == ("athlete-777", "777", "Bob Beamon",
                                                                                 True)


def test_a_new_key_replaces_the_old_one_and_revoke_stops_it(storage: Storage) -> None:
    _, first = users.issue_key(storage, "42", "Ann")
    _, second = users.issue_key(storage, "42", "Ann")
    assert users.identify(storage, first, None) is None
    assert users.identify(storage, second, None) is not None
    assert users.revoke(storage, "42") is True
    assert users.identify(storage, second, None) is None
    assert users.revoke(storage, "42") is False and users.revoke(storage, "43") is False
    assert [a.has_key for a in users.athletes(storage)] == [False]


def test_invitation_counts_only_on_the_connect_page_and_only_once(storage: Storage) -> None:
    key, expires = users.create_invitation(storage, "for Bob")
    assert expires > utcnow()
    assert key.startswith("inv_") and key not in json.dumps(rows(storage), default=str)
    assert users.identify(storage, key, "owner") is None  # not a key for posting activities
    caller = users.identify(storage, key, "owner", invitations=True)
    assert caller is not None and caller.kind == "invite" and caller.user is None
    assert users.use_invitation(storage, caller.key_hash or "", "555") == "ok"
    assert users.use_invitation(storage, caller.key_hash or "", "556") == "used"
    assert users.identify(storage, key, "owner", invitations=True) is None
    assert users.use_invitation(storage, users.key_hash("inv_unknown"), "1") == "unknown"


def test_expired_invitation_is_refused(storage: Storage) -> None:
    key, _ = users.create_invitation(storage, ttl=timedelta(seconds=-1))
    assert users.identify(storage, key, None, invitations=True) is None
    assert users.use_invitation(storage, users.key_hash(key), "1") == "expired"


def test_connect_note_is_read_back_once_and_absent_means_owner(storage: Storage) -> None:
    caller = users.Caller("invite", None, None, "ab" * 32)
    users.remember_connect(storage, "state-1234567890abcdef", caller)
    assert users.take_connect(storage, "state-1234567890abcdef") == caller
    assert users.take_connect(storage, "state-1234567890abcdef") == users.OWNER_CALLER
    athlete = users.Caller("athlete", "athlete-9", "9", "cd" * 32)
    users.remember_connect(storage, "state-abcdef1234567890", athlete)
    assert users.take_connect(storage, "state-abcdef1234567890") == athlete
