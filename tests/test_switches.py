"""The structural switches (data/switches): each is a cited overlay that sets one contested
reading of the evidence the other way, is found by name, and does what its header says.

Runs are at the tests' baseline scale on one seed, switch and baseline on the same seed.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import BASELINE_SCALE, BASELINE_SEED
from dcsim.compare import find_reform, package_switches
from dcsim.measures import Flow, Stock
from dcsim.model import prepare, simulate
from dcsim.rules import load_rule_file
from dcsim.scenario import load_scenario

SWITCHES = ("community_orders_carried_out_rising", "custody_no_lasting_effect",
            "detention_pauses_use",
            "exit_without_test_minimum", "half_fined", "records_never_updated",
            "rehab_share_unchanged_2018", "update_lag_fixed")


def _run(switch: str | None):
    overlays = [str(package_switches()[switch])] if switch else None
    return simulate(prepare(load_scenario(scale=BASELINE_SCALE, seed=BASELINE_SEED,
                                          overlays=overlays)))


def test_the_package_ships_the_documented_switches():
    assert set(package_switches()) == set(SWITCHES)
    for name in SWITCHES:
        assert find_reform(name) == package_switches()[name]


@pytest.mark.parametrize("name", SWITCHES)
def test_each_switch_says_what_and_why_and_changes_a_baseline_value(name, baseline_prepared):
    path = package_switches()[name]
    text = path.read_text()
    assert "What it represents:" in text and "Why a switch:" in text
    rules = load_rule_file(path)
    assert rules.parameters and all(p.windows for p in rules.parameters.values())
    # the switch changes the run's rule table somewhere
    sw = prepare(load_scenario(scale=BASELINE_SCALE, seed=BASELINE_SEED,
                               overlays=[str(path)]))
    assert not np.array_equal(sw.table, baseline_prepared.table), name


def test_without_a_test_minimum_no_one_is_trapped_for_lack_of_tests():
    run = _run("exit_without_test_minimum")
    assert run.stocks[:, :, Stock.TRAPPED_INSUFFICIENT_TESTS].sum() == 0
    assert run.stocks[:, :, Stock.HELD_CRIMINAL_CASE].sum() > 0  # fn 37 is not a test


def test_without_the_criminal_case_condition_no_one_is_held_by_it(baseline, run_with):
    """exit.criminal_case_share 0: the held-by-law stock is empty at every month end, and
    those it held are released or wait like everyone else (more full releases)."""
    free = run_with({"exit.criminal_case_share": [("2006-01-01", None, 0.0)]})
    assert baseline.stocks[:, :, Stock.HELD_CRIMINAL_CASE].sum() > 0
    assert free.stocks[:, :, Stock.HELD_CRIMINAL_CASE].sum() == 0
    assert (free.flows[:, :, Flow.RELEASES_FULL].sum()
            > baseline.flows[:, :, Flow.RELEASES_FULL].sum())


def test_fines_instead_of_detention_leave_more_people_using(baseline):
    """half_fined: fines appear (none in the baseline), detentions fall to about half, and on
    the same draws more registrants are using (custody no longer interrupts their use)."""
    fined = _run("half_fined")
    assert baseline.flows[:, :, Flow.FINES].sum() == 0
    n_fines = fined.flows[:, :, Flow.FINES].sum()
    n_det = fined.flows[:, :, Flow.DETENTIONS].sum()
    assert n_fines > 0
    share = n_fines / (n_fines + n_det)
    assert 0.4 < share < 0.6, share  # half of each decision, both kinds of decision
    assert (fined.stocks[:, 120:, Stock.TRUE_USING].sum()
            > baseline.stocks[:, 120:, Stock.TRUE_USING].sum())


def test_detention_that_pauses_use_catches_more_people_again(baseline):
    """Everyone detained while using resumes on release: more use to find, so more detected
    relapses than in the baseline (where most detained users stop), on the same draws."""
    paused = _run("detention_pauses_use")
    more = paused.flows[:, :, Flow.DETECTED_RELAPSES].sum()
    base = baseline.flows[:, :, Flow.DETECTED_RELAPSES].sum()
    assert more > base + 4 * np.sqrt(base)
    assert (paused.stocks[:, 120:, Stock.TRUE_USING].sum()
            > baseline.stocks[:, 120:, Stock.TRUE_USING].sum())


def test_a_lag_that_varies_counts_some_records_abstinent_earlier(baseline):
    """With the lag varying by record (the baseline), some records are updated soon after
    their three years, so more count as abstinent in the early years than when every record
    waits the whole mean lag (update_lag_fixed), on the same draws."""
    fixed = _run("update_lag_fixed")
    early = slice(0, 48)  # 2006-2009
    varying = baseline.stocks[:, early, Stock.ABSTINENT_3Y_RECORDED].sum()
    waiting = fixed.stocks[:, early, Stock.ABSTINENT_3Y_RECORDED].sum()
    assert varying > waiting


def test_fewer_community_orders_carried_out_before_2018_means_fewer_tests_then(baseline):
    """community_orders_carried_out_rising: of those under a community order in 2010-2014, the
    share whose order is carried out falls to about 0.5 / 0.826-0.892 of the baseline's (a
    little lower in the stock: an order not carried out has no test to end it early in
    isolation, so it runs its full term), and from 2020, when both carry out the same share,
    the two are alike again. Fewer scheduled tests happen before 2015; the orders are still
    made (2008-2014 within 10%). About 2,000 persons are under an order at this scale, so the
    binomial error of a share is near 0.01."""
    run = _run("community_orders_carried_out_rising")
    years = np.array([m.year for m in baseline.prepared.months])

    def carried_share(r, first: int, last: int) -> float:
        s = r.stocks[:, (years >= first) & (years <= last), :]
        active = s[..., Stock.COMMUNITY_ORDER_USING] + s[..., Stock.COMMUNITY_ORDER_NOT_USING]
        under = s[..., Stock.PATHWAY_COMMUNITY_DETOX] + s[..., Stock.PATHWAY_COMMUNITY_REHAB]
        return float(active.sum() / under.sum())

    early = carried_share(run, 2010, 2014) / carried_share(baseline, 2010, 2014)
    assert 0.5 / 0.892 - 0.1 < early < 0.5 / 0.826 + 0.04
    late = carried_share(run, 2020, 2025) / carried_share(baseline, 2020, 2025)
    assert abs(late - 1) < 0.05

    def total(r, flow: Flow) -> int:
        return int(r.flows[:, (years >= 2008) & (years <= 2014), flow].sum())

    assert total(run, Flow.SCHEDULED_TESTS_DONE) < total(baseline, Flow.SCHEDULED_TESTS_DONE)
    orders = Flow.ORDERS_COMMUNITY_DETOX
    assert total(run, orders) == pytest.approx(total(baseline, orders), rel=0.1)


def test_rehab_share_unchanged_2018_changes_nothing_before_june_2018(baseline):
    """rehab_share_unchanged_2018 keeps the share fitted to 2014 after June 2018. Draws are
    keyed by person and stream, so a rule changed from a date on leaves every flow and stock
    before it as the baseline's, exactly. After it, the same draw decides rehabilitation in
    both runs (u < share), so the switch's orders are about 0.4017 / 0.7718 of the
    baseline's; about 1,000 orders at this scale in 2019-2025 put the binomial error of the
    ratio near 0.016 (the people released drift apart a little after 2018)."""
    run = _run("rehab_share_unchanged_2018")
    months = baseline.prepared.months
    before = sum(1 for m in months if (m.year, m.month) < (2018, 6))
    np.testing.assert_array_equal(run.flows[:, :before], baseline.flows[:, :before])
    np.testing.assert_array_equal(run.stocks[:, :before], baseline.stocks[:, :before])
    years = np.array([m.year for m in months])
    late = years >= 2019
    rehab = Flow.ORDERS_COMMUNITY_REHAB
    ratio = run.flows[:, late, rehab].sum() / baseline.flows[:, late, rehab].sum()
    assert 0.4017 / 0.7718 - 0.07 < ratio < 0.4017 / 0.7718 + 0.07
