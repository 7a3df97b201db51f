"""The client side of agent-state's gRPC service, shared by its clients (the router, the desk).

Over TLS when given the CA that signed agent-state's certificate (the shipped
deployments always give one; `make deploy-setup` writes it); in plaintext
only without one (loopback: `make run`, the tests). Every call carries the
caller's bearer token.
"""

from __future__ import annotations

from pathlib import Path

import grpc

Metadata = tuple[tuple[str, str], ...]

# Trailing metadata of a refused ReserveAgent (binary, a serialized message):
# the agent's record as agent-state has it now, when the caller's was stale...
AGENT_RECORD_METADATA = "omniroute-agent-bin"
# ...or the TaskEvent that resolved the inquiry, which is never offered again.
LAST_EVENT_METADATA = "omniroute-last-event-bin"


def bearer(token: str) -> Metadata | None:
    """gRPC metadata carrying `token` (none when empty)."""
    return (("authorization", f"Bearer {token}"),) if token else None


def read_ca(path: str) -> bytes | None:
    """The PEM certificate(s) in `path`, read once at start; None for an empty path."""
    return Path(path).read_bytes() if path else None


def agent_state_channel(target: str, root_certificates: bytes | None = None) -> grpc.aio.Channel:
    """A channel to agent-state at `target`: TLS checked against `root_certificates` if given.

    Create it inside the running event loop (a grpc.aio channel binds to it).
    The target's host name must be one the certificate names.
    """
    if root_certificates:
        credentials = grpc.ssl_channel_credentials(root_certificates=root_certificates)
        return grpc.aio.secure_channel(target, credentials)
    return grpc.aio.insecure_channel(target)
