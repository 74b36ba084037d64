"""ID-use alerts and the police response (paper fn 4, 22, 50, 58).

Statistical checks use the baseline run (fixed seed). Each alert's outcome takes its own POLICE
draws, so conditional on the number of alerts, contacts are binomial: the tolerance is 4
binomial standard errors, sqrt(p (1 - p) / n). For the venue mix, the venue of an alert in
month m is a multinomial draw with that month's venue shares, so the count at venue v has mean
sum_m n_m p_vm and variance sum_m n_m p_vm (1 - p_vm).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from conftest import blank_state
from dcsim import alerts
from dcsim.catalogue import VENUES, Par
from dcsim.measures import FLOW_ALERT_VENUE0, FLOW_INTERROGATION_VENUE0, Flow, Rate
from dcsim.state import Pathway, Release, S

_V0 = int(Par.ALERTS__ID_USE_RATE_PER_YEAR__HOTEL)
NV = len(VENUES)
CONTROL_DAYS = [Rate.CONTROL_DAYS_UNDER_25, Rate.CONTROL_DAYS_25_59, Rate.CONTROL_DAYS_60_PLUS]


def _binomial_ok(k: float, n: float, p: float) -> None:
    assert n > 0
    assert abs(k / n - p) <= 4 * math.sqrt(p * (1 - p) / n), (k / n, p, n)


# ------------------------------------------------------------------ the rules


def _rate(s, P):
    return alerts.id_use_rate(s, P, alerts.venue_total(P))


def test_id_use_rate(P):
    s, *_ = blank_state()
    total = P[_V0 : _V0 + NV].sum()
    assert alerts.venue_total(P) == pytest.approx(total)
    assert _rate(s, P) == pytest.approx(total)
    s[S.USING] = 1
    assert _rate(s, P) == pytest.approx(total * P[Par.ALERTS__ID_USE_MULTIPLIER_WHILE_USING])
    for pw in (Pathway.ISOLATION, Pathway.VOLUNTARY, Pathway.DETENTION):
        s[S.PATHWAY] = pw
        assert _rate(s, P) == 0.0  # no everyday life in custody
    s[S.PATHWAY] = Pathway.COMMUNITY_DETOX
    assert _rate(s, P) > 0


def test_venue_of_partitions_the_unit_interval(P):
    rates = P[_V0 : _V0 + NV]
    edges = np.cumsum(rates) / rates.sum()
    total = alerts.venue_total(P)
    assert alerts.venue_of(P, 0.0, total) == 0
    assert alerts.venue_of(P, 1.0 - 1e-12, total) == NV - 1
    lo = 0.0
    for v, hi in enumerate(edges):
        assert alerts.venue_of(P, lo + 1e-9, total) == v
        assert alerts.venue_of(P, (lo + hi) / 2, total) == v
        assert alerts.venue_of(P, hi - 1e-9, total) == v
        lo = hi


def test_alerts_only_under_full_control(P):
    """Alerts stop on partial or full release (fn 45, 47) and with the record."""
    s, *_ = blank_state()
    assert alerts.raises_alert(s, P)
    for release in (Release.PARTIAL, Release.FULL, Release.DELETED):
        s[S.RELEASE] = release
        assert not alerts.raises_alert(s, P)
    s[S.RELEASE] = Release.CONTROL
    s[S.IN_REGISTRY] = 0
    assert not alerts.raises_alert(s, P)


def test_alert_switches(P):
    """alerts.enabled = 0 stops every alert; alerts.only_under_community_order keeps them only
    while a community order is in force (the reform overlays' switches)."""
    s, *_ = blank_state()
    P[Par.ALERTS__ENABLED] = 0
    assert not alerts.raises_alert(s, P) and alerts.alert_band(s, P) == -1
    P[Par.ALERTS__ENABLED] = 1
    P[Par.ALERTS__ONLY_UNDER_COMMUNITY_ORDER] = 1
    for pw in Pathway:
        s[S.PATHWAY] = pw
        expected = pw in (Pathway.COMMUNITY_DETOX, Pathway.COMMUNITY_REHAB)
        assert alerts.raises_alert(s, P) == expected, pw
        assert (alerts.alert_band(s, P) >= 0) == expected, pw


def test_max_rate_bounds_every_month(baseline_prepared):
    """The thinning bound covers the rate of alerts that reach the person in every month."""
    table = baseline_prepared.table
    for j in range(table.shape[0]):
        bound = alerts.max_rate(table[j])
        s, *_ = blank_state()
        for m in range(table.shape[1]):
            for using in (0, 1):
                s[S.USING] = using
                assert _rate(s, table[j, m]) * alerts.reach_probability(table[j, m]) <= (
                    bound + 1e-12)
        # the bound is reached (travel rises in 2012)
        reach = table[j, :, Par.ALERTS__RESPONSE_PROBABILITY] * table[
            j, :, Par.ALERTS__CONTACT_PROBABILITY]
        mult = np.maximum(1.0, table[j, :, Par.ALERTS__ID_USE_MULTIPLIER_WHILE_USING])
        assert bound == pytest.approx(
            (table[j, :, _V0 : _V0 + NV].sum(axis=1) * mult * reach).max())


# ------------------------------------------------------------------ in the engine


def test_alert_accounting(baseline, P):
    fl = baseline.flows
    np.testing.assert_array_equal(fl[:, :, Flow.ALERTS],
                                  fl[:, :, FLOW_ALERT_VENUE0 : FLOW_ALERT_VENUE0 + NV].sum(2))
    np.testing.assert_array_equal(
        fl[:, :, Flow.ALERT_CONTACTS],
        fl[:, :, FLOW_INTERROGATION_VENUE0 : FLOW_INTERROGATION_VENUE0 + NV].sum(2))
    np.testing.assert_array_equal(fl[:, :, Flow.INTRUSIONS_PUBLIC_INTERROGATION],
                                  fl[:, :, Flow.ALERT_CONTACTS])
    np.testing.assert_array_equal(fl[:, :, Flow.INTRUSIONS_PUBLIC_TEST], fl[:, :, Flow.ALERT_TESTS])
    assert P[Par.ALERTS__RESPONSE_PROBABILITY] == 1.0  # police must respond (fn 22)
    np.testing.assert_array_equal(fl[:, :, Flow.ALERT_RESPONSES], fl[:, :, Flow.ALERTS])
    assert np.all(fl[:, :, Flow.ALERT_TESTS] <= fl[:, :, Flow.ALERT_CONTACTS])
    assert np.all(fl[:, :, FLOW_INTERROGATION_VENUE0 : FLOW_INTERROGATION_VENUE0 + NV]
                  <= fl[:, :, FLOW_ALERT_VENUE0 : FLOW_ALERT_VENUE0 + NV])
    # officer time: an hour per response and an hour and a half more per contact
    per_response = round(60 * P[Par.ALERTS__OFFICER_HOURS_PER_RESPONSE])
    per_contact = round(60 * P[Par.ALERTS__OFFICER_HOURS_PER_CONTACT])
    np.testing.assert_array_equal(
        fl[:, :, Flow.OFFICER_MINUTES_ALERTS],
        per_response * fl[:, :, Flow.ALERT_RESPONSES] + per_contact * fl[:, :, Flow.ALERT_CONTACTS])


def test_contact_share_equals_contact_probability(baseline, P):
    """Paper fn 22: contact made 26% of the time."""
    fl = baseline.flows.sum(axis=(0, 1))
    assert fl[Flow.ALERT_RESPONSES] > 20_000
    _binomial_ok(fl[Flow.ALERT_CONTACTS], fl[Flow.ALERT_RESPONSES],
                 P[Par.ALERTS__CONTACT_PROBABILITY])
    _binomial_ok(fl[Flow.ALERT_TESTS], fl[Flow.ALERT_CONTACTS], P[Par.ALERTS__TEST_GIVEN_CONTACT])


def test_venue_mix_matches_venue_rates(baseline, baseline_prepared):
    fl = baseline.flows
    table = baseline_prepared.table
    rates = table[:, :, _V0 : _V0 + NV]
    shares = rates / rates.sum(axis=2, keepdims=True)  # [j, m, v]
    n = fl[:, :, Flow.ALERTS][:, :, None]
    mean = (n * shares).sum(axis=(0, 1))
    var = (n * shares * (1 - shares)).sum(axis=(0, 1))
    got = fl[:, :, FLOW_ALERT_VENUE0 : FLOW_ALERT_VENUE0 + NV].sum(axis=(0, 1))
    assert np.all(np.abs(got - mean) <= 4 * np.sqrt(var)), (got, mean)
    # real-name train tickets from 2012 raise travel alerts (the rule's window changes)
    assert shares[0, 0, VENUES.index("travel")] < shares[0, -1, VENUES.index("travel")]


def test_interrogations_by_venue_follow_alerts(baseline, P):
    """Contact does not depend on the venue: each venue's contact share is the same p."""
    fl = baseline.flows.sum(axis=(0, 1))
    p = P[Par.ALERTS__CONTACT_PROBABILITY]
    for v in range(NV):
        n = fl[FLOW_ALERT_VENUE0 + v]
        if n >= 200:
            _binomial_ok(fl[FLOW_INTERROGATION_VENUE0 + v], n, p)


def test_no_id_use_after_release(baseline, trace_cache):
    """No alert-raising ID use is even considered while the person is (partially) released:
    every id_use event follows a row under full control."""
    pop = baseline.population
    released = np.flatnonzero(pop.out("first_release_day") < baseline.prepared.n_days)
    assert len(released) > 500
    for i in released[::23][:100]:
        df = trace_cache(i)
        prev_release = df.release.shift(1)
        ids = df.event == "alert_contact"
        assert (prev_release[ids] == Release.CONTROL).all(), i
        assert ((df.release != Release.CONTROL) & ids.shift(-1, fill_value=False)).sum() == 0


def test_release_without_alerts_lowers_alerts(baseline, run_with):
    """Every eligible person released at once, partially (alerts off, control on): alerts
    fall against a run where no record is ever updated (no one released), and no one is
    fully released."""
    run = run_with({"exit.partial_release_share": 1.0, "exit.record_update_probability": 1.0,
                    "exit.mean_update_delay_days": 0})
    none = run_with({"exit.record_update_probability": 0.0}).flows
    fl, base = run.flows, baseline.flows
    assert fl[:, :, Flow.RELEASES_FULL].sum() == 0
    assert none[:, :, Flow.RELEASES_FULL].sum() == none[:, :, Flow.RELEASES_PARTIAL].sum() == 0
    assert fl[:, :, Flow.RELEASES_PARTIAL].sum() > base[:, :, Flow.RELEASES_PARTIAL].sum()
    late = slice(120, None)  # from 2016, when many have been eligible
    fewer = none[:, late, Flow.ALERTS].sum() - fl[:, late, Flow.ALERTS].sum()
    assert fewer > 4 * np.sqrt(none[:, late, Flow.ALERTS].sum())  # beyond Poisson noise


def test_no_response_no_contact(run_with):
    run = run_with({"alerts.response_probability": 0.0})
    fl = run.flows
    assert fl[:, :, Flow.ALERTS].sum() > 0
    for col in (Flow.ALERT_RESPONSES, Flow.ALERT_CONTACTS, Flow.ALERT_TESTS,
                Flow.ALERT_POSITIVES, Flow.OFFICER_MINUTES_ALERTS, Flow.WHEREABOUTS_FOUND):
        assert fl[:, :, col].sum() == 0, col


def test_alerts_per_person_year_under_control(tier_run):
    """Everyone reachable, never in custody or released, ID use the same whether using or not:
    alerts are a Poisson process at the sum of the venue rates over person-days under control,
    so |alerts - expected| <= 4 sqrt(expected) (the rate changes in 2012 and is summed by
    month)."""
    table = tier_run.prepared.table
    rate = table[:, :, _V0 : _V0 + NV].sum(axis=2)  # [j, m] per year
    days = tier_run.activity[:, :, CONTROL_DAYS].sum(axis=2)
    expected = (rate * days).sum() / 365.25
    got = tier_run.flows[:, :, Flow.ALERTS].sum()
    assert expected > 10_000
    assert abs(got - expected) <= 4 * math.sqrt(expected), (got, expected)


def test_alert_days_are_the_days_under_full_control(tier_run):
    """With no custody and no release, every person-day under control raises alerts."""
    act = tier_run.activity
    alert_days = act[:, :, Rate.ALERT_DAYS_NOT_USING] + act[:, :, Rate.ALERT_DAYS_USING]
    np.testing.assert_array_equal(alert_days, act[:, :, CONTROL_DAYS].sum(axis=2))
    assert act[:, :, Rate.ALERT_DAYS_USING].sum() > 0


def _unreached(table: np.ndarray, activity: np.ndarray, seed: int = 4) -> np.ndarray:
    from dcsim.measures import N_FLOWS

    flows = np.zeros((table.shape[0], table.shape[1], N_FLOWS), np.int64)
    alerts.unreached_alerts(seed, table, activity, flows)
    return flows


def test_unreached_alerts_are_keyed_by_cell(baseline_prepared, baseline):
    """A rule change in one locality-month changes the unreached counts of that cell only
    (common random numbers), and when every alert reaches its person there are none."""
    table, act = baseline_prepared.table, baseline.activity
    before = _unreached(table, act)
    assert before[:, :, Flow.ALERTS].sum() > 0
    changed = table.copy()
    changed[1, 100, Par.ALERTS__CONTACT_PROBABILITY] = 0.9
    after = _unreached(changed, act)
    differs = np.any(after != before, axis=2)
    assert differs[1, 100] and differs.sum() == 1
    certain = table.copy()
    certain[:, :, Par.ALERTS__RESPONSE_PROBABILITY] = 1.0
    certain[:, :, Par.ALERTS__CONTACT_PROBABILITY] = 1.0
    assert not _unreached(certain, act).any()


def test_unreached_alerts_follow_their_mean(baseline_prepared, baseline):
    """Summed over cells, the unreached alerts are Poisson with the summed mean: person-days
    raising alerts x venue rate x (1 - chance of reaching the person)."""
    table, act = baseline_prepared.table, baseline.activity
    days = (act[:, :, Rate.ALERT_DAYS_NOT_USING] + act[:, :, Rate.ALERT_DAYS_USING]
            * table[:, :, Par.ALERTS__ID_USE_MULTIPLIER_WHILE_USING])
    reach = table[:, :, Par.ALERTS__RESPONSE_PROBABILITY] * table[
        :, :, Par.ALERTS__CONTACT_PROBABILITY]
    mean = (days * table[:, :, _V0 : _V0 + NV].sum(axis=2) / 365.25 * (1 - reach)).sum()
    got = _unreached(table, act)[:, :, Flow.ALERTS].sum()
    assert mean > 10_000
    assert abs(got - mean) <= 4 * math.sqrt(mean), (got, mean)
