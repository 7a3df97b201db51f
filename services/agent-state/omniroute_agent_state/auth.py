"""Who is calling: bearer tokens from gRPC metadata, and what each caller may do.

Two kinds of caller, from configuration:
- the router and administrators (`AGENT_STATE_ADMIN_TOKENS`, name -> token):
  every method, on every agent; the name is the actor in the audit trail;
- agent desktops (`AGENT_STATE_DESKTOP_TOKENS`, token -> agent id): only the
  methods a desktop needs, and only on its own agent.
Secure by default: with no tokens configured every call is refused
(UNAUTHENTICATED). Only `AGENT_STATE_ALLOW_ANONYMOUS=true`, which the settings
accept for a loopback address alone (tests on one machine), makes
every caller an administrator named by its network peer.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass


class Unauthenticated(Exception):
    """No token, or one nobody configured."""


class PermissionDenied(Exception):
    """A known caller asked for something it may not do."""


# What an agent desktop may call (always on its own agent only).
DESKTOP_METHODS = frozenset(
    {
        "GetAgent",
        "SetStatus",
        "AcceptTask",
        "DeclineTask",
        "CompleteTask",
        "TransferTask",
        "Heartbeat",
        "WatchOffers",
    }
)


@dataclass(frozen=True)
class Caller:
    """An authenticated caller: an administrator (agent_id empty) or one agent's desktop."""

    actor: str  # recorded as AgentEvent.actor
    agent_id: str = ""

    @property
    def is_admin(self) -> bool:
        """Whether the caller may act on every agent."""
        return not self.agent_id


class Authenticator:
    """Resolves the caller of a request and checks its permissions."""

    def __init__(
        self,
        admin_tokens: Mapping[str, str],
        desktop_tokens: Mapping[str, str],
        allow_anonymous: bool = False,
    ) -> None:
        self._admins = [(token.encode(), name) for name, token in admin_tokens.items() if token]
        self._desktops = [
            (token.encode(), agent) for token, agent in desktop_tokens.items() if token and agent
        ]
        # Anonymous access only when asked for and no token is configured at all.
        self.anonymous = allow_anonymous and not (self._admins or self._desktops)

    def identify(self, metadata: Iterable[tuple[str, str | bytes]], peer: str) -> Caller:
        """The caller named by the `authorization: Bearer <token>` metadata."""
        if self.anonymous:
            return Caller(actor=peer)
        if not (self._admins or self._desktops):
            raise Unauthenticated(
                "no tokens are configured: set AGENT_STATE_ADMIN_TOKENS (deploy/README.md)"
            )
        header = next((str(v) for k, v in metadata if k.lower() == "authorization"), "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token:
            raise Unauthenticated("authorization metadata 'Bearer <token>' is required")
        presented = token.strip().encode()
        # Compare against every token, in constant time, so timing reveals nothing.
        admin = _match(presented, self._admins)
        desktop = _match(presented, self._desktops)
        if admin:
            return Caller(actor=admin)
        if desktop:
            return Caller(actor=desktop, agent_id=desktop)
        raise Unauthenticated("unknown token")

    @staticmethod
    def authorize(caller: Caller, method: str, agent_id: str | None) -> None:
        """Raise `PermissionDenied` unless `caller` may call `method` on `agent_id`."""
        if caller.is_admin:
            return
        if method not in DESKTOP_METHODS:
            raise PermissionDenied(f"an agent desktop may not call {method}")
        if agent_id != caller.agent_id:
            raise PermissionDenied("an agent desktop may only act on its own agent")


def _match(presented: bytes, known: list[tuple[bytes, str]]) -> str:
    found = ""
    for token, who in known:
        if hmac.compare_digest(presented, token) and not found:
            found = who
    return found
