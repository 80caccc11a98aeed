"""Whom a request's key speaks for: the one lookup the ack, the owner's routes and the connect page use.

The owner's key is compared first, in constant time and without storage, so the owner's requests (and
the ack's cold start) never load the key store; any other key is one point read of its hash there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from shared.web.auth import OWNER_CALLER, Caller, key_matches

if TYPE_CHECKING:
    from shared.config import Settings


def caller_for(cfg: Settings, key: str | None, *, invitations: bool = False) -> Caller | None:
    """The caller `key` belongs to, or None. Invitations count only where asked (the connect page).

    Storage failures propagate: each caller answers them its own way (503, or a page saying so).
    """
    if key_matches(key, cfg.api_key):
        return OWNER_CALLER
    from shared.storage.users import identify  # only for keys other than the owner's

    return identify(cfg.storage, key, cfg.api_key, invitations=invitations)
