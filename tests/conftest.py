"""Fixtures shared by all tests: the embedded broker for integration tests; the
`--chaos` option (the chaos suite runs only with it, see `make chaos`)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from omniroute.embedded import EmbeddedBroker


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--chaos",
        action="store_true",
        default=False,
        help="also run the tests marked `chaos` (the whole chaos suite; make chaos)",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Leave the `chaos` suite out unless --chaos: it takes minutes; its `chaos_smoke`
    subset runs with every test run."""
    if config.getoption("--chaos"):
        return
    keep = [item for item in items if item.get_closest_marker("chaos") is None]
    if len(keep) < len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in keep])
        items[:] = keep


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
