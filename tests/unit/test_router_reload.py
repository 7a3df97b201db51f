"""Live configuration: the reloader refuses an invalid file and keeps the old; the core
moves the inquiries of a removed queue by the match rules."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from omniroute_router import config
from omniroute_router.config import Queue, QueueMatch, RoutingConfig, WorkspaceConfig
from omniroute_router.metrics import RouterMetrics
from omniroute_router.model import AgentStatus, AgentView, InquiryState, QueuedInquiry
from omniroute_router.reload import ConfigReloader, ReloadResult
from omniroute_router.routing import WorkspaceRouter

T0 = 1_000_000.0

GOOD = """\
workspaces:
  acme:
    queues:
      - name: billing
        match: {skills: [billing]}
      - name: general
"""


class Reloads:
    def __init__(self, path: Path) -> None:
        self.metrics = RouterMetrics(CollectorRegistry())
        self.applied: list[RoutingConfig] = []
        self.reloader = ConfigReloader(str(path), self.applied.append, self.metrics.config_reloads)

    def count(self, result: str) -> float:
        return self.metrics.config_reloads.labels(result)._value.get()


def test_a_valid_file_is_applied_and_counted(tmp_path: Path) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(GOOD)
    reloads = Reloads(path)
    assert reloads.reloader.reload() is ReloadResult.APPLIED
    [applied] = reloads.applied
    assert [q.name for q in applied.workspaces["acme"].queues] == ["billing", "general"]
    assert (reloads.count("applied"), reloads.count("refused")) == (1, 0)


def test_an_invalid_file_is_refused_with_file_line_and_field(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "routing.yaml"
    path.write_text(GOOD + "        strategy: fastest\n")
    reloads = Reloads(path)
    with caplog.at_level(logging.ERROR, logger="omniroute.router"):
        assert reloads.reloader.reload() is ReloadResult.REFUSED
    assert reloads.applied == []
    assert (reloads.count("applied"), reloads.count("refused")) == (0, 1)
    [record] = caplog.records
    assert "refused" in record.getMessage()
    assert record.reason.startswith(  # type: ignore[attr-defined]
        f"{path}:7: workspaces.acme.queues[1].strategy: unknown strategy 'fastest'"
    )


def test_a_missing_file_or_none_configured_is_refused(tmp_path: Path) -> None:
    reloads = Reloads(tmp_path / "gone.yaml")
    assert reloads.reloader.reload() is ReloadResult.REFUSED
    none = ConfigReloader("", reloads.applied.append, reloads.metrics.config_reloads)
    assert none.reload() is ReloadResult.REFUSED
    assert reloads.applied == [] and reloads.count("refused") == 2


def _inquiry(inquiry_id: str, skills: dict[str, int]) -> QueuedInquiry:
    return QueuedInquiry(
        id=inquiry_id, workspace="acme", channel="chat", queue="", arrived_at=T0, skills=skills
    )


def test_inquiries_of_a_removed_queue_move_by_the_match_rules() -> None:
    before = WorkspaceConfig(
        queues=(
            Queue("legal", QueueMatch(skills=frozenset({"legal"})), priority=3),
            Queue("billing", QueueMatch(skills=frozenset({"billing"}))),
            Queue("general"),
        )
    )
    after = WorkspaceConfig(
        queues=(
            Queue("billing", QueueMatch(skills=frozenset({"billing"})), priority=1),
            Queue("general", required_skills=(("triage", 1),)),
        )
    )
    r = WorkspaceRouter("acme", before)
    r.admit(_inquiry("legal-1", {"legal": 2}), T0)
    r.admit(_inquiry("both", {"legal": 1, "billing": 1}), T0)
    r.admit(_inquiry("bill-1", {"billing": 1}), T0)
    assert [r.inquiries[i].queue for i in ("legal-1", "both", "bill-1")] == [
        "legal", "legal", "billing",
    ]  # fmt: skip
    r.drain_changes()

    r = r.reconfigured(after, T0 + 5)

    legal, both, bill = (r.inquiries[i] for i in ("legal-1", "both", "bill-1"))
    assert (legal.queue, both.queue, bill.queue) == ("general", "billing", "billing")
    # The old queue's priority is gone, the new one's applies; its skills are added.
    assert (legal.priority, both.priority) == (0, 1)
    assert legal.skills == {"legal": 2, "triage": 1}
    assert legal.history[-1] == "requeued:legal:general:reconfigured"
    # One that stayed keeps what it had (new rules apply to what arrives or moves).
    assert bill.priority == 0 and bill.history == []
    assert r.drain_changes().inquiries == {"legal-1", "both"}
    # The moved inquiries are routed in their new queues, in the new priority order.
    agent = AgentView(
        id="ann",
        workspace="acme",
        skills={"billing": 3, "legal": 3, "triage": 1},
        languages=(),
        capacity={"chat": 3},
        status=AgentStatus.AVAILABLE,
        version=1,
    )
    r.update_agent(agent)
    planned = r.plan(T0 + 6)
    assert planned[0].inquiry_id == "both"
    assert {o.inquiry_id: o.queue for o in planned} == {
        "both": "billing", "legal-1": "general", "bill-1": "billing",
    }  # fmt: skip
    assert all(i.state is InquiryState.WAITING for i in r.inquiries.values())


def test_the_example_file_reloads(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[2]
    reloads = Reloads(root / "deploy" / "routing.example.yaml")
    assert reloads.reloader.reload() is ReloadResult.APPLIED
    assert (
        reloads.applied[0].workspaces.keys()
        == config.load(root / "deploy" / "routing.example.yaml").workspaces.keys()
    )


def test_a_reconfigured_core_keeps_agents_finished_ids_threads_and_open_offers() -> None:
    r = WorkspaceRouter("acme", WorkspaceConfig())
    agent = AgentView(
        id="ann",
        workspace="acme",
        capacity={"chat": 2},
        status=AgentStatus.AVAILABLE,
        version=3,
    )
    r.update_agent(agent)
    r.admit(_inquiry("done", {}), T0)
    r.admit(_inquiry("open", {}), T0)
    for offer in r.plan(T0):
        r.offer_made(offer.inquiry_id, "ann", f"r-{offer.inquiry_id}", T0)
    r.accepted("done", "ann", T0 + 1)
    r.resolved("done", "ann", T0 + 2)
    r.restore_thread("t1", "ann", T0)
    fresh = r.reconfigured(WorkspaceConfig(queues=(Queue("general"),)), T0 + 3)
    assert fresh.config.queues[0].name == "general"
    assert fresh.agents["ann"].version == 3 and "ann" in fresh.free_agents
    assert "done" in fresh.finished and not fresh.is_new("done")
    assert fresh.threads["t1"][0] == "ann"
    kept = fresh.inquiries["open"]
    assert (kept.state, kept.agent_id, kept.queue) == (InquiryState.OFFERED, "ann", "general")
    # Its open offer is still reconciled with agent-state like any other.
    assert fresh.reconcile_workspace({}) == ["open"]
