"""Stable ids: the same channel event always gets the same inquiry id.

A provider that re-delivers a webhook (same MessageSid, call id, Message-ID)
or a client that retries with the same Idempotency-Key therefore produces the
same inquiry id, which the router de-duplicates even when the retry reached
another ingest replica.
"""

from __future__ import annotations

import uuid

_NAMESPACE = uuid.UUID("6f1c7f3e-7d55-4a8e-9a57-2d0f4e0b1c11")


def stable_id(workspace: str, *parts: str) -> str:
    """A UUID (version 5) determined by the workspace and the given parts."""
    return str(uuid.uuid5(_NAMESPACE, "\x1f".join((workspace, *parts))))


def new_id() -> str:
    """A fresh random UUID (version 4)."""
    return str(uuid.uuid4())
