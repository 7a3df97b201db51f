"""The broker stops mid-test: 503 with Retry-After, then success once it is back, no duplicate.

The test has a broker of its own (of the tier's kind), stopped by pid and
started again on the same port. The embedded broker comes back empty (it keeps
everything in memory); Apache Kafka comes back with its topics.
"""

from __future__ import annotations

import asyncio
import smtplib
import time
from email.message import EmailMessage

import httpx
import pytest

from devstack.brokers import BrokerKind, new_broker
from omniroute.codec import decode
from omniroute.v1 import inquiry_pb2
from tests.support.ingest import ingest_settings, reading, running_ingest

pytestmark = pytest.mark.integration


async def test_503_while_the_broker_is_down_then_accepted_exactly_once(
    broker_kind: BrokerKind,
) -> None:
    broker = new_broker(broker_kind).start()
    try:
        settings = ingest_settings(broker.bootstrap, ingest_publish_timeout_s=2.0)
        async with running_ingest(settings) as service:
            url = f"http://127.0.0.1:{service.http_port}"
            async with httpx.AsyncClient(base_url=url, timeout=30) as http:
                body = {"workspace": "acme", "channel": "chat", "subject": "hello"}
                headers = {"Idempotency-Key": "outage-1"}
                assert (await http.post("/v1/inquiries", json=body)).status_code == 202

                broker.stop()
                down = await http.post("/v1/inquiries", json=body, headers=headers)
                assert down.status_code == 503, down.text
                assert down.headers["Retry-After"] == str(settings.ingest_retry_after_s)
                assert down.json()["error"] == "broker_unavailable"
                # SMTP answers a temporary failure, so the sending server retries later.
                with pytest.raises(smtplib.SMTPDataError) as refused:
                    await asyncio.to_thread(send_mail, service.smtp.port)
                assert refused.value.smtp_code == 451

                broker.start()
                # The client retries as Retry-After says, until the broker takes it.
                deadline = time.monotonic() + 60
                while (
                    up := await http.post("/v1/inquiries", json=body, headers=headers)
                ).status_code == 503:
                    assert time.monotonic() < deadline, "never accepted after the broker returned"
                    await asyncio.sleep(0.5)
                assert up.status_code == 202, up.text
                assert up.json()["duplicate"] is False
                again = await http.post("/v1/inquiries", json=body, headers=headers)
                assert again.json() == {"id": up.json()["id"], "duplicate": True}

                async with reading(broker.bootstrap, settings.topic_inquiries) as inquiries:
                    records = await inquiries.settle(2.0)
                ids = [decode(inquiry_pb2.Inquiry, value).id for _, value in records]
                assert ids.count(up.json()["id"]) == 1
                metrics = (await http.get("/metrics")).text
                assert 'omniroute_ingest_broker_errors_total{channel="chat"} 1.0' in metrics
    finally:
        broker.close()


def send_mail(port: int) -> None:
    msg = EmailMessage()
    msg["From"] = "customer@example.com"
    msg["To"] = "acme@ingest.example"
    msg["Subject"] = "during the outage"
    msg.set_content("hello")
    with smtplib.SMTP("127.0.0.1", port, timeout=30) as client:
        client.send_message(msg)
