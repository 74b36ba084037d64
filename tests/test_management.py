"""Management by risk tier (paper fn 17-21): test, counselling and inspection schedules, the
six-monthly reassessment, Table 1 of Huizhou (fn 19) and Zhaohua's two-monthly tests (fn 75).

Statistical checks use fixed seeds. Counts of Poisson events (inspections) are compared with
rate x exposure with a tolerance of 4 sqrt(expected); shares of Bernoulli outcomes with 4
binomial standard errors, sqrt(p (1 - p) / n). A correct model fails one with probability
about 1e-4.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from conftest import blank_state, jur, month_of
from dcsim import management
from dcsim.catalogue import Par
from dcsim.measures import FIXED_POINT, Flow, Rate, Stock
from dcsim.state import NEVER, Pathway, Release, S, Tier

M2020 = month_of(dt.date(2020, 1, 1))
CONTROL_DAYS = [Rate.CONTROL_DAYS_UNDER_25, Rate.CONTROL_DAYS_25_59, Rate.CONTROL_DAYS_60_PLUS]


def _params(prepared, name):
    return prepared.table[prepared.jurisdictions.index(name), M2020].copy()


# ------------------------------------------------------------------ the rules, one by one


def test_reachable():
    s, *_ = blank_state()
    assert management.reachable(s)
    for field, value in ((S.LOST, 1), (S.IN_REGISTRY, 0), (S.RELEASE, Release.FULL),
                         (S.RELEASE, Release.DELETED), (S.PATHWAY, Pathway.ISOLATION),
                         (S.PATHWAY, Pathway.DETENTION), (S.PATHWAY, Pathway.VOLUNTARY)):
        s2 = s.copy()
        s2[field] = value
        assert not management.reachable(s2), (field, value)
    s2 = s.copy()
    s2[S.RELEASE] = Release.PARTIAL  # partial release: control and assessment go on (fn 45)
    assert management.reachable(s2)


def test_table1_test_and_counselling_intervals(baseline_prepared):
    """Huizhou's Table 1 (fn 19): tests 14/30/182/365 days, counselling 14/30/91/182 days by
    tier, with or without an order."""
    P = _params(baseline_prepared, "table1_locality")
    s, *_ = blank_state()
    for tier, test_iv, counsel_iv in zip(Tier, (14, 30, 182, 365), (14, 30, 91, 182),
                                         strict=True):
        s[S.TIER] = tier
        assert management.test_interval(s, P) == test_iv
        assert management.counselling_interval(s, P) == counsel_iv


def test_national_no_tests_without_an_order(baseline_prepared):
    """Paper fn 46: people with no order generally have no record of regular tests."""
    P = _params(baseline_prepared, "national_default")
    s, *_ = blank_state()
    for tier in Tier:
        s[S.TIER] = tier
        for dep in (0, 1):
            s[S.DEPENDENT] = dep
            assert management.test_interval(s, P) == 0.0
        assert management.counselling_interval(s, P) > 0  # counselling still goes on


def test_zhaohua_two_monthly_for_the_non_dependent(baseline_prepared):
    P = _params(baseline_prepared, "two_monthly_locality")
    s, *_ = blank_state()
    s[S.TIER] = Tier.LOW
    s[S.DEPENDENT] = 0
    assert management.test_interval(s, P) == 61
    s[S.DEPENDENT] = 1
    assert management.test_interval(s, P) == 0.0


@pytest.mark.parametrize("pathway", [Pathway.COMMUNITY_DETOX, Pathway.COMMUNITY_REHAB])
def test_programme_schedule_in_community_orders(baseline_prepared, pathway):
    P = _params(baseline_prepared, "national_default")
    prog = P[Par.MANAGEMENT__PROGRAMME_TEST_INTERVAL_DAYS__COMMUNITY_DETOX
             if pathway == Pathway.COMMUNITY_DETOX
             else Par.MANAGEMENT__PROGRAMME_TEST_INTERVAL_DAYS__COMMUNITY_REHAB]
    s, *_ = blank_state()
    s[S.PATHWAY] = pathway
    s[S.ORDER_ACTIVE] = 1
    for tier in Tier:
        s[S.TIER] = tier
        tier_iv = P[Par.MANAGEMENT__TEST_INTERVAL_DAYS__EXTREME + tier]
        assert management.test_interval(s, P) == min(prog, tier_iv)
    s[S.ORDER_ACTIVE] = 0  # an order not carried out: no programme tests
    assert management.test_interval(s, P) == 0.0


def test_no_schedule_when_unreachable(baseline_prepared):
    P = _params(baseline_prepared, "table1_locality")
    s, *_ = blank_state()
    s[S.PATHWAY] = Pathway.COMMUNITY_DETOX
    s[S.ORDER_ACTIVE] = 1
    for field, value in ((S.LOST, 1), (S.RELEASE, Release.FULL), (S.IN_REGISTRY, 0)):
        s2 = s.copy()
        s2[field] = value
        assert management.test_interval(s2, P) == 0.0
        assert management.counselling_interval(s2, P) == 0.0
        assert management.inspection_rate(s2, P) == 0.0
    s2 = s.copy()
    s2[S.PATHWAY] = Pathway.ISOLATION
    assert management.test_interval(s2, P) == 0.0
    assert management.inspection_rate(s2, P) == 0.0


def test_inspection_rate_by_tier(P):
    s, *_ = blank_state()
    for tier in Tier:
        s[S.TIER] = tier
        assert management.inspection_rate(s, P) == P[
            Par.MANAGEMENT__INSPECTION_RATE_PER_YEAR__EXTREME + tier]


def test_reschedule_only_brings_tests_forward(baseline_prepared):
    P = _params(baseline_prepared, "table1_locality")
    s, *_ = blank_state()
    s[S.TIER] = Tier.LOW
    management.reschedule_test(s, 100, P)
    assert s[S.NEXT_TEST] == 465
    s[S.TIER] = Tier.EXTREME  # tighter: the next test comes forward
    management.reschedule_test(s, 200, P)
    assert s[S.NEXT_TEST] == 214
    s[S.TIER] = Tier.LOW  # looser: the test already due stays
    management.reschedule_test(s, 201, P)
    assert s[S.NEXT_TEST] == 214
    s[S.LOST] = 1  # none due: dropped
    management.reschedule_test(s, 202, P)
    assert s[S.NEXT_TEST] == NEVER
    # where a stricter tier waits for the test already due, only a stopped schedule restarts
    P[Par.MANAGEMENT__BRING_TEST_FORWARD] = 0
    s[S.LOST] = 0
    management.reschedule_test(s, 300, P)
    assert s[S.NEXT_TEST] == 665
    s[S.TIER] = Tier.EXTREME
    management.reschedule_test(s, 301, P)
    assert s[S.NEXT_TEST] == 665


def test_reassessment_steps_down_after_a_year_without_detection(P):
    """Reassessed every six months of control counted from entry (fn 20); a year without
    detected use lowers the tier a step."""
    step = int(P[Par.MANAGEMENT__STEP_DOWN_AFTER_DAYS])
    iv = int(P[Par.MANAGEMENT__REASSESSMENT_INTERVAL_DAYS])
    assert (step, iv) == (365, 182)
    s, *_ = blank_state()
    s[S.ENTRY] = 40

    def next_date(t):  # the first six-monthly date after t
        return 40 + iv * ((t - 40) // iv + 1)

    s[S.TIER] = Tier.EXTREME
    s[S.LAST_DETECT] = 1000
    assert not management.reassess(s, 1000 + step - 1, P)
    assert s[S.TIER] == Tier.EXTREME and s[S.NEXT_ASSESS] == next_date(1000 + step - 1)
    assert management.reassess(s, 1000 + step, P)
    assert s[S.TIER] == Tier.HIGH and s[S.NEXT_ASSESS] == next_date(1000 + step)
    assert 1000 + step < s[S.NEXT_ASSESS] <= 1000 + step + iv
    assert management.reassess(s, 2000, P) and s[S.TIER] == Tier.MEDIUM
    assert management.reassess(s, 2200, P) and s[S.TIER] == Tier.LOW
    assert s[S.NEXT_ASSESS] == NEVER  # lowest tier: nothing left to assess
    assert not management.reassess(s, 2400, P) and s[S.TIER] == Tier.LOW
    s[S.TIER] = Tier.HIGH
    s[S.RELEASE] = Release.FULL  # out of control: one last step, then no more assessments
    management.reassess(s, 2600, P)
    assert s[S.NEXT_ASSESS] == NEVER


def test_step_down_judged_on_the_record_not_the_truth(P):
    """The tier follows what the system detects (fn 17-18): an undetected relapse does not
    stop the step down; the oracle rule (for counterfactuals) judges true abstinence."""
    s, *_ = blank_state()
    s[S.TIER] = Tier.HIGH
    s[S.LAST_DETECT] = 0
    s[S.USING] = 1  # using, undetected
    assert P[Par.MANAGEMENT__STEP_DOWN_ON_TRUE_ABSTINENCE] == 0
    assert management.reassess(s, 400, P) and s[S.TIER] == Tier.MEDIUM
    P[Par.MANAGEMENT__STEP_DOWN_ON_TRUE_ABSTINENCE] = 1
    assert not management.reassess(s, 600, P) and s[S.TIER] == Tier.MEDIUM
    s[S.USING] = 0
    s[S.ABST_START] = 600 - 365 + 1  # 365 days counting the first
    assert management.reassess(s, 600, P) and s[S.TIER] == Tier.LOW


# ------------------------------------------------------------------ in the engine


def _scheduled_gaps(df):
    """(tier, pathway, gap) between consecutive scheduled tests with the person reachable and
    at one tier throughout (rows from the first test up to the one before the second)."""
    tier = df.tier.to_numpy()
    pathway = df.pathway.to_numpy()
    bad = np.isin(pathway, [Pathway.ISOLATION, Pathway.VOLUNTARY, Pathway.DETENTION]) \
        | (df.release.to_numpy() > Release.PARTIAL)
    change = np.concatenate([[0], tier[1:] != tier[:-1]])
    cum_bad, cum_change = np.cumsum(bad), np.cumsum(change)
    day = df.day.to_numpy()
    tests = np.flatnonzero(df.event.to_numpy() == "scheduled_test")
    out = []
    for a, b in zip(tests[:-1], tests[1:], strict=True):
        # rows a..b-1: no custody or release among them, no tier change after row a
        n_bad = cum_bad[b - 1] - (cum_bad[a - 1] if a else 0)
        if n_bad == 0 and cum_change[b - 1] == cum_change[a]:
            out.append((int(tier[a]), int(pathway[a]), int(day[b] - day[a])))
    return out


def test_table1_intervals_in_the_trace(baseline, baseline_prepared, trace_cache):
    """Huizhou locality: an extreme-risk person's scheduled tests are 14 days apart, a high-risk
    person's 30; in a community order the tighter of Table 1 and the programme applies."""
    P = _params(baseline_prepared, "table1_locality")
    prog = {Pathway.COMMUNITY_DETOX:
            int(P[Par.MANAGEMENT__PROGRAMME_TEST_INTERVAL_DAYS__COMMUNITY_DETOX]),
            Pathway.COMMUNITY_REHAB:
            int(P[Par.MANAGEMENT__PROGRAMME_TEST_INTERVAL_DAYS__COMMUNITY_REHAB])}
    pop = baseline.population
    sample = np.flatnonzero(pop.jurisdiction == jur(baseline, "table1_locality"))[:120]
    gaps = [g for i in sample for g in _scheduled_gaps(trace_cache(i))]
    by_tier = {t: {g for tier, _, g in gaps if tier == t} for t in Tier}
    assert by_tier[Tier.EXTREME] == {14}
    assert by_tier[Tier.HIGH] == {30}
    for tier, pathway, gap in gaps:
        tier_iv = P[Par.MANAGEMENT__TEST_INTERVAL_DAYS__EXTREME + tier]
        allowed = {tier_iv}  # no order, or an order not carried out
        if pathway in prog:
            allowed.add(min(tier_iv, prog[pathway]))
        assert gap in allowed, (tier, pathway, gap)
    assert len(gaps) > 500


