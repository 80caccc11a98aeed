"""A JSON object's bytes without some of its top-level members, cut out rather than re-encoded.

The original Zap sends its key inside the body (`apiKey`), so a big body cannot be stored as sent.
Re-encoding 4 MB with json.dumps costs ~10 ms here; finding where each top-level member ends (a
`find` for the closing quote of a string value without escapes) and joining the others' bytes costs
~1–2 ms. Strings with escapes and non-string values are walked by the json module's own scanner.
"""

from __future__ import annotations

import json
import re
from collections.abc import Container
from json.decoder import scanstring

_SPACE = re.compile(r"[ \t\n\r]*")  # JSON's whitespace, nothing more
_DECODER = json.JSONDecoder()


def _skip_space(text: str, i: int) -> int:
    return _SPACE.match(text, i).end()  # type: ignore[union-attr]  # matches everywhere (it may be empty)


def _string_end(text: str, i: int) -> int:
    """The index after the string whose opening quote is at i - 1: without building it when it has no
    escapes (Zapier's number lists: two `find`s), else by the json module's C scanner."""
    j = text.find('"', i)
    if j >= 0 and text.find("\\", i, j) < 0:
        return j + 1
    return scanstring(text, i)[1]


def _members(text: str) -> list[tuple[str, int, int]]:
    """(name, start, end) of each top-level member of the JSON object `text`."""
    i = _skip_space(text, 0)
    if text[i:i + 1] != "{":
        raise ValueError("not a JSON object")
    i = _skip_space(text, i + 1)
    found: list[tuple[str, int, int]] = []
    while text[i:i + 1] != "}":
        start = i
        if text[i:i + 1] != '"':
            raise ValueError(f"expected a member name at {i}")
        name, i = scanstring(text, i + 1)
        i = _skip_space(text, i)
        if text[i:i + 1] != ":":
            raise ValueError(f"expected ':' at {i}")
        i = _skip_space(text, i + 1)
        i = _string_end(text, i + 1) if text[i:i + 1] == '"' else _DECODER.raw_decode(text, i)[1]
        found.append((name, start, i))
        i = _skip_space(text, i)
        if text[i:i + 1] == ",":
            i = _skip_space(text, i + 1)
        elif text[i:i + 1] != "}":
            raise ValueError(f"expected ',' or '}}' at {i}")
    return found


def without_members(data: bytes, drop: Container[str]) -> bytes:
    """`data`, UTF-8 text of a JSON object json.loads has accepted, minus the top-level members in `drop`.

    Names are compared decoded, so an escaped spelling (`"api\\u004bey"`) is dropped too. Raises
    ValueError for text that is not a JSON object (callers decode it first, so that means a bug).
    """
    text = data.decode("utf-8")
    members = _members(text)
    if not data.isascii():  # offsets into the text are not offsets into the bytes: join the text instead
        return ("{" + ",".join(text[s:e] for n, s, e in members if n not in drop) + "}").encode("utf-8")
    view = memoryview(data)
    parts: list[bytes | memoryview] = [b"{"]
    for name, start, end in members:
        if name not in drop:
            parts += [view[start:end], b","]
    if len(parts) > 1:
        parts.pop()
    parts.append(b"}")
    return b"".join(parts)  # one copy
