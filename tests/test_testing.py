"""Urine tests and what a detection sets in motion (paper fn 17-18, 35-37, 71, 76-77).

The system acts on what it detects, not on the truth: a positive resets the record of
abstinence and the count of negative tests, ends any exit episode or release, and makes the
person extreme risk. Every detection in a run is accounted for by exactly one source.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import blank_state
from dcsim.catalogue import Par
from dcsim.measures import N_FLOWS, Flow
from dcsim.rng import Stream, person_key_np
from dcsim.state import NEVER, F, Pathway, Release, S, Tier
from dcsim.testing import is_positive, record_detection, record_negative


def test_is_positive_uses_sensitivity_or_false_positive_rate(P):
    s, *_ = blank_state()
    sens = P[Par.MANAGEMENT__TEST_SENSITIVITY]
    fp = P[Par.MANAGEMENT__TEST_FALSE_POSITIVE]
    assert 0 < fp < sens < 1
    s[S.USING] = 1
    assert is_positive(s, P, sens - 1e-12) and not is_positive(s, P, sens)
    s[S.USING] = 0
    assert is_positive(s, P, fp - 1e-12) and not is_positive(s, P, fp)
    assert not is_positive(s, P, sens - 1e-12)
    s[S.NEVER_USED] = 1  # a person registered in error tests like any non-user
    assert is_positive(s, P, 0.0) and not is_positive(s, P, fp)


def test_record_negative_counts_regular_tests(P):
    """Only regular (scheduled) tests count towards the exit minimum, unless the rules count
    tests at alerts and inspections too (exit.unscheduled_tests_count)."""
    s, *_ = blank_state()
    assert P[Par.EXIT__UNSCHEDULED_TESTS_COUNT] == 0
    for n in range(1, 4):
        record_negative(s, P, True)
        assert s[S.NEG_TESTS] == n
    record_negative(s, P, False)
    assert s[S.NEG_TESTS] == 3
    P[Par.EXIT__UNSCHEDULED_TESTS_COUNT] = 1
    record_negative(s, P, False)
    assert s[S.NEG_TESTS] == 4


@pytest.mark.parametrize("release", [Release.CONTROL, Release.PARTIAL, Release.FULL,
                                     Release.DELETED])
def test_detection_resets_the_record(P, release):
    s, f, keys, k = blank_state()
    s[S.USING] = 1
    s[S.TIER] = Tier.LOW
    s[S.NEG_TESTS] = 17
    s[S.LAST_DETECT] = 10
    s[S.ELIGIBLE] = 1200
    s[S.RELEASE_DUE] = 1500
    s[S.RELEASE] = release
    s[S.FLIPS_DONE] = 7
    s[S.PATHWAY] = Pathway.NONE
    fl = np.zeros(N_FLOWS, np.int64)
    record_detection(s, 2000, P, keys, k, fl)
    assert s[S.LAST_DETECT] == 2000 and s[S.NEG_TESTS] == 0 and s[S.DETECTIONS] == 1
    from dcsim.official_statistics import official_flip_day
    assert s[S.OFFICIAL_FLIP] == official_flip_day(2000, P, keys)  # the one place of the rule
    assert s[S.EXIT_FLIP] == 2000 + int(P[Par.EXIT__ABSTINENCE_DAYS_REQUIRED])
    assert s[S.FLIPS_DONE] == 4  # record flips to be redone; the true state is not touched
    assert s[S.ELIGIBLE] == NEVER and s[S.RELEASE_DUE] == NEVER
    assert s[S.RELEASE] == Release.CONTROL
    assert s[S.TIER] == int(P[Par.MANAGEMENT__TIER_AFTER_DETECTED_USE]) == Tier.EXTREME
    iv = int(P[Par.MANAGEMENT__REASSESSMENT_INTERVAL_DAYS])
    assert 2000 < s[S.NEXT_ASSESS] <= 2000 + iv  # assessments resume, on the entry's cycle
    assert (s[S.NEXT_ASSESS] - s[S.ENTRY]) % iv == 0
    # a new order outside any order (an isolation order not carried out leaves no pathway)
    assert s[S.PATHWAY] != Pathway.NONE or fl[Flow.ORDERS_ISOLATION] == 1
    assert fl[Flow.DETECTED_RELAPSES] == 1 and fl[Flow.FALSE_POSITIVE_DETECTIONS] == 0
    assert fl[Flow.RELEASES_REVOKED] == (release in (Release.PARTIAL, Release.FULL))
    assert fl[Flow.REENTRIES] == (release == Release.DELETED)
    assert k.sum() == 3  # the order decision's three PATHWAY draws, nothing else
    assert f[F.EXIT_DELAY] == 0.0


def test_false_positive_detection_is_counted(P):
    s, f, keys, k = blank_state()
    fl = np.zeros(N_FLOWS, np.int64)
    record_detection(s, 5, P, keys, k, fl)
    assert fl[Flow.DETECTED_RELAPSES] == 1 and fl[Flow.FALSE_POSITIVE_DETECTIONS] == 1


def test_every_detection_has_one_source(baseline):
    fl = baseline.flows
    sources = (fl[:, :, Flow.SCHEDULED_TEST_POSITIVES] + fl[:, :, Flow.ALERT_POSITIVES]
               + fl[:, :, Flow.INSPECTION_POSITIVES] + fl[:, :, Flow.ENCOUNTER_DETECTIONS])
    np.testing.assert_array_equal(fl[:, :, Flow.DETECTED_RELAPSES], sources)
    assert np.all(fl[:, :, Flow.FALSE_POSITIVE_DETECTIONS] <= fl[:, :, Flow.DETECTED_RELAPSES])
    for src in (Flow.SCHEDULED_TEST_POSITIVES, Flow.ALERT_POSITIVES, Flow.INSPECTION_POSITIVES,
                Flow.ENCOUNTER_DETECTIONS):
        assert fl[:, :, src].sum() > 0, src
    # persons' own counts add up to the flows
    assert baseline.population.out("detections").sum() == fl[:, :, Flow.DETECTED_RELAPSES].sum()


def test_positives_never_exceed_tests(baseline):
    fl = baseline.flows
    assert np.all(fl[:, :, Flow.SCHEDULED_TEST_POSITIVES] <= fl[:, :, Flow.SCHEDULED_TESTS_DONE])
    assert np.all(fl[:, :, Flow.SCHEDULED_TESTS_DONE] <= fl[:, :, Flow.SCHEDULED_TESTS_DUE])
    assert np.all(fl[:, :, Flow.ALERT_POSITIVES] <= fl[:, :, Flow.ALERT_TESTS])
    insp = fl[:, :, Flow.INSPECTIONS_HOME] + fl[:, :, Flow.INSPECTIONS_WORKPLACE]
    assert np.all(fl[:, :, Flow.INSPECTION_POSITIVES] <= insp)


def test_detection_in_the_trace_resets_counts(baseline, trace_cache):
    """Whenever the record shows a new detection, the negative-test count is back to zero,
    the tier is extreme and no exit episode or release survives it."""
    pop = baseline.population
    seen = 0
    for i in np.flatnonzero(pop.out("detections") > 0)[::17][:120]:
        df = trace_cache(i)
        new = (df.last_detect == df.day) & (df.last_detect != df.last_detect.shift(1))
        new.iloc[0] = False
        rows = df[new]
        seen += len(rows)
        assert (rows.neg_tests == 0).all() and (rows.tier == Tier.EXTREME).all()
        assert (rows.eligible == NEVER).all() and (rows.release == Release.CONTROL).all()
        assert (rows.release_due == NEVER).all()
        assert rows.event.isin(["scheduled_test", "alert_contact", "inspection", "encounter"]).all()
    assert seen > 100


def test_no_false_positives_without_false_positive_rate(run_with):
    run = run_with({"management.test_false_positive": 0.0})
    assert run.flows[:, :, Flow.FALSE_POSITIVE_DETECTIONS].sum() == 0
    assert run.flows[:, :, Flow.DETECTED_RELAPSES].sum() > 0


def test_perfect_insensitive_tests_detect_nothing(run_with):
    """Sensitivity 0 and no false positives: only police encounters detect use."""
    run = run_with({"management.test_sensitivity": 0.0, "management.test_false_positive": 0.0})
    fl = run.flows
    assert fl[:, :, Flow.SCHEDULED_TEST_POSITIVES].sum() == 0
    assert fl[:, :, Flow.ALERT_POSITIVES].sum() == 0
    assert fl[:, :, Flow.INSPECTION_POSITIVES].sum() == 0
    np.testing.assert_array_equal(fl[:, :, Flow.DETECTED_RELAPSES],
                                  fl[:, :, Flow.ENCOUNTER_DETECTIONS])


def test_only_regular_tests_count_towards_exit(baseline, trace_cache, P):
    """In the baseline (exit.unscheduled_tests_count = 0) the count of negative tests grows
    only at scheduled tests, one at a time, and falls only to zero at a detection."""
    assert P[Par.EXIT__UNSCHEDULED_TESTS_COUNT] == 0
    pop = baseline.population
    grew = 0
    for i in np.arange(0, len(pop), 43)[:200]:
        df = trace_cache(i)
        d = np.diff(df.neg_tests.to_numpy())
        ev = df.event.to_numpy()[1:]
        assert np.all(d <= 1), i
        assert np.all(ev[d == 1] == "scheduled_test"), i
        assert np.all(df.neg_tests.to_numpy()[1:][d < 0] == 0), i
        grew += int((d == 1).sum())
    assert grew > 500


def test_encounters_happen_only_while_using_and_detect(baseline, trace_cache):
    """Police encounters outside the DCS find persons who are using and free; the rate is
    constant, so every candidate encounter is accepted and is a detection."""
    pop = baseline.population
    n = 0
    for i in np.flatnonzero(pop.using_at_entry == 1)[::11][:600]:
        df = trace_cache(i)
        prev = df.shift(1)
        enc = df.event == "encounter"
        assert (prev.using[enc] == 1).all(), i
        assert not prev.pathway[enc].isin([Pathway.ISOLATION, Pathway.VOLUNTARY,
                                           Pathway.DETENTION]).any(), i
        assert (df.last_detect[enc] == df.day[enc]).all(), i
        n += int(enc.sum())
    assert n > 20  # enough encounters for the checks above to mean something


@pytest.mark.parametrize("lag", [0, 365, 730])
def test_official_flip_waits_for_the_record_update(P, lag):
    """With statistics.update_lag_varies off, a record counts as abstinent three years
    statistics.abstinent_days plus statistics.update_lag_days after its last detection
    (paper fn 38, 45), whatever the person's keys."""
    from dcsim.official_statistics import official_flip_day

    P = P.copy()
    P[Par.STATISTICS__UPDATE_LAG_DAYS] = lag
    P[Par.STATISTICS__UPDATE_LAG_VARIES] = 0
    keys = blank_state()[2]
    keys[Stream.EXIT] = person_key_np(5, int(Stream.EXIT), np.arange(1))[0]
    assert official_flip_day(1000, P, keys) == 1000 + int(P[Par.STATISTICS__ABSTINENT_DAYS]) + lag


