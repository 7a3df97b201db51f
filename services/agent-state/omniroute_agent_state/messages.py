"""Customer messages delivered on offers and tasks, kept while the agent holds them.

The router sends a message that joined an open inquiry (a customer writing
again on the same conversation) with `DeliverMessage`; agent-state pushes it
on the agent's `WatchOffers` streams and keeps it here while the agent holds
the reservation, so a desk that connects later (another device, a reload)
gets it too. Kept in memory only, at most `per_reservation` per reservation:
after a restart of agent-state a reconnecting desk does not get earlier
messages again (the content the router keeps for the inquiry still has them).
"""

from __future__ import annotations

from collections.abc import Collection

from omniroute.v1 import task_pb2


class DeliveredMessages:
    """Messages per agent and reservation; those of reservations no longer held are dropped."""

    def __init__(self, per_reservation: int = 50) -> None:
        self.per_reservation = per_reservation
        self._by_agent: dict[str, dict[str, list[task_pb2.ConversationMessage]]] = {}

    def add(
        self,
        agent_id: str,
        reservation_id: str,
        held: Collection[str],
        message: task_pb2.ConversationMessage,
    ) -> bool:
        """Keep `message` on the reservation; False when it was delivered already (same id)."""
        kept = self._prune(agent_id, held)
        messages = kept.setdefault(reservation_id, [])
        if any(m.message.id == message.message.id for m in messages):
            return False
        messages.append(message)
        del messages[: -self.per_reservation]
        return True

    def held_by(
        self, agent_id: str, held: Collection[str]
    ) -> list[tuple[str, task_pb2.ConversationMessage]]:
        """The messages of the reservations the agent still holds, oldest first."""
        kept = self._prune(agent_id, held)
        return [(rid, m) for rid, messages in kept.items() for m in messages]

    def _prune(
        self, agent_id: str, held: Collection[str]
    ) -> dict[str, list[task_pb2.ConversationMessage]]:
        kept = {r: m for r, m in self._by_agent.get(agent_id, {}).items() if r in held}
        if kept or held:
            self._by_agent[agent_id] = kept
        else:
            self._by_agent.pop(agent_id, None)
        return kept
