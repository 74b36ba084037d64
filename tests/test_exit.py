"""Exit: the law (Regulation art. 7, paper fn 35-37) and its practice (fn 38-47).

The law: three years since the last detected use, and at least 22 negative tests after
community detoxification, 12 after community rehabilitation (and, as assumed, 12 for everyone
else). The practice: release waits for a record update; many releases are partial; serious
areas release no one; exit never deletes the record.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from conftest import blank_state, day_of, jur
from dcsim import exit
from dcsim.catalogue import Par
from dcsim.measures import N_FLOWS, Flow, Stock
from dcsim.model import trace_person
from dcsim.rng import Stream
from dcsim.state import NEVER, F, Pathway, Release, S

MIN_BY_KIND = {0: Par.EXIT__MIN_NEGATIVE_TESTS__OTHER,
               1: Par.EXIT__MIN_NEGATIVE_TESTS__COMMUNITY_DETOX,
               2: Par.EXIT__MIN_NEGATIVE_TESTS__COMMUNITY_REHAB}


def _binomial_ok(k: float, n: float, p: float) -> None:
    assert n > 0
    assert abs(k / n - p) <= 4 * math.sqrt(p * (1 - p) / n), (k / n, p, n)


# ------------------------------------------------------------------ the rules


def test_minimum_tests_by_last_order(P):
    s, *_ = blank_state()
    assert [P[MIN_BY_KIND[kind]] for kind in (0, 1, 2)] == [12, 22, 12]
    for kind in (0, 1, 2):
        s[S.ORDER_KIND] = kind
        assert exit.min_tests(s, P) == P[MIN_BY_KIND[kind]]


def test_meets_law_boundaries(P):
    s, *_ = blank_state()
    s[S.ORDER_KIND] = 1
    s[S.LAST_DETECT] = 100
    s[S.NEG_TESTS] = 22
    assert not exit.meets_law(s, 100 + 1094, P)
    assert exit.meets_law(s, 100 + 1095, P)
    s[S.NEG_TESTS] = 21
    assert not exit.meets_law(s, 100 + 5000, P)


def test_law_judged_on_the_record_unless_the_oracle_rule(P):
    s, *_ = blank_state()
    s[S.NEG_TESTS] = 12
    s[S.LAST_DETECT] = 0
    s[S.USING] = 1  # undetected use does not stop the record's clock
    assert P[Par.EXIT__JUDGED_ON_TRUE_ABSTINENCE] == 0
    assert exit.meets_law(s, 1095, P)
    P[Par.EXIT__JUDGED_ON_TRUE_ABSTINENCE] = 1
    assert not exit.meets_law(s, 1095, P)
    s[S.USING] = 0
    s[S.ABST_START] = 2000
    assert not exit.meets_law(s, 2000 + 1093, P)
    assert exit.meets_law(s, 2000 + 1094, P)  # 1095 days counting the first


def test_eligibility_opens_an_episode_with_three_exit_draws(P):
    s, f, keys, k = blank_state()
    keys[:] = 12345
    P[Par.EXIT__CRIMINAL_CASE_SHARE] = 0.0  # the fn 37 condition: its own test below
    s[S.NEG_TESTS] = 12
    fl = np.zeros(N_FLOWS, np.int64)
    assert not exit.check_eligibility(s, f, 1094, P, keys, k, fl)
    assert k.sum() == 0 and s[S.ELIGIBLE] == NEVER
    assert exit.check_eligibility(s, f, 1095, P, keys, k, fl)
    assert s[S.ELIGIBLE] == 1095 and fl[Flow.NEWLY_ELIGIBLE] == 1
    assert k[Stream.EXIT] == 3 and k.sum() == 3
    assert 0 <= f[F.EXIT_U_UPDATE] < 1 and f[F.EXIT_DELAY] >= 0 and 0 <= f[F.EXIT_U_PARTIAL] < 1
    # once open, no second episode and no more draws
    assert not exit.check_eligibility(s, f, 1200, P, keys, k, fl)
    assert k.sum() == 3 and fl[Flow.NEWLY_ELIGIBLE] == 1


def test_a_drug_related_criminal_case_bars_exit_for_good(P):
    """fn 37: with a record of a drug-related criminal case no episode opens, at any time and
    without a draw; the record is the person's (a reserved EXIT draw), held by about
    criminal_case_share of people, and no other EXIT draw depends on the share."""
    from dcsim.rng import person_key_np

    n = 20_000
    exit_keys = person_key_np(31, Stream.EXIT, np.arange(n))
    share = 0.3
    P[Par.EXIT__CRIMINAL_CASE_SHARE] = share
    barred = np.array([exit.has_criminal_case(np.array([0] * Stream.EXIT + [key], np.uint64), P)
                       for key in exit_keys])
    assert abs(barred.mean() - share) <= 4 * math.sqrt(share * (1 - share) / n)
    s, f, keys, k = blank_state()
    s[S.NEG_TESTS] = 30
    fl = np.zeros(N_FLOWS, np.int64)
    first = int(np.flatnonzero(barred)[0])
    keys[Stream.EXIT] = exit_keys[first]
    for day in (1095, 3000, 6000):
        assert not exit.check_eligibility(s, f, day, P, keys, k, fl)
    assert k.sum() == 0 and s[S.ELIGIBLE] == NEVER and fl.sum() == 0
    P[Par.EXIT__CRIMINAL_CASE_SHARE] = 0.0  # the same person without the condition
    assert exit.check_eligibility(s, f, 1095, P, keys, k, fl) and k[Stream.EXIT] == 3
    free = int(np.flatnonzero(~barred)[0])  # a person the share does not bar: same draws
    draws = []
    for q in (0.0, share):
        P[Par.EXIT__CRIMINAL_CASE_SHARE] = q
        s, f, keys, k = blank_state()
        s[S.NEG_TESTS] = 30
        keys[Stream.EXIT] = exit_keys[free]
        assert exit.check_eligibility(s, f, 1095, P, keys, k, fl)
        draws.append(f.copy())
    np.testing.assert_array_equal(draws[0], draws[1])


def test_the_criminal_case_share_is_a_labelled_assumption(national_params):
    assert 0.0 < national_params[Par.EXIT__CRIMINAL_CASE_SHARE] <= 0.2


@pytest.mark.parametrize(("field", "value"), [(S.IN_REGISTRY, 0), (S.RELEASE, Release.PARTIAL),
                                              (S.RELEASE, Release.FULL)])
def test_no_episode_out_of_control(P, field, value):
    s, f, keys, k = blank_state()
    s[S.NEG_TESTS] = 30
    s[field] = value
    fl = np.zeros(N_FLOWS, np.int64)
    assert not exit.check_eligibility(s, f, 5000, P, keys, k, fl)
    assert s[S.ELIGIBLE] == NEVER and fl.sum() == 0


def test_schedule_release(P):
    s, f, *_ = blank_state()
    s[S.ELIGIBLE] = 1000
    f[F.EXIT_DELAY] = 0.5
    f[F.EXIT_U_UPDATE] = P[Par.EXIT__RECORD_UPDATE_PROBABILITY] - 1e-9
    exit.schedule_release(s, f, 1000, P)
    assert s[S.RELEASE_DUE] == 1000 + int(0.5 * P[Par.EXIT__MEAN_UPDATE_DELAY_DAYS])
    exit.schedule_release(s, f, 1300, P)  # a later rule change: never in the past
    assert s[S.RELEASE_DUE] == 1300
    f[F.EXIT_U_UPDATE] = P[Par.EXIT__RECORD_UPDATE_PROBABILITY]  # the update never comes
    exit.schedule_release(s, f, 1000, P)
    assert s[S.RELEASE_DUE] == NEVER
    f[F.EXIT_U_UPDATE] = 0.0
    P[Par.EXIT__RELEASE_ALLOWED] = 0  # a serious area
    exit.schedule_release(s, f, 1000, P)
    assert s[S.RELEASE_DUE] == NEVER
    P[Par.EXIT__RELEASE_ALLOWED] = 1
    s[S.ELIGIBLE] = NEVER
    exit.schedule_release(s, f, 1000, P)
    assert s[S.RELEASE_DUE] == NEVER


@pytest.mark.parametrize(("u_partial", "deleted", "status", "flows"), [
    (0.1, 0, Release.PARTIAL, {Flow.RELEASES_PARTIAL: 1}),
    (0.9, 0, Release.FULL, {Flow.RELEASES_FULL: 1}),
    (0.9, 1, Release.DELETED, {Flow.RELEASES_FULL: 1, Flow.RECORD_DELETIONS: 1}),
    (0.1, 1, Release.PARTIAL, {Flow.RELEASES_PARTIAL: 1}),
])
def test_release(P, u_partial, deleted, status, flows):
    s, f, *_ = blank_state()
    s[S.RELEASE_DUE] = 10
    f[F.EXIT_U_PARTIAL] = u_partial
    P[Par.EXIT__RECORD_DELETED_ON_EXIT] = deleted
    fl = np.zeros(N_FLOWS, np.int64)
    exit.release(s, f, P, fl)
    assert s[S.RELEASE] == status and s[S.RELEASE_DUE] == NEVER
    expected = np.zeros(N_FLOWS, np.int64)
    for col, v in flows.items():
        expected[col] = v
    np.testing.assert_array_equal(fl, expected)


def test_end_episode():
    for status, flow in ((Release.CONTROL, None), (Release.PARTIAL, Flow.RELEASES_REVOKED),
                         (Release.FULL, Flow.RELEASES_REVOKED), (Release.DELETED, Flow.REENTRIES)):
        s, *_ = blank_state()
        s[S.RELEASE] = status
        s[S.ELIGIBLE] = 5
        s[S.RELEASE_DUE] = 9
        fl = np.zeros(N_FLOWS, np.int64)
        exit.end_episode(s, fl)
        assert s[S.RELEASE] == Release.CONTROL
        assert s[S.ELIGIBLE] == NEVER and s[S.RELEASE_DUE] == NEVER
        assert fl.sum() == (0 if flow is None else 1) and (flow is None or fl[flow] == 1)


# ------------------------------------------------------------------ in the engine


def _last_order_kind(df, upto):
    kinds = df.pathway.iloc[: upto + 1]
    kinds = kinds[kinds.isin([Pathway.COMMUNITY_DETOX, Pathway.COMMUNITY_REHAB])]
    return 0 if kinds.empty else int(kinds.iloc[-1])


def test_nobody_released_before_the_law_allows(baseline, baseline_prepared, trace_cache):
    """At every release event: three years since the last detected use, and at least the
    minimum of negative tests for the last community order."""
    P0 = baseline_prepared.table[0, 0]
    pop = baseline.population
    released = np.flatnonzero(pop.out("first_release_day") != NEVER)
    assert len(released) > 400  # enough to sample 150 releases (about 540 in the baseline)
    n_events = 0
    for i in released[:: max(1, len(released) // 150)]:
        df = trace_cache(i)
        for pos in np.flatnonzero(df.event.to_numpy() == "release"):
            r = df.iloc[pos]
            assert r.day - r.last_detect >= P0[Par.EXIT__ABSTINENCE_DAYS_REQUIRED], (i, r)
            assert r.neg_tests >= P0[MIN_BY_KIND[_last_order_kind(df, pos)]], (i, r)
            assert r.release in (Release.PARTIAL, Release.FULL)
            assert r.eligible <= r.day
            n_events += 1
        assert df.day[df.release != Release.CONTROL].min() == pop.out("first_release_day")[i]
    assert n_events >= 150


def test_no_release_in_the_serious_area(baseline):
    j = jur(baseline, "serious_area")
    fl, st = baseline.flows, baseline.stocks
    assert fl[j, :, Flow.RELEASES_FULL].sum() == 0 and fl[j, :, Flow.RELEASES_PARTIAL].sum() == 0
    assert np.all(st[j, :, Stock.PARTIALLY_RELEASED] == 0) and np.all(st[j, :, Stock.RELEASED] == 0)
    pop = baseline.population
    assert np.all(pop.out("first_release_day")[pop.jurisdiction == j] == NEVER)
    # people there do meet the law's three years, and stay trapped for that reason
    assert st[j, -1, Stock.TRAPPED_NO_RELEASE_AREA] > 0
    others = [k for k in range(st.shape[0]) if k != j]
    assert np.all(st[others, :, Stock.TRAPPED_NO_RELEASE_AREA] == 0)
    # and elsewhere people are released
    assert fl[others, :, Flow.RELEASES_FULL].sum() > 0


def test_records_never_deleted_in_the_baseline(baseline):
    assert baseline.flows[:, :, Flow.RECORD_DELETIONS].sum() == 0
    assert baseline.flows[:, :, Flow.REENTRIES].sum() == 0


def test_partial_release_share(baseline, P):
    fl = baseline.flows.sum(axis=(0, 1))
    n = fl[Flow.RELEASES_FULL] + fl[Flow.RELEASES_PARTIAL]
    _binomial_ok(fl[Flow.RELEASES_PARTIAL], n, P[Par.EXIT__PARTIAL_RELEASE_SHARE])


def test_record_update_probability(run_with, P):
    """With no delay, an eligible person is released on the day of eligibility if the record
    is ever updated: releases per new episode = record_update_probability (binomial). The
    serious area releases no one, so it is left out."""
    run = run_with({"exit.mean_update_delay_days": 0, "exit.record_update_probability": 0.5})
    j = jur(run, "serious_area")
    keep = [k for k in range(run.flows.shape[0]) if k != j]
    fl = run.flows[keep].sum(axis=(0, 1))
    n = fl[Flow.NEWLY_ELIGIBLE]
    _binomial_ok(fl[Flow.RELEASES_FULL] + fl[Flow.RELEASES_PARTIAL], n, 0.5)
    pop = run.population
    ok = (pop.out("first_release_day") != NEVER) & (pop.out("eligible_day") != NEVER)
    assert np.all(pop.out("first_release_day")[ok] <= pop.out("eligible_day")[ok])


def test_delay_from_eligibility_to_release(baseline, trace_cache):
    """Among released persons, release comes int(E x mean delay) days after eligibility,
    E exponential, with the mean in force on the day of release (a rule change moves a
    pending release with the episode's own draw): the mean of delay / mean over those
    released before the end is below 1 (right-censoring), but of its order."""
    pop = baseline.population
    table, months = baseline.prepared.table, baseline.prepared.month_of_day
    ratios = []
    for i in np.flatnonzero(pop.out("first_release_day") != NEVER)[::7][:300]:
        df = trace_cache(i)
        first = df[df.event == "release"].iloc[0]
        P_then = table[int(pop.jurisdiction[i]), months[int(first.day)]]
        ratios.append((first.day - first.eligible) / P_then[Par.EXIT__MEAN_UPDATE_DELAY_DAYS])
    ratios = np.array(ratios)
    assert ratios.min() >= 0
    # E has mean 1 and sd 1: the mean of n draws is 1 within 3 / sqrt(n), censoring lowers it
    assert 0.4 < ratios.mean() < 1 + 3 / np.sqrt(len(ratios))


def test_eligible_stock_counts_open_episodes(baseline):
    pop = baseline.population
    in_reg = pop.out("control_code") >= 0
    eligible = pop.out("eligible_day") != NEVER
    got = np.bincount(pop.jurisdiction[in_reg & eligible], minlength=baseline.stocks.shape[0])
    np.testing.assert_array_equal(baseline.stocks[:, -1, Stock.ELIGIBLE_BY_LAW], got)


def test_deletion_reform(run_with):
    run = run_with({"exit.record_deleted_on_exit": [("2016-01-01", None, 1)]})
    fl, st = run.flows, run.stocks
    # from the reform on, every full release deletes; on its first day the records of those
    # fully released before it are deleted too, so no released person keeps a record
    before = np.zeros(fl.shape[:2], np.int64)
    before[:, 120] = st[:, 119, Stock.RELEASED]
    np.testing.assert_array_equal(fl[:, :, Flow.RECORD_DELETIONS], fl[:, :, Flow.RELEASES_FULL]
                                  * (np.arange(fl.shape[1]) >= 120)[None, :] + before)
    assert before.sum() > 0 and np.all(st[:, 120:, Stock.RELEASED] == 0)
    # records held now fall by deletions too; re-entries bring deleted persons back
    ent = fl[:, :, [Flow.ENTRIES_DETAINED_POSITIVE, Flow.ENTRIES_STOPPED_NOT_DETAINED,
                    Flow.ENTRIES_VOLUNTARY, Flow.ENTRIES_DATA_ERROR,
                    Flow.ENTRIES_PRE_LAUNCH]].sum(axis=2)
    change = ent - fl[:, :, Flow.ERROR_CORRECTIONS] - fl[:, :, Flow.RECORD_DELETIONS] \
        + fl[:, :, Flow.REENTRIES]
    np.testing.assert_array_equal(st[:, :, Stock.RECORDS_HELD], np.cumsum(change, axis=1))
    assert np.all(st[:, :, Stock.RELEASED] >= 0)


RULE_CHANGE = dt.date(2016, 1, 1)


def test_lowered_test_minimum_applies_from_its_date(run_with):
    """Reform: from 2016 no minimum of tests. Anyone under control, with no open episode and
    three years without detected use on 1 January 2016 meets the law that day, so the row of
    the rule_change event must show them eligible from that day."""
    run = run_with({"exit.min_negative_tests.other": [("2016-01-01", None, 0)],
                    "exit.min_negative_tests.dependent_no_order": [("2016-01-01", None, 0)],
                    "exit.min_negative_tests.community_detox": [("2016-01-01", None, 0)],
                    "exit.min_negative_tests.community_rehab": [("2016-01-01", None, 0)],
                    # nobody barred by fn 37 (its own test above), so every candidate counts
                    "exit.criminal_case_share": [("2006-01-01", None, 0.0)]})
    rc = day_of(RULE_CHANGE)
    pop = run.population
    cand = np.flatnonzero((pop.entry_day < rc - 1095) & (pop.jurisdiction == 0))[:150]
    checked = missed = 0
    for i in cand:
        df = trace_person(run, int(i))
        before, at = df[df.day < rc], df[(df.day == rc) & (df.event == "rule_change")]
        if before.empty or at.empty:
            continue
        last = before.iloc[-1]
        if (last.in_registry == 1 and last.release == Release.CONTROL and last.eligible == NEVER
                and rc - last.last_detect >= 1095):
            checked += 1
            missed += int(at.iloc[0].eligible != rc)
    assert checked > 10
    assert missed == 0, f"{missed} of {checked} persons meeting the new rule not made eligible"


@pytest.mark.parametrize(("status", "u_partial", "share", "deleted", "due", "after", "flows"), [
    # a partial release the new share no longer covers becomes full that day
    (Release.PARTIAL, 0.3, 0.0, 0, 500, Release.FULL, {Flow.RELEASES_FULL: 1}),
    (Release.PARTIAL, 0.3, 0.0, 1, 500, Release.DELETED,
     {Flow.RELEASES_FULL: 1, Flow.RECORD_DELETIONS: 1}),
    (Release.PARTIAL, 0.3, 0.5, 0, NEVER, Release.PARTIAL, {}),  # still covered: unchanged
    # under deletion a full release loses its record (not a second release)
    (Release.FULL, 0.9, 0.5, 1, 500, Release.DELETED, {Flow.RECORD_DELETIONS: 1}),
    (Release.FULL, 0.9, 0.5, 0, NEVER, Release.FULL, {}),
])
def test_a_rule_change_rejudges_releases(P, status, u_partial, share, deleted, due, after,
                                         flows):
    """schedule_release on a rule change (the reform switches of data/reforms)."""
    s, f, *_ = blank_state()
    s[S.RELEASE] = status
    s[S.ELIGIBLE] = 100
    f[F.EXIT_U_PARTIAL] = u_partial
    P[Par.EXIT__PARTIAL_RELEASE_SHARE] = share
    P[Par.EXIT__RECORD_DELETED_ON_EXIT] = deleted
    exit.schedule_release(s, f, 500, P)
    assert s[S.RELEASE_DUE] == due
    fl = np.zeros(N_FLOWS, np.int64)
    if due != NEVER:
        exit.release(s, f, P, fl)
    assert s[S.RELEASE] == after
    expected = np.zeros(N_FLOWS, np.int64)
    for col, v in flows.items():
        expected[col] = v
    np.testing.assert_array_equal(fl, expected)
