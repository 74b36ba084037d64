"""Registration: who enters, when, and with which attributes (paper fn 2, 7, 11-16, 23-25).

Counts are exact up to the documented cumulative rounding; attribute shares are checked against
the rule values with tolerances of 4 binomial standard errors: each attribute is an independent
Bernoulli draw per person with a known probability p_i (which may vary by month), so the count
has mean sum(p_i) and variance sum(p_i (1 - p_i)); |count - mean| > 4 sd has probability
< 1e-4 under the model, and the seeds are fixed, so the tests are deterministic.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
from importlib import resources

import numpy as np
import pytest
import yaml

from conftest import ENTRY_FLOWS, entries, month_of, write_rules, write_scenario
from dcsim.catalogue import Par
from dcsim.measures import Flow, Stock
from dcsim.model import prepare, simulate
from dcsim.registration import MAX_AGE, MIN_AGE, entry_counts, entry_days, register
from dcsim.scenario import load_scenario
from dcsim.state import Drug, Path

Z = 4.0  # tolerance in standard errors


def _within(count: float, p: np.ndarray, z: float = Z) -> None:
    mean = float(p.sum())
    sd = math.sqrt(float((p * (1 - p)).sum()))
    assert abs(count - mean) <= z * sd + 1e-9, (count, mean, sd)


@pytest.fixture(scope="module")
def big_registry(baseline_prepared):
    """The baseline registry drawn at scale 0.02 (~110,000 persons; no life courses run)."""
    sc = baseline_prepared.scenario
    shares = np.array([j.share for j in sc.jurisdictions])
    pop = register(baseline_prepared.table, shares, 0.02, sc.start, sc.end,
                   baseline_prepared.month_of_day, 11)
    P = baseline_prepared.table[pop.jurisdiction, baseline_prepared.month_of_day[pop.entry_day]]
    return pop, P


@functools.cache
def _inflow_rule() -> tuple[tuple[dt.date, dt.date | None, float], ...]:
    """registration.newly_found_per_year read straight from the embedded national rule file."""
    text = resources.files("dcsim").joinpath("data/rules/national.yaml").read_text()
    windows = yaml.safe_load(text)["parameters"]["registration.newly_found_per_year"]["values"]
    return tuple((w["from"], w.get("to"), float(w["value"])) for w in windows)


def _rule_value(day: dt.date) -> float:
    for start, end, v in _inflow_rule():
        if start <= day and (end is None or day <= end):
            return v
    raise AssertionError(day)


def test_entries_per_month_follow_cumulative_rounding(baseline, baseline_prepared):
    """Entries per (jurisdiction, month) are the differences of the rounded cumulative
    expectation rule/12 x share x scale: exact, and every partial sum within 0.5 of it."""
    sc = baseline_prepared.scenario
    shares = np.array([j.share for j in sc.jurisdictions])
    rule = baseline_prepared.table[:, :, Par.REGISTRATION__NEWLY_FOUND_PER_YEAR]
    expected = rule / 12 * shares[:, None] * sc.scale
    got = entries(baseline)
    np.testing.assert_array_equal(got, entry_counts(baseline_prepared.table, shares, sc.scale,
                                                    sc.start, sc.end))
    cum_err = np.abs(np.cumsum(got, axis=1) - np.cumsum(expected, axis=1))
    assert cum_err.max() <= 0.5 + 1e-9
    assert len(baseline.population) == got.sum()


def test_entries_per_year_equal_inflow_rule_times_scale(baseline, baseline_prepared):
    """Each calendar year: rule x scale, within one person per jurisdiction (0.5 at each end).
    The rule is the scenario's (national.yaml, then calibrated.yaml's factor on the assumed
    years); the years with data keep national.yaml's values exactly."""
    n_j = baseline.flows.shape[0]
    got = entries(baseline).sum(axis=0)
    rule = baseline_prepared.table[0, :, Par.REGISTRATION__NEWLY_FOUND_PER_YEAR]
    for year in (2006, 2009, *range(2014, 2023)):
        m0 = month_of(dt.date(year, 1, 1))
        assert rule[m0 + 11] == _rule_value(dt.date(year, 12, 1)), year
    for year in range(2006, 2026):
        m0 = month_of(dt.date(year, 1, 1))
        expected = rule[m0:m0 + 12].sum() / 12
        assert abs(got[m0:m0 + 12].sum() - expected * 0.002) <= n_j * 1.0, year


