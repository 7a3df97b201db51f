"""Fixtures for tests that drive the whole system.

A test module defines a `system` fixture (its services and settings, usually
`tests.support.system.running()`); `desk` and `assignments` work against whichever it is.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.support.system import Assignments, Desk, System


@pytest.fixture
async def desk(system: System) -> AsyncIterator[Desk]:
    """An agent desktop / administrator gRPC client of the system's agent-state."""
    client = Desk(system.agent_state_target)
    yield client
    await client.close()


@pytest.fixture
async def assignments(system: System) -> AsyncIterator[Assignments]:
    """A reader of the system's assignments topic, from the beginning."""
    reader = await Assignments(system).start()
    yield reader
    await reader.stop()