def test_two_monthly_tests_only_for_the_non_dependent_in_zhaohua(baseline, trace_cache):
    pop = baseline.population
    sample = np.flatnonzero(pop.jurisdiction == jur(baseline, "two_monthly_locality"))[:160]
    n_no_order = 0
    gaps: list[int] = []
    for i in sample:
        df = trace_cache(i)
        before = df.pathway.shift(1)
        no_order = (df.event == "scheduled_test") & (before == Pathway.NONE)
        if pop.dependent[i]:
            assert not no_order.any(), i
        n_no_order += int(no_order.sum())
        for _, pathway, gap in _scheduled_gaps(df):
            # a dependent person's test that ends an order (an isolation order not carried
            # out) is followed by none until the next order: not a two-monthly gap
            if pathway == Pathway.NONE and not pop.dependent[i]:
                gaps.append(gap)
    assert n_no_order > 100
    # two-monthly; a change of order (an isolation order not carried out ends a community
    # order's schedule) can bring one test forward
    assert max(gaps) <= 61 and gaps.count(61) >= 0.95 * len(gaps)


def test_no_tests_without_an_order_elsewhere(baseline, trace_cache):
    """National rules: scheduled tests only in community orders (before the event)."""
    pop = baseline.population
    for name in ("national_default", "serious_area", "grid_pilot_area"):
        sample = np.flatnonzero(pop.jurisdiction == jur(baseline, name))[:60]
        for i in sample:
            df = trace_cache(i)
            before = df.pathway.shift(1)
            tests = df.event == "scheduled_test"
            assert before[tests].isin([Pathway.COMMUNITY_DETOX, Pathway.COMMUNITY_REHAB]).all()


