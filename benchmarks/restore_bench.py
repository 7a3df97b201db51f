"""The router's restore alone: a worker restarted over N waiting inquiries.

`python -m benchmarks.restore_bench --levels 10000,100000,1000000` (PYTHONPATH
as the Makefile sets it). The scale scenario of `make bench` (scale_bench.py)
without its 20,000 agents, core costs and agent-state restart: one agent-state,
one router worker with a few agents (so the router places the workspace), then
for each level the worker stopped (SIGTERM), its changelogs filled up to that
many waiting inquiries as the router writes them (`scale_bench.fill`), the
worker started again and timed until its queue-depth gauge shows them all.
Prints, per level: the group join, the restore, changelog records restored per
second after the join (two per inquiry: its state and its content), memory.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import tempfile
import time
from pathlib import Path

from benchmarks import scale_bench
from benchmarks.harness import Processes, Services, progress, rss_bytes
from devstack.brokers import BrokerKind, new_broker


async def run(kind: BrokerKind, levels: list[int], limit_s: float) -> None:
    """Restore each level in turn (each one adds to the last) and print its figures."""
    work = Path(tempfile.mkdtemp(prefix="omniroute-restore-"))
    broker = new_broker(kind, log_path=work / "broker.log")
    processes = Processes()
    broker.start()
    try:
        services = Services(
            broker, work, "restore", extra={"ROUTING_CONFIG": str(scale_bench.EXAMPLE_CONFIG)}
        )
        await services.start_agent_state(processes)
        router = await services.start_router(processes)
        await scale_bench.log_in(services.target, 20, random.Random(20))
        partition = await scale_bench.workspace_partition(broker.bootstrap, services.app_id)
        print(f"Router restore ({kind} broker; logs in {work})")
        print(
            f"  {'waiting':>10} {'joined s':>9} {'restored s':>11} {'records/s':>10} {'RSS MB':>7}"
        )
        written = 0
        for level in levels:
            processes.stop(router)
            progress(f"restore: filling the router's tables up to {level:,} waiting")
            await scale_bench.fill(broker.bootstrap, services.app_id, partition, written, level)
            written = level
            started = time.monotonic()
            router = await services.start_router(processes, timeout_s=600)
            joined = time.monotonic() - started
            restored = await scale_bench._restored(services, router, level, started, limit_s)
            rss, _ = rss_bytes(router)
            if restored is None:
                print(f"  {level:>10,} {joined:>9.1f} {'> ' + str(int(limit_s)):>11} {'-':>10} {rss / 2**20:>7.0f}")  # fmt: skip
                break
            rate = 2 * level / (restored - joined)
            print(f"  {level:>10,} {joined:>9.1f} {restored:>11.1f} {rate:>10,.0f} {rss / 2**20:>7.0f}")  # fmt: skip
    finally:
        processes.stop_all()
        broker.close()


def cli() -> None:
    """Parse the levels and run."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--broker", type=BrokerKind, choices=list(BrokerKind), default=BrokerKind.TANSU
    )
    parser.add_argument("--levels", default="10000,100000", help="waiting inquiries, ascending")
    parser.add_argument("--limit", type=float, default=900.0, help="seconds per restore (900)")
    args = parser.parse_args()
    asyncio.run(run(args.broker, [int(n) for n in args.levels.split(",")], args.limit))


if __name__ == "__main__":
    cli()
