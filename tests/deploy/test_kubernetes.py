"""deploy/kubernetes builds with kustomize and matches what the services read."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.test_compose import SERVICES, settings_fields
from tests.support import tools

ROOT = Path(__file__).resolve().parents[2]
KUBERNETES = ROOT / "deploy" / "kubernetes"


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    """The manifests as `kubectl kustomize` renders them."""
    kubectl = tools.require("kubectl")  # it renders the kustomization
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


# -- secure by default ------------------------------------------------------------


def env_of(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in spec.get("env", [])}


def mount_of(objects: list[dict[str, Any]], service: str, path: str) -> str:
    """The Secret mounted read-only at the folder holding `path`."""
    deployment = find(objects, "Deployment", f"omniroute-{service}")
    pod = deployment["spec"]["template"]["spec"]
    spec = pod["containers"][0]
    for mount in spec.get("volumeMounts", []):
        if path.startswith(mount["mountPath"].rstrip("/") + "/"):
            assert mount.get("readOnly"), f"{service}: {mount['mountPath']} must be read-only"
            volume = next(v for v in pod["volumes"] if v["name"] == mount["name"])
            return str(volume["secret"]["secretName"])
    raise AssertionError(f"{service}: nothing mounted for {path}")


def test_agent_state_requires_tokens_and_serves_tls(objects: list[dict[str, Any]]) -> None:
    spec = container(objects, "agent-state")
    secrets = [s["secretRef"] for s in spec["envFrom"] if "secretRef" in s]
    assert [s["name"] for s in secrets] == ["omniroute-agent-state-tokens"]
    assert not any(s.get("optional") for s in secrets), "the tokens Secret must be required"
    env = env_of(spec)
    assert "AGENT_STATE_ALLOW_ANONYMOUS" not in env
    config = find(objects, "ConfigMap", "omniroute-env")["data"]
    assert "AGENT_STATE_ALLOW_ANONYMOUS" not in config
    for name in ("AGENT_STATE_TLS_CERT_FILE", "AGENT_STATE_TLS_KEY_FILE"):
        path = env[name]["value"]
        assert mount_of(objects, "agent-state", path) == "omniroute-agent-state-tls"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        command = spec[probe]["exec"]["command"]  # the grpc probe speaks no TLS
        assert command == ["python", "-m", "omniroute_agent_state.healthcheck"], probe


def test_the_router_presents_its_token_and_checks_agent_states_certificate(
    objects: list[dict[str, Any]],
) -> None:
    env = env_of(container(objects, "router"))
    ref = env["AGENT_STATE_TOKEN"]["valueFrom"]["secretKeyRef"]
    assert ref["name"] == "omniroute-router-token" and not ref.get("optional")
    ca = env["AGENT_STATE_TLS_CA_FILE"]["value"]
    assert mount_of(objects, "router", ca) == "omniroute-agent-state-ca"


def test_the_desk_presents_its_token_and_checks_agent_states_certificate(
    objects: list[dict[str, Any]],
) -> None:
    spec = container(objects, "desk")
    env = env_of(spec)
    for name in ("AGENT_STATE_TOKEN", "DESK_SUPERVISOR_TOKENS"):
        ref = env[name]["valueFrom"]["secretKeyRef"]
        assert ref["name"] == "omniroute-desk-tokens" and not ref.get("optional"), name
    ca = env["AGENT_STATE_TLS_CA_FILE"]["value"]
    assert mount_of(objects, "desk", ca) == "omniroute-agent-state-ca"
    router = env_of(container(objects, "router"))
    assert env["AGENT_STATE_TARGET"]["value"] == router["AGENT_STATE_TARGET"]["value"]
    assert "DESK_DEMO_AGENTS" not in env


def test_the_setup_step_writes_every_secret_the_manifests_read(
    objects: list[dict[str, Any]], tmp_path: Path
) -> None:
    from omniroute.provision import Options, provision

    (tmp_path / ".env.example").write_text((ROOT / "deploy" / ".env.example").read_text())
    provision(Options(deploy_dir=tmp_path, kubernetes_namespace="omniroute"))
    written = {
        doc["metadata"]["name"]: doc
        for doc in yaml.safe_load_all((tmp_path / "secrets" / "kubernetes.yaml").read_text())
    }
    read: dict[str, set[str]] = {}
    for obj in objects:
        if obj["kind"] not in ("Deployment", "Job"):
            continue
        pod = obj["spec"]["template"]["spec"]
        for volume in pod.get("volumes", []):
            if "secret" in volume:
                read.setdefault(volume["secret"]["secretName"], set())
        for spec in pod["containers"]:
            for source in spec.get("envFrom", []):
                if "secretRef" in source:
                    read.setdefault(source["secretRef"]["name"], set())
            for e in spec.get("env", []):
                ref = e.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    read.setdefault(ref["name"], set()).add(ref["key"])
    assert set(read) <= set(written), f"not written: {sorted(set(read) - set(written))}"
    for name, keys in read.items():
        assert written[name]["metadata"]["namespace"] == "omniroute"
        assert keys <= set(written[name]["stringData"]), name


def test_the_topics_job_asks_for_production_durability(objects: list[dict[str, Any]]) -> None:
    config = find(objects, "ConfigMap", "omniroute-env")["data"]
    assert int(config["KAFKA_REPLICATION_FACTOR"]) == 3
    job = find(objects, "Job", "omniroute-create-topics")
    env = env_of(job["spec"]["template"]["spec"]["containers"][0])
    assert int(env["KAFKA_MIN_INSYNC_REPLICAS"]["value"]) == 2


def test_ingest_reads_its_api_keys_from_a_required_secret(objects: list[dict[str, Any]]) -> None:
    spec = container(objects, "ingest")
    secrets = [s["secretRef"] for s in spec["envFrom"] if "secretRef" in s]
    assert [s["name"] for s in secrets] == ["omniroute-ingest"]
    assert not any(s.get("optional") for s in secrets)
    assert "INGEST_ALLOW_ANONYMOUS" not in env_of(spec)
