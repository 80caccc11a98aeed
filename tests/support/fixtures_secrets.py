"""Every log record of the session, checked after each test for the secrets that test used.

Loaded by conftest via pytest_plugins. A handler on the root logger keeps every record (message,
arguments and traceback, formatted) of the app's loggers and the test helpers' loggers, at DEBUG.
After each test, the secrets it knew are looked for in the records it produced: the app's API key
and Strava client secret (from the `strava_env` fixture and fixtures_sync's key) everything a fake
Strava issued during the test (its client secret, authorization codes, access and refresh tokens),
and the managed-identity stand-in's header secret and storage tokens.
A hit is an error on that test, naming the logger and the kind of secret, never the value.

`records_since(mark)` and `mark()` let a test search the records of a stretch of its own run too.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

MIN_SECRET = 12  # shorter test values ("wrong", client ids) are not secrets and would match by accident
APP_LOGGERS = ("shared", "tests", "function_app")


@dataclass(frozen=True)
class Record:
    test: str
    logger: str
    text: str


class _Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
        self.records: list[Record] = []
        self.test = ""
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)  # message with its arguments, plus traceback and stack if any
        except Exception as exc:  # a record that cannot be formatted is still kept, with why
            text = f"{record.msg!r} {record.args!r} (unformattable: {exc!r})"
        with self._guard:
            self.records.append(Record(self.test, record.name, text))


CAPTURE = _Capture()
_fakes: weakref.WeakSet[Any] = weakref.WeakSet()


def mark() -> int:
    """A position in the session's records, for `records_since`."""
    return len(CAPTURE.records)


def records_since(position: int) -> list[Record]:
    return CAPTURE.records[position:]


def _track_fake_secrets() -> None:
    """Every FakeStrava remembers what it issued (codes, tokens), so the check knows this test's secrets."""
    from tests.support.fake_strava import FakeStrava

    if getattr(FakeStrava, "_secrets_tracked", False):
        return
    init, new_grant, issue_code, authorize = (FakeStrava.__init__, FakeStrava._new_grant, FakeStrava.issue_code,
                                              FakeStrava._authorize)

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        self.issued_secrets = set()
        init(self, *args, **kwargs)
        _fakes.add(self)

    def _new_grant(self: Any, *args: Any) -> Any:
        grant = new_grant(self, *args)
        self.issued_secrets.update((grant.access_token, grant.refresh_token))
        return grant

    def _issue_code(self: Any, *args: Any, **kwargs: Any) -> str:
        code = issue_code(self, *args, **kwargs)
        self.issued_secrets.add(code)
        return code

    def _authorize(self: Any, query: dict[str, str]) -> Any:
        answer = authorize(self, query)
        location = answer[2].get("Location", "")
        self.issued_secrets.update(parse_qs(urlsplit(location).query).get("code", []))
        return answer

    FakeStrava.__init__ = __init__  # type: ignore[method-assign]
    FakeStrava._new_grant = _new_grant  # type: ignore[method-assign]
    FakeStrava.issue_code = _issue_code  # type: ignore[method-assign]
    FakeStrava._authorize = _authorize  # type: ignore[method-assign]
    FakeStrava._secrets_tracked = True


def pytest_configure(config: pytest.Config) -> None:
    logging.getLogger().addHandler(CAPTURE)
    for name in APP_LOGGERS:
        logger = logging.getLogger(name)
        if logger.level == logging.NOTSET or logger.level > logging.DEBUG:
            logger.setLevel(logging.DEBUG)
    _track_fake_secrets()


def pytest_unconfigure(config: pytest.Config) -> None:
    logging.getLogger().removeHandler(CAPTURE)


def known_secrets(funcargs: dict[str, Any], fakes: list[Any]) -> dict[str, str]:
    """value -> what it is, for everything secret this test had in hand."""
    from tests.support.fixtures_sync import SYNC_API_KEY

    found: dict[str, str] = {SYNC_API_KEY: "the API key"}
    env = funcargs.get("strava_env")
    if isinstance(env, dict):
        found[env.get("SYNC_API_KEY", "")] = "the API key"
        found[env.get("STRAVA_CLIENT_SECRET", "")] = "the Strava client secret"
    identity = funcargs.get("fake_identity")
    if identity is not None:  # the managed identity's header secret and the storage tokens it issued
        found[identity.header_secret] = "the identity endpoint's header secret"
        for token in identity.issued_secrets:
            found[token] = "a storage access token"
    for fake in fakes:
        found[fake.client_secret] = "the Strava client secret"
        for value in set(getattr(fake, "issued_secrets", ())):
            found[value] = "a Strava code or token"
    return {value: kind for value, kind in found.items() if value and len(value) >= MIN_SECRET}


def leaks(records: list[Record], secrets: dict[str, str]) -> list[str]:
    """One line per record holding a secret: logger and kind, never the value."""
    out = []
    for record in records:
        for value, kind in secrets.items():
            if value in record.text:
                out.append(f"{record.logger}: {kind} in {record.text.replace(value, '<' + kind + '>')[:300]!r}")
    return out


@pytest.fixture(autouse=True)
def no_secret_in_logs(request: pytest.FixtureRequest) -> Iterator[None]:
    """After the test: none of its secrets in any record it produced (an error on the test if one is)."""
    shared = logging.getLogger("shared")
    shared.propagate = True  # an in-process CLI run turns these off/up for its own output; later tests need them
    shared.setLevel(logging.DEBUG)
    CAPTURE.test = request.node.nodeid
    start = mark()
    before = set(_fakes)
    yield
    fakes = [f for f in _fakes if f not in before] + [f for f in before if f in request.node.funcargs.values()]
    found = leaks(records_since(start), known_secrets(dict(request.node.funcargs), fakes))
    del CAPTURE.records[start:]  # keep the session's memory flat; this test's records were checked
    if found:
        pytest.fail("secret(s) in log records:\n" + "\n".join(found[:10]), pytrace=False)
