"""Whose activities a row holds: the user id that partitions the activity log and the kept payloads."""

from __future__ import annotations

OWNER = "owner"  # the user behind the deployment's SYNC_API_KEY
