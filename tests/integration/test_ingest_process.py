"""`python -m omniroute_ingest` as an operator runs it: settings from the environment, SIGTERM stops it cleanly."""

from __future__ import annotations

import json
import urllib.request

import httpx
import pytest

from omniroute.embedded import Broker, wait_for_port
from omniroute.ports import free_port
from tests.support.ingest import reading
from tests.support.processes import ServiceProcess, topic_env

pytestmark = pytest.mark.integration


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


KEY = "shop-key-0123456789abcdef"


async def test_process_serves_publishes_and_stops_on_sigterm(broker: Broker) -> None:
    topics = topic_env()
    port, smtp_port = free_port(), free_port()
    service = ServiceProcess(
        "omniroute_ingest",
        {
            "KAFKA_BOOTSTRAP": broker.bootstrap,
            "INGEST_HOST": "127.0.0.1",
            "INGEST_PORT": str(port),
            "INGEST_SMTP_ENABLED": "true",
            "INGEST_SMTP_HOST": "127.0.0.1",
            "INGEST_SMTP_PORT": str(smtp_port),
            "INGEST_API_KEYS": json.dumps({"shop": {"key": KEY, "workspaces": ["acme"]}}),
            **topics,
        },
    ).start()
    try:
        service.wait_until(lambda: _healthy(f"http://127.0.0.1:{port}/healthz"))
        wait_for_port("127.0.0.1", smtp_port)  # the SMTP listener is up too
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{port}",
            timeout=15,
            headers={"Authorization": f"Bearer {KEY}"},
        ) as http:
            body = {
                "workspace": "acme",
                "channel": "chat",
                "body": "call me at +1 555 0100, me@example.com",
            }
            response = await http.post("/v1/inquiries", json=body)
        assert response.status_code == 202, response.text
        inquiry_id = response.json()["id"]
        async with reading(broker.bootstrap, topics["TOPIC_INQUIRIES"]) as reader:
            [inquiry] = await reader.inquiries(1)
        assert inquiry.id == inquiry_id
    finally:
        code = service.stop()
    log = service.log()
    assert code == 0, log
    assert inquiry_id in log  # logs carry ids ...
    assert KEY not in log
    assert "+1 555 0100" not in log and "me@example.com" not in log  # ... never personal data
    assert '"msg": "ingest stopped"' in log