def test_launch_sweep_785900_by_march_2007(baseline):
    """Paper fn 7: 785,900 registered by the end of March 2007 (15 months of the sweep)."""
    n_j = baseline.flows.shape[0]
    total = entries(baseline)[:, : month_of(dt.date(2007, 4, 1))].sum()
    assert abs(total - 785_900 * 0.002) <= 0.5 * n_j


def test_entry_flows_match_population(baseline):
    pop = baseline.population
    by_path = baseline.flows[:, :, ENTRY_FLOWS].sum(axis=(0, 1))
    np.testing.assert_array_equal(by_path, np.bincount(pop.path, minlength=4))
    by_j = entries(baseline).sum(axis=1)
    np.testing.assert_array_equal(by_j, np.bincount(pop.jurisdiction, minlength=len(by_j)))


def test_entry_days_lie_in_their_month_and_are_ordered(baseline_prepared):
    sc = baseline_prepared.scenario
    shares = np.array([j.share for j in sc.jurisdictions])
    counts = entry_counts(baseline_prepared.table, shares, sc.scale, sc.start, sc.end)
    day, jj = entry_days(counts, sc.start, sc.end)
    assert np.all(np.diff(day) >= 0)
    assert day.min() >= 0 and day.max() < sc.n_days
    months = baseline_prepared.month_of_day[day]
    got = np.zeros_like(counts)
    np.add.at(got, (jj.astype(np.int64), months.astype(np.int64)), 1)
    np.testing.assert_array_equal(got, counts)


def test_partial_last_month_is_prorated(tmp_path):
    """A period ending on the 10th of a month registers 10/31 of that month's inflow."""
    path = write_scenario(tmp_path, jurisdictions=[{"id": "a", "share": 1.0}],
                          start=dt.date(2019, 1, 1), end=dt.date(2019, 3, 10), scale=0.1)
    p = prepare(load_scenario(path))
    counts = entry_counts(p.table, np.array([1.0]), 0.1, p.scenario.start, p.scenario.end)
    expected = 223_000 / 12 * 0.1 * np.array([1.0, 1.0, 10 / 31])
    np.testing.assert_array_equal(np.cumsum(counts[0]), np.round(np.cumsum(expected)))
    run = simulate(p)
    assert run.population.entry_day.max() < p.n_days


def test_data_error_share(big_registry):
    pop, P = big_registry
    _within((pop.path == Path.DATA_ERROR).sum(), P[:, Par.REGISTRATION__ERROR_SHARE])
    # heightened period of 2008: 3% against 1% around it (paper fn 25)
    assert P[:, Par.REGISTRATION__ERROR_SHARE].max() == pytest.approx(0.03)


def test_entry_path_shares_among_non_errors(big_registry):
    pop, P = big_registry
    ok = (pop.path != Path.DATA_ERROR) & (pop.path != Path.PRE_LAUNCH)
    p_det = P[ok, Par.REGISTRATION__SHARE__DETAINED_POSITIVE]
    p_stop = P[ok, Par.REGISTRATION__SHARE__STOPPED_NOT_DETAINED]
    p_vol = P[ok, Par.REGISTRATION__SHARE__VOLUNTARY]
    np.testing.assert_allclose(p_det + p_stop + p_vol, 1.0)
    _within((pop.path[ok] == Path.DETAINED_POSITIVE).sum(), p_det)
    _within((pop.path[ok] == Path.STOPPED_NOT_DETAINED).sum(), p_stop)
    _within((pop.path[ok] == Path.VOLUNTARY).sum(), p_vol)


def test_drug_and_dependence(big_registry):
    pop, P = big_registry
    heroin = pop.drug == Drug.HEROIN
    _within(heroin.sum(), P[:, Par.REGISTRATION__HEROIN_SHARE])
    ok = pop.path != Path.DATA_ERROR
    p_dep = np.where(heroin, P[:, Par.REGISTRATION__DEPENDENT_SHARE__HEROIN],
                     P[:, Par.REGISTRATION__DEPENDENT_SHARE__SYNTHETIC])
    _within(pop.dependent[ok & heroin].sum(), p_dep[ok & heroin])
    _within(pop.dependent[ok & ~heroin].sum(), p_dep[ok & ~heroin])
    # people registered in error are never judged dependent
    assert pop.dependent[~ok].sum() == 0


