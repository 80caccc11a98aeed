"""Fixtures for the live sync path (ack, queue, worker, drain helper). Loaded by conftest via pytest_plugins."""
