"""Fixtures shared by all tests: the broker for integration tests, on both brokers.

Every test that uses `broker` (or `broker_kind`) runs twice, once on the
embedded broker and once on Apache Kafka, with the broker in its id
(`test_x[tansu]`, `test_x[kafka]`). One broker of each kind serves the whole
session; tests isolate themselves with their own topics and consumer groups.
Where Java or Kafka's jars are missing, the Apache Kafka tier is skipped with
the reason, and the run ends by saying so, with every other tier that did not
run (tests/support/tools.py; with OMNIROUTE_REQUIRE_TOOLS=1, as in CI, that is
an error instead). `--broker tansu` (or `kafka`) runs one tier only.

The chaos suite (tests marked `chaos`) runs only with `--chaos` (`make chaos`);
its `chaos_smoke` subset runs with every test run.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from devstack.brokers import BrokerKind, kafka_missing, new_broker
from omniroute.embedded import Broker
from tests.chaos.harness import SUMMARIES
from tests.support.tiers import limit_tiers
from tests.support.tools import not_run

KAFKA_TIER = "integration: every broker test again on Apache Kafka (the [kafka] test ids)"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--broker",
        choices=["all", *BrokerKind],
        default="all",
        help="run the broker tests on this broker only (default: all)",
    )
    parser.addoption(
        "--chaos",
        action="store_true",
        default=False,
        help="also run the tests marked `chaos` (the whole chaos suite; make chaos)",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Tests marked `embedded_tier_only` run on the embedded broker alone (tests/support/tiers.py).

    First, so that pytest's own hooks see the marker's parametrization."""
    limit_tiers(metafunc)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep the chosen tier only, and the chaos suite only with --chaos; note whether
    the Kafka tier cannot run."""
    chosen = config.getoption("--broker")
    chaos = config.getoption("--chaos")
    kept, dropped = [], []
    for item in items:
        kind = _kind_of(item)
        other_tier = chosen != "all" and kind is not None and kind != chosen
        left_out = not chaos and item.get_closest_marker("chaos") is not None
        (dropped if other_tier or left_out else kept).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
    if any(_kind_of(item) == BrokerKind.KAFKA for item in items):
        reason = kafka_missing()
        if reason is not None and os.environ.get("OMNIROUTE_REQUIRE_TOOLS") == "1":
            raise pytest.UsageError(
                f"OMNIROUTE_REQUIRE_TOOLS=1 but Apache Kafka cannot run: {reason}"
            )
        if reason is not None:
            not_run[KAFKA_TIER] = f"Apache Kafka cannot run here ({reason}): not run: {KAFKA_TIER}"


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The chaos scenarios' summary lines again, and one line per test tier that did not
    run for lack of a tool (tests/support/tools.py)."""
    if SUMMARIES:
        terminalreporter.section("chaos")
        for line in SUMMARIES:
            terminalreporter.write_line(line)
    for reason in not_run.values():
        terminalreporter.write_line(f"TIER NOT RUN: {reason}", yellow=True)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Iterator[None] | pytest.TestReport:
    """A failed test that used the broker shows the end of the broker's log."""
    report: pytest.TestReport = yield
    running = getattr(item, "funcargs", {}).get("broker")
    if report.failed and running is not None:
        report.sections.append((f"{running.kind} broker log (end)", running.log()[-6000:]))
    return report


def _kind_of(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return None if callspec is None else callspec.params.get("broker_kind")


@pytest.fixture(scope="session", params=[BrokerKind.TANSU, BrokerKind.KAFKA], ids=str)
def broker_kind(request: pytest.FixtureRequest) -> Iterator[BrokerKind]:
    """Which broker this test runs on; skips the Kafka tier when it cannot run here.

    Sets KAFKA_BROKER_KIND for the tier, so every service a test starts (in
    process or as a process) uses what that broker offers, as an operator
    would configure it.
    """
    kind = BrokerKind(request.param)
    if kind is BrokerKind.KAFKA and (reason := kafka_missing()) is not None:
        pytest.skip(f"Apache Kafka tier not run: {reason}")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("KAFKA_BROKER_KIND", str(kind))
        yield kind


@pytest.fixture(scope="session")
def broker(broker_kind: BrokerKind) -> Iterator[Broker]:
    """One broker of the test's kind for the whole session, on a free port.

    Tests isolate themselves with their own topics and consumer groups.
    """
    running = new_broker(broker_kind).start()
    try:
        yield running
    finally:
        running.close()
    if running.process is not None and running.process.returncode not in (0, -15, 143, None):
        print(f"{broker_kind} broker exited with {running.process.returncode}; its log:\n{running.log()}")  # fmt: skip
