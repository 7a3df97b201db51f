"""Translation of events into the routing core's data, and what makes an event invalid."""

from __future__ import annotations

import pytest

from omniroute.client import MAX_REQUIRED_SKILLS
from omniroute.codec import InvalidEvent, timestamp
from omniroute.v1 import agent_pb2, inquiry_pb2
from omniroute_router.convert import (
    agent_from_proto,
    channel_name,
    channel_value,
    inquiry_from_proto,
)
from omniroute_router.model import AgentStatus

NOW = 1_800_000_000.0


def test_an_inquiry_becomes_a_queued_inquiry() -> None:
    proto = inquiry_pb2.Inquiry(
        id="q1",
        workspace="acme",
        channel=inquiry_pb2.CHANNEL_POSTAL_MAIL,
        kind=inquiry_pb2.INQUIRY_KIND_SERVICE_PROBLEM,
        customer=inquiry_pb2.Customer(language="es-MX", segment="vip"),
        required_skills=[inquiry_pb2.SkillRequirement(name="billing", min_proficiency=9)],
        priority=42,
        thread_id="t1",
        received_at=timestamp(NOW - 30),
    )
    queued = inquiry_from_proto(proto, NOW)
    assert (queued.channel, queued.kind, queued.language, queued.segment) == (
        "postal_mail", "service_problem", "es-MX", "vip",
    )  # fmt: skip
    assert queued.skills == {"billing": 5}  # clamped to the proficiency scale
    assert queued.priority == 10
    assert queued.arrived_at == NOW - 30
    assert queued.thread_id == "t1"


def test_a_received_time_in_the_future_counts_as_now() -> None:
    proto = inquiry_pb2.Inquiry(
        id="q1", workspace="w", channel=inquiry_pb2.CHANNEL_CHAT, received_at=timestamp(NOW + 60)
    )
    assert inquiry_from_proto(proto, NOW).arrived_at == NOW


@pytest.mark.parametrize(
    ("proto", "reason"),
    [
        (inquiry_pb2.Inquiry(workspace="w", channel=1), "Inquiry.id is required"),
        (inquiry_pb2.Inquiry(id="q", channel=1), "Inquiry.workspace is required"),
        (inquiry_pb2.Inquiry(id="q", workspace="w"), "Inquiry.channel is required"),
        (inquiry_pb2.Inquiry(id="q", workspace="w", channel=99), "Inquiry.channel 99 is unknown"),  # type: ignore[arg-type]
        (
            inquiry_pb2.Inquiry(
                id="q", workspace="w", channel=1, required_skills=[inquiry_pb2.SkillRequirement()]
            ),
            "Inquiry.required_skills[].name is required",
        ),
        (
            inquiry_pb2.Inquiry(
                id="q",
                workspace="w",
                channel=1,
                required_skills=[
                    inquiry_pb2.SkillRequirement(name=f"s{i}")
                    for i in range(MAX_REQUIRED_SKILLS + 1)
                ],
            ),
            f"Inquiry.required_skills: at most {MAX_REQUIRED_SKILLS}",
        ),
    ],
)
def test_unusable_inquiries_are_refused_with_the_reason(
    proto: inquiry_pb2.Inquiry, reason: str
) -> None:
    with pytest.raises(InvalidEvent, match=reason.replace("[", r"\[").replace("]", r"\]")):
        inquiry_from_proto(proto, NOW)


def test_an_agent_record_becomes_the_router_picture() -> None:
    proto = agent_pb2.Agent(
        id="a1",
        workspace="acme",
        skills={"billing": 4},
        languages=["en"],
        tier=agent_pb2.TIER_SPECIALIST,
        status=agent_pb2.AGENT_STATUS_AVAILABLE,
        capacities=[
            agent_pb2.ChannelCapacity(channel=inquiry_pb2.CHANNEL_CHAT, capacity=3, load=1)
        ],
        idle_since=timestamp(NOW),
        version=7,
    )
    view = agent_from_proto(proto)
    assert (view.tier, view.status, view.version, view.idle_since) == (
        2,
        AgentStatus.AVAILABLE,
        7,
        NOW,
    )
    assert view.capacity == {"chat": 3} and view.load == {"chat": 1}


def test_channel_names_round_trip() -> None:
    for value in inquiry_pb2.Channel.values()[1:]:
        assert channel_value(channel_name(value)) == value


def test_an_inquiry_can_ask_for_a_higher_tier_from_the_start() -> None:
    def tier(value: str) -> int:
        proto = inquiry_pb2.Inquiry(
            id="q", workspace="w", channel=1, attributes={"routing.min_tier": value}
        )  # type: ignore[arg-type]
        return inquiry_from_proto(proto, NOW).min_tier

    assert (tier("2"), tier("3"), tier("7"), tier("")) == (2, 3, 1, 1)


def test_a_call_in_progress_blocks_other_channels_when_the_agent_says_so() -> None:
    proto = agent_pb2.Agent(
        id="a1",
        workspace="w",
        status=agent_pb2.AGENT_STATUS_AVAILABLE,
        voice_blocks_other_channels=True,
        capacities=[
            agent_pb2.ChannelCapacity(channel=inquiry_pb2.CHANNEL_VOICE, capacity=1, load=1),
            agent_pb2.ChannelCapacity(channel=inquiry_pb2.CHANNEL_CHAT, capacity=2),
        ],
    )
    assert not agent_from_proto(proto).free_on("chat")
    proto.voice_blocks_other_channels = False
    assert agent_from_proto(proto).free_on("chat")
