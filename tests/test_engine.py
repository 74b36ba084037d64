"""The engine's invariants: persons are conserved, stock groups partition the registry, counts
are never negative, and a run is a pure function of its scenario (seed included) whatever the
number of threads or rounds; the trace of a person replays the same life course.
"""

from __future__ import annotations

import datetime as dt

import numba
import numpy as np
import pytest

from conftest import entries, write_scenario
from dcsim.catalogue import Par
from dcsim.measures import Flow, Rate, Stock
from dcsim.model import prepare, simulate, trace_person
from dcsim.scenario import load_scenario
from dcsim.state import NEVER, Release

GROUPS = {
    "official": [Stock.EXISTING_USERS, Stock.ABSTINENT_3Y_RECORDED],
    "control": [Stock.UNDER_CONTROL, Stock.PARTIALLY_RELEASED, Stock.RELEASED],
    "pathway": [Stock.PATHWAY_NONE, Stock.PATHWAY_COMMUNITY_DETOX, Stock.PATHWAY_COMMUNITY_REHAB,
                Stock.PATHWAY_ISOLATION, Stock.PATHWAY_VOLUNTARY, Stock.PATHWAY_DETENTION],
    "truth": [Stock.TRUE_USING, Stock.TRUE_ABSTINENT_UNDER_3Y, Stock.TRUE_ABSTINENT_3Y,
              Stock.TRUE_NEVER_USED],
}
SUBSETS = [  # counted only for some of the registry
    [Stock.TRAPPED_NO_RELEASE_AREA, Stock.TRAPPED_INSUFFICIENT_TESTS,
     Stock.TRAPPED_AWAITING_UPDATE, Stock.TRAPPED_PARTIAL_RELEASE],
    [Stock.ELIGIBLE_BY_LAW], [Stock.WHEREABOUTS_UNKNOWN],
]


def _registry(run):
    return run.stocks[:, :, GROUPS["official"]].sum(axis=2)


def _assert_same_run(a, b):
    np.testing.assert_array_equal(a.flows, b.flows)
    np.testing.assert_array_equal(a.stocks, b.stocks)
    np.testing.assert_array_equal(a.activity, b.activity)
    np.testing.assert_array_equal(a.population.outcome, b.population.outcome)
    np.testing.assert_array_equal(a.population.intrusions, b.population.intrusions)


# ------------------------------------------------------------------ conservation


def test_persons_conserved_by_jurisdiction(baseline):
    """Entries = alive in the registry + deaths + corrections, every month, everywhere."""
    fl = baseline.flows
    cum = np.cumsum(entries(baseline) - fl[:, :, Flow.DEATHS] - fl[:, :, Flow.ERROR_CORRECTIONS],
                    axis=1)
    np.testing.assert_array_equal(_registry(baseline), cum)
    assert _registry(baseline)[:, -1].min() > 0


def test_stock_groups_partition_the_registry(baseline):
    reg = _registry(baseline)
    for name, cols in GROUPS.items():
        np.testing.assert_array_equal(baseline.stocks[:, :, cols].sum(axis=2), reg, err_msg=name)
    for cols in SUBSETS:
        assert np.all(baseline.stocks[:, :, cols].sum(axis=2) <= reg)
    assert np.all(baseline.stocks[:, :, Stock.RECORDS_HELD] >= reg)


def test_counts_never_negative(baseline):
    assert baseline.flows.min() >= 0
    assert baseline.stocks.min() >= 0
    assert baseline.activity.min() >= 0
    assert baseline.population.outcome[:, 0].min() >= 0  # exposure days


def test_conservation_holds_under_a_reform(run_with):
    """Deletion on exit: entries = registry + deaths + corrections + deleted (re-entries bring
    deleted persons back; deleted persons may die outside the registry, so the balance is
    checked as an inequality with exact bounds)."""
    run = run_with({"exit.record_deleted_on_exit": [("2016-01-01", None, 1)]})
    fl = run.flows
    out_of_registry = np.cumsum(fl[:, :, Flow.RECORD_DELETIONS] - fl[:, :, Flow.REENTRIES], axis=1)
    rest = np.cumsum(entries(run) - fl[:, :, Flow.DEATHS] - fl[:, :, Flow.ERROR_CORRECTIONS],
                     axis=1)
    reg = _registry(run)
    assert np.all(reg <= rest - out_of_registry + np.cumsum(fl[:, :, Flow.DEATHS], axis=1))
    assert np.all(reg >= rest - out_of_registry)
    for name, cols in GROUPS.items():
        np.testing.assert_array_equal(run.stocks[:, :, cols].sum(axis=2), reg, err_msg=name)


# ------------------------------------------------------------------ determinism


def test_same_seed_same_run(baseline, baseline_prepared):
    _assert_same_run(baseline, simulate(baseline_prepared))
    # and from a freshly loaded scenario
    _assert_same_run(baseline, simulate(prepare(load_scenario(scale=0.002, seed=1))))


