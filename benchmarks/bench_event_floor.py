"""An event floor: what any compiled event-driven engine must spend per event, beside dcsim.

The floor does, per event, the least an engine of this kind does: one counter-based uniform
(dcsim's own generator), one exponential waiting time, one write to the person's state and one
flow count into a per-chunk monthly table; persons in the same fixed chunks on the same number
of threads as dcsim, with as many persons and events as the dcsim run it is set beside. It
draws no rule, keeps no schedule and changes nothing, so it bounds from below what dcsim's
events can cost. Both are timed in the same process, one after the other.

    python benchmarks/bench_event_floor.py --scale 1.0 --write
"""

from __future__ import annotations

import argparse
import datetime as dt
import math
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numba
import numpy as np
from numba import njit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_national import machine  # noqa: E402
from results_md import replace_section  # noqa: E402

from dcsim import model  # noqa: E402
from dcsim.measures import Flow  # noqa: E402
from dcsim.rng import person_key, uniform  # noqa: E402
from dcsim.scenario import load_scenario  # noqa: E402

MEAN_GAP_DAYS = 60.0


@njit(nogil=True, cache=True)
def _floor_chunk(c, n_chunks, n_persons, events_per_person, seed, state, flows):  # noqa: ANN001
    n_months = flows.shape[1]
    for i in range(c, n_persons, n_chunks):
        key = person_key(seed, 1, i)
        t = 0.0
        for k in range(events_per_person):
            t += -MEAN_GAP_DAYS * math.log(1.0 - uniform(key, k))
            state[i] = int(t)
            flows[c, int(t / 30.4375) % n_months] += 1


def floor(n_persons: int, n_events: int, seed: int = 1) -> tuple[float, int]:
    """(seconds, events done) for about n_events spread evenly over n_persons, in dcsim's
    chunks and threads."""
    from dcsim.engine import N_CHUNKS

    per_person = max(1, round(n_events / n_persons))
    state = np.zeros(n_persons, np.int64)
    flows = np.zeros((N_CHUNKS, 240), np.int64)
    _floor_chunk(0, N_CHUNKS, min(n_persons, 10), per_person, seed, state, flows)  # compile
    flows[:] = 0
    t0 = time.perf_counter()
    with ThreadPoolExecutor(max_workers=numba.get_num_threads()) as pool:
        list(pool.map(lambda c: _floor_chunk(c, N_CHUNKS, n_persons, per_person, seed, state,
                                             flows), range(N_CHUNKS)))
    seconds = time.perf_counter() - t0
    assert flows.sum() == per_person * n_persons
    return seconds, per_person * n_persons


def dcsim_run(scale: float) -> tuple[float, int, int]:
    """(simulate seconds, engine events, persons) of the default scenario at `scale`."""
    model.simulate(model.prepare(load_scenario(scale=0.0005, seed=1)))  # compile or load
    prepared = model.prepare(load_scenario(scale=scale))
    run = model.simulate(prepared)
    return run.wall_seconds, int(run.flows[..., Flow.ENGINE_EVENTS].sum()), len(run.population)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--write", action="store_true",
                    help="replace the 'event-floor' section of benchmarks/RESULTS.md")
    args = ap.parse_args()
    load0 = os.getloadavg()
    seconds, events, persons = dcsim_run(args.scale)
    floor_seconds, floor_events = floor(persons, events)
    load1 = os.getloadavg()
    ns, ns_floor = 1e9 * seconds / events, 1e9 * floor_seconds / floor_events
    text = "\n".join([
        f"### Event floor, {dt.date.today()}",
        "",
        f"Machine: {machine()}, {numba.get_num_threads()} threads. Command: `python "
        f"benchmarks/bench_event_floor.py --scale {args.scale:g}` (both in one process, "
        f"cache warm). Load average at start {load0[0]:.2f}, at end {load1[0]:.2f}.",
        "",
        "| engine | persons | events | seconds | ns per event | x floor |",
        "|---|---:|---:|---:|---:|---:|",
        f"| dcsim (simulate, registration included) | {persons:,} | {events:,} | "
        f"{seconds:.2f} | {ns:.0f} | {ns / ns_floor:.1f} |",
        f"| floor (uniform, exponential, state write, flow count) | {persons:,} | "
        f"{floor_events:,} "
        f"| {floor_seconds:.2f} | {ns_floor:.0f} | 1 |",
    ]) + "\n"
    print(text)
    if args.write:
        replace_section("event-floor", text)


if __name__ == "__main__":
    main()