def test_the_update_lag_varies_by_record_with_the_mean_in_force(P):
    """With statistics.update_lag_varies, the lag is 1 + floor(exponential) days short of the
    mean on average (whole days), over many persons within 4 standard errors; the same record
    (person and detection day) always gets the same lag, so a rule change only rescales it."""
    from dcsim.official_statistics import official_flip_day

    P = P.copy()
    P[Par.STATISTICS__UPDATE_LAG_VARIES] = 1
    n, mean, t = 20_000, 365.0, 1000
    base = t + int(P[Par.STATISTICS__ABSTINENT_DAYS])
    lags = np.empty(n)
    exit_keys = person_key_np(7, int(Stream.EXIT), np.arange(n))
    keys = blank_state()[2]
    for i in range(n):
        keys[Stream.EXIT] = exit_keys[i]
        P[Par.STATISTICS__UPDATE_LAG_DAYS] = mean
        lags[i] = official_flip_day(t, P, keys) - base
        assert official_flip_day(t, P, keys) - base == lags[i]  # the same draw again
        if i < 200:  # twice the mean: the same record's lag, doubled (to the day)
            P[Par.STATISTICS__UPDATE_LAG_DAYS] = 2 * mean
            assert abs((official_flip_day(t, P, keys) - base) - 2 * lags[i]) <= 1
    expected = 1.0 / math.expm1(1.0 / mean)  # E[floor(Exp(mean))]
    assert abs(lags.mean() - expected) <= 4 * mean / math.sqrt(n)
    assert np.mean(lags < mean) == pytest.approx(1 - math.exp(-1), abs=4 * 0.5 / math.sqrt(n))
