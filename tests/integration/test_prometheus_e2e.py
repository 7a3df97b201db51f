"""A real Prometheus scrapes the running system; the dashboard's queries return data.

The three services run as processes on loopback, Prometheus (Debian's
`prometheus` package) scrapes them every second with deploy/'s rule files
loaded, inquiries are routed through ingest and accepted at agent-state, and
Prometheus' HTTP API shows the operations dashboard's key queries answering.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from omniroute.embedded import Broker
from omniroute.ports import free_port
from tests.support import tools
from tests.support.promql import ROOT, dashboard_expressions, rule_files
from tests.support.system import (
    CHAT,
    Desk,
    System,
    inquiry_body,
    make_agent,
    read_assignments,
    running,
)
from tests.support.tiers import embedded_tier_only

# The subject is Prometheus evaluating the dashboard's queries and the rules over
# the services' metrics, which do not depend on the broker.
pytestmark = [pytest.mark.integration, embedded_tier_only]

# The dashboard's key queries (recording rules), each of which must return data.
KEY_QUERIES = [
    "channel:omniroute_ingest_accepted:rate5m",
    "workspace_queue:omniroute_router_queue_depth:sum",
    "workspace_queue:omniroute_router_queue_oldest_wait_seconds:max",
    'queue_channel:omniroute_router_sla_attainment:ratio_rate5m{channel="chat"}',
    'workspace_channel:omniroute_router_sla_attainment:ratio_rate5m{workspace="acme",channel="chat"}',
    "workspace_status:omniroute_agent_state_agents:sum",
    "workspace:omniroute_agent_state_occupancy:ratio",
    ":omniroute_router_routing_latency_seconds:p90_rate5m",
    "topic:omniroute_router_consumer_lag:sum",
]
WORKSPACE = "acme"  # has service levels in deploy/routing.example.yaml


@pytest.fixture(scope="module", autouse=True)
def prometheus_binary() -> str:
    """Prometheus, or the module is skipped before its system starts."""
    return tools.require("prometheus")


@pytest.fixture(scope="module")
def system(broker: Broker) -> Iterator[System]:
    config = str(ROOT / "deploy" / "routing.example.yaml")
    yield from running(System(broker, routing_config=config))


@pytest.fixture(scope="module")
def prometheus(
    prometheus_binary: str, system: System, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A Prometheus server on a free loopback port scraping the system every second."""
    binary = prometheus_binary
    home = tmp_path_factory.mktemp("prometheus")
    targets = {
        "router": f"127.0.0.1:{system.ports['router_metrics']}",
        "agent-state": f"127.0.0.1:{system.ports['agent_state_metrics']}",
        "ingest": f"127.0.0.1:{system.ports['ingest']}",
    }
    config = {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in rule_files()],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [target]}]}
            for job, target in targets.items()
        ],
    }
    (home / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = home / "prometheus.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [
                binary,
                f"--config.file={home / 'prometheus.yml'}",
                f"--storage.tsdb.path={home / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while not _ready(url):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"prometheus did not start:\n{log.read_text()[-5000:]}")
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()  # by pid
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def api(url: str, path: str, **params: str) -> Any:
    query = urllib.parse.urlencode(params)
    with urllib.request.urlopen(f"{url}/api/v1/{path}?{query}", timeout=5) as response:
        body = json.loads(response.read())
    assert body["status"] == "success", body
    return body["data"]


def query(url: str, expr: str) -> list[dict[str, Any]]:
    """An instant query's result vector."""
    data = api(url, "query", query=expr)
    assert data["resultType"] in {"vector", "scalar"}, data
    return list(data["result"]) if data["resultType"] == "vector" else [data["result"]]


def poll(check: Any, timeout_s: float = 45.0) -> Any:
    """Retry `check` until it returns something truthy, up to a deadline."""
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.5)


async def route_some_inquiries(system: System) -> None:
    """Two agents, two chats: offered, accepted, one completed."""
    desk = Desk(system.agent_state_target)
    assignments = await read_assignments(system).start()
    try:
        agents = [f"{WORKSPACE}-ana", f"{WORKSPACE}-bo"]
        for agent_id in agents:
            await desk.login(make_agent(WORKSPACE, agent_id, {"billing": 3}, {CHAT: 2}))
        ids = [system.post_inquiry(inquiry_body(WORKSPACE, "chat")) for _ in range(2)]
        for inquiry_id in ids:
            offer = await assignments.wait_for(_for_inquiry(inquiry_id))
            await desk.accept(offer.agent_id, inquiry_id)
        for inquiry_id in ids[:1]:
            offer = next(a for a in assignments.records if a.inquiry_id == inquiry_id)
            await desk.complete(offer.agent_id, inquiry_id)
    finally:
        await assignments.stop()
        await desk.close()


def _for_inquiry(inquiry_id: str) -> Any:
    return lambda assignment: assignment.inquiry_id == inquiry_id


async def test_the_dashboards_key_queries_return_data(system: System, prometheus: str) -> None:
    await route_some_inquiries(system)

    def every_target_up() -> bool:
        up = query(prometheus, "up")
        return len(up) == 3 and all(sample["value"][1] == "1" for sample in up)

    assert poll(every_target_up), query(prometheus, "up")
    empty: list[str] = []
    for expr in KEY_QUERIES:
        if not poll(lambda e=expr: query(prometheus, e)):
            empty.append(expr)
    assert not empty, f"no data from Prometheus for: {empty}"

    # Answered within seconds; acme's chat target is 60 s. (The ratio itself may
    # still be 0/0: a counter's first sample gives rate() nothing to compare.)
    # The configured workspace's series exist from the start (zeros): count the others.
    answered = query(prometheus, 'omniroute_router_answered_total{channel="chat"} > 0')
    assert {sample["metric"]["within_sla"] for sample in answered} == {"yes"}


async def test_every_dashboard_query_and_rule_evaluates(system: System, prometheus: str) -> None:
    for expression in dashboard_expressions():
        expr = expression.expr.replace("$workspace", ".*")
        if expr.startswith("label_values("):
            metric = expr[len("label_values(") :].split(",")[0]
            assert api(prometheus, "series", **{"match[]": metric}) is not None
            continue
        query(prometheus, expr)  # a bad query fails with status "error"

    def evaluated() -> list[dict[str, Any]]:
        groups = api(prometheus, "rules")["groups"]
        found = [rule for group in groups for rule in group["rules"]]
        return (
            found if all(rule.get("lastEvaluation", "").startswith("2") for rule in found) else []
        )

    rules = poll(evaluated)
    assert rules, "rules were never evaluated"
    broken = [(r["name"], r.get("lastError")) for r in rules if r["health"] != "ok"]
    assert not broken, broken
    firing = [r["name"] for r in rules if r["type"] == "alerting" and r["state"] == "firing"]
    assert not firing, f"alerts firing on a healthy system: {firing}"