def test_using_at_entry_by_path(big_registry):
    pop, P = big_registry
    cols = {
        Path.DETAINED_POSITIVE: Par.REGISTRATION__USING_AT_ENTRY__DETAINED_POSITIVE,
        Path.STOPPED_NOT_DETAINED: Par.REGISTRATION__USING_AT_ENTRY__STOPPED_NOT_DETAINED,
        Path.VOLUNTARY: Par.REGISTRATION__USING_AT_ENTRY__VOLUNTARY,
    }
    for path, col in cols.items():
        sel = pop.path == path
        _within(pop.using_at_entry[sel].sum(), P[sel, col])
    assert pop.using_at_entry[pop.path == Path.DATA_ERROR].sum() == 0


def test_lost_to_follow_up_share(big_registry):
    pop, P = big_registry
    _within(pop.lost.sum(), P[:, Par.REGISTRATION__LOST_TO_FOLLOW_UP_SHARE])


def test_age_at_entry_clipped_normal(big_registry):
    pop, P = big_registry
    age_days = pop.entry_day.astype(np.int64) - pop.birth_day
    assert age_days.min() >= int(MIN_AGE * 365.25)
    assert age_days.max() <= int(MAX_AGE * 365.25)
    mu = float(P[0, Par.REGISTRATION__MEAN_AGE_AT_ENTRY])
    sd = float(P[0, Par.REGISTRATION__SD_AGE_AT_ENTRY])
    assert np.all(P[:, Par.REGISTRATION__MEAN_AGE_AT_ENTRY] == mu)
    # mean of the normal clipped to [MIN_AGE, MAX_AGE]
    a, b = (MIN_AGE - mu) / sd, (MAX_AGE - mu) / sd
    cdf = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))  # noqa: E731
    pdf = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    mean = (MIN_AGE * cdf(a) + MAX_AGE * (1 - cdf(b)) + mu * (cdf(b) - cdf(a))
            + sd * (pdf(a) - pdf(b)))
    ages = age_days / 365.25
    # the day truncation lowers ages by < 1 day; the standard error is sd / sqrt(n)
    assert abs(ages.mean() - mean) <= Z * sd / math.sqrt(len(ages)) + 1 / 365.25
    assert ages.std() == pytest.approx(sd, rel=0.05)


def test_roll_out_ranks_uniform(big_registry):
    """Grid and app ranks are uniform on [0, 1): the share below any x is x (binomial)."""
    pop, _ = big_registry
    for ranks in (pop.grid_rank, pop.app_rank):
        assert ranks.min() >= 0.0 and ranks.max() < 1.0
        for x in (0.1, 0.5, 0.7, 0.8):
            _within((ranks < x).sum(), np.full(len(ranks), x))
    # the two ranks are separate draws
    assert abs(np.corrcoef(pop.grid_rank, pop.app_rank)[0, 1]) < 5 / math.sqrt(len(pop))


