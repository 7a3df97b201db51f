"""`make bench-sim`: the simulator and Ciw on the same M/M/c model, side by side.

Both simulate the same arrivals rate, exponential handle time and head count
for the same simulated period, one run each, on this one process; the figure
is simulated contacts (customers through the system) per second of CPU time
(process time: fair on a shared machine; both run single-threaded).
The simulator routes every contact through the router's production core
(`WorkspaceRouter`: admit, plan, offer, accept, resolve, agent updates), which
Ciw does not have to do; P(wait) from both and the exact Erlang C value show
that they simulate the same thing.
"""

from __future__ import annotations

import argparse
import time

import ciw  # type: ignore[import-untyped]

from omniroute_simulator import erlang, models
from omniroute_simulator.simulation import Simulation

HANDLE_S = 180.0
MODELS = [(10.0, 14), (50.0, 54), (200.0, 215)]  # erlangs, agents


def ours(load: float, agents: int, hours: float, seed: int) -> tuple[float, int, float]:
    scenario = models.mmn(load / HANDLE_S * 3600, HANDLE_S, agents, hours * 3600, warmup_s=0)
    started = time.process_time()
    outcome = Simulation(scenario, models.single_queue_config(), seed).run()
    seconds = time.process_time() - started
    records = outcome.records
    waited = sum(1 for r in records if r.offered_at > r.arrived) / len(records)
    return seconds, len(records), waited


def theirs(load: float, agents: int, hours: float, seed: int) -> tuple[float, int, float]:
    network = ciw.create_network(
        arrival_distributions=[ciw.dists.Exponential(rate=load / HANDLE_S)],
        service_distributions=[ciw.dists.Exponential(rate=1 / HANDLE_S)],
        number_of_servers=[agents],
    )
    ciw.seed(seed)
    sim = ciw.Simulation(network)
    started = time.process_time()
    sim.simulate_until_max_time(hours * 3600)
    seconds = time.process_time() - started
    records = sim.get_all_records()
    waited = sum(1 for r in records if r.waiting_time > 0) / len(records)
    return seconds, len(records), waited


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000, help="per model, about")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(f"M/M/c, mean handle {HANDLE_S:g} s, about {args.contacts} contacts per run\n")
    print(
        f"{'erlangs':>8}{'agents':>8}{'simulator/s':>14}{'Ciw/s':>10}{'ratio':>8}"
        f"{'P(wait) sim':>13}{'Ciw':>8}{'exact':>8}"
    )
    for load, agents in MODELS:
        hours = args.contacts / (load / HANDLE_S * 3600)
        t1, n1, w1 = ours(load, agents, hours, args.seed)
        t2, n2, w2 = theirs(load, agents, hours, args.seed)
        exact = erlang.erlang_c(load / HANDLE_S, HANDLE_S, agents, 20).p_wait
        r1, r2 = n1 / t1, n2 / t2
        print(
            f"{load:>8g}{agents:>8}{r1:>14,.0f}{r2:>10,.0f}{r1 / r2:>8.2f}"
            f"{w1:>13.4f}{w2:>8.4f}{exact:>8.4f}"
        )
    print("\nratio = simulator / Ciw (above 1: the simulator is faster)")


if __name__ == "__main__":
    main()
