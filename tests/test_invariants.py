"""Invariants that hold for any valid parameter set, checked on random sets at a tiny scale.

Each example sets every assumption in force (the values without a source) to a value drawn
inside the range its rule file states (or the default range), keeps the three entry shares
summing to 1, runs the national baseline at scale 0.0001 and checks what must hold whatever
the values: persons are conserved, no count is negative or not finite, stocks agree with the
flows that fill them, nobody is eligible or released before the law's abstinence period, and
no record disappears unless a rule deletes it. CI (CI=true) draws 1,000 sets, the default
suite a handful.
"""

from __future__ import annotations

import dataclasses
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dcsim import results
from dcsim.calibration import assignments, coerce, rule_windows
from dcsim.catalogue import PARAM_NAMES, Par
from dcsim.measures import Flow, Stock
from dcsim.model import prepare, simulate, with_values
from dcsim.scenario import load_scenario
from dcsim.state import NEVER

EXAMPLES = int(os.environ.get("DCSIM_EXAMPLES", 1000 if os.environ.get("CI") == "true" else 8))
SCALE = 0.0001
SHARES = ("registration.share.detained_positive", "registration.share.stopped_not_detained",
          "registration.share.voluntary")
ENTRIES = [Flow.ENTRIES_DETAINED_POSITIVE, Flow.ENTRIES_STOPPED_NOT_DETAINED,
           Flow.ENTRIES_VOLUNTARY, Flow.ENTRIES_DATA_ERROR, Flow.ENTRIES_PRE_LAUNCH]
GROUPS = {"official": (Stock.EXISTING_USERS, Stock.ABSTINENT_3Y_RECORDED + 1),
          "control": (Stock.UNDER_CONTROL, Stock.RELEASED + 1),
          "pathway": (Stock.PATHWAY_NONE, Stock.PATHWAY_DETENTION + 1),
          "truth": (Stock.TRUE_USING, Stock.TRUE_NEVER_USED + 1)}


@pytest.fixture(scope="module")
def base():
    """The prepared baseline, and for each assumption window its bounds and the table cells
    it fills: [(window, low, high, [(jurisdiction rows, first month, last month, column)])]."""
    sc = load_scenario(scale=SCALE, seed=11)
    prepared = prepare(sc)
    ids, start = prepared.jurisdictions, sc.start

    def month(d):
        return (d.year - start.year) * 12 + d.month - start.month

    cells = []
    for w in rule_windows(sc):
        if not w.is_assumption or w.name in SHARES:
            continue
        (lo, hi), _ = w.bounds()
        where = [(np.array([ids.index(j) for j in a.jurisdictions]), max(0, month(a.first)),
                  min(prepared.table.shape[1] - 1, month(a.last)), PARAM_NAMES.index(a.name))
                 for a in assignments(w, lo, sc.end)]
        cells.append((w, lo, hi, where))
    return prepared, cells


def _draw_table(data, prepared, cells):
    """The prepared run with every assumption window at a drawn value (entry shares drawn
    together and normalised, so that they sum to 1)."""
    table = prepared.table.copy()
    for w, lo, hi, where in cells:
        x = coerce(w.unit, data.draw(st.floats(lo, hi), label=w.label))
        for js, a0, a1, col in where:
            table[js, a0 : a1 + 1, col] = x
    raw = np.array([data.draw(st.floats(0.01, 1.0), label=n) for n in SHARES])
    for n, v in zip(SHARES, raw / raw.sum(), strict=True):
        table[:, :, PARAM_NAMES.index(n)] = v
    return with_values(dataclasses.replace(prepared, table=table), {})


