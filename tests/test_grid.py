"""Grid management (paper fn 29-34): weekly visits from the September 2015 pilots, nationwide
from 2018; released persons stay 'drug-associated' (fn 47). Visits are a schedule, counted not
drawn, so they never change anyone's life course.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from conftest import REACHABLE, blank_state, jur, month_of, write_rules, write_scenario
from dcsim import grid
from dcsim.catalogue import Par
from dcsim.measures import FIXED_POINT, Flow, Intrusion, Rate
from dcsim.model import prepare, simulate
from dcsim.scenario import load_scenario
from dcsim.state import Pathway, Release, S

SEPT_2015 = month_of(dt.date(2015, 9, 1))
JAN_2018 = month_of(dt.date(2018, 1, 1))
CONTROL_DAYS = [Rate.CONTROL_DAYS_UNDER_25, Rate.CONTROL_DAYS_25_59, Rate.CONTROL_DAYS_60_PLUS]


def test_visit_interval(P):
    P[Par.GRID__COVERAGE_SHARE] = 0.7
    iv = P[Par.GRID__VISIT_INTERVAL_DAYS] / P[Par.GRID__VISITS_DONE_SHARE]
    assert iv == 14  # weekly visits, half of them made
    s, *_ = blank_state()
    assert grid.covered(0.69, P) and not grid.covered(0.7, P)
    assert grid.visit_interval(s, P, 0.1) == iv
    assert grid.visit_interval(s, P, 0.9) == 0.0  # outside the managed grids
    s[S.RELEASE] = Release.PARTIAL
    assert grid.visit_interval(s, P, 0.1) == iv
    s[S.RELEASE] = Release.FULL  # still visited, quarterly
    assert grid.visit_interval(s, P, 0.1) == P[Par.GRID__RELEASED_VISIT_INTERVAL_DAYS] == 91
    s[S.RELEASE] = Release.DELETED
    assert grid.visit_interval(s, P, 0.1) == 0.0
    for field, value in ((S.LOST, 1), (S.IN_REGISTRY, 0), (S.PATHWAY, Pathway.ISOLATION),
                         (S.PATHWAY, Pathway.DETENTION)):
        s2, *_ = blank_state()
        s2[field] = value
        assert grid.visit_interval(s2, P, 0.1) == 0.0, field
    P[Par.GRID__VISITS_DONE_SHARE] = 0.0
    assert grid.visit_interval(blank_state()[0], P, 0.1) == 0.0


def test_no_grid_visits_before_the_pilots(baseline):
    visits = baseline.activity[:, :, Rate.GRID_VISITS]
    assert np.all(visits[:, :SEPT_2015] == 0)
    pilot = jur(baseline, "grid_pilot_area")
    others = [j for j in range(visits.shape[0]) if j != pilot]
    assert np.all(visits[others, :JAN_2018] == 0)
    # and they happen once the rules say so
    assert np.all(visits[pilot, SEPT_2015:] > 0)
    assert np.all(visits[jur(baseline, "national_default"), JAN_2018:] > 0)
    assert np.all(visits[:, JAN_2018:].sum(axis=1) > 0)


def test_coverage_selects_the_same_persons_and_changes_nothing_else(baseline, run_with):
    """Coverage 1 instead of 0.7 from 2018: the same life courses (visits draw nothing), and
    exactly the persons ranked at or above 0.7 get extra visits."""
    full = run_with({"grid.coverage_share": [("2018-01-01", None, 1.0)]})
    np.testing.assert_array_equal(full.flows, baseline.flows)
    np.testing.assert_array_equal(full.stocks, baseline.stocks)
    np.testing.assert_array_equal(full.population.outcome, baseline.population.outcome)
    pop = baseline.population
    hv = int(Intrusion.HOME_VISIT)
    diff = full.population.intrusions[:, hv] - pop.intrusions[:, hv]
    pilot = pop.jurisdiction == jur(baseline, "grid_pilot_area")
    covered_anyway = (pop.grid_rank < 0.7) | pilot
    assert np.all(diff[covered_anyway] == 0)
    assert np.all(diff >= 0)
    assert (diff[~covered_anyway] > 0).mean() > 0.3
    # activity: the baseline's visits are the share of the full-coverage ones made to persons
    # ranked below 0.7, about 0.7; with over 2,000 persons visited (unequal weights), the
    # standard error of that share is below 0.015, and 0.06 is 4 of those
    nd = jur(baseline, "national_default")
    ratio = (baseline.activity[nd, JAN_2018:, Rate.GRID_VISITS].sum()
             / full.activity[nd, JAN_2018:, Rate.GRID_VISITS].sum())
    assert 0.64 < ratio < 0.76


@pytest.fixture(scope="module")
def pilot_run(tmp_path_factory):
    """A pilot area 2016-2017 with everyone reachable under control (no custody, no lost
    whereabouts, no release): grid visits are then exactly person-days / 14."""
    d = tmp_path_factory.mktemp("grid")
    write_rules(d, "reachable.yaml", REACHABLE)
    path = write_scenario(d, jurisdictions=[{"id": "pilot", "share": 1.0,
                                              "rules": ["dcsim:grid_pilot.yaml"]}],
                          start=dt.date(2016, 1, 1), end=dt.date(2017, 12, 31), scale=0.005,
                          overlays=["reachable.yaml"])
    return simulate(prepare(load_scenario(path)))


def test_visits_follow_the_schedule_exactly(pilot_run):
    act = pilot_run.activity[0]
    days = act[:, CONTROL_DAYS].sum(axis=1)
    assert days.sum() > 10_000
    per_day = round(FIXED_POINT / 14) / FIXED_POINT
    np.testing.assert_allclose(act[:, Rate.GRID_VISITS], days * per_day, rtol=1e-9, atol=1e-6)
    # each person's own count is the whole number of intervals in their spans (home visits
    # also count inspections at home, which are flows)
    own = (pilot_run.population.intrusions[:, Intrusion.HOME_VISIT].sum()
           - pilot_run.flows[0, :, Flow.INTRUSIONS_HOME_VISIT].sum())
    scheduled = act[:, Rate.GRID_VISITS].sum()
    assert 0.9 * scheduled < own <= scheduled + 1e-6
