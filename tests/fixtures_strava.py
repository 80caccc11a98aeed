"""Fixtures around the fake Strava server (tests/fake_strava.py). Loaded by conftest via pytest_plugins."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fake_strava import FakeStrava


@pytest.fixture
def fake_strava() -> Iterator[FakeStrava]:
    """A fresh fake Strava per test, on a free port (`fake_strava.url`); see its module docstring for knobs."""
    fake = FakeStrava().start()
    try:
        yield fake
    finally:
        fake.stop()
