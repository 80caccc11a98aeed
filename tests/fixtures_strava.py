"""Fixtures around the fake Strava server (tests/fake_strava.py). Loaded by conftest via pytest_plugins."""
