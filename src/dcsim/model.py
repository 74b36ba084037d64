"""A run: resolve the rules, register the population, walk every life course, sum by month."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numba
import numpy as np
import pandas as pd

from . import alerts, apps, engine, management
from .calendar import month_of_day_table, month_starts
from .catalogue import PARAM_NAMES, Par
from .measures import FIXED_POINT, N_PERIODIC, N_RATES
from .population import Population
from .registration import register
from .rules import resolve_table, rules_hash
from .scenario import Scenario
from .state import NEVER, Bound

# parameters whose change at a date must reach persons between their own events
_REGISTRATION_COLUMNS = [i for i, n in enumerate(PARAM_NAMES) if n.startswith("registration.")]


@dataclass
class Prepared:
    """Everything a run needs besides the persons: rules resolved to arrays."""

    scenario: Scenario
    table: np.ndarray  # [jurisdiction, month, Par]
    months: list[dt.date]
    month_of_day: np.ndarray
    rule_days: np.ndarray  # [jurisdiction, k]: days some rule changes, padded with NEVER
    max_rates: np.ndarray  # [jurisdiction, state.Bound]: bounds of thinned processes
    rules_hash: str
    jurisdictions: list[str] = field(default_factory=list)

    @property
    def n_days(self) -> int:
        return self.scenario.n_days

    def rules(self) -> engine.Rules:
        """The bundle the engine takes."""
        return engine.Rules(self.table, self.month_of_day, self.rule_days, self.max_rates,
                            self.n_days)


def prepare(scenario: Scenario, stacks: list | None = None) -> Prepared:
    """Resolve the scenario's rules into arrays. `stacks` (from `scenario.stacks()`) may be
    passed to reuse rule files already parsed, e.g. across many runs of one scenario."""
    stacks = scenario.stacks() if stacks is None else stacks
    table = resolve_table(stacks, scenario.start, scenario.end)
    months = month_starts(scenario.start, scenario.end)
    mod = month_of_day_table(scenario.start, scenario.end)
    return Prepared(
        scenario=scenario, table=table, months=months, month_of_day=mod,
        rule_days=_rule_change_days(table, months, scenario.start),
        max_rates=_max_rates(table),
        rules_hash=rules_hash([f for st in stacks for f in st.files]),
        jurisdictions=[j.id for j in scenario.jurisdictions],
    )


def _rule_change_days(table: np.ndarray, months: list[dt.date], start: dt.date) -> np.ndarray:
    cols = np.ones(table.shape[2], bool)
    cols[_REGISTRATION_COLUMNS] = False
    changed = np.any(table[:, 1:, cols] != table[:, :-1, cols], axis=2)  # [j, m-1]
    per_j = [[(months[m + 1] - start).days for m in np.flatnonzero(changed[j])]
             for j in range(table.shape[0])]
    width = max(len(x) for x in per_j) + 1
    out = np.full((table.shape[0], width), NEVER, dtype=np.int64)
    for j, days in enumerate(per_j):
        out[j, : len(days)] = days
    return out


def _max_rates(table: np.ndarray) -> np.ndarray:
    """Each locality's thinning bounds, from the procedures that own the processes."""
    out = np.zeros((table.shape[0], int(Bound.N)))
    for j in range(table.shape[0]):
        P = table[j]
        out[j, Bound.ALERT_CONTACT] = alerts.max_rate(P)
        inspect, encounter = management.max_rates(P)
        out[j, Bound.INSPECT_EXTREME : Bound.INSPECT_EXTREME + 4] = inspect
        out[j, Bound.ENCOUNTER] = encounter
        out[j, Bound.APP_ALERT] = apps.max_alert_rate(P)
    return out


@dataclass
class Run:
    """The raw result of a run: the population with its outcomes and the monthly sums."""

    prepared: Prepared
    population: Population
    flows: np.ndarray  # int64 [j, month, Flow]
    stocks: np.ndarray  # int64 [j, month, Stock], at the end of each month
    activity: np.ndarray  # float64 [j, month, Rate]: schedules in events, the rest person-days
    wall_seconds: float

    @property
    def scenario(self) -> Scenario:
        return self.prepared.scenario


