"""The peer implementations compute the same model (so their speed ratios mean something).

Exact invariants every implementation must satisfy run by run; the laws of the alert draws,
which the spec fixes exactly; and agreement of seed-averaged summaries between NumPy,
Starsim, Mesa (and dcsim, once ``benchmarks/peers/dcsim_model.py`` exists) within tolerances
derived from the seed-to-seed variance. Mesa and Starsim are the optional extra ``peers``:
without them those cases skip and the core suite still passes.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
from functools import cache

import numpy as np
import pytest

from benchmarks.peers import impls, spec
from benchmarks.peers.numpy_model import NumpyRegistry, run_numpy

N, T = 2000, 1500  # T well past day 1,094, so that releases happen (about 330 of them)
SEEDS = {
    "numpy": range(16),
    "starsim": range(100, 106),
    "mesa": range(200, 206),
    "dcsim": range(300, 306),
}
FRAMEWORK = {  # what must import for the implementation to be tested
    "numpy": None,
    "starsim": "starsim",
    "mesa": "mesa",
    "dcsim": None,  # its own module: skipped until benchmarks/peers/dcsim_model.py exists
}
Z = 5.0  # tolerance in standard errors; with fixed seeds the outcome is deterministic


@cache
def _runs(impl: str) -> tuple[spec.Result, ...]:
    run = impls.load(impl)
    return tuple(run(N, T, seed) for seed in SEEDS[impl])


def runs(impl: str) -> tuple[spec.Result, ...]:
    """Results for every seed of ``impl``, computed once; skip when its framework is absent."""
    module = FRAMEWORK[impl]
    if module:
        pytest.importorskip(module)
    if impl == "dcsim" and importlib.util.find_spec("benchmarks.peers.dcsim_model") is None:
        pytest.skip("benchmarks/peers/dcsim_model.py not written yet")
    return _runs(impl)


IMPLS = list(SEEDS)
DAILY = ["numpy", "starsim", "mesa"]  # dcsim reports calendar months: no day-by-day invariants


# --- NumPy model: exact invariants ---------------------------------------------------------------
@pytest.mark.parametrize(("n", "t"), [(37, 800), (2000, 400), (3651, 50)])
def test_numpy_present_follows_arrival_rule_exactly(n: int, t: int) -> None:
    result = run_numpy(n, t, seed=3)
    entered = np.cumsum(spec.arrivals_per_day(n, t))
    assert result["releases"].sum() == 0  # nobody can be released before day 1,094
    np.testing.assert_array_equal(result["present"], entered)
    assert result["present"][0] == n + spec.n_newcomers_by(n, 0)
    assert result["present"][-1] == spec.n_persons(n, t)


def test_arrival_rule_is_n_over_10_per_year() -> None:
    for n in (10, 2000, 20000, 1_000_000):
        assert spec.n_newcomers_by(n, 364) == n // 10 - 1  # the (n/10)-th arrives at time 365
        assert spec.n_newcomers_by(n, 365) >= n // 10
        assert spec.n_newcomers_by(n, 10 * 365 - 1) == n - 1
    days = spec.entry_days(20000, 2190)
    assert np.all(np.diff(days) >= 0) and days[:20000].max() == 0


def test_numpy_released_never_decreases_and_none_early() -> None:
    model = NumpyRegistry(N, T, seed=11)
    previously = model.released.copy()
    for _ in range(T):
        model.step()
        today = model.day - 1
        assert np.all(model.released[previously])  # once released, always released
        new = model.released & ~previously
        assert np.all(model.release_day[new] == today)
        # released on its 1,095th day in the registry at the earliest (the entry day counts)
        assert np.all(today - model.entry_day[new] + 1 >= spec.RELEASE_ABSTINENT_DAYS)
        assert np.all(~model.using[new])
        assert np.all(model.abstinent[new] >= spec.RELEASE_ABSTINENT_DAYS)
        assert np.all(model.negatives[new] >= spec.RELEASE_MIN_NEGATIVE_TESTS)
        assert not np.isin(model.active, np.flatnonzero(model.released)).any()
        previously = model.released.copy()
    assert model.released.sum() == model.result["releases"].sum() > 0


def test_numpy_is_deterministic_per_seed() -> None:
    a, b, c = run_numpy(500, 300, 1), run_numpy(500, 300, 1), run_numpy(500, 300, 2)
    for name in spec.OUTPUTS:
        np.testing.assert_array_equal(a[name], b[name])
    assert any(not np.array_equal(a[name], c[name]) for name in ("alerts", "using"))


# --- Every implementation: exact invariants and the laws of the draws ----------------------------
@pytest.mark.parametrize("impl", DAILY)
def test_exact_invariants(impl: str) -> None:
    entered = np.cumsum(spec.arrivals_per_day(N, T))
    for result in runs(impl):
        assert set(result) == set(spec.OUTPUTS)
        assert all(v.shape == (T,) and v.min() >= 0 for v in result.values())
        np.testing.assert_array_equal(result["present"], entered - np.cumsum(result["releases"]))
        assert np.all(result["using"] <= result["present"])
        assert np.all(result["contacts"] <= result["alerts"])
        assert result["releases"][: spec.RELEASE_ABSTINENT_DAYS - 1].sum() == 0


@pytest.mark.parametrize("impl", IMPLS)
def test_alert_and_contact_counts_follow_their_laws(impl: str) -> None:
    """Given the person-days, alerts are Poisson and persons reached binomial, exactly."""
    results = runs(impl)
    pd = sum(spec.person_days(r) for r in results)
    alerts = sum(int(r["alerts"].sum()) for r in results)
    contacts = sum(int(r["contacts"].sum()) for r in results)
    lam = spec.ALERT_RATE_PER_DAY * pd
    assert abs(alerts - lam) <= Z * math.sqrt(lam)
    p = 1.0 - math.exp(-spec.ALERT_RATE_PER_DAY * spec.P_ALERT_REACHES)
    assert abs(contacts - p * pd) <= Z * math.sqrt(pd * p * (1 - p))


# --- Implementations agree -----------------------------------------------------------------------
@pytest.mark.parametrize(("a", "b"), list(itertools.combinations(IMPLS, 2)))
def test_summaries_agree_within_seed_variance(a: str, b: str) -> None:
    """Means over seeds differ by at most Z standard errors of the difference.

    The variance is pooled over both implementations (under agreement they share it), which
    keeps the tolerance stable with few seeds of the slow frameworks.
    """
    ra, rb = runs(a), runs(b)
    for metric in ("final_using", "total_released", "total_alerts", "total_positives"):
        xa = np.array([spec.summary(r)[metric] for r in ra])
        xb = np.array([spec.summary(r)[metric] for r in rb])
        dof = len(xa) + len(xb) - 2
        pooled = (((xa - xa.mean()) ** 2).sum() + ((xb - xb.mean()) ** 2).sum()) / dof
        se = math.sqrt(pooled * (1 / len(xa) + 1 / len(xb)))
        diff = abs(xa.mean() - xb.mean())
        assert diff <= Z * se, f"{metric}: {a} {xa.mean():.1f} vs {b} {xb.mean():.1f}, se {se:.1f}"