def violations(run) -> list[str]:
    """Every invariant the run breaks (empty if none)."""
    found: list[str] = []
    flows, stocks, pop = run.flows, run.stocks, run.population
    table = run.prepared.table
    for name, a in (("flows", flows), ("stocks", stocks), ("activity", run.activity)):
        if not np.isfinite(a).all() or (a < 0).any():
            found.append(f"{name}: negative or non-finite entries")
    # the monthly table is these arrays (and hours: activity times non-negative rule values)
    num = results.exit_table(run).select_dtypes("number").to_numpy(np.float64)
    if (num < 0).any() or np.isinf(num).any():
        found.append("exit table: negative or infinite values")
    entries = flows[:, :, ENTRIES].sum(axis=2)  # [j, m]
    per_j = np.bincount(pop.jurisdiction, minlength=flows.shape[0])
    if not (entries.sum(axis=1) == per_j).all():
        found.append("persons: entries counted differ from persons registered")
    sums = {g: stocks[:, :, a:b].sum(axis=2) for g, (a, b) in GROUPS.items()}
    if any(not (s == sums["official"]).all() for s in sums.values()):
        found.append("persons: stock groups that partition the registry disagree")
    cum = np.cumsum(flows, axis=1)
    in_registry = (cum[:, :, ENTRIES].sum(axis=2) - cum[:, :, Flow.DEATHS]
                   - cum[:, :, Flow.ERROR_CORRECTIONS] - cum[:, :, Flow.RECORD_DELETIONS]
                   + cum[:, :, Flow.REENTRIES])
    if not (sums["official"] == in_registry).all():
        found.append("stocks: registry stock differs from entries - exits by the flows")
    held = (cum[:, :, ENTRIES].sum(axis=2) - cum[:, :, Flow.ERROR_CORRECTIONS]
            - cum[:, :, Flow.RECORD_DELETIONS] + cum[:, :, Flow.REENTRIES])
    if not (stocks[:, :, Stock.RECORDS_HELD] == held).all():
        found.append("records: records held differ from entries - corrections - deletions")
    deleting = table[:, :, Par.EXIT__RECORD_DELETED_ON_EXIT] > 0.5
    if (flows[:, :, Flow.RECORD_DELETIONS][~deleting] > 0).any():
        found.append("records: a record deleted where no rule deletes it")
    if (stocks[:, :, Stock.ELIGIBLE_BY_LAW] > cum[:, :, Flow.NEWLY_ELIGIBLE]).any():
        found.append("stocks: more eligible than ever became eligible")
    released = stocks[:, :, Stock.PARTIALLY_RELEASED] + stocks[:, :, Stock.RELEASED]
    if (released > cum[:, :, Flow.RELEASES_FULL] + cum[:, :, Flow.RELEASES_PARTIAL]).any():
        found.append("stocks: more released than releases")
    found += _release_violations(run)
    return found


def _release_violations(run) -> list[str]:
    """Nobody eligible or released sooner after entry than the least abstinence any rule
    in force required, nor released where no rule ever allows release."""
    pop, table = run.population, run.prepared.table
    if (table[:, :, Par.EXIT__JUDGED_ON_TRUE_ABSTINENCE] > 0.5).any():
        return []  # the oracle counts abstinence begun before entry
    need = table[:, :, Par.EXIT__ABSTINENCE_DAYS_REQUIRED].min(axis=1)[pop.jurisdiction]
    found = []
    for field in ("eligible_day", "first_release_day"):
        day = pop.out(field)
        has = day != NEVER
        last = pop.entry_day - pop.history_days  # a pre-launch record's last detection
        if (day[has] - last[has] < need[has]).any():
            found.append(f"exit: {field} sooner after entry than the law's abstinence period")
    never = (table[:, :, Par.EXIT__RELEASE_ALLOWED] < 0.5).all(axis=1)[pop.jurisdiction]
    if (pop.out("first_release_day")[never] != NEVER).any():
        found.append("exit: a release where no rule allows release")
    return found


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(data=st.data())
def test_invariants_hold_for_any_valid_parameter_set(base, data):
    prepared, cells = base
    run = simulate(_draw_table(data, prepared, cells), rounds=1)
    assert violations(run) == []


def test_the_checks_can_fail(base):
    """A run whose records are tampered with is caught: the invariants are not vacuous."""
    prepared, _ = base
    run = simulate(prepared)
    assert violations(run) == []
    num = results.monthly_table(run).select_dtypes("number").to_numpy(np.float64)
    assert np.isfinite(num).all() and (num >= 0).all()
    run.stocks[0, -1, Stock.RECORDS_HELD] -= 1
    run.flows[1, 3, Flow.DEATHS] = -1
    found = violations(run)
    assert any(v.startswith("records") for v in found)
    assert any("negative" in v for v in found)
