"""Benchmarks: scripts that print numbers (no asserts); run one with `.venv/bin/python -m bench.<name>`."""