def test_tier_changes_only_by_reassessment_or_detection(baseline, trace_cache):
    pop = baseline.population
    steps = resets = 0
    for i in np.arange(0, len(pop), 53)[:200]:
        df = trace_cache(i)
        prev = df.iloc[0]
        for r in df.iloc[1:].itertuples():
            if r.last_detect == r.day and r.last_detect != prev.last_detect:
                assert r.tier == Tier.EXTREME, (i, r)  # fn 17-18: detected use -> extreme
                resets += 1
            elif r.tier != prev.tier:
                assert r.event == "reassessment" and r.tier == prev.tier + 1, (i, r)
                assert r.day - r.last_detect >= 365, (i, r)
                steps += 1
            prev = r
    assert steps > 50 and resets > 20


def test_share_of_scheduled_tests_done(baseline, P):
    p = P[Par.MANAGEMENT__TEST_DONE_PROBABILITY]
    due = baseline.flows[:, :, Flow.SCHEDULED_TESTS_DUE].sum()
    done = baseline.flows[:, :, Flow.SCHEDULED_TESTS_DONE].sum()
    assert due > 10_000
    assert abs(done / due - p) <= 4 * math.sqrt(p * (1 - p) / due)
    np.testing.assert_array_equal(baseline.flows[:, :, Flow.INTRUSIONS_SCHEDULED_TEST],
                                  baseline.flows[:, :, Flow.SCHEDULED_TESTS_DONE])


