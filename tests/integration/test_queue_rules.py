"""Queue rules end to end: walk-ins by site, live configuration (SIGHUP), business hours
and overflow, through ingest, the broker, the router and agent-state as processes."""

from __future__ import annotations

import json
import signal
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from omniroute.embedded import Broker
from omniroute.v1 import inquiry_pb2
from tests.support.system import (
    CHAT,
    Assignments,
    Desk,
    System,
    eventually,
    inquiry_body,
    make_agent,
    metric_value,
    new_workspace,
    running,
)

pytestmark = pytest.mark.integration

IN_PERSON = inquiry_pb2.CHANNEL_IN_PERSON

# Every workspace of this module: the queue `supervisors` offers to tier 3 only.
ROUTING = """\
default:
  queues:
    - name: supervisors
      match: {segments: [escalated]}
      ladder:
        - {after_s: 0, tiers: [3]}
    - name: general
"""


@pytest.fixture(scope="module")
def routing_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("queue-rules") / "routing.yaml"
    path.write_text(ROUTING)
    return path


@pytest.fixture(scope="module")
def system(broker: Broker, routing_file: Path) -> Iterator[System]:
    yield from running(System(broker, routing_config=str(routing_file)))


def post(system: System, path: str, body: dict[str, object]) -> dict[str, object]:
    request = urllib.request.Request(
        f"{system.ingest_url}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        assert response.status == 202, response.status
        return dict(json.loads(response.read()))


def walk_in(system: System, workspace: str, location: str) -> str:
    answer = post(
        system,
        f"/v1/walk-in/{workspace}",
        {"location": location, "locationType": "store", "reason": "Return a phone"},
    )
    return str(answer["id"])


async def test_a_walk_in_goes_only_to_an_agent_of_its_site(
    system: System, desk: Desk, assignments: Assignments
) -> None:
    ws = new_workspace()
    # Madrid's agent logs in first: the longest idle, and still not offered Sevilla's visit.
    madrid = make_agent(ws, f"{ws}-madrid", {}, {IN_PERSON: 1, CHAT: 1})
    madrid.site = "store-madrid"
    sevilla = make_agent(ws, f"{ws}-sevilla", {}, {IN_PERSON: 1})
    sevilla.site = "Store-Sevilla"  # sites compare ignoring case
    await desk.login(madrid)
    await desk.login(sevilla)
    assert (await desk.agent(madrid.id)).site == "store-madrid"

    visit = walk_in(system, ws, "store-sevilla")
    offer = await assignments.wait_for(lambda a: a.inquiry_id == visit)
    assert offer.agent_id == sevilla.id

    # Nobody at Bilbao: the visit waits, although Madrid's agent is free.
    bilbao_visit = walk_in(system, ws, "store-bilbao")
    chat = system.post_inquiry(inquiry_body(ws, "chat"))
    assert (await assignments.wait_for(lambda a: a.inquiry_id == chat)).agent_id == madrid.id

    bilbao = make_agent(ws, f"{ws}-bilbao", {}, {IN_PERSON: 1})
    bilbao.site = "store-bilbao"
    await desk.login(bilbao)
    offer = await assignments.wait_for(lambda a: a.inquiry_id == bilbao_visit)
    assert offer.agent_id == bilbao.id
    # Only one offer was ever made for it, to Bilbao.
    assert [a.agent_id for a in assignments.records if a.inquiry_id == bilbao_visit] == [bilbao.id]


def reload_with(system: System, path: Path, text: str) -> None:
    """Write the routing file and tell the router to reload it (SIGHUP)."""
    path.write_text(text)
    router = system.processes["router"].process
    assert router is not None
    router.send_signal(signal.SIGHUP)


def reloads(system: System, result: str) -> float:
    url = system.router_metrics_url()
    return metric_value(url, f'omniroute_router_config_reloads_total{{result="{result}"}}') or 0.0


def depth(system: System, workspace: str, queue: str) -> float | None:
    url = system.router_metrics_url()
    line = f'omniroute_router_queue_depth{{queue="{queue}",workspace="{workspace}"}}'
    return metric_value(url, line)


async def test_sighup_refuses_an_invalid_file_and_applies_a_valid_one(
    system: System, desk: Desk, assignments: Assignments, routing_file: Path
) -> None:
    ws = new_workspace()
    await desk.login(make_agent(ws, f"{ws}-rep", {}, {CHAT: 2}))
    held = system.post_inquiry(inquiry_body(ws, "chat", customer={"segment": "escalated"}))

    async def waits_for_a_supervisor() -> None:
        assert depth(system, ws, "supervisors") == 1

    await eventually(waits_for_a_supervisor)
    router = system.processes["router"]
    assert router.process is not None

    # An invalid file: refused, with its file, line and field in the log; nothing changes.
    refused_before = reloads(system, "refused")
    reload_with(system, routing_file, ROUTING + "      strategy: fastest\n")

    async def refused() -> None:
        assert reloads(system, "refused") == refused_before + 1
        assert f"{routing_file}:8: default.queues[1].strategy: unknown strategy" in router.log()

    await eventually(refused)
    assert router.process.poll() is None
    probe = system.post_inquiry(inquiry_body(ws, "chat"))  # routed by the old rules still
    assert (await assignments.wait_for(lambda a: a.inquiry_id == probe)).queue == "general"
    assert depth(system, ws, "supervisors") == 1

    # A valid file without the queue: its inquiry moves to the queue that takes it now.
    applied_before = reloads(system, "applied")
    reload_with(system, routing_file, "default:\n  queues:\n    - name: general\n")
    offer = await assignments.wait_for(lambda a: a.inquiry_id == held)
    assert offer.queue == "general" and offer.agent_id == f"{ws}-rep"
    assert "requeued:supervisors:general:reconfigured" in offer.history
    assert reloads(system, "applied") == applied_before + 1
    reload_with(system, routing_file, ROUTING)

    async def restored() -> None:
        assert reloads(system, "applied") == applied_before + 2

    await eventually(restored)
