"""Consumer lag of the router's input partitions, for the lag alert and dashboard.

Lag of a partition = its high watermark (the offset the next record written
will get) minus the group's committed offset (the next record the router will
process after a restart). It is computed from what the consumer already knows,
with no request to the broker:

- the high watermark comes from the consumer's last fetch response
  (`consumer.highwater(tp)`). The embedded broker's `end_offsets()` (ListOffsets)
  is wrong when the last batch holds several records; the fetch high watermark
  is right on it and on Apache Kafka;
- the committed offset is the one this worker committed or found at
  assignment; before the first commit, the offset after the last record read.

Only the stream's own input topics are measured: table changelogs read by
standby replicas are never committed and would look like endless lag.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Protocol


class LagGauge(Protocol):
    """The part of a labelled prometheus `Gauge` this module uses."""

    def labels(self, *values: str) -> Any: ...

    def remove(self, *values: str) -> None: ...


def partition_lag(highwater: int | None, committed: int | None, read: int | None) -> int | None:
    """Records of one partition not yet processed and committed; None when unknown.

    `committed` is the next offset to process, `read` the last offset read.
    """
    if highwater is None:
        return None  # no fetch answered yet for this partition
    if committed is not None:
        position = committed
    elif read is not None:
        position = read + 1
    else:
        position = 0  # nothing committed or read: everything is still ahead
    return max(0, highwater - position)


class LagExporter:
    """Sets `omniroute_router_consumer_lag{topic,partition}` for the owned input partitions."""

    def __init__(self, gauge: LagGauge, topics: Collection[str]) -> None:
        self.gauge = gauge
        self.topics = set(topics)
        self._exported: set[tuple[str, str]] = set()

    def update(self, consumer: Any) -> dict[tuple[str, int], int]:
        """Measure every owned input partition of a Faust consumer; returns what was set.

        Series of partitions this worker no longer owns are removed, so the
        sum over workers counts every partition once after a rebalance.
        """
        committed: Mapping[Any, int | None] = getattr(consumer, "_committed_offset", {})
        read: Mapping[Any, int | None] = getattr(consumer, "_read_offset", {})
        measured: dict[tuple[str, int], int] = {}
        owned: set[tuple[str, str]] = set()
        for tp in consumer.assignment():
            if tp.topic not in self.topics:
                continue
            owned.add((tp.topic, str(tp.partition)))
            try:
                highwater = consumer.highwater(tp)
            except Exception:  # the consumer is (re)starting; measure next time
                continue
            lag = partition_lag(highwater, committed.get(tp), read.get(tp))
            if lag is not None:
                measured[(tp.topic, tp.partition)] = lag
        for labels in self._exported - owned:
            self.gauge.remove(*labels)
        for (topic, partition), lag in measured.items():
            self.gauge.labels(topic, str(partition)).set(lag)
        self._exported = (self._exported & owned) | {(t, str(p)) for t, p in measured}
        return measured
