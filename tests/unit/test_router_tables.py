"""The router's state tables: what a new owner of a partition rebuilds."""

from __future__ import annotations

from omniroute_router.config import WorkspaceConfig
from omniroute_router.model import InquiryState
from omniroute_router.tables import RoutingTables
from tests.unit.test_router_routing import T0, agent, inquiry


def test_the_same_inquiry_id_in_two_workspaces_is_kept_apart() -> None:
    tables = RoutingTables()
    for workspace, agent_id in (("acme", "a1"), ("globex", "g1")):
        router = tables.load(workspace, WorkspaceConfig())
        router.update_agent(agent(agent_id, workspace=workspace))
        router.admit(inquiry("q1", workspace=workspace), T0)
        router.offer_made("q1", agent_id, f"r-{workspace}", T0)
        tables.persist(router, router.drain_changes())
    acme, globex = tables.load("acme", WorkspaceConfig()), tables.load("globex", WorkspaceConfig())
    assert (acme.inquiries["q1"].agent_id, globex.inquiries["q1"].agent_id) == ("a1", "g1")
    # One finishing leaves the other open.
    acme.resolved("q1", "a1", T0 + 5)
    tables.persist(acme, acme.drain_changes())
    assert "q1" in tables.load("acme", WorkspaceConfig()).finished
    assert tables.load("globex", WorkspaceConfig()).inquiries["q1"].state is InquiryState.OFFERED


def test_an_abandon_before_its_inquiry_is_remembered_by_the_next_owner() -> None:
    tables = RoutingTables()
    router = tables.load("acme", WorkspaceConfig())
    router.abandoned("early", T0)
    tables.persist(router, router.drain_changes())
    assert not tables.load("acme", WorkspaceConfig()).admit(inquiry("early"), T0 + 1)