# ---------------------------- one tier per jurisdiction, everyone reachable (conftest.tier_run)


def test_inspections_per_person_year_by_tier(tier_run):
    table = tier_run.prepared.table
    for t in Tier:
        rate = table[t, 0, Par.MANAGEMENT__INSPECTION_RATE_PER_YEAR__EXTREME + t]
        years = tier_run.activity[t, :, CONTROL_DAYS].sum() / 365.25
        n = tier_run.flows[t, :, [Flow.INSPECTIONS_HOME, Flow.INSPECTIONS_WORKPLACE]].sum()
        expected = rate * years
        assert expected > 500
        assert abs(n - expected) <= 4 * math.sqrt(expected), (t, n, expected)


def test_inspection_places_and_neighbour_interviews(tier_run, P):
    fl = tier_run.flows.sum(axis=(0, 1))
    home, work = fl[Flow.INSPECTIONS_HOME], fl[Flow.INSPECTIONS_WORKPLACE]
    n = home + work
    p = P[Par.MANAGEMENT__WORKPLACE_SHARE]
    assert abs(work / n - p) <= 4 * math.sqrt(p * (1 - p) / n)
    q = P[Par.MANAGEMENT__NEIGHBOUR_INTERVIEW_PROBABILITY]
    nb = fl[Flow.INTRUSIONS_NEIGHBOUR_INTERVIEW]
    assert abs(nb / home - q) <= 4 * math.sqrt(q * (1 - q) / home)
    assert fl[Flow.INTRUSIONS_HOME_TEST] == home and fl[Flow.INTRUSIONS_WORKPLACE_TEST] == work
    assert fl[Flow.OFFICER_MINUTES_INSPECTIONS] == round(
        60 * P[Par.MANAGEMENT__OFFICER_HOURS_PER_INSPECTION]) * n


