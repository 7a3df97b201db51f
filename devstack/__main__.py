"""`make run`: start the broker and the four services, then run the demo.

    make run                        # stack + demo, until Ctrl-C
    make run ARGS=--no-demo         # only the stack
    make run ARGS="--count 8"       # the demo stops after 8 resolved inquiries
    make run BROKER=kafka           # on Apache Kafka instead of the embedded broker

Ports: BROKER_PORT (9092), INGEST_PORT (8080), AGENT_STATE_PORT (50051),
ROUTER_METRICS_PORT (9102), AGENT_STATE_METRICS_PORT (9103), DESK_PORT (8090).
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import tempfile
import time
from pathlib import Path

from devstack.brokers import BrokerKind
from devstack.demo import Demo, say, summary
from devstack.stack import ROOT, Ports, Stack


def main(argv: list[str] | None = None) -> int:
    """Run the stack (and the demo) until Ctrl-C, SIGTERM or the demo's end."""
    parser = argparse.ArgumentParser(prog="make run", description=__doc__.splitlines()[0])
    parser.add_argument("--no-demo", action="store_true", help="start the stack only")
    parser.add_argument("--count", type=int, help="stop after this many resolved inquiries")
    parser.add_argument("--logs", type=Path, default=ROOT / ".devstack" / "logs")
    parser.add_argument(
        "--broker",
        type=BrokerKind,
        choices=list(BrokerKind),
        default=BrokerKind.TANSU,
        help="tansu (embedded, the default) or kafka (Apache Kafka; needs Java)",
    )
    args = parser.parse_args(argv)
    ports = Ports.from_env()
    ports.check_free()
    # SIGTERM (e.g. from a supervisor) stops as cleanly as Ctrl-C does.
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    stack = Stack(ports, args.logs if args.logs else Path(tempfile.mkdtemp()), args.broker)
    started = time.monotonic()
    print("Starting Omniroute locally (Ctrl-C stops everything):")
    try:
        stack.start()
        if args.no_demo:
            print("Stack running. Ctrl-C to stop.")
            while True:
                stack.check_alive()
                time.sleep(1)
        print("Demo: agents log in, customers get in touch, the router offers each inquiry.")
        demo = Demo(
            f"http://127.0.0.1:{ports.ingest}",
            f"127.0.0.1:{ports.agent_state}",
            args.count,
            ingest_key=stack.tokens.ingest,
            token=stack.tokens.demo,
        )
        try:
            tally = asyncio.run(demo.run())
        except KeyboardInterrupt:
            tally = demo.tally
        say(summary(tally, lambda: time.monotonic() - started))
        return 0 if args.count is None or tally.finished >= args.count else 1
    except KeyboardInterrupt:
        return 0
    except RuntimeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    finally:
        print("Stopping...", flush=True)
        stack.stop()
        print("Stopped: broker and services are down.")


if __name__ == "__main__":
    sys.exit(main())
