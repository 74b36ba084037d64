"""Monitoring apps for people in community orders (paper fn 26-28): Zibo, Shanghai, Chengdu.

Apps exist only in their pilot cities and from the pilot's year. App alerts are a Poisson
process while enrolled: their count is compared with rate x enrolled person-years (daily
check-ins count enrolled person-days exactly) with a tolerance of 4 sqrt(expected), which a
correct model exceeds with probability about 1e-4 (fixed seed: deterministic).
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from conftest import blank_state, jur, month_of
from dcsim import apps
from dcsim.catalogue import APPS, Par
from dcsim.measures import Flow, Intrusion, Rate
from dcsim.state import Pathway, Release, S

CITIES = {  # jurisdiction, app, first year of the pilot
    "zibo_app_city": ("zibo", 2017),
    "shanghai_app_district": ("shanghai", 2018),
    "chengdu_app_district": ("chengdu", 2019),
}


def _in_order(s, pathway=Pathway.COMMUNITY_DETOX):
    s[S.PATHWAY] = pathway
    s[S.ORDER_ACTIVE] = 1
    return s


def test_enrolment_needs_an_active_community_order(P):
    P[Par.APPS__ENROLMENT_SHARE__SHANGHAI] = 0.8
    s = _in_order(blank_state()[0])
    assert apps.enrolled_app(s, P, 0.5) == APPS.index("shanghai")
    assert apps.enrolled_app(s, P, 0.8) == -1  # beyond the enrolment share
    s2 = _in_order(blank_state()[0], Pathway.COMMUNITY_REHAB)
    assert apps.enrolled_app(s2, P, 0.1) == APPS.index("shanghai")
    for field, value in ((S.ORDER_ACTIVE, 0), (S.PATHWAY, Pathway.NONE),
                         (S.PATHWAY, Pathway.ISOLATION), (S.LOST, 1),
                         (S.RELEASE, Release.FULL), (S.IN_REGISTRY, 0)):
        s3 = s.copy()
        s3[field] = value
        assert apps.enrolled_app(s3, P, 0.1) == -1, field


def test_no_app_without_enrolment(P):
    for a in APPS:
        assert P[Par.APPS__ENROLMENT_SHARE__ZIBO + APPS.index(a)] == 0.0  # national rules
    assert apps.enrolled_app(_in_order(blank_state()[0]), P, 0.0) == -1


def test_app_schedules_and_rates(P):
    assert apps.checkin_interval(P, -1) == 0.0
    assert apps.alert_rate(P, -1) == 0.0
    assert apps.relapse_multiplier(P, -1) == 1.0
    for a, name in enumerate(APPS):
        assert apps.checkin_interval(P, a) == P[Par.APPS__CHECKIN_INTERVAL_DAYS] == 1
        assert apps.alert_rate(P, a) == P[Par.APPS__ALERT_RATE_PER_YEAR__ZIBO + a], name
        assert apps.relapse_multiplier(P, a) == P[Par.APPS__RELAPSE_HAZARD_MULTIPLIER]


def test_checkins_only_in_app_cities_from_the_pilot_year(baseline):
    checkins = baseline.activity[:, :, Rate.APP_CHECKINS]
    alerts = baseline.flows[:, :, Flow.APP_ALERTS]
    app_js = [jur(baseline, c) for c in CITIES]
    others = [j for j in range(checkins.shape[0]) if j not in app_js]
    assert np.all(checkins[others] == 0) and np.all(alerts[others] == 0)
    for city, (_, year) in CITIES.items():
        j, m0 = jur(baseline, city), month_of(dt.date(year, 1, 1))
        assert np.all(checkins[j, :m0] == 0) and np.all(alerts[j, :m0] == 0), city
        # every month of the pilot's first year, and most of its first three (later the
        # small city's few enrolled can all be in custody, released or dead at the tests'
        # scale)
        assert np.all(checkins[j, m0:m0 + 12] > 0), city
        assert np.mean(checkins[j, m0:m0 + 36] > 0) >= 0.75, city
        assert alerts[j, m0:].sum() > 0, city


def test_only_enrolled_ranks_check_in(baseline):
    """A person's place in the roll-out is fixed: ranks at or above 0.8 never use an app."""
    pop = baseline.population
    ck = pop.intrusions[:, Intrusion.APP_CHECKIN]
    fu = pop.intrusions[:, Intrusion.APP_ALERT_FOLLOWUP]
    in_city = np.isin(pop.jurisdiction, [jur(baseline, c) for c in CITIES])
    assert np.all(ck[~in_city] == 0) and np.all(fu[~in_city] == 0)
    assert np.all(ck[pop.app_rank >= 0.8] == 0) and np.all(fu[pop.app_rank >= 0.8] == 0)
    assert np.all(fu[ck == 0] == 0)  # alerts only for those who use the app
    assert (ck[in_city & (pop.app_rank < 0.8)] > 0).sum() > 20


def test_app_alert_rate_per_enrolled_person_year(baseline, baseline_prepared):
    fl = baseline.flows
    for city, (app, _) in CITIES.items():
        j = jur(baseline, city)
        rate = baseline_prepared.table[j, -1, Par.APPS__ALERT_RATE_PER_YEAR__ZIBO
                                       + APPS.index(app)]
        years = baseline.activity[j, :, Rate.APP_CHECKINS].sum() / 365.25  # daily check-ins
        expected = rate * years
        n = fl[j, :, Flow.APP_ALERTS].sum()
        assert expected > 50, city
        assert abs(n - expected) <= 4 * math.sqrt(expected), (city, n, expected)


def test_app_alert_followups(baseline, P):
    fl = baseline.flows
    np.testing.assert_array_equal(fl[:, :, Flow.INTRUSIONS_APP_ALERT_FOLLOWUP],
                                  fl[:, :, Flow.APP_ALERTS])
    np.testing.assert_array_equal(fl[:, :, Flow.STAFF_MINUTES_APP],
                                  round(60 * P[Par.APPS__ALERT_FOLLOWUP_HOURS])
                                  * fl[:, :, Flow.APP_ALERTS])
    assert (baseline.population.intrusions[:, Intrusion.APP_ALERT_FOLLOWUP].sum()
            == fl[:, :, Flow.APP_ALERTS].sum())


@pytest.mark.parametrize("city", list(CITIES))
def test_enrolment_share_in_the_rules(baseline_prepared, city):
    app, year = CITIES[city]
    j = baseline_prepared.jurisdictions.index(city)
    col = Par.APPS__ENROLMENT_SHARE__ZIBO + APPS.index(app)
    m0 = month_of(dt.date(year, 1, 1))
    assert np.all(baseline_prepared.table[j, :m0, col] == 0.0)
    assert np.all(baseline_prepared.table[j, m0:, col] == 0.8)


def test_each_app_enrols_its_own_share(P):
    """apps.enrolment_share.<app> is the share of persons in community orders enrolled in that
    app (catalogue); with two apps in one locality each should enrol its own share."""
    P[Par.APPS__ENROLMENT_SHARE__ZIBO] = 0.3
    P[Par.APPS__ENROLMENT_SHARE__SHANGHAI] = 0.5
    s = _in_order(blank_state()[0])
    ranks = (np.arange(10_000) + 0.5) / 10_000  # the roll-out ranks, evenly spread
    apps_of = np.array([apps.enrolled_app(s, P, r) for r in ranks])
    assert np.mean(apps_of == APPS.index("zibo")) == pytest.approx(0.3, abs=1e-3)
    assert np.mean(apps_of == APPS.index("shanghai")) == pytest.approx(0.5, abs=1e-3)