def test_counselling_follows_the_tier_schedule_exactly(tier_run):
    """Counselling is a schedule, counted not drawn: meetings = person-days / interval."""
    table = tier_run.prepared.table
    for t in Tier:
        iv = table[t, 0, Par.MANAGEMENT__COUNSELLING_INTERVAL_DAYS__EXTREME + t]
        days = tier_run.activity[t, :, CONTROL_DAYS].sum(axis=0)
        per_day = round(FIXED_POINT / iv) / FIXED_POINT
        np.testing.assert_allclose(tier_run.activity[t, :, Rate.COUNSELLING], days * per_day,
                                   rtol=1e-9, atol=1e-6)


def test_no_scheduled_contact_in_custody_or_after_full_release(baseline, trace_cache):
    """Scheduled tests and inspections need a reachable person (fn 21, 45-47): never while the
    previous row shows custody or full release; partial release keeps them going."""
    pop = baseline.population
    custodial = [Pathway.ISOLATION, Pathway.VOLUNTARY, Pathway.DETENTION]
    partial_contacts = 0
    for i in np.arange(0, len(pop), 37)[:250]:
        df = trace_cache(i)
        prev = df.shift(1)
        contact = df.event.isin(["scheduled_test", "inspection"])
        assert not (contact & prev.pathway.isin(custodial)).any(), i
        assert not (contact & (prev.release >= Release.FULL)).any(), i
        partial_contacts += int((contact & (prev.release == Release.PARTIAL)).sum())
    assert partial_contacts > 0


def test_reassessments_every_six_months_from_entry(baseline, trace_cache):
    pop = baseline.population
    n = 0
    for i in np.arange(0, len(pop), 71)[:150]:
        df = trace_cache(i)
        days = df.day[df.event == "reassessment"].to_numpy()
        assert np.all((days - pop.entry_day[i]) % 182 == 0), i
        n += len(days)
    assert n > 200


def test_lost_whereabouts_mean_no_scheduled_contact(run_with):
    """Contact never made at alerts: the lost are never found, and nothing scheduled ever
    reaches them (no tests, counselling, grid visits, inspections or app)."""
    run = run_with({"alerts.contact_probability": 0.0})
    pop = run.population
    lost = pop.lost == 1
    assert lost.sum() > 300
    assert pop.intrusions[lost].sum() == 0
    assert pop.intrusions[~lost].sum() > 0
    assert run.flows[:, :, Flow.WHEREABOUTS_FOUND].sum() == 0
    in_reg = pop.out("control_code") >= 0
    np.testing.assert_array_equal(
        run.stocks[:, -1, Stock.WHEREABOUTS_UNKNOWN],
        np.bincount(pop.jurisdiction[lost & in_reg], minlength=run.stocks.shape[0]))


def test_lost_persons_found_at_alerts(baseline):
    pop = baseline.population
    found = baseline.flows[:, :, Flow.WHEREABOUTS_FOUND].sum(axis=1)
    lost = np.bincount(pop.jurisdiction[pop.lost == 1], minlength=len(found))
    assert np.all(found <= lost) and found.sum() > 0
