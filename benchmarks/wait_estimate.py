"""`make bench-wait`: how far the estimated wait ingest tells customers is from the real one.

The simulator drives the router's own core (`WorkspaceRouter`) with simulated
customers and agents. Here, as the router does for its queue snapshots, each
queue's service rate while backlogged is measured over a sliding window
(`omniroute.waits.ServiceRate`, the window of ROUTER_RATE_WINDOW_S; the router
tells it the depth every tick, here after every arrival, answer and abandon),
and every
customer who has to wait is told, on arrival, the estimate ingest would give
them: their position in the router's order over the rate
(`omniroute.waits.estimated_wait`). When they are answered, the estimate is
compared with the wait they really had. Customers who leave before an answer
are not compared (their real wait is not known), and neither are those told
nothing because their queue had no answer in the window yet.

For each model it prints how many were told an estimate, the mean real wait,
the bias (mean of estimate minus real), the mean absolute error, and the
median and 90th percentile of the absolute error, in seconds and as a share
of the real wait. One run of each on one process (seeded: the same figures
every time).
"""

from __future__ import annotations

import argparse
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from omniroute.waits import ServiceRate, estimated_wait
from omniroute_router.config import WorkspaceConfig
from omniroute_router.config import load as load_routing
from omniroute_router.model import InquiryState
from omniroute_simulator import models
from omniroute_simulator.runner import workspace_config
from omniroute_simulator.scenario import Scenario
from omniroute_simulator.scenario import load as load_scenario
from omniroute_simulator.simulation import Contact, SimAgent, Simulation

EXAMPLES = Path(__file__).resolve().parent.parent / "simulator" / "examples"


@dataclass
class Errors:
    """Estimates told and the waits that followed."""

    told: list[tuple[float, float]] = field(default_factory=list)  # (estimate, real)
    unknown: int = 0  # waited, but no rate was known yet
    left: int = 0  # told an estimate, then abandoned


class EstimatingSimulation(Simulation):
    """A simulation that tells each waiting newcomer the estimate, then checks it."""

    def __init__(
        self, scenario: Scenario, config: WorkspaceConfig, seed: int, window_s: float
    ) -> None:
        super().__init__(scenario, config, seed)
        self.rates = {q.name: ServiceRate(window_s, 0.0) for q in config.queues}
        self.told: dict[str, float] = {}
        self.errors = Errors()

    def _arrive(self, contact: Contact, stream_index: int) -> None:
        known = len(self.records)
        super()._arrive(contact, stream_index)
        self._observe()
        if len(self.records) == known:
            return  # a duplicate, not admitted
        inquiry_id = next(reversed(self.records))  # the newest record: this arrival's
        inquiry = self.router.inquiries.get(inquiry_id)
        if inquiry is None or inquiry.state is not InquiryState.WAITING:
            return  # offered at once: told nothing
        if not self.records[inquiry_id].counted:
            return
        position = 0
        for waiting in self.router.waiting_in_order(self.now):
            if waiting.queue == inquiry.queue:
                position += 1
            if waiting.id == inquiry_id:
                break
        estimate = estimated_wait(position, self.rates[inquiry.queue].rate(self.now))
        if estimate is None:
            self.errors.unknown += 1
        else:
            self.told[inquiry_id] = estimate

    def _observe(self) -> None:
        """What the router's tick tells the rates: how many wait in each queue."""
        for queue, rate in self.rates.items():
            rate.observe(self.now, self.waiting[queue])

    def _accept(self, inquiry_id: str, agent: SimAgent) -> None:
        record = self.records.get(inquiry_id)
        first = record is not None and record.wait < 0
        super()._accept(inquiry_id, agent)
        if record is not None and first and record.wait >= 0:
            self.rates[record.queue].record(self.now)
            estimate = self.told.pop(inquiry_id, None)
            if estimate is not None:
                self.errors.told.append((estimate, record.wait))
        self._observe()

    def _abandon(self, inquiry_id: str) -> None:
        record = self.records.get(inquiry_id)
        super()._abandon(inquiry_id)
        if record is not None and record.abandoned_after >= 0 and inquiry_id in self.told:
            del self.told[inquiry_id]
            self.errors.left += 1
        self._observe()


def models_to_run(hours: float) -> list[tuple[str, Scenario, WorkspaceConfig]]:
    """The M/M/n and M/M/n+M models, and the example contact centre."""
    runs: list[tuple[str, Scenario, WorkspaceConfig]] = []
    handle = 180.0
    for erlangs, agents in ((10.0, 11), (50.0, 52), (200.0, 204)):
        scenario = models.mmn(erlangs / handle * 3600, handle, agents, hours * 3600)
        runs.append((f"M/M/{agents}, {erlangs:g} erlangs", scenario, models.single_queue_config()))
    scenario = models.mmn(50 / handle * 3600, handle, 50, hours * 3600, patience_s=120.0)
    runs.append(("M/M/50+M, 50 erlangs, patience 120 s", scenario, models.single_queue_config()))
    centre = load_scenario(EXAMPLES / "contact-centre.yaml")
    routing = load_routing(EXAMPLES / "contact-centre-routing.yaml")
    runs.append(("contact centre example (10 h, 5 queues)", centre, workspace_config(routing, centre)))  # fmt: skip
    return runs


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=8.0, help="simulated hours per M/M/n model")
    parser.add_argument("--window", type=float, default=900.0, help="rate window, seconds")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"estimate = position / service rate over the last {args.window:g} s\n")
    print(
        f"{'model':<42}{'told':>7}{'unknown':>8}{'left':>6}{'real s':>8}{'bias s':>8}"
        f"{'MAE s':>7}{'p50 |e|':>8}{'p90 |e|':>8}{'MAE/real':>9}"
    )
    for name, scenario, config in models_to_run(args.hours):
        simulation = EstimatingSimulation(scenario, config, args.seed, args.window)
        simulation.run()
        errors = simulation.errors
        if not errors.told:
            print(f"{name:<42}{0:>7}{errors.unknown:>8}{errors.left:>6}")
            continue
        real = [r for _, r in errors.told]
        diff = [e - r for e, r in errors.told]
        absolute = [abs(d) for d in diff]
        mean_real = statistics.fmean(real)
        print(
            f"{name:<42}{len(errors.told):>7}{errors.unknown:>8}{errors.left:>6}"
            f"{mean_real:>8.1f}{statistics.fmean(diff):>8.1f}{statistics.fmean(absolute):>7.1f}"
            f"{percentile(absolute, 0.5):>8.1f}{percentile(absolute, 0.9):>8.1f}"
            f"{statistics.fmean(absolute) / mean_real:>9.0%}"
        )


if __name__ == "__main__":
    main()
