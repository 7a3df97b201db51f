"""Queue figures at the edge, end to end: per-workspace service level and abandons, and
customers' place in line and estimated wait as ingest answers them from the router.

The router runs with a routing configuration naming one workspace; every
other workspace is unconfigured (served by `default`) and must share the
`other` metric label.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from omniroute.embedded import Broker
from omniroute.v1 import agent_pb2
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
    read_assignments,
    running,
)

pytestmark = pytest.mark.integration

CONFIGURED = "figures-" + uuid.uuid4().hex[:8]
CONFIG = f"""
workspaces:
  {CONFIGURED}:
    service_levels: {{chat: 60}}
    queues:
      - name: support
default:
  service_levels: {{chat: 60}}
  queues:
    - name: support
"""


@pytest.fixture(scope="module")
def system(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    config = Path(tmp_path_factory.mktemp("routing")) / "routing.yaml"
    config.write_text(CONFIG)
    # Only configured workspaces get their own label (the tests' default is every one).
    system = System(broker, routing_config=str(config), extra_env={"METRICS_WORKSPACES": "[]"})
    yield from running(system, "agent-state", "router", "ingest")


@pytest.fixture
async def desk(system: System) -> AsyncIterator[Desk]:
    desk = Desk(system.agent_state_target)
    yield desk
    await desk.close()


@pytest.fixture
async def assignments(system: System) -> AsyncIterator[Assignments]:
    async with read_assignments(system) as tail:
        yield tail


def post(system: System, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{system.ingest_url}{path}",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        return dict(json.loads(response.read()))


def counter(system: System, name: str, workspace: str, within: str) -> float | None:
    """A service-level counter of the `support` queue's chats (None: no such series)."""
    wanted = {"workspace": workspace, "queue": "support", "channel": "chat", "within_sla": within}
    with urllib.request.urlopen(system.router_metrics_url(), timeout=5) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == f"omniroute_router_{name}_total" and sample.labels == wanted:
                return float(sample.value)
    return None


def inquiries_processed(system: System) -> float:
    line = 'omniroute_router_events_total{input="inquiries",outcome="processed"} '
    return metric_value(system.router_metrics_url(), line) or 0.0


async def chat_left(system: System, workspace: str) -> None:
    """A customer starts a chat (its inquiry is published), waits, and leaves unanswered.

    The leave is sent once the router has queued the inquiry: an abandon that
    overtakes its inquiry (another topic) closes it uncounted (README).
    """
    seen = inquiries_processed(system)
    started = post(system, f"/v1/chat/{workspace}/conversations", {"message": "anyone there?"})

    async def queued() -> None:
        assert inquiries_processed(system) > seen

    await eventually(queued)
    post(system, f"/v1/chat/{workspace}/conversations/{started['conversation_id']}/leave", {})


async def test_abandons_count_as_misses_per_configured_workspace_and_under_other(
    system: System,
) -> None:
    # The configured workspace's series exist before anything happened.
    assert counter(system, "abandoned", CONFIGURED, "no") == 0
    before_other = counter(system, "abandoned", "other", "no") or 0
    await chat_left(system, CONFIGURED)  # nobody logged in: the customer waits, then leaves
    await chat_left(system, new_workspace())
    await chat_left(system, new_workspace())

    async def counted() -> None:
        assert counter(system, "abandoned", CONFIGURED, "no") == 1
        assert counter(system, "abandoned", "other", "no") == before_other + 2

    await eventually(counted)


async def test_answers_count_per_workspace_within_target(
    system: System, desk: Desk, assignments: Assignments
) -> None:
    agent_id = f"{CONFIGURED}-agent-{uuid.uuid4().hex[:4]}"
    await desk.login(make_agent(CONFIGURED, agent_id, {"billing": 3}, {CHAT: 1}))
    before = counter(system, "answered", CONFIGURED, "yes") or 0
    inquiry_id = system.post_inquiry(inquiry_body(CONFIGURED, "chat"))
    await assignments.wait_for(lambda a: a.inquiry_id == inquiry_id)
    await desk.accept(agent_id, inquiry_id)

    async def counted() -> None:
        assert counter(system, "answered", CONFIGURED, "yes") == before + 1

    await eventually(counted)
    await desk.complete(agent_id, inquiry_id)


