"""Common random numbers: a reform of one procedure leaves the draws of the others unchanged.

Every procedure draws from its own stream keyed by (seed, procedure, person, draw number), so a
change to one procedure's rules can only change what follows from that procedure's own events.
"""

from __future__ import annotations

import numpy as np
import pytest

from dcsim.measures import Flow, Intrusion, Rate
from dcsim.model import prepare, simulate
from dcsim.scenario import load_scenario

SCALE = 0.002


def _overlay(tmp_path, name: str, unit: str, value: float) -> str:
    p = tmp_path / f"reform_{name.replace('.', '_')}.yaml"
    p.write_text(
        "jurisdiction: national\n"
        "description: test reform\n"
        "parameters:\n"
        f"  {name}:\n"
        f"    unit: {unit}\n"
        "    values:\n"
        f"      - {{from: 2006-01-01, value: {value}, reference: 'assumption: test reform'}}\n"
    )
    return str(p)


@pytest.fixture(scope="module")
def baseline():
    return simulate(prepare(load_scenario(scale=SCALE, seed=11)))


def _reform(tmp_path, name, unit, value):
    sc = load_scenario(scale=SCALE, seed=11, overlays=[_overlay(tmp_path, name, unit, value)])
    return simulate(prepare(sc))


def test_grid_reform_changes_only_grid_visits(baseline, tmp_path):
    """Grid visits are a schedule with no draws: doubling them changes nothing else at all."""
    reform = _reform(tmp_path, "grid.visits_done_share", "share", 1.0)
    np.testing.assert_array_equal(reform.flows, baseline.flows)
    np.testing.assert_array_equal(reform.stocks, baseline.stocks)
    other = [r for r in Rate if r != Rate.GRID_VISITS]
    np.testing.assert_array_equal(reform.activity[:, :, other], baseline.activity[:, :, other])
    assert reform.activity[:, :, Rate.GRID_VISITS].sum() > 1.5 * baseline.activity[
        :, :, Rate.GRID_VISITS].sum()


def test_app_alert_reform_changes_only_app_alerts(baseline, tmp_path):
    """App alerts draw from their own stream and change no state: the rest is identical."""
    reform = _reform(tmp_path, "apps.alert_rate_per_year.chengdu", "per_year", 2.0)
    app_flows = [Flow.APP_ALERTS, Flow.INTRUSIONS_APP_ALERT_FOLLOWUP, Flow.STAFF_MINUTES_APP,
                 Flow.ENGINE_EVENTS]  # the engine processes fewer app-alert candidates
    other = [f for f in Flow if f not in app_flows]
    np.testing.assert_array_equal(reform.flows[:, :, other], baseline.flows[:, :, other])
    np.testing.assert_array_equal(reform.stocks, baseline.stocks)
    assert reform.flows[:, :, Flow.APP_ALERTS].sum() < baseline.flows[:, :, Flow.APP_ALERTS].sum()


def test_alert_reform_leaves_untouched_persons_identical(baseline, tmp_path):
    """Raise the contact probability: persons whom no alert ever reached in either run live
    exactly the same life course (same tests, inspections, detections, exit), because the
    other procedures' draws do not move; registration is identical for everyone."""
    reform = _reform(tmp_path, "alerts.contact_probability", "probability", 0.5)
    a, b = baseline.population, reform.population
    for name in ("entry_day", "jurisdiction", "path", "drug", "dependent", "birth_day",
                 "using_at_entry", "lost", "grid_rank", "app_rank"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    reached = Intrusion.PUBLIC_INTERROGATION
    untouched = (a.intrusions[:, reached] == 0) & (b.intrusions[:, reached] == 0)
    assert untouched.sum() >= 100  # the comparison is not vacuous (about 4% of persons)
    np.testing.assert_array_equal(a.outcome[untouched], b.outcome[untouched])
    np.testing.assert_array_equal(a.intrusions[untouched], b.intrusions[untouched])
    # and the reform did act on the others
    assert b.intrusions[:, reached].sum() > 1.5 * a.intrusions[:, reached].sum()
