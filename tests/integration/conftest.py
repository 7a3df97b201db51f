"""Fixtures shared by the integration tests.

A module that drives the whole system defines a `system` fixture (usually
`tests.support.system.running()`); `desk` and `assignments` work against it.
A module that tests ingest alone defines an `ingest` fixture (its settings);
`http`, `inquiries` and `task_events` work against it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from omniroute.embedded import Broker
from omniroute_ingest.service import IngestService
from tests.support.ingest import TopicReader, reading
from tests.support.system import Assignments, Desk, System, read_assignments


@pytest.fixture
async def desk(system: System) -> AsyncIterator[Desk]:
    """An agent desktop / administrator gRPC client of the system's agent-state."""
    client = Desk(system.agent_state_target)
    yield client
    await client.close()


@pytest.fixture
async def assignments(system: System) -> AsyncIterator[Assignments]:
    """A reader of the system's assignments topic, from the beginning."""
    async with read_assignments(system) as reader:
        yield reader


@pytest.fixture
async def http(ingest: IngestService) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{ingest.http_port}", timeout=30
    ) as client:
        yield client


@pytest.fixture
async def inquiries(broker: Broker, ingest: IngestService) -> AsyncIterator[TopicReader]:
    async with reading(broker.bootstrap, ingest.settings.topic_inquiries) as reader:
        yield reader


@pytest.fixture
async def task_events(broker: Broker, ingest: IngestService) -> AsyncIterator[TopicReader]:
    async with reading(broker.bootstrap, ingest.settings.topic_task_events) as reader:
        yield reader
