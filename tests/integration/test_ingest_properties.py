"""Property-based tests: no input, however malformed, makes ingest answer 5xx.

Hypothesis sends arbitrary JSON, inquiry-shaped objects with wrong types,
arbitrary bytes as mail, arbitrary forms as webhooks and arbitrary files as
documents to the real server (real broker behind it). Every answer must be
a success or a 4xx, never a server error. Examples are kept modest so the
run stays short.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from omniroute.embedded import Broker
from omniroute.ports import free_port
from tests.support.processes import ServiceProcess, topic_env
from tests.support.system import http_ok

pytestmark = pytest.mark.integration

EXAMPLES = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=30),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)
anything = json_values | st.text(max_size=20)
inquiry_like = st.fixed_dictionaries(
    {},
    optional={
        "id": anything,
        "workspace": st.sampled_from(["acme", "", "a b", "ü", "x" * 150]) | anything,
        "channel": st.sampled_from(["chat", "CHANNEL_VOICE", "fax", "nope", ""]) | anything,
        "kind": st.sampled_from(["complaint", "INQUIRY_KIND_RETURN", "x"]) | anything,
        "customer": st.fixed_dictionaries(
            {}, optional={"id": anything, "contactAddress": anything, "language": anything}
        )
        | anything,
        "subject": st.text(max_size=200) | anything,
        "body": st.text(max_size=500) | anything,
        "requiredSkills": st.lists(
            st.fixed_dictionaries(
                {"name": anything}, optional={"minProficiency": st.integers(-5, 10) | anything}
            ),
            max_size=3,
        )
        | anything,
        "priority": st.integers(-20, 20) | anything,
        "language": st.text(max_size=40) | anything,
        "attributes": st.dictionaries(
            st.text(max_size=20), st.text(max_size=50) | anything, max_size=3
        )
        | anything,
        "receivedAt": st.sampled_from(
            [
                "2026-01-01T00:00:00Z",
                "yesterday",
                "9999-12-31T23:59:59",
                "0001-01-01T00:00:00",
                "0001-01-01T00:00:00+01:00",
                "9999-12-31T23:59:59-01:00",
            ]
        )
        | anything,
        "attachments": st.lists(
            st.fixed_dictionaries(
                {"name": anything}, optional={"sizeBytes": anything, "uri": anything}
            ),
            max_size=2,
        )
        | anything,
    },
)


@pytest.fixture(scope="module")
def base_url(broker: Broker, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """ingest as a process of its own, as deployed.

    Not a server in a thread of this process: hypothesis checks that nothing
    changes the global `random` state while it draws an example, and the
    server's libraries use it (e.g. the Kafka client picking a node), which
    hypothesis reports as a strategy using `random`.
    """
    folder: Path = tmp_path_factory.mktemp("ingest-properties")
    port = free_port()
    service = ServiceProcess(
        "omniroute_ingest",
        {
            **topic_env(),
            "KAFKA_BOOTSTRAP": broker.bootstrap,
            "KAFKA_PARTITIONS": "2",
            "INGEST_HOST": "127.0.0.1",
            "INGEST_PORT": str(port),
            # Loopback only: no API key, unsigned webhooks.
            "INGEST_ALLOW_ANONYMOUS": "true",
            "INGEST_SMS_AUTH_TOKEN": "",
            "INGEST_SOCIAL_APP_SECRET": "",
            "INGEST_RATE_PER_S": "0",
            # No router runs here: answers do not wait for a place in line.
            "INGEST_POSITION_WAIT_S": "0",
            "INGEST_PUBLISH_TIMEOUT_S": "3",
            "INGEST_ATTACHMENT_DIR": str(folder / "attachments"),
            "INGEST_MAX_BODY_BYTES": "200000",
        },
    ).start()
    url = f"http://127.0.0.1:{port}"
    try:
        service.wait_until(lambda: http_ok(f"{url}/healthz"))
        yield url
    finally:
        service.stop()


@pytest.fixture(scope="module")
def http(base_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=base_url, timeout=30) as client:
        yield client


def no_server_error(response: httpx.Response) -> None:
    assert response.status_code < 500, (response.status_code, response.text)


@EXAMPLES
@given(body=inquiry_like)
def test_inquiry_shaped_json_never_5xx(http: httpx.Client, body: dict[str, Any]) -> None:
    no_server_error(http.post("/v1/inquiries", json=body))


@EXAMPLES
@given(
    body=json_values,
    path=st.sampled_from(
        [
            "/v1/inquiries",
            "/v1/inquiries/batch",
            "/v1/chat/acme/conversations",
            "/v1/walk-in/acme",
            "/v1/social/acme/webhook",
        ]
    ),
)
def test_any_json_never_5xx(http: httpx.Client, body: Any, path: str) -> None:
    no_server_error(http.post(path, json=body))


@EXAMPLES
@given(body=st.lists(inquiry_like, max_size=3), key=st.text(max_size=20))
def test_batches_never_5xx(http: httpx.Client, body: list[dict[str, Any]], key: str) -> None:
    headers = {"Idempotency-Key": key} if key.isascii() and key.isprintable() else {}
    no_server_error(http.post("/v1/inquiries/batch", json={"inquiries": body}, headers=headers))


@EXAMPLES
@given(
    raw=st.binary(max_size=2000)
    | st.text(max_size=500).map(
        lambda t: ("From: a@example.com\r\nSubject: x\r\n\r\n" + t).encode("utf-8", "surrogatepass")
    )
)
def test_any_bytes_as_mail_never_5xx(http: httpx.Client, raw: bytes) -> None:
    no_server_error(http.post("/v1/email/acme/raw", content=raw))


form_fields = st.dictionaries(
    st.sampled_from(
        [
            "From",
            "To",
            "Body",
            "MessageSid",
            "NumMedia",
            "MediaUrl0",
            "CallSid",
            "Digits",
            "Language",
            "CallStatus",
            "QueueResult",
            "x",
        ]
    ),
    st.text(max_size=40),
    max_size=8,
)


@EXAMPLES
@given(
    form=form_fields,
    path=st.sampled_from(["/v1/sms/acme", "/v1/voice/acme/calls", "/v1/voice/acme/calls/status"]),
)
def test_any_webhook_form_never_5xx(http: httpx.Client, form: dict[str, str], path: str) -> None:
    no_server_error(http.post(path, data=form))


@EXAMPLES
@given(
    data=st.binary(max_size=500) | st.binary(max_size=200).map(lambda b: b"%PDF-" + b),
    channel=st.text(max_size=12),
    name=st.text(max_size=30),
)
def test_any_document_upload_never_5xx(
    http: httpx.Client, data: bytes, channel: str, name: str
) -> None:
    no_server_error(
        http.post(
            "/v1/documents/acme", files={"file": (name or "f", data)}, data={"channel": channel}
        )
    )
