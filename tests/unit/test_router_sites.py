"""Walk-ins by site: an in-person inquiry goes only to agents of its site."""

from __future__ import annotations

from dataclasses import replace

import pytest

from omniroute.codec import InvalidEvent
from omniroute.v1 import agent_pb2, inquiry_pb2
from omniroute_router.config import WorkspaceConfig
from omniroute_router.convert import agent_from_proto, inquiry_from_proto
from omniroute_router.model import AgentStatus, AgentView, QueuedInquiry
from omniroute_router.routing import WorkspaceRouter

T0 = 1_000_000.0


def agent(agent_id: str, site: str = "", idle: float = 100) -> AgentView:
    return AgentView(
        id=agent_id,
        workspace="acme",
        skills={"returns": 3},
        languages=("en",),
        capacity={"in_person": 1, "chat": 1},
        status=AgentStatus.AVAILABLE,
        idle_since=T0 - idle,
        version=1,
        site=site,
    )


def walk_in(inquiry_id: str, site: str, arrived: float = T0) -> QueuedInquiry:
    return QueuedInquiry(
        id=inquiry_id,
        workspace="acme",
        channel="in_person",
        queue="",
        arrived_at=arrived,
        language="en",
        site=site,
    )


def offers(r: WorkspaceRouter, now: float = T0) -> list[tuple[str, str]]:
    return sorted((o.inquiry_id, o.agent_id) for o in r.plan(now))


def routed(*agents: AgentView) -> WorkspaceRouter:
    r = WorkspaceRouter("acme", WorkspaceConfig())
    for a in agents:
        r.update_agent(a)
    return r


def test_a_walk_in_goes_to_an_agent_of_its_site_not_the_longest_idle_elsewhere() -> None:
    r = routed(agent("madrid", "store-madrid", idle=900), agent("sevilla", "store-sevilla"))
    r.admit(walk_in("v1", "store-sevilla"), T0)
    assert offers(r) == [("v1", "sevilla")]


def test_sites_compare_ignoring_case() -> None:
    r = routed(agent("a", "Store-12"))
    r.admit(walk_in("v1", "store-12"), T0)
    assert offers(r) == [("v1", "a")]


def test_a_walk_in_with_nobody_at_its_site_waits_and_agents_without_a_site_do_not_take_it() -> None:
    r = routed(agent("nosite"), agent("elsewhere", "store-1"))
    r.admit(walk_in("v1", "store-2"), T0)
    assert offers(r) == []
    r.update_agent(agent("here", "store-2"))
    assert offers(r, T0 + 1) == [("v1", "here")]


def test_a_walk_in_without_a_site_goes_to_anyone() -> None:
    r = routed(agent("a", "store-1"))
    r.admit(walk_in("v1", ""), T0)
    assert offers(r) == [("v1", "a")]


@pytest.mark.parametrize("agents", [2, 40])  # 40: the longest-idle fast path too
def test_one_site_finding_nobody_does_not_hold_up_another_site(agents: int) -> None:
    crowd = [agent(f"m{i}", "store-madrid", idle=1000 + i) for i in range(agents - 1)]
    r = routed(*crowd, agent("sevilla", "store-sevilla"))
    for a in crowd:  # every Madrid agent busy
        r.update_agent(replace(a, load={"in_person": 1}, version=2))
    r.admit(walk_in("v-madrid", "store-madrid", T0), T0)
    r.admit(walk_in("v-sevilla", "store-sevilla", T0 + 1), T0 + 1)
    assert offers(r, T0 + 2) == [("v-sevilla", "sevilla")]


def test_the_site_travels_from_the_events_and_through_the_state_tables() -> None:
    proto = inquiry_pb2.Inquiry(
        id="v1", workspace="acme", channel=inquiry_pb2.CHANNEL_IN_PERSON, site="store-7"
    )
    assert inquiry_from_proto(proto, T0).site == "store-7"
    # On another channel a site means nothing: no constraint.
    proto.channel = inquiry_pb2.CHANNEL_CHAT
    assert inquiry_from_proto(proto, T0).site == ""
    proto.site = "x" * 201
    with pytest.raises(InvalidEvent, match=r"Inquiry\.site"):
        inquiry_from_proto(proto, T0)
    view = agent_from_proto(agent_pb2.Agent(id="a", workspace="acme", site="store-7"))
    assert view.site == "store-7"
    assert AgentView.from_dict(view.to_dict()).site == "store-7"
    queued = walk_in("v1", "store-7")
    assert QueuedInquiry.from_dict(queued.to_dict()).site == "store-7"
    # State written before sites existed loads with no site.
    old = view.to_dict()
    del old["site"]
    assert AgentView.from_dict(old).site == ""
