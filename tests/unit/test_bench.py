"""The benchmark's pure parts: scenario selection, the events count, and the rows the
scale scenario writes into the router's tables (they must be what the router
restores: its own table code's format, ids and times consistent)."""

from __future__ import annotations

import argparse
import base64
import random

import pytest

from benchmarks import scale_bench
from benchmarks.harness import EventCount, difference
from benchmarks.router_bench import SCENARIOS, parse_only
from omniroute.v1 import inquiry_pb2
from omniroute_router import config as routing_config
from omniroute_router.model import InquiryState, QueuedInquiry
from omniroute_router.routing import WorkspaceRouter

NOW = 1_800_000_000.0


def test_only_takes_known_scenarios_and_names_an_unknown_one() -> None:
    assert parse_only("burst, scale") == {"burst", "scale"}
    assert parse_only(",".join(SCENARIOS)) == set(SCENARIOS)
    with pytest.raises(argparse.ArgumentTypeError, match="bursts"):
        parse_only("bursts,scale")
    with pytest.raises(argparse.ArgumentTypeError):
        parse_only(" , ")


def test_events_per_inquiry_leave_the_routers_own_ticks_out() -> None:
    before = {"inquiries": 10, "agent-events": 5, "task-events": 7, "ticks": 100}
    after = {"inquiries": 110, "agent-events": 305, "task-events": 307, "ticks": 180}
    count = EventCount("burst", 100, difference(after, before))
    assert count.consumed == {
        "inquiries": 100,
        "agent-events": 300,
        "task-events": 300,
        "ticks": 80,
    }
    assert count.per_inquiry == 7.0
    assert "ticks 80" in count.line()


def _config() -> routing_config.WorkspaceConfig:
    config = routing_config.load(scale_bench.EXAMPLE_CONFIG).for_workspace(scale_bench.WORKSPACE)
    assert config is not None
    return config


def test_core_chunk_rows_are_the_routers_table_rows_of_waiting_inquiries() -> None:
    config = _config()
    inquiries, contents = scale_bench.core_chunk(config, 0, 50, 50, NOW, random.Random(1))
    assert len(inquiries) == len(contents) == 50
    restored = WorkspaceRouter(scale_bench.WORKSPACE, config)
    for key, row in inquiries.items():
        assert key == f"{scale_bench.WORKSPACE}/{row['id']}"
        inquiry = QueuedInquiry.from_dict(row)
        assert inquiry.state is InquiryState.WAITING
        restored.restore_inquiry(inquiry)
        proto = inquiry_pb2.Inquiry.FromString(base64.b64decode(contents[key]))
        assert proto.id == row["id"]
    assert len(restored.inquiries) == 50


def test_shifted_rows_move_ids_and_times_together() -> None:
    config = _config()
    template = scale_bench.core_chunk(config, 0, 20, 20, NOW, random.Random(1))
    inquiries, contents = scale_bench.shifted(template, 1000, 500.0)
    assert len(inquiries) == 20
    originals = {row["id"]: row for row in template[0].values()}
    for key, row in inquiries.items():
        n = int(row["id"].removeprefix("inq-"))
        original = originals[f"inq-{n - 1000:08d}"]
        assert key == f"{scale_bench.WORKSPACE}/{row['id']}"
        assert row["arrived_at"] == original["arrived_at"] + 500.0
        assert row["queued_at"] == original["queued_at"] + 500.0
        assert {k: v for k, v in row.items() if k not in ("id", "arrived_at", "queued_at")} == {
            k: v for k, v in original.items() if k not in ("id", "arrived_at", "queued_at")
        }
        proto = inquiry_pb2.Inquiry.FromString(base64.b64decode(contents[key]))
        assert proto.id == row["id"]
        assert proto.received_at.seconds == int(row["arrived_at"])
    assert not set(inquiries) & set(template[0])