def simulate(prepared: Prepared, progress: Callable[[int, int], None] | None = None,
             rounds: int | None = None) -> Run:
    """Run the scenario. `progress(done, total)` is called as persons are completed."""
    t0 = time.perf_counter()
    sc = prepared.scenario
    pop = _register(prepared)
    n, n_j, n_days = len(pop), len(sc.jurisdictions), prepared.n_days
    # the kernels do not check bounds (for speed): check what they will index with, once
    if n and (pop.entry_day.min() < 0 or pop.entry_day.max() >= n_days
              or pop.jurisdiction.min() < 0 or pop.jurisdiction.max() >= n_j):
        raise ValueError("registration produced entry days or jurisdictions out of range")
    c = engine.N_CHUNKS
    per_chunk = -(-n // c)  # persons per chunk, rounded up
    if rounds is None:  # rounds only serve the progress bar
        rounds = 20 if progress is not None else 1
    rounds = max(1, min(rounds, per_chunk))
    args = _engine_args(prepared, pop)
    # each thread takes a fixed block of chunks, as a static parallel loop would: chunks run
    # side by side are then far apart, so threads never write the same cache lines (persons
    # of neighbouring chunks are neighbours in memory)
    n_threads = max(1, min(numba.get_num_threads(), c))
    blocks = [range(c * w // n_threads, c * (w + 1) // n_threads) for w in range(n_threads)]
    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        for r in range(rounds):
            span = (per_chunk * r // rounds, per_chunk * (r + 1) // rounds)
            list(pool.map(lambda block, span=span: _run_block(block, span, *args), blocks))
            if progress is not None:
                progress(min(n, span[1] * c), n)
    return _finish(prepared, pop, args[4], t0)


def _register(prepared: Prepared) -> Population:
    sc = prepared.scenario
    shares = np.array([j.share for j in sc.jurisdictions])
    return register(prepared.table, shares, sc.scale, sc.start, sc.end, prepared.month_of_day,
                    sc.seed)


def _engine_args(prepared: Prepared, pop: Population) -> tuple:
    """What engine.run_chunk takes after the chunk and span: (seed, order, persons, rules,
    tallies, work), zero accumulators."""
    n_j, n_m = len(prepared.jurisdictions), len(prepared.months)
    order = np.argsort(pop.jurisdiction, kind="stable")  # by locality, then by entry
    return (prepared.scenario.seed, order, pop.arrays(), prepared.rules(),
            engine.tallies(engine.N_CHUNKS, n_j, n_m, prepared.n_days),
            engine.scratch(engine.N_CHUNKS))


def _finish(prepared: Prepared, pop: Population, tallies: engine.Tallies, t0: float) -> Run:
    """The run from the engine's accumulators: monthly sums, and the alerts that reach nobody."""
    stocks = np.cumsum(tallies.stock_delta.sum(axis=0), axis=1)
    activity = _monthly_activity(tallies.rates.sum(axis=0), prepared.month_of_day,
                                 len(prepared.months))
    flows = tallies.flows.sum(axis=0)
    alerts.unreached_alerts(prepared.scenario.seed, prepared.table, activity, flows)
    return Run(prepared, pop, flows, stocks, activity, time.perf_counter() - t0)


_COMPILE_SCALE = 2e-4  # the default scenario at this scale runs every kernel of a run


class Compiled(NamedTuple):
    seconds: float
    processes: int  # 2 when a helper process shared the work


def compile_kernels() -> Compiled:
    """Compile (or load from the cache) every kernel a run and its tables use; returns the
    seconds it took. Lets a caller show compiling apart from simulating.

    A helper process may share the work (jit.Helper): this process compiles the procedures
    the engine calls from the first (engine.callees), the helper what else a run needs and
    then the procedures from the last, each taking one only if the other has not; then this
    process compiles the engine (engine.run_chunk on no one) from them and runs the default
    scenario at a tiny scale, which compiles whatever is left."""
    import tempfile

    from . import figures, jit, results
    from .scenario import load_scenario

    t0 = time.perf_counter()
    with jit.Helper("model:_compile_helper") as helper:
        prepared = prepare(load_scenario(scale=_COMPILE_SCALE, seed=1))
        seed, *bundles = _engine_args(prepared, Population.allocate(0))
        callees = engine.callees(*bundles[1:])
        for i, (kernel, types) in enumerate(callees):
            if helper.claim(str(i)):
                kernel.compile(types)
        helper.wait_for([str(i) for i in range(len(callees))])
        engine.run_chunk(0, seed, bundles[0], (0, 0), *bundles[1:])  # compiles, runs no one
        run = simulate(prepared)
        with tempfile.TemporaryDirectory() as tmp:
            results.write(run, Path(tmp), comparison=figures.comparison(run))
    return Compiled(time.perf_counter() - t0, 1 if helper.proc is None else 2)


def _compile_helper(claim: Callable[[str], bool], done: Callable[[str], None]) -> None:
    """The helper process of compile_kernels: first what a run needs besides the engine
    (thinning bounds, registration, the unreached alerts and the tables' kernels, on a run
    whose engine did nothing), which the main process needs last, then the procedures the
    engine calls, from the last, until it comes to one the main process has taken."""
    from . import results
    from .population import Outcome
    from .scenario import load_scenario

    prepared = prepare(load_scenario(scale=_COMPILE_SCALE, seed=1))
    pop = _register(prepared)
    args = _engine_args(prepared, pop)
    pop.outcome[:, Outcome.EXPOSURE_DAYS] = results.MIN_EXPOSURE_DAYS  # rates to summarise
    results.intrusion_stats(_finish(prepared, pop, args[4], 0.0))
    for i, (kernel, types) in reversed(list(enumerate(engine.callees(*args[2:])))):
        if not claim(str(i)):
            return
        kernel.compile(types)
        done(str(i))


def _run_block(block: range, span: tuple[int, int], seed: int, order: np.ndarray,
               *bundles) -> None:
    """A block of chunks on one Python thread: the kernel releases the GIL, so blocks run in
    parallel; each chunk writes only its own accumulators, so the thread count cannot change
    the sums."""
    for c in block:
        engine.run_chunk(c, seed, order, span, *bundles)


def _monthly_activity(rates: np.ndarray, month_of_day: np.ndarray, n_m: int) -> np.ndarray:
    level = np.cumsum(rates[:, :-1, :], axis=1)  # [j, day, Rate]: daily level
    out = np.zeros((rates.shape[0], n_m, N_RATES))
    for r in range(N_RATES):
        for j in range(rates.shape[0]):
            out[j, :, r] = np.bincount(month_of_day, weights=level[j, :, r], minlength=n_m)
    out[:, :, :N_PERIODIC] /= FIXED_POINT
    return out


def trace_person(run: Run, i: int, capacity: int = 100_000) -> pd.DataFrame:
    """The event log of modelled person i of a run: why they are where they are.

    Replays the person with the run's rules and seed (the draws are keyed by person, so the
    replay is the same life course) and returns one row per event with the state after it.
    """
    p = run.prepared
    log, _, _ = engine.trace_one(i, run.scenario.seed, run.population.arrays(), p.rules(),
                           len(p.jurisdictions), len(p.months), capacity)
    df = pd.DataFrame(log, columns=list(engine.TRACE_FIELDS))
    df["event"] = [("entry" if e < 0 else engine.EVENT_NAMES[e]) for e in df["event"]]
    return df


def with_values(prepared: Prepared, values: dict[str, float],
                windows: dict[str, tuple[dt.date, dt.date]] | None = None,
                jurisdictions: list[str] | None = None) -> Prepared:
    """A copy of `prepared` with some rule values replaced, for calibration and sensitivity.

    values: parameter name -> value; windows: optional name -> (first, last) day to replace
    (default: the whole period); jurisdictions: ids to change (default: all). The rule files
    are untouched; write an overlay file to make a change permanent and cited.
    """
    from .catalogue import CATALOGUE

    table = prepared.table.copy()
    ids = prepared.jurisdictions
    js = [ids.index(j) for j in jurisdictions] if jurisdictions else list(range(len(ids)))
    start = prepared.scenario.start
    for name, value in values.items():
        if name not in CATALOGUE:
            raise KeyError(f"unknown parameter {name!r}")
        col = int(Par[name.upper().replace(".", "__")])
        lo, hi = 0, len(prepared.months) - 1
        if windows and name in windows:
            first, last = windows[name]
            lo = max(lo, (first.year - start.year) * 12 + first.month - start.month)
            hi = min(hi, (last.year - start.year) * 12 + last.month - start.month)
        table[np.ix_(js, range(lo, hi + 1), [col])] = value
    return Prepared(
        scenario=prepared.scenario, table=table, months=prepared.months,
        month_of_day=prepared.month_of_day,
        rule_days=_rule_change_days(table, prepared.months, start),
        max_rates=_max_rates(table),
        rules_hash=prepared.rules_hash + "+values", jurisdictions=ids,
    )
