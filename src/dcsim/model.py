"""A run: resolve the rules, register the population, walk every life course, sum by month."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from . import alerts, apps, engine
from .calendar import month_of_day_table, month_starts
from .catalogue import PARAM_NAMES, Par
from .measures import FIXED_POINT, N_FLOWS, N_PERIODIC, N_RATES, N_STOCKS
from .population import Population
from .registration import register
from .rules import resolve_table, rules_hash
from .scenario import Scenario
from .state import NEVER

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
    max_rates: np.ndarray  # [jurisdiction, engine.N_BOUNDS]: bounds of thinned processes
    rules_hash: str
    jurisdictions: list[str] = field(default_factory=list)

    @property
    def n_days(self) -> int:
        return self.scenario.n_days


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
    out = np.zeros((table.shape[0], engine.N_BOUNDS))
    insp0 = int(Par.MANAGEMENT__INSPECTION_RATE_PER_YEAR__EXTREME)
    for j in range(table.shape[0]):
        P = table[j]
        out[j, engine._MAX_ID] = alerts.max_rate(P)
        out[j, engine._MAX_INSPECT0 : engine._MAX_INSPECT0 + 4] = P[:, insp0 : insp0 + 4].max(0)
        out[j, engine._MAX_ENCOUNTER] = P[:, Par.MANAGEMENT__ENCOUNTER_RATE_PER_YEAR].max()
        enrol = P[:, apps._ENROL0 : apps._ENROL0 + apps.N_APPS]
        rate = P[:, apps._ALERT0 : apps._ALERT0 + apps.N_APPS]
        out[j, engine._MAX_APP] = float(np.max(np.where(enrol > 0, rate, 0.0)))
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
    shares = np.array([j.share for j in sc.jurisdictions])
    pop = register(prepared.table, shares, sc.scale, sc.start, sc.end, prepared.month_of_day,
                   sc.seed)
    n, n_j, n_m, n_days = len(pop), len(shares), len(prepared.months), prepared.n_days
    # the kernels do not check bounds (for speed): check what they will index with, once
    if n and (pop.entry_day.min() < 0 or pop.entry_day.max() >= n_days
              or pop.jurisdiction.min() < 0 or pop.jurisdiction.max() >= n_j):
        raise ValueError("registration produced entry days or jurisdictions out of range")
    c = engine.N_CHUNKS
    flows = np.zeros((c, n_j, n_m, N_FLOWS), np.int64)
    stock_delta = np.zeros((c, n_j, n_m, N_STOCKS), np.int64)
    rates = np.zeros((c, n_j, n_days + 1, N_RATES), np.int64)
    per_chunk = -(-n // c)  # persons per chunk, rounded up
    if rounds is None:  # rounds only serve the progress bar; each one is a thread barrier
        rounds = 20 if progress is not None else 1
    rounds = max(1, min(rounds, per_chunk))
    work = engine.scratch(c)
    order = np.argsort(pop.jurisdiction, kind="stable")  # by locality, then by entry
    for r in range(rounds):
        q_lo, q_hi = per_chunk * r // rounds, per_chunk * (r + 1) // rounds
        engine.run_chunks(
            sc.seed, order, q_lo, q_hi, pop.entry_day, pop.jurisdiction, pop.path, pop.dependent,
            pop.birth_day, pop.using_at_entry, pop.lost, pop.grid_rank, pop.app_rank,
            prepared.table, prepared.month_of_day, n_days, prepared.rule_days,
            prepared.max_rates, flows, stock_delta, rates, pop.intrusions, pop.outcome, *work,
        )
        if progress is not None:
            progress(min(n, q_hi * c), n)
    stocks = np.cumsum(stock_delta.sum(axis=0), axis=1)
    activity = _monthly_activity(rates.sum(axis=0), prepared.month_of_day, n_m)
    flows = flows.sum(axis=0)
    alerts.unreached_alerts(sc.seed, prepared.table, activity, flows)
    return Run(prepared, pop, flows, stocks, activity, time.perf_counter() - t0)


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
    from .measures import N_INTRUSIONS

    pop, p = run.population, run.prepared
    log, _, _ = engine.trace_one(
        i, run.scenario.seed, pop.entry_day[i], pop.jurisdiction[i], pop.path[i],
        pop.dependent[i], pop.birth_day[i], pop.using_at_entry[i], pop.lost[i],
        pop.grid_rank[i], pop.app_rank[i], p.table, p.month_of_day, p.n_days, p.rule_days,
        p.max_rates, N_FLOWS, N_STOCKS, N_RATES, N_INTRUSIONS, capacity,
    )
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
