"""Drug use and relapse, the true state: spells of use and abstinence, custody.

The kernels are called directly with hand-made state vectors and the engine's own per-person
keys, so the statistics below are those of the draws the model makes. Tolerances are 4
standard errors: for a share, sqrt(p (1 - p) / n); for a mean of exponential delays, the
standard deviation (about the mean) over sqrt(n). Seeds are fixed, so the tests are
deterministic; a correct model fails one with probability about 1e-4.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import blank_state
from dcsim import drug_use
from dcsim.catalogue import Par
from dcsim.measures import Flow
from dcsim.pathways import is_custodial
from dcsim.rng import Stream, person_key_np, uniform_np
from dcsim.state import NEVER, Drug, S

N = 40_000
SEED = 20060101


def _floor_exp_mean(mean: float) -> float:
    """E[floor(X)] for X exponential with this mean (the kernels truncate to whole days)."""
    return 1.0 / math.expm1(1.0 / mean)


@pytest.fixture(scope="module")
def use_keys() -> np.ndarray:
    return person_key_np(SEED, Stream.USE, np.arange(N))


def _abstinence(P, use_keys, multiplier=1.0, t=1000, drug=Drug.HEROIN, after_treatment=True):
    """Start an abstinent spell (after use) for N persons; returns USE_NEXT days."""
    out = np.empty(N, np.int64)
    s, f, keys, k = blank_state()
    s[S.DRUG] = drug
    for i in range(N):
        s[S.USING] = 1
        k[:] = 0
        keys[Stream.USE] = use_keys[i]
        drug_use.start_abstinence(s, t, P, keys, k, multiplier, after_treatment)
        out[i] = s[S.USE_NEXT]
    return out


def test_relapse_fraction_equals_relapse_probability(P, use_keys):
    p = P[Par.DRUG_USE__RELAPSE_PROBABILITY__HEROIN]
    nxt = _abstinence(P, use_keys)
    share = np.mean(nxt != NEVER)
    assert abs(share - p) <= 4 * math.sqrt(p * (1 - p) / N)


def test_other_spells_relapse_with_the_factor_on_the_same_draws(P, use_keys):
    """A spell not begun on release from treatment relapses with probability p * factor; the
    draws are the same, so those who relapse are a subset of the studied law's, on the same
    day."""
    P = P.copy()
    P[Par.DRUG_USE__RELAPSE_PROBABILITY__HEROIN] = 0.7
    P[Par.DRUG_USE__RELAPSE_FACTOR_OTHER_SPELLS] = 0.5
    studied = _abstinence(P, use_keys)
    other = _abstinence(P, use_keys, after_treatment=False)
    relapse = other != NEVER
    assert np.all(studied[relapse] == other[relapse])
    p = 0.35
    assert abs(relapse.mean() - p) <= 4 * math.sqrt(p * (1 - p) / N)
    assert abs(np.mean(studied != NEVER) - 0.7) <= 4 * math.sqrt(0.7 * 0.3 / N)


def test_release_from_treatment_uses_the_studied_law_detention_the_other(P, use_keys):
    P = P.copy()
    P[Par.DRUG_USE__RELAPSE_FACTOR_OTHER_SPELLS] = 0.0
    P[Par.DRUG_USE__CUSTODY_ENDS_USE] = 1.0
    P[Par.DRUG_USE__DETENTION_ENDS_USE] = 1.0
    s, f, keys, k = blank_state()
    relapses = {True: 0, False: 0}
    for i in range(2000):
        for detention in (True, False):
            s[S.USING] = 1
            k[:] = 0
            keys[Stream.USE] = use_keys[i]
            drug_use.enter_custody(s, 100, P)
            drug_use.leave_custody(s, 130, P, keys, k, detention)
            relapses[detention] += s[S.USE_NEXT] != NEVER
    assert relapses[True] == 0 and relapses[False] > 0


def test_relapse_law_is_the_persons_drugs(P, use_keys):
    """A synthetic-drug user relapses by the synthetic law: set apart from heroin's, each
    share is its own probability, and the mean delay its own mean (same draws)."""
    P = P.copy()
    P[Par.DRUG_USE__RELAPSE_PROBABILITY__HEROIN] = 0.8
    P[Par.DRUG_USE__MEAN_DAYS_TO_RELAPSE__HEROIN] = 150.0
    P[Par.DRUG_USE__RELAPSE_PROBABILITY__SYNTHETIC] = 0.3
    P[Par.DRUG_USE__MEAN_DAYS_TO_RELAPSE__SYNTHETIC] = 600.0
    t = 1000
    heroin = _abstinence(P, use_keys, t=t)
    synthetic = _abstinence(P, use_keys, t=t, drug=Drug.SYNTHETIC)
    for nxt, p, mean in ((heroin, 0.8, 150.0), (synthetic, 0.3, 600.0)):
        share = np.mean(nxt != NEVER)
        assert abs(share - p) <= 4 * math.sqrt(p * (1 - p) / N)
        delay = nxt[nxt != NEVER] - t
        assert abs(delay.mean() - (1 + _floor_exp_mean(mean))) <= 4 * mean / math.sqrt(len(delay))
    # the same draws: whoever relapses as a synthetic user also relapses as a heroin user
    assert np.all(heroin[synthetic != NEVER] != NEVER)


def test_time_to_relapse_mean_and_shape(P, use_keys):
    mean = P[Par.DRUG_USE__MEAN_DAYS_TO_RELAPSE__HEROIN]
    t = 1000
    nxt = _abstinence(P, use_keys, t=t)
    delay = nxt[nxt != NEVER] - t
    n = len(delay)
    assert delay.min() >= 1  # relapse never on the day abstinence starts
    # delay = 1 + floor(Exp(mean))
    assert abs(delay.mean() - (1 + _floor_exp_mean(mean))) <= 4 * mean / math.sqrt(n)
    # exponential shape: P(X < mean) = 1 - 1/e
    q = 1 - math.exp(-1)
    assert abs(np.mean(delay <= mean) - q) <= 4 * math.sqrt(q * (1 - q) / n)


def test_hazard_multiplier_scales_time_to_relapse(P, use_keys):
    t = 1000
    base = _abstinence(P, use_keys, 1.0, t)
    fast = _abstinence(P, use_keys, 2.0, t)
    # same draws: the same persons relapse, each after 1 + floor(mean/2 * E)
    np.testing.assert_array_equal(base != NEVER, fast != NEVER)
    rel = base != NEVER
    mean = P[Par.DRUG_USE__MEAN_DAYS_TO_RELAPSE__HEROIN]
    u_time = uniform_np(use_keys, 1)
    expected = t + 1 + np.floor(-mean / 2.0 * np.log(1.0 - u_time)).astype(np.int64)
    np.testing.assert_array_equal(fast[rel], expected[rel])
    # no hazard: no relapse at all
    assert np.all(_abstinence(P, use_keys[:2000].repeat(20), 0.0, t) == NEVER)


def test_use_spell_length(P, use_keys):
    mean = P[Par.DRUG_USE__MEAN_USE_SPELL_DAYS]
    t = 500
    s, f, keys, k = blank_state()
    out = np.empty(N, np.int64)
    for i in range(N):
        k[:] = 0
        keys[Stream.USE] = use_keys[i]
        drug_use.start_use(s, t, P, keys, k)
        assert s[S.USING] == 1 and s[S.TRUE_FLIP] == NEVER
        out[i] = s[S.USE_NEXT] - t
    assert out.min() >= 0
    assert abs(out.mean() - _floor_exp_mean(mean)) <= 4 * mean / math.sqrt(N)


@pytest.mark.parametrize("using", [0, 1])
def test_every_spell_takes_exactly_two_use_draws(P, using):
    s, f, keys, k = blank_state()
    keys[:] = np.arange(len(keys), dtype=np.uint64) + 99
    for call in range(5):
        s[S.USING] = using
        before = k.copy()
        if call % 2:
            drug_use.start_use(s, 10, P, keys, k)
        else:
            drug_use.start_abstinence(s, 10, P, keys, k, 1.0, call % 4 == 0)
        diff = k - before
        assert diff[Stream.USE] == 2
        assert np.count_nonzero(diff) == 1
    before = k.copy()
    drug_use.enter_custody(s, 10, P)
    np.testing.assert_array_equal(k, before)  # custody draws nothing


def _flip_reaches_the_law(s, P):
    """The true flip is the first day with the law's days of abstinence, counting the day
    abstinence began."""
    need = int(P[Par.EXIT__ABSTINENCE_DAYS_REQUIRED])
    flip = s[S.TRUE_FLIP]
    assert drug_use.abstinent_days(s, flip) == need
    assert drug_use.abstinent_days(s, flip - 1) == need - 1
    assert flip - s[S.ABST_START] == need - 1


def test_abstinent_days():
    s, *_ = blank_state()
    s[S.ABST_START] = 10
    assert drug_use.abstinent_days(s, 10) == 1 and drug_use.abstinent_days(s, 19) == 10
    s[S.USING] = 1
    assert drug_use.abstinent_days(s, 19) == 0


def test_abstinence_after_use_restarts_the_true_clock(P):
    s, f, keys, k = blank_state()
    s[S.USING] = 1
    s[S.ABST_START] = 3
    s[S.FLIPS_DONE] = 7
    drug_use.start_abstinence(s, 400, P, keys, k, 1.0, True)
    assert s[S.USING] == 0
    assert s[S.ABST_START] == 400
    _flip_reaches_the_law(s, P)
    assert s[S.FLIPS_DONE] == 3  # the true-flip bit is cleared, the others kept


def test_abstinence_after_custody_keeps_its_start(P):
    """Custody began the abstinence; release from custody only draws the relapse."""
    s, f, keys, k = blank_state()
    s[S.USING] = 1
    drug_use.enter_custody(s, 100, P)
    assert s[S.USING] == 0 and s[S.USE_NEXT] == NEVER and s[S.ABST_START] == 100
    flip = s[S.TRUE_FLIP]
    _flip_reaches_the_law(s, P)
    drug_use.start_abstinence(s, 830, P, keys, k, 1.0, True)
    assert s[S.ABST_START] == 100 and s[S.TRUE_FLIP] == flip


def test_custody_of_a_non_user_keeps_the_abstinence(P):
    s, f, keys, k = blank_state()
    s[S.ABST_START] = 50
    s[S.TRUE_FLIP] = 50 + 1094
    s[S.USE_NEXT] = 300
    drug_use.enter_custody(s, 100, P)
    assert s[S.ABST_START] == 50 and s[S.TRUE_FLIP] == 1144 and s[S.USE_NEXT] == NEVER


def test_no_use_in_custody(baseline, trace_cache):
    """In every traced event, a person in custody is not using, and use never starts there."""
    pop = baseline.population
    sample = np.flatnonzero(pop.path != 3)[::97][:120]
    seen_custody = 0
    for i in sample:
        df = trace_cache(i)
        cust = df.pathway.map(is_custodial).astype(bool)
        seen_custody += int(cust.sum())
        assert not np.any(cust & (df.using == 1)), i
    assert seen_custody > 0


def test_relapse_probability_zero_means_no_relapse(run_with):
    run = run_with({"drug_use.relapse_probability.heroin": 0.0,
                    "drug_use.relapse_probability.synthetic": 0.0})
    assert run.flows[:, :, Flow.TRUE_RELAPSES].sum() == 0
    assert run.flows[:, :, Flow.TRUE_CESSATIONS].sum() > 0


def test_baseline_has_relapses_and_cessations(baseline):
    assert baseline.flows[:, :, Flow.TRUE_RELAPSES].sum() > 0
    assert baseline.flows[:, :, Flow.TRUE_CESSATIONS].sum() > 0


def _resumed_share(P, use_keys, detention: bool, n: int = N) -> tuple[float, np.ndarray]:
    """Release n persons who were using when custody began; the share resuming use, and the
    USE draws each release took."""
    resumed = 0
    taken = np.empty(n, np.int64)
    s, f, keys, k = blank_state()
    for i in range(n):
        s[S.USING] = 1
        drug_use.enter_custody(s, 100, P)
        k[:] = 0
        keys[Stream.USE] = use_keys[i]
        drug_use.leave_custody(s, 110, P, keys, k, detention)
        resumed += s[S.USING]
        taken[i] = k[Stream.USE]
    return resumed / n, taken


@pytest.mark.parametrize("detention", [True, False])
@pytest.mark.parametrize("ends", [0.0, 0.3, 1.0])
def test_custody_ends_use_with_its_probability(P, use_keys, detention, ends):
    """drug_use.detention_ends_use (detention) and custody_ends_use (isolation, treatment) are
    the chance that custody ended the spell it interrupted: the rest resume use on release.
    Every release takes three USE draws, whichever way it goes."""
    P = P.copy()
    P[Par.DRUG_USE__DETENTION_ENDS_USE if detention else Par.DRUG_USE__CUSTODY_ENDS_USE] = ends
    share, taken = _resumed_share(P, use_keys, detention)
    assert abs(share - (1 - ends)) <= 4 * math.sqrt(ends * (1 - ends) / N)
    assert (taken == 3).all()


def test_release_of_a_non_user_never_starts_use(P, use_keys):
    """Someone abstinent when custody began is abstinent on release, whatever the rule."""
    P = P.copy()
    P[Par.DRUG_USE__DETENTION_ENDS_USE] = 0.0
    s, f, keys, k = blank_state()
    for i in range(200):
        s[S.USING] = 0
        drug_use.enter_custody(s, 100, P)
        keys[Stream.USE] = use_keys[i]
        drug_use.leave_custody(s, 110, P, keys, k, True)
        assert s[S.USING] == 0
