"""Counter-based random numbers: compiled and NumPy twins agree bit for bit, draws are uniform,
and streams, persons and seeds give independent sequences.

Chi-square thresholds are the 1 - 1e-6 quantiles of the chi-square law with the test's degrees
of freedom (scipy.stats.chi2.isf(1e-6, df), written out so the suite needs no SciPy): with fixed
seeds the tests are deterministic, and a correct generator would fail one of them with
probability 1e-6.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from dcsim import rng
from dcsim.rng import Stream
from dcsim.state import K

CHI2_1E6 = {9: 44.811, 99: 180.792}  # chi2.isf(1e-6, df)
SEEDS = (0, 1, 20060101, 2**62 + 12345)


def _chi2_uniform(u: np.ndarray, bins: int) -> float:
    counts = np.bincount(np.minimum((u * bins).astype(np.int64), bins - 1), minlength=bins)
    expected = len(u) / bins
    return float(((counts - expected) ** 2 / expected).sum())


def test_one_stream_per_counter():
    """Every stream but the last is a person's, with its own counter; the last is keyed by
    locality-month cell (alerts that reach no one), after the engine has run."""
    assert [int(s) for s in Stream] == list(range(int(K.N) + 1))
    assert Stream.ALERT_TOTALS == int(K.N)


@pytest.mark.parametrize("mean", [0.0, 0.3, 4.0, 9.99, 10.0, 37.5, 2_000.0, 3.0e6])
def test_poisson_mean_and_variance(mean):
    """Keyed Poisson counts: over 20,000 keys the sample mean is within 4 standard errors of
    the mean, and the variance/mean ratio within 4 of its standard errors (sqrt(2/n) for a
    Poisson, whose dispersion ratio is 1)."""
    n = 20_000
    keys = rng.person_key_np(3, int(Stream.ALERT_TOTALS), np.arange(n))
    x = np.array([rng.poisson(key, mean) for key in keys], np.float64)
    if mean == 0.0:
        assert not x.any()
        return
    assert abs(x.mean() - mean) <= 4 * math.sqrt(mean / n)
    assert abs(x.var() / mean - 1.0) <= 4 * math.sqrt(2.0 / n) + 4 / math.sqrt(mean * n)


@pytest.mark.parametrize("mean", [2.5, 25.0])
def test_poisson_matches_the_probability_function(mean):
    """Chi-square of 40,000 counts against the Poisson probabilities, cells of expected >= 5
    (the tails pooled): below the 99.99% point of chi-square (df + 4.5 sqrt(2 df) + 10 bounds
    it for these df). Inversion below a mean of 10, rejection from 10."""
    n = 40_000
    keys = rng.person_key_np(11, int(Stream.ALERT_TOTALS), np.arange(n))
    x = np.array([rng.poisson(key, mean) for key in keys])
    top = int(mean + 10 * math.sqrt(mean) + 10)
    pmf = np.array([math.exp(-mean + k * math.log(mean) - math.lgamma(k + 1)) for k in
                    range(top)])
    lo = int(np.argmax(pmf * n >= 5))
    hi = int(len(pmf) - np.argmax(pmf[::-1] * n >= 5))
    expected = np.concatenate([[pmf[:lo].sum()], pmf[lo:hi], [1 - pmf[:hi].sum()]]) * n
    counts = np.concatenate([[(x < lo).sum()], np.bincount(x, minlength=top)[lo:hi],
                             [(x >= hi).sum()]])
    keep = expected > 0
    chi2 = float(((counts[keep] - expected[keep]) ** 2 / expected[keep]).sum())
    df = int(keep.sum()) - 1
    assert chi2 < df + 4.5 * math.sqrt(2 * df) + 10, (chi2, df)


@pytest.mark.parametrize("seed", SEEDS)
def test_person_key_twins_agree(seed):
    persons = np.concatenate([np.arange(500), [10**6, 2**31 - 1, 2**40 + 3]])
    for stream in range(int(K.N)):
        vec = rng.person_key_np(seed, stream, persons)
        one = np.array([rng.person_key(seed, stream, int(p)) for p in persons], np.uint64)
        assert vec.dtype == np.uint64
        np.testing.assert_array_equal(one, vec)


def test_uniform_twins_agree_bit_for_bit():
    keys = rng.person_key_np(20060101, Stream.USE, np.arange(40))
    ks = np.arange(250)
    vec = rng.uniform_np(keys[:, None], ks[None, :])
    one = np.array([[rng.uniform(np.uint64(key), int(k)) for k in ks] for key in keys])
    # bit for bit, not approximately
    np.testing.assert_array_equal(one.view(np.uint64), vec.view(np.uint64))
    # the exponential goes through a logarithm, whose last bit may differ between libms
    ex = np.array([rng.exponential(np.uint64(keys[0]), int(k)) for k in ks])
    np.testing.assert_allclose(ex, -np.log(1.0 - vec[0]), rtol=1e-15, atol=0)


def test_uniform_range_and_resolution():
    keys = rng.person_key_np(3, Stream.TEST, np.arange(1000))
    u = rng.uniform_np(keys[:, None], np.arange(200)[None, :]).ravel()
    assert u.min() >= 0.0 and u.max() < 1.0
    # 53-bit resolution: every value is a whole multiple of 2^-53
    scaled = u * 2.0**53
    np.testing.assert_array_equal(scaled, np.floor(scaled))


def test_draw_advances_only_its_own_counter():
    keys = np.array([rng.person_key_np(5, st, 17) for st in range(int(K.N))], np.uint64)
    counters = np.zeros(int(K.N), np.int64)
    counters[Stream.PATHWAY] = 4
    u = rng.draw(keys, counters, Stream.PATHWAY)
    assert u == rng.uniform_np(keys[Stream.PATHWAY], 4)
    expected = np.zeros(int(K.N), np.int64)
    expected[Stream.PATHWAY] = 5
    np.testing.assert_array_equal(counters, expected)
    e = rng.draw_exponential(keys, counters, Stream.DEATH)
    assert e == pytest.approx(-np.log(1.0 - rng.uniform_np(keys[Stream.DEATH], 0)), rel=1e-15)
    assert counters[Stream.DEATH] == 1 and counters[Stream.PATHWAY] == 5


def test_uniform_along_one_stream_chi_square():
    """10^6 successive draws of one key, 100 bins: chi-square below the 1e-6 quantile."""
    key = rng.person_key_np(20060101, Stream.ID_USE, 123)
    u = rng.uniform_np(key, np.arange(1_000_000))
    assert _chi2_uniform(u, 100) < CHI2_1E6[99]


def test_uniform_across_persons_chi_square():
    """Draw k of 10^6 persons (how the ENTRY stream is used), 100 bins, for several k."""
    for stream, k in ((Stream.ENTRY, 0), (Stream.ENTRY, 9), (Stream.USE, 1)):
        keys = rng.person_key_np(20060101, stream, np.arange(1_000_000))
        u = rng.uniform_np(keys, k)
        assert _chi2_uniform(u, 100) < CHI2_1E6[99], (stream, k)


def test_successive_draws_serially_independent():
    """Pairs (u_k, u_k+1) on a 10x10 grid: 99 degrees of freedom, chi-square test."""
    key = rng.person_key_np(7, Stream.POLICE, 42)
    u = rng.uniform_np(key, np.arange(1_000_001))
    a = np.minimum((u[:-1] * 10).astype(np.int64), 9)
    b = np.minimum((u[1:] * 10).astype(np.int64), 9)
    counts = np.bincount(a * 10 + b, minlength=100)
    expected = len(a) / 100
    assert float(((counts - expected) ** 2 / expected).sum()) < CHI2_1E6[99]


def test_person_keys_are_distinct():
    """The key is a bijection of the person index for a fixed seed and stream: no collisions."""
    keys = rng.person_key_np(20060101, Stream.ENTRY, np.arange(500_000))
    assert len(np.unique(keys)) == len(keys)


def test_streams_are_different_sequences():
    persons = np.arange(2000)
    keys = np.stack([rng.person_key_np(11, st, persons) for st in range(int(K.N))])
    # every (stream, person) key differs from every other
    assert len(np.unique(keys)) == keys.size
    seqs = rng.uniform_np(keys[:, :, None], np.arange(50)[None, None, :])  # [stream, person, k]
    for a in range(int(K.N)):
        for b in range(a + 1, int(K.N)):
            assert not np.any(seqs[a] == seqs[b]), (a, b)


def test_streams_uncorrelated():
    """Correlation between the same draw of two streams over 10^5 persons: under independence
    r is about N(0, 1/n), so |r| < 5/sqrt(n) fails with probability < 1e-6."""
    n = 100_000
    persons = np.arange(n)
    u = np.stack([rng.uniform_np(rng.person_key_np(99, st, persons), 0)
                  for st in range(int(K.N))])
    r = np.corrcoef(u)
    off = r[~np.eye(int(K.N), dtype=bool)]
    assert np.abs(off).max() < 5 / np.sqrt(n)


def test_seeds_give_different_keys():
    persons = np.arange(1000)
    ks = [rng.person_key_np(seed, Stream.USE, persons) for seed in SEEDS]
    allk = np.concatenate(ks)
    assert len(np.unique(allk)) == allk.size
    assert rng.person_key(1, 0, 0) != rng.person_key(2, 0, 0)


def test_peek_reads_ahead_without_advancing():
    peek = getattr(rng, "peek", None)
    if peek is None:
        pytest.skip("rng.peek not present")
    keys = np.array([rng.person_key_np(8, st, 3) for st in range(int(K.N))], np.uint64)
    counters = np.arange(int(K.N), dtype=np.int64)
    before = counters.copy()
    for off in range(4):
        assert peek(keys, counters, Stream.TEST, off) == rng.uniform_np(
            keys[Stream.TEST], counters[Stream.TEST] + off)
    np.testing.assert_array_equal(counters, before)
    # a block of peeks then a skip gives the same numbers as the same number of draws
    ahead = [peek(keys, counters, Stream.TEST, off) for off in range(3)]
    counters[Stream.TEST] += 3
    c2 = before.copy()
    assert ahead == [rng.draw(keys, c2, Stream.TEST) for _ in range(3)]
    np.testing.assert_array_equal(counters, c2)
