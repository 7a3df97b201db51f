"""Fixtures shared by all tests: the embedded broker for integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from omniroute.embedded import EmbeddedBroker


@pytest.fixture(scope="session")
def broker() -> Iterator[EmbeddedBroker]:
    """One embedded Kafka-compatible broker for the whole session, on a free port.

    Tests isolate themselves with their own topics and consumer groups.
    """
    embedded = EmbeddedBroker().start()
    try:
        yield embedded
    finally:
        embedded.stop()
    if embedded.process is not None and embedded.process.returncode not in (0, -15, None):
        print(f"broker exited with {embedded.process.returncode}; its log:\n{embedded.log()}")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line per test tier that did not run for lack of a tool (tests/support/tools.py)."""
    from tests.support.tools import not_run

    for reason in not_run.values():
        terminalreporter.write_line(f"TIER NOT RUN: {reason}", yellow=True)