def test_other_seed_other_run(baseline):
    other = simulate(prepare(load_scenario(scale=0.002, seed=2)))
    # the same number of persons enters (the inflow rule), but their lives differ
    np.testing.assert_array_equal(entries(other).sum(axis=0), entries(baseline).sum(axis=0))
    assert not np.array_equal(other.flows, baseline.flows)
    assert not np.array_equal(other.population.path, baseline.population.path)


@pytest.mark.skipif(numba.config.NUMBA_NUM_THREADS < 2, reason="needs two threads")
def test_thread_count_does_not_matter(baseline, baseline_prepared):
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = simulate(baseline_prepared)
        numba.set_num_threads(2)
        two = simulate(baseline_prepared)
    finally:
        numba.set_num_threads(before)
    _assert_same_run(one, baseline)
    _assert_same_run(two, baseline)


@pytest.mark.parametrize("rounds", [1, 3, 7])
def test_rounds_do_not_matter(baseline, baseline_prepared, rounds):
    _assert_same_run(simulate(baseline_prepared, rounds=rounds), baseline)


def test_progress_reports_every_person(baseline_prepared):
    calls = []
    simulate(baseline_prepared, progress=lambda done, total: calls.append((done, total)),
             rounds=4)
    n = calls[-1][1]
    assert calls[-1] == (n, n)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)


# ------------------------------------------------------------------ traces


def test_trace_replays_the_life_course(baseline, trace_cache):
    """A person's trace ends in the state the run recorded for them."""
    pop = baseline.population
    n_days = baseline.prepared.n_days
    for i in np.arange(0, len(pop), 61)[:150]:
        df = trace_cache(i)
        assert df.event.iloc[0] == "entry" and df.day.iloc[0] == pop.entry_day[i]
        assert np.all(np.diff(df.day.to_numpy()) >= 0) and df.day.max() < n_days
        last = df.iloc[-1]
        assert last.eligible == pop.out("eligible_day")[i]
        first = df.day[df.release != Release.CONTROL]
        assert (first.min() if len(first) else NEVER) == pop.out("first_release_day")[i]
        if pop.out("control_code")[i] >= 0:  # still in the registry at the end
            assert last.in_registry == 1
            assert last.using == pop.out("using_at_end")[i]
            assert Stock.UNDER_CONTROL + last.release == pop.out("control_code")[i]


def test_trace_is_a_pure_replay(baseline):
    a = trace_person(baseline, 123)
    b = trace_person(baseline, 123)
    assert a.equals(b)


def test_trace_shows_death_and_correction(baseline, trace_cache):
    pop = baseline.population
    gone = np.flatnonzero(pop.out("control_code") < 0)[:30]
    assert len(gone) > 10
    for i in gone:
        assert trace_cache(i).event.iloc[-1] in ("death", "correction"), i


def test_mortality_per_person_year(baseline, baseline_prepared):
    """Deaths are exponential from entry at mortality_per_year, censored by correction and the
    end of the period: deaths ~ Poisson(rate x person-years in the registry), tolerance
    4 sqrt(expected)."""
    rate = baseline_prepared.table[0, 0, Par.DRUG_USE__MORTALITY_PER_YEAR]
    years = baseline.activity[:, :, Rate.REGISTRY_DAYS].sum() / 365.25
    deaths = baseline.flows[:, :, Flow.DEATHS].sum()
    expected = rate * years
    assert abs(deaths - expected) <= 4 * np.sqrt(expected), (deaths, expected)


@pytest.mark.parametrize(("scale", "n"), [(1e-4, 6), (1e-5, 1), (1e-6, 0)])
def test_fewer_persons_than_chunks(tmp_path, scale, n):
    """Six, one or no persons (223,000 a year x scale over a quarter, rounded): each is
    simulated once, and every entrant has registry days."""
    path = write_scenario(tmp_path, jurisdictions=[{"id": "a", "share": 1.0}],
                          start=dt.date(2019, 1, 1), end=dt.date(2019, 3, 31), scale=scale)
    run = simulate(prepare(load_scenario(path)))
    assert len(run.population) == entries(run).sum() == n
    assert np.all(run.population.out("exposure_days") > 0)
    assert run.activity[:, :, Rate.REGISTRY_DAYS].sum() == run.population.out(
        "exposure_days").sum()


@pytest.mark.slow
def test_invariants_at_a_larger_scale():
    """Scale 0.05 (about 275,000 persons): conservation, partitions and non-negative counts,
    and the same result on one thread."""
    p = prepare(load_scenario(scale=0.05, seed=3))
    run = simulate(p)
    fl = run.flows
    cum = np.cumsum(entries(run) - fl[:, :, Flow.DEATHS] - fl[:, :, Flow.ERROR_CORRECTIONS],
                    axis=1)
    np.testing.assert_array_equal(_registry(run), cum)
    for name, cols in GROUPS.items():
        np.testing.assert_array_equal(run.stocks[:, :, cols].sum(axis=2), _registry(run),
                                      err_msg=name)
    assert fl.min() >= 0 and run.stocks.min() >= 0 and run.activity.min() >= 0
    n_j = fl.shape[0]
    assert abs(entries(run)[:, :15].sum() - 785_900 * 0.05) <= 0.5 * n_j
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        _assert_same_run(simulate(p, rounds=3), run)
    finally:
        numba.set_num_threads(before)
