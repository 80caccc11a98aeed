"""The app's key check, in constant time, in one place for every HTTP function."""

from __future__ import annotations

import hashlib
import hmac


def key_matches(given: str | None, expected: str | None) -> bool:
    """True only when both are non-empty and equal; digests first, so length leaks nothing either."""
    if not given or not expected:
        # Still do the comparison so a missing key costs the same as a wrong one.
        hmac.compare_digest(b"\0" * 32, hashlib.sha256((expected or "").encode()).digest())
        return False
    a = hashlib.sha256(given.encode("utf-8", "surrogatepass")).digest()
    b = hashlib.sha256(expected.encode("utf-8", "surrogatepass")).digest()
    return hmac.compare_digest(a, b)


def redact(text: str, *secrets: str | None) -> str:
    """`text` with every non-empty secret replaced by ***, before it is stored or answered."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text
