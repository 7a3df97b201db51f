"""Agent records read back from Kafka at recovery: which ones the roster can take.

A record on `agent-events` or `agent-snapshots` may come from a newer schema
or be forged by anyone who can write the topic: an enum value this build does
not know (status 99) would otherwise sit in the roster and break every
scrape of /metrics and every answer that names it. Such records are skipped
(logged and counted by reason); an older valid version of the same agent
still wins, as recovery takes the highest version it keeps.
"""

from __future__ import annotations

from enum import StrEnum

from omniroute.v1 import agent_pb2, inquiry_pb2

_STATUSES = frozenset(agent_pb2.AgentStatus.values()) - {agent_pb2.AGENT_STATUS_UNSPECIFIED}
_TIERS = frozenset(agent_pb2.Tier.values())
_CHANNELS = frozenset(inquiry_pb2.Channel.values()) - {inquiry_pb2.CHANNEL_UNSPECIFIED}


class SkipReason(StrEnum):
    """Why a recovered record was not taken (a closed set: a metric label)."""

    MISSING_ID = "missing_id"
    UNKNOWN_STATUS = "unknown_status"
    UNKNOWN_TIER = "unknown_tier"
    UNKNOWN_CHANNEL = "unknown_channel"


def unusable(agent: agent_pb2.Agent) -> SkipReason | None:
    """Why the roster cannot take `agent`, or None when it can."""
    if not agent.id or not agent.workspace:
        return SkipReason.MISSING_ID
    if agent.status not in _STATUSES:
        return SkipReason.UNKNOWN_STATUS
    if agent.tier not in _TIERS:
        return SkipReason.UNKNOWN_TIER
    channels = [c.channel for c in agent.capacities] + [r.channel for r in agent.reservations]
    if any(channel not in _CHANNELS for channel in channels):
        return SkipReason.UNKNOWN_CHANNEL
    return None