def test_attributes_are_the_documented_function_of_the_entry_draws(baseline, baseline_prepared):
    """Recompute every attribute from the person's own ENTRY draws (NumPy twin of the
    generator) and the rule table. Exact: this also catches compiled kernels that read stale
    rule columns (e.g. a Numba cache compiled against an older catalogue)."""
    from dcsim import registration as reg
    from dcsim.rng import Stream, person_key_np, uniform_np

    pop = baseline.population
    n = 3000
    key = person_key_np(baseline.scenario.seed, Stream.ENTRY, np.arange(n))
    u = {d: uniform_np(key, d) for d in range(12)}
    P = baseline_prepared.table[pop.jurisdiction[:n],
                                baseline_prepared.month_of_day[pop.entry_day[:n]]]
    det = P[:, Par.REGISTRATION__SHARE__DETAINED_POSITIVE]
    stop = P[:, Par.REGISTRATION__SHARE__STOPPED_NOT_DETAINED]
    path = np.where(u[reg._D_ERROR] < P[:, Par.REGISTRATION__ERROR_SHARE], Path.DATA_ERROR,
                    np.where(u[reg._D_PATH] < det, Path.DETAINED_POSITIVE,
                             np.where(u[reg._D_PATH] < det + stop, Path.STOPPED_NOT_DETAINED,
                                      Path.VOLUNTARY)))
    pre = u[reg._D_PRE] < P[:, Par.REGISTRATION__SHARE__PRE_LAUNCH]
    path = np.where(pre, Path.PRE_LAUNCH, path)
    assert pre.any() and not pre.all()
    history = np.where(pre, (u[reg._D_HISTORY]
                             * P[:, Par.REGISTRATION__PRE_LAUNCH_HISTORY_DAYS]).astype(np.int64), 0)
    np.testing.assert_array_equal(pop.history_days[:n], history)
    np.testing.assert_array_equal(pop.path[:n], path)
    heroin = u[reg._D_DRUG] < P[:, Par.REGISTRATION__HEROIN_SHARE]
    np.testing.assert_array_equal(pop.drug[:n], np.where(heroin, Drug.HEROIN, Drug.SYNTHETIC))
    dep_share = np.where(heroin, P[:, Par.REGISTRATION__DEPENDENT_SHARE__HEROIN],
                         P[:, Par.REGISTRATION__DEPENDENT_SHARE__SYNTHETIC])
    dep = (path != Path.DATA_ERROR) & (u[reg._D_DEPENDENT] < dep_share)
    np.testing.assert_array_equal(pop.dependent[:n], dep)
    use_p = np.select(
        [path == Path.DETAINED_POSITIVE, path == Path.STOPPED_NOT_DETAINED,
         path == Path.VOLUNTARY, path == Path.PRE_LAUNCH],
        [P[:, Par.REGISTRATION__USING_AT_ENTRY__DETAINED_POSITIVE],
         P[:, Par.REGISTRATION__USING_AT_ENTRY__STOPPED_NOT_DETAINED],
         P[:, Par.REGISTRATION__USING_AT_ENTRY__VOLUNTARY],
         P[:, Par.REGISTRATION__USING_AT_ENTRY__PRE_LAUNCH]], 0.0)
    np.testing.assert_array_equal(pop.using_at_entry[:n], u[reg._D_USING] < use_p)
    np.testing.assert_array_equal(
        pop.lost[:n], u[reg._D_LOST] < P[:, Par.REGISTRATION__LOST_TO_FOLLOW_UP_SHARE])
    np.testing.assert_array_equal(pop.grid_rank[:n], u[reg._D_GRID].astype(np.float32))
    np.testing.assert_array_equal(pop.app_rank[:n], u[reg._D_APP].astype(np.float32))
    z = np.sqrt(-2 * np.log(1 - u[reg._D_AGE1])) * np.cos(2 * np.pi * u[reg._D_AGE2])
    age = np.clip(P[:, Par.REGISTRATION__MEAN_AGE_AT_ENTRY]
                  + P[:, Par.REGISTRATION__SD_AGE_AT_ENTRY] * z, MIN_AGE, MAX_AGE)
    birth = pop.entry_day[:n] - (age * 365.25).astype(np.int64)
    # the last bit of a logarithm may differ between libms: a day either way at most
    assert np.abs(pop.birth_day[:n] - birth).max() <= 1


