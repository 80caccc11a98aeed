"""A screen for big comma-separated columns at memory speed: only bytes.translate, `in` and count.

Checking every value of a 60,000-point payload exactly (float() per number, or a regex over 3.9 MB) costs
~65 ms here, 3.7x the storage writes the ack must make (bench/ack.py). For a payload too big for a queue
message the ack therefore screens each column instead: its characters are those of plain decimals (or
of lower-case words). That catches what a wrongly mapped Zap sends (a text field in a number list) in
~0.3 ms a column. Empty values, ranges, order and unknown words are checked by the worker, which must
parse every value anyway; a problem found there is logged as `rejected` with the same named problems.
(Even looking for ",," costs 1 ms a column: a substring search, not a memchr.)

Both checks are one-sided: True means "nothing wrong at this level", False "look value by value".
"""

from __future__ import annotations

_DECIMAL = b"0123456789.,-"
_WORD = b"abcdefghijklmnopqrstuvwxyz,"


def _ascii(text: str) -> bytes | None:
    return text.encode("ascii") if text.isascii() else None


def plain_decimals(text: str) -> bool:
    """Only digits, dots, commas and minus signs, and not empty."""
    raw = _ascii(text)
    return raw is not None and bool(raw) and not raw.translate(None, _DECIMAL)


def lowercase_words(text: str) -> bool:
    """Only lower-case ASCII letters and commas, and not empty (Runkeeper's `gps,gps,pause,...`)."""
    raw = _ascii(text)
    return raw is not None and bool(raw) and not raw.translate(None, _WORD)
