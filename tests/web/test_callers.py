"""shared.web.callers.caller_for: the one key → caller lookup of the ack, the owner's routes and the connect page."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from shared.config import load
from shared.storage import users
from shared.storage.clients import Storage
from shared.web.auth import OWNER_CALLER, Caller
from shared.web.callers import caller_for
from tests.conftest import ROOT
from tests.support.drain import storage_settings

OWNER_KEY = "owner-secret-key-0123456789"


def _cfg(storage: Storage, owner_key: str | None = OWNER_KEY):
    env = storage_settings(storage)  # its connection string and this test's STORAGE_NAME_PREFIX
    if owner_key is not None:
        env["SYNC_API_KEY"] = owner_key
    return load(env)


def test_the_owner_key_is_the_owner_without_a_storage_read() -> None:
    """Storage that cannot be reached is never asked: the owner's key is compared in memory."""
    cfg = load({"AzureWebJobsStorage": "DefaultEndpointsProtocol=http;AccountName=nobody;AccountKey=eA==;"
                                       "TableEndpoint=http://127.0.0.1:9/nobody;", "SYNC_API_KEY": OWNER_KEY})
    assert caller_for(cfg, OWNER_KEY) is OWNER_CALLER
    assert caller_for(cfg, OWNER_KEY, invitations=True) is OWNER_CALLER
    assert users.OWNER_CALLER is OWNER_CALLER and users.Caller is Caller  # one type, wherever it is named


def test_an_athletes_key_is_that_athlete_and_an_invitation_counts_only_where_asked(storage: Storage) -> None:
    cfg = _cfg(storage)
    _, key = users.issue_key(storage, "777", "Bob Beamon")
    assert caller_for(cfg, key) == Caller("athlete", "athlete-777", "777", users.key_hash(key))
    invitation, _ = users.create_invitation(storage)
    assert caller_for(cfg, invitation) is None  # not a key for posting activities or reading a log
    found = caller_for(cfg, invitation, invitations=True)
    assert found is not None and found.kind == "invite" and found.user is None


@pytest.mark.parametrize("key", [None, "", "wrong", "rk_" + "x" * 43, OWNER_KEY + "x", OWNER_KEY[:-1]])
def test_any_other_key_is_nobody(storage: Storage, key: str | None) -> None:
    assert caller_for(_cfg(storage), key) is None
    assert caller_for(_cfg(storage), key, invitations=True) is None


def test_without_an_owner_key_set_no_key_is_the_owners(storage: Storage) -> None:
    assert caller_for(_cfg(storage, owner_key=None), "") is None
    assert caller_for(_cfg(storage, owner_key=None), None) is None


def test_storage_trouble_reaches_the_caller_which_answers_it() -> None:
    """Each handler turns it into its own 503 (the ack, the owner's routes) or page (connect)."""
    cfg = load({"AzureWebJobsStorage": "DefaultEndpointsProtocol=http;AccountName=nobody;AccountKey=eA==;"
                                       "TableEndpoint=http://127.0.0.1:9/nobody;", "SYNC_API_KEY": OWNER_KEY})
    with pytest.raises(Exception):  # noqa: B017  # whatever the SDK raises; never a silent None
        caller_for(cfg, "rk_" + "x" * 43)


def test_the_owners_requests_never_load_the_key_store() -> None:
    """The ack's cold start for the owner's key: shared.storage.users stays unloaded."""
    probe = ("import json, sys; from shared.config import load; from shared.web.callers import caller_for; "
             "cfg = load({'AzureWebJobsStorage': 'UseDevelopmentStorage=true', 'SYNC_API_KEY': 'k' * 20}); "
             "print(json.dumps([caller_for(cfg, 'k' * 20).kind, 'shared.storage.users' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True,
                         timeout=60).stdout
    assert json.loads(out) == ["owner", False]