def test_initial_registry_enters_on_the_first_day(tmp_path):
    """A scenario starting with a registry already in place: round(N x share x scale) persons
    per jurisdiction on day 0, on top of the month's inflow, conserved like everyone else."""
    write_rules(tmp_path, "initial.yaml", {"registration.initial_registry": 2_000_000})
    path = write_scenario(tmp_path, jurisdictions=[{"id": "a", "share": 0.6},
                                                   {"id": "b", "share": 0.4}],
                          start=dt.date(2015, 1, 1), end=dt.date(2016, 12, 31), scale=0.001,
                          overlays=["initial.yaml"])
    p = prepare(load_scenario(path))
    run = simulate(p)
    shares = np.array([0.6, 0.4])
    inflow = entry_counts(p.table, shares, 0.001, p.scenario.start, p.scenario.end)
    got = entries(run)
    np.testing.assert_array_equal(got[:, 0] - inflow[:, 0], [1200, 800])
    np.testing.assert_array_equal(got[:, 1:], inflow[:, 1:])
    pop = run.population
    first_month = pop.entry_day < 31
    day0 = np.bincount(pop.jurisdiction[pop.entry_day == 0], minlength=2)
    assert np.all(day0 >= [1200, 800]) and np.all(day0 <= [1200 + inflow[0, 0], 800 + inflow[1, 0]])
    assert first_month.sum() == got[:, 0].sum()
    reg = run.stocks[:, :, Stock.EXISTING_USERS] + run.stocks[:, :, Stock.ABSTINENT_3Y_RECORDED]
    fl = run.flows
    np.testing.assert_array_equal(
        reg, np.cumsum(got - fl[:, :, Flow.DEATHS] - fl[:, :, Flow.ERROR_CORRECTIONS], axis=1))


def _entry_days_numpy(counts, start, end, initial=None):
    """Plain NumPy twin of entry_days: the spread days block by block, then a stable sort."""
    from dcsim.calendar import add_months, month_starts

    firsts = month_starts(start, end)
    n_days = (end - start).days + 1
    n_j = counts.shape[0]
    a = np.array([max(0, (f - start).days) for f in firsts], dtype=np.int64)
    b = np.array([min(n_days, (add_months(f, 1) - start).days) for f in firsts], dtype=np.int64)
    n_block = counts.T.reshape(-1).astype(np.int64)  # blocks in (month, jurisdiction) order
    block = np.repeat(np.arange(n_block.size), n_block)
    q = np.arange(block.size) - np.repeat(np.cumsum(n_block) - n_block, n_block)
    m, j = block // n_j, block % n_j
    day = a[m] + ((q + 0.5) * (b[m] - a[m]) / n_block[block]).astype(np.int64)
    if initial is not None:
        day = np.concatenate([np.zeros(initial.sum(), np.int64), day])
        j = np.concatenate([np.repeat(np.arange(n_j), initial), j])
    order = np.lexsort((j, day))  # stable: the initial persons first in their cell
    return day[order].astype(np.int32), j[order].astype(np.int8)


def test_entry_days_equal_their_numpy_twin():
    rng = np.random.default_rng(8)
    for start, end in ((dt.date(2015, 1, 1), dt.date(2016, 6, 30)),
                       (dt.date(2006, 3, 1), dt.date(2007, 2, 14))):
        n_m = (end.year - start.year) * 12 + end.month - start.month + 1
        for _ in range(10):
            counts = rng.integers(0, 90, size=(4, n_m))
            counts[rng.integers(0, 4), rng.integers(0, n_m)] = 0
            initial = rng.integers(0, 40, size=4)
            for init in (None, initial):
                got = entry_days(counts, start, end, init)
                want = _entry_days_numpy(counts, start, end, init)
                np.testing.assert_array_equal(got[0], want[0])
                np.testing.assert_array_equal(got[1], want[1])
                assert got[0].dtype == np.int32 and got[1].dtype == np.int8


def test_entry_days_is_a_reordering_by_day_then_jurisdiction():
    """entry_days places persons without sorting; it must equal a plain stable sort, with and
    without persons already registered on day 0 (a regression: they once broke the runs)."""
    from dcsim.registration import entry_days

    rng = np.random.default_rng(5)
    start, end = dt.date(2015, 1, 1), dt.date(2016, 6, 30)
    for _ in range(20):
        counts = rng.integers(0, 60, size=(3, 18))
        initial = rng.integers(0, 40, size=3)
        for init in (None, initial):
            day, jur = entry_days(counts, start, end, init)
            assert len(day) == counts.sum() + (0 if init is None else init.sum())
            assert np.all(np.diff(day.astype(np.int64) * 3 + jur) >= 0)
            np.testing.assert_array_equal(np.bincount(jur, minlength=3),
                                          counts.sum(axis=1) + (0 if init is None else init))
            if init is not None:
                np.testing.assert_array_equal(np.bincount(jur[day == 0], minlength=3)
                                              >= init, True)
