"""deploy/kubernetes builds with kustomize and matches what the services read."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.test_compose import SERVICES, settings_fields

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    """The manifests as `kubectl kustomize` renders them."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.fail("kubectl not found (it renders the kustomization)")
    result = subprocess.run(
        [kubectl, "kustomize", str(KUBERNETES)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"].startswith(name):
            return obj
    raise AssertionError(f"no {kind} {name}")


def container(objects: list[dict[str, Any]], service: str) -> dict[str, Any]:
    deployment = find(objects, "Deployment", f"omniroute-{service}")
    return dict(deployment["spec"]["template"]["spec"]["containers"][0])


def test_every_file_is_in_the_kustomization() -> None:
    kustomization = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    listed = set(kustomization["resources"])
    listed |= {f for g in kustomization["configMapGenerator"] for f in g["files"]}
    on_disk = {p.name for p in KUBERNETES.glob("*.yaml")} - {"kustomization.yaml"}
    assert on_disk == listed


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_runs_its_package_with_its_settings(
    objects: list[dict[str, Any]], service: str
) -> None:
    spec = container(objects, service)
    package = SERVICES[service]
    assert spec["command"] == ["python", "-m", package]
    fields = settings_fields(package)
    config = find(objects, "ConfigMap", "omniroute-env")["data"]
    names = set(config) | {e["name"] for e in spec.get("env", [])}
    assert names - set(fields) == set(), f"{service} does not read {sorted(names - set(fields))}"
    ports = {p["containerPort"] for p in spec["ports"]}
    own = {int(e["value"]) for e in spec["env"] if e["name"].endswith("_PORT") and "value" in e}
    assert own == ports
    for probe in ("readinessProbe", "livenessProbe"):
        assert probe in spec, f"{service} has no {probe}"
    assert spec["resources"]["requests"]["cpu"] and spec["resources"]["requests"]["memory"]


def test_router_workers_scale_up_to_the_partition_count_and_drain_one_at_a_time(
    objects: list[dict[str, Any]],
) -> None:
    partitions = int(find(objects, "ConfigMap", "omniroute-env")["data"]["KAFKA_PARTITIONS"])
    hpa = find(objects, "HorizontalPodAutoscaler", "omniroute-router")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "omniroute-router"
    assert 2 <= hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"] <= partitions
    pdb = find(objects, "PodDisruptionBudget", "omniroute-router")
    labels = find(objects, "Deployment", "omniroute-router")["spec"]["template"]["metadata"]
    assert pdb["spec"]["selector"]["matchLabels"].items() <= labels["labels"].items()
    routing = container(objects, "router")["env"]
    target = next(e["value"] for e in routing if e["name"] == "AGENT_STATE_TARGET")
    host, port = target.split(":")
    service = find(objects, "Service", host)
    assert int(port) in {p["port"] for p in service["spec"]["ports"]}


def test_agent_state_never_runs_twice(objects: list[dict[str, Any]]) -> None:
    deployment = find(objects, "Deployment", "omniroute-agent-state")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"]["type"] == "Recreate"


def test_the_topic_job_runs_the_same_script_as_compose(objects: list[dict[str, Any]]) -> None:
    script = find(objects, "ConfigMap", "omniroute-create-topics")["data"]["create-topics.sh"]
    assert script == (ROOT / "deploy" / "kafka" / "create-topics.sh").read_text()