def get(system: System, path: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{system.ingest_url}{path}", timeout=15) as response:
        return dict(json.loads(response.read()))


def post_form(system: System, path: str, form: dict[str, str]) -> tuple[str, str]:
    """A provider webhook (unsigned: the test system allows it); the body and X-Inquiry-Id."""
    request = urllib.request.Request(
        f"{system.ingest_url}{path}", data=urllib.parse.urlencode(form).encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=15) as response:
        return response.read().decode(), str(response.headers["X-Inquiry-Id"])


async def test_customers_hear_their_place_in_line_and_wait_from_the_router(
    system: System, desk: Desk, assignments: Assignments
) -> None:
    ws = new_workspace()
    chats = f"/v1/chat/{ws}/conversations"
    # Nobody logged in: each newcomer joins the back of the line, and ingest's
    # answer waits for the router's snapshot that lists it.
    first = post(system, chats, {"message": "my bill is wrong"})
    assert (first["position"], first["estimated_wait_s"]) == (1, None)
    assert first["system_message"] == (
        "You are next in line. An agent will be with you as soon as possible."
    )
    second = post(system, chats, {"message": "and mine"})
    assert second["position"] == 2
    call_sid = "CA" + uuid.uuid4().hex[:10]
    twiml, call_id = post_form(
        system, f"/v1/voice/{ws}/calls", {"CallSid": call_sid, "From": "+15550001111"}
    )
    assert "<Say>You are number 3 in line." in twiml
    assert f'waitUrl="/v1/voice/{ws}/calls/{call_sid}/wait"' in twiml

    def position(inquiry_id: str) -> dict[str, Any]:
        return get(system, f"/v1/workspaces/{ws}/inquiries/{inquiry_id}/position")

    assert [position(i)["position"] for i in (first["inquiry_id"], second["inquiry_id"])] == [1, 2]
    assert position(call_id)["state"] == "waiting"
    queues = get(system, f"/v1/workspaces/{ws}/queues")["queues"]
    assert [(q["name"], q["open"], q["depth"], q["estimated_wait_s"]) for q in queues] == [
        ("support", True, 3, None)
    ]

    # An agent answers the first and goes on a break: the queue now has a
    # service rate, so the others get an estimate, and move up.
    agent_id = f"{ws}-agent"
    await desk.login(make_agent(ws, agent_id, {"billing": 3}, {CHAT: 1}))
    await assignments.wait_for(lambda a: a.inquiry_id == first["inquiry_id"])
    await desk.accept(agent_id, first["inquiry_id"])
    await desk.set_status(agent_id, agent_pb2.AGENT_STATUS_AWAY, "break")
    await desk.complete(agent_id, first["inquiry_id"])

    async def estimated() -> tuple[dict[str, Any], dict[str, Any]]:
        second_place, call_place = position(second["inquiry_id"]), position(call_id)
        assert second_place["as_of"] == call_place["as_of"]  # the same snapshot
        assert (second_place["position"], call_place["position"]) == (1, 2)
        assert second_place["estimated_wait_s"] is not None
        return second_place, call_place

    second_place, call_place = await eventually(estimated)
    # Position over the queue's rate: the second in line waits twice as long.
    assert call_place["estimated_wait_s"] == pytest.approx(2 * second_place["estimated_wait_s"])
    (queue,) = get(system, f"/v1/workspaces/{ws}/queues")["queues"]
    assert queue["depth"] == 2 and queue["estimated_wait_s"] > 0
    hold, _ = post_form(system, f"/v1/voice/{ws}/calls/{call_sid}/wait", {"CallSid": call_sid})
    assert "<Say>You are number 2 in line. The estimated wait is about" in hold
    assert '<Pause length="30"/>' in hold
    # An inquiry the router does not hold is not found (finished, here).
    with pytest.raises(urllib.error.HTTPError) as finished:
        position(first["inquiry_id"])
    assert finished.value.code == 404
