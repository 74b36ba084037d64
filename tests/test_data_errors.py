"""Data errors and their correction (paper fn 23-25, 40-41): people registered who never used
drugs, and records removed only through a correction at the provincial level.

Shares use tolerances of 4 binomial standard errors (sum of p_i (1 - p_i) when each person has
their own probability); means of exponential delays 4 sd / sqrt(n). Fixed seeds.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import blank_state, entries
from dcsim.catalogue import Par
from dcsim.data_errors import correction_day
from dcsim.measures import Flow, Stock
from dcsim.rng import Stream, person_key_np
from dcsim.state import NEVER, Path

N = 40_000


@pytest.fixture(scope="module")
def corrections(P):
    s, f, keys, k = blank_state()
    out = np.empty(N, np.int64)
    ek = person_key_np(3, Stream.ERRORS, np.arange(N))
    for i in range(N):
        k[:] = 0
        keys[Stream.ERRORS] = ek[i]
        out[i] = correction_day(100, P, keys, k)
        assert k[Stream.ERRORS] == 2 and k.sum() == 2  # always two ERRORS draws
    return out


@pytest.fixture(scope="module")
def P(national_params):
    return national_params.copy()


def test_complaint_probability(corrections, P):
    p = P[Par.DATA_ERRORS__COMPLAINT_PROBABILITY]
    share = np.mean(corrections != NEVER)
    assert abs(share - p) <= 4 * math.sqrt(p * (1 - p) / N)


def test_correction_delay(corrections, P):
    mean = P[Par.DATA_ERRORS__MEAN_CORRECTION_DAYS]
    d = corrections[corrections != NEVER] - 100
    assert d.min() >= 1  # never on the day of entry
    expected = 1 + 1 / math.expm1(1 / mean)  # 1 + E[floor(Exp(mean))]
    assert abs(d.mean() - expected) <= 4 * mean / math.sqrt(len(d))


def test_registered_in_error_never_use(baseline):
    pop = baseline.population
    err = pop.path == Path.DATA_ERROR
    assert err.sum() > 50
    assert pop.using_at_entry[err].sum() == 0 and pop.dependent[err].sum() == 0
    assert pop.out("using_at_end")[err].sum() == 0
    in_reg = pop.out("control_code") >= 0
    got = np.bincount(pop.jurisdiction[err & in_reg], minlength=baseline.stocks.shape[0])
    np.testing.assert_array_equal(baseline.stocks[:, -1, Stock.TRUE_NEVER_USED], got)


def test_their_detections_are_false_positives(baseline):
    pop = baseline.population
    err = pop.path == Path.DATA_ERROR
    fp = baseline.flows[:, :, Flow.FALSE_POSITIVE_DETECTIONS].sum()
    assert pop.out("detections")[err].sum() <= fp


def test_no_false_positives_no_detection_of_the_innocent(run_with):
    run = run_with({"management.test_false_positive": 0.0})
    pop = run.population
    err = pop.path == Path.DATA_ERROR
    assert pop.out("detections")[err].sum() == 0
    assert run.flows[:, :, Flow.FALSE_POSITIVE_DETECTIONS].sum() == 0
    assert pop.out("detections")[~err].sum() > 0


def test_corrections_only_for_data_errors(baseline):
    err_entries = baseline.flows[:, :, Flow.ENTRIES_DATA_ERROR].sum(axis=1)
    corr = baseline.flows[:, :, Flow.ERROR_CORRECTIONS].sum(axis=1)
    assert np.all(corr <= err_entries)
    assert corr.sum() > 0
    # cumulatively, by month: no more corrections than errors registered so far
    assert np.all(np.cumsum(baseline.flows[:, :, Flow.ERROR_CORRECTIONS], axis=1)
                  <= np.cumsum(baseline.flows[:, :, Flow.ENTRIES_DATA_ERROR], axis=1))


def test_no_complaint_no_correction(run_with):
    run = run_with({"data_errors.complaint_probability": 0.0})
    assert run.flows[:, :, Flow.ERROR_CORRECTIONS].sum() == 0
    assert np.all(np.diff(run.stocks[:, :, Stock.RECORDS_HELD], axis=1) >= 0)


def test_who_leaves_the_registry_without_deaths(run_with):
    """No deaths: those out of the registry at the end are exactly the corrected, all of them
    registered in error, in the number the complaint rule predicts."""
    run = run_with({"drug_use.mortality_per_year": 0.0})
    pop = run.population
    out = pop.out("control_code") < 0
    assert run.flows[:, :, Flow.DEATHS].sum() == 0
    assert np.all(pop.path[out] == Path.DATA_ERROR)
    assert out.sum() == run.flows[:, :, Flow.ERROR_CORRECTIONS].sum()
    np.testing.assert_array_equal(
        run.stocks[:, -1, Stock.RECORDS_HELD],
        entries(run).sum(axis=1) - run.flows[:, :, Flow.ERROR_CORRECTIONS].sum(axis=1))
    # P(corrected by the end) = complaint x P(1 + floor(X) <= n_days - 1 - entry), X ~ Exp(mean)
    P0 = run.prepared.table[0, 0]
    err = pop.path == Path.DATA_ERROR
    left = run.prepared.n_days - 1 - pop.entry_day[err].astype(float)
    p = P0[Par.DATA_ERRORS__COMPLAINT_PROBABILITY] * (
        1 - np.exp(-left / P0[Par.DATA_ERRORS__MEAN_CORRECTION_DAYS]))
    assert abs(out.sum() - p.sum()) <= 4 * math.sqrt((p * (1 - p)).sum())


def test_local_correction_rejudges_pending_complaints(P):
    """data_errors.local_correction: on a rule change a complainant's record is corrected
    within the local time from that day (or sooner if already due); others keep their day."""
    from dcsim.data_errors import rejudge_correction
    from dcsim.rng import uniform_np
    from dcsim.state import S

    s, f, keys, k = blank_state()
    s[S.NEVER_USED] = 1
    ek = person_key_np(5, Stream.ERRORS, np.arange(2000))
    P[Par.DATA_ERRORS__MEAN_CORRECTION_DAYS] = 30
    changed = 0
    for on in (0, 1):
        P[Par.DATA_ERRORS__LOCAL_CORRECTION] = on
        for key in ek:
            keys[Stream.ERRORS] = key
            s[S.CORRECT] = 9000
            rejudge_correction(s, 1000, P, keys)
            u = uniform_np(np.array([key, key]), np.array([0, 1]))
            complains = u[0] < P[Par.DATA_ERRORS__COMPLAINT_PROBABILITY]
            if on and complains:
                assert s[S.CORRECT] == 1001 + int(-30 * math.log(1.0 - u[1]))
                changed += 1
            else:
                assert s[S.CORRECT] == 9000
    assert changed > 400
