"""The app's key check, in constant time, in one place for every HTTP function; whom a key speaks for.

A leaf: it imports nothing of the app at import time, so the key store (shared.storage.users) and
every handler can share `Caller` without the ack's cold start loading the key store.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from shared.model.users import OWNER

if TYPE_CHECKING:
    from shared.model.activity import Problem

Kind = Literal["owner", "athlete", "invite"]


@dataclass(frozen=True)
class Caller:
    """Whom a key speaks for. `athlete_id` None means the deployment's default Strava connection (the owner)."""

    kind: Kind
    user: str | None  # the activity-log partition; None for an invitation (no athlete yet)
    athlete_id: str | None = None
    key_hash: str | None = None


OWNER_CALLER = Caller("owner", OWNER)


def key_matches(given: str | None, expected: str | None) -> bool:
    """True only when both are non-empty and equal; digests first, so length leaks nothing either."""
    if not given or not expected:
        # Still do the comparison so a missing key costs the same as a wrong one.
        hmac.compare_digest(b"\0" * 32, hashlib.sha256((expected or "").encode()).digest())
        return False
    a = hashlib.sha256(given.encode("utf-8", "surrogatepass")).digest()
    b = hashlib.sha256(expected.encode("utf-8", "surrogatepass")).digest()
    return hmac.compare_digest(a, b)


REDACT_RUN = 12  # a piece of a secret this long is masked too: problem messages quote values cut short


def redact(text: str, *secrets: str | None) -> str:
    """`text` with every secret, and every run of REDACT_RUN or more characters of one, replaced by ***.

    Whole secrets are not enough: a value quoted in a problem message is cut to 40 characters, and a
    43-character key cut short no longer matches itself.
    """
    masked: list[tuple[int, int]] = []
    for secret in secrets:
        if not secret:
            continue
        text = text.replace(secret, "***")
        for i in range(len(secret) - REDACT_RUN + 1):
            window = secret[i:i + REDACT_RUN]
            at = text.find(window)
            while at >= 0:
                masked.append((at, at + REDACT_RUN))
                at = text.find(window, at + 1)
    if not masked:
        return text
    masked.sort()
    out: list[str] = []
    done = 0
    for start, end in masked:
        if end <= done:
            continue
        out.append(text[done:max(start, done)])
        if start >= done:
            out.append("***")
        done = end
    out.append(text[done:])
    return "".join(out)


def redact_problems(problems: Iterable[Problem], *secrets: str | None) -> list[Problem]:
    """Problems with secrets redacted: their messages quote the bad values, which may be a key."""
    from shared.model.activity import Problem

    return [Problem(redact(p.field, *secrets), redact(p.message, *secrets)) for p in problems]
