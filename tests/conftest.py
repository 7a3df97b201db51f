"""Fixtures shared by all tests: the broker for integration tests, on both brokers.

Every test that uses `broker` (or `broker_kind`) runs twice, once on the
embedded broker and once on Apache Kafka, with the broker in its id
(`test_x[tansu]`, `test_x[kafka]`). One broker of each kind serves the whole
session (of each xdist worker that runs its tier); tests isolate themselves with
their own topics and consumer groups.
Where Java or Kafka's jars are missing, the Apache Kafka tier is skipped with
the reason, and the run ends by saying so, with every other tier that did not
run (tests/support/tools.py; with OMNIROUTE_REQUIRE_TOOLS=1, as in CI, that is
an error instead). `--broker tansu` (or `kafka`) runs one tier only.

The chaos suite (tests marked `chaos`) runs only with `--chaos` (`make chaos`);
its `chaos_smoke` subset runs with every test run.

`make test` runs pytest-xdist with four workers (`-n 4 --dist loadgroup`): the
broker tests form groups of one tier each (`TIER_GROUPS`: the embedded tier's
modules dealt out into two, Apache Kafka's in one), and every group runs in
order on one worker with that worker's own broker of its tier (a broker is
never shared between processes), the groups side by side; the tests that use
no broker run on the fourth worker and fill in around them. What a worker
notes for the end of the run (tiers not run, chaos summary lines) goes to the
controller. A plain `pytest` runs the same tests in one process.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

from devstack.brokers import BrokerKind, kafka_missing, new_broker
from omniroute.embedded import Broker
from tests.chaos.harness import SUMMARIES
from tests.support.tiers import limit_tiers
from tests.support.tools import not_run

# Under xdist (make test) each tier's broker modules are dealt out, in path order, into
# this many groups; a group runs in order on one worker with that worker's own broker.
# pytest-xdist hands out the groups largest first (by test count), one per worker, and
# the tests without a broker to the worker left over, then to whichever is free: so
# the groups, three here, stay fewer than the four workers. The embedded tier takes
# about twice as long as Apache Kafka's (its group joins are slow).
TIER_GROUPS = {BrokerKind.TANSU: 2, BrokerKind.KAFKA: 1}
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


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep the chosen tier only, and the chaos suite only with --chaos; note whether
    the Kafka tier cannot run; put each tier's tests in one xdist group."""
    chosen = config.getoption("--broker")
    chaos = config.getoption("--chaos")
    groups = _xdist_groups(items) if config.pluginmanager.hasplugin("xdist") else {}
    kept, dropped = [], []
    for item in items:
        kind = _kind_of(item)
        if item in groups:
            item.add_marker(pytest.mark.xdist_group(groups[item]))
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


@pytest.hookimpl(tryfirst=True)  # before the xdist worker sends its collection
def pytest_collection_finish(session: pytest.Session) -> None:
    """On an xdist worker under --dist loadgroup: fail unless the tier groups took effect.

    pytest-xdist groups by a suffix it writes into each node id; where the pytest it runs
    under ignores that write (pytest 9.2, pytest-dev/pytest-xdist#1386) nothing is grouped
    and a tier's tests would be spread over every worker, each starting its own brokers."""
    if not getattr(session.config.option, "loadgroup", False):
        return
    for item in session.items:
        if item.get_closest_marker("xdist_group") and "@" not in item.nodeid.rpartition("]")[2]:
            raise pytest.UsageError(
                f"pytest-xdist did not group {item.nodeid} (see pytest-dev/pytest-xdist#1386): "
                "run with the pytest version pyproject.toml pins, or without -n"
            )


def pytest_sessionfinish(session: pytest.Session) -> None:
    """On an xdist worker: hand what it noted for the end of the run to the controller."""
    output = getattr(session.config, "workeroutput", None)
    if output is not None:
        output["not_run"] = dict(not_run)
        output["chaos_summaries"] = list(SUMMARIES)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """On the xdist controller: what a finished worker noted."""
    output = getattr(node, "workeroutput", {})
    not_run.update(output.get("not_run", {}))
    SUMMARIES.extend(output.get("chaos_summaries", []))


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


def _xdist_groups(items: list[pytest.Item]) -> dict[pytest.Item, str]:
    """The xdist group of every broker test (TIER_GROUPS)."""
    groups: dict[pytest.Item, str] = {}
    for kind, parts in TIER_GROUPS.items():
        tier = [item for item in items if _kind_of(item) == kind]
        modules = sorted({item.path for item in tier})
        for item in tier:
            groups[item] = f"{kind}-{modules.index(item.path) % parts}"
    return groups


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
