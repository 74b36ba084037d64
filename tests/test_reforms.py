"""The reform library (data/reforms): every file is a cited, dated overlay; every reform runs,
does what it says, and leaves what it does not touch exactly as in the baseline.

Runs are at scale 0.002 on one seed, reform and baseline on the same seed: draws are keyed by
person and stream (common random numbers), so "untouched" is tested as exact equality.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import BASELINE_SCALE, BASELINE_SEED, ENTRY_FLOWS, day_of, month_of
from dcsim.compare import package_reforms
from dcsim.measures import Flow, Rate, Stock
from dcsim.model import Run, prepare, simulate, trace_person
from dcsim.rules import load_rule_file
from dcsim.scenario import load_scenario
from dcsim.state import Path as EntryPath
from dcsim.state import Pathway

REFORMS = ("exit_law", "deletion", "alerts_community_order", "alerts_abolished", "health_led",
           "local_correction", "prompt_records", "combined")
COMBINED = ("exit_law", "deletion", "alerts_community_order", "health_led", "local_correction")
DATES = {"2011": dt.date(2011, 6, 1), "2026": dt.date(2026, 1, 1)}
M2011 = month_of(DATES["2011"])
# Events of a reform's first day that come before the rule change in the day's event order
# (alerts, tests, releases) still follow the old rules, so flows are checked from the next
# month; month-end stocks and person-days from the reform's month.
M_NEXT = M2011 + 1
TRAPS = [Stock.TRAPPED_NO_RELEASE_AREA, Stock.TRAPPED_INSUFFICIENT_TESTS,
         Stock.TRAPPED_AWAITING_UPDATE, Stock.TRAPPED_PARTIAL_RELEASE]
_RUNS: dict[tuple[str, str], Run] = {}


def run_of(reform: str | None, scenario: str = "national_baseline") -> Run:
    """The scenario with one package reform (None: the scenario alone), memoised."""
    key = (scenario, reform or "")
    if key not in _RUNS:
        overlays = [package_reforms()[reform]] if reform else None
        sc = load_scenario(scenario, overlays=overlays, scale=BASELINE_SCALE, seed=BASELINE_SEED)
        _RUNS[key] = simulate(prepare(sc))
    return _RUNS[key]


# ------------------------------------------------------------------ the files


def test_every_reform_ships_in_both_versions():
    names = set(package_reforms())
    assert names == {f"{r}_{y}" for r in REFORMS for y in DATES}


@pytest.mark.parametrize("name", sorted(f"{r}_{y}" for r in REFORMS for y in DATES))
def test_reform_file_has_its_header_and_applies_from_its_date(name):
    path = package_reforms()[name]
    text = path.read_text()
    head = [line for line in text.splitlines() if line.startswith("#")]
    joined = "\n".join(head)
    assert head[0].startswith("# Reform: ") and "What it represents:" in joined
    assert "Why:" in joined and re.search(r"paper fn \d+|fn \d+", joined)
    day = DATES[name.rsplit("_", 1)[1]]
    assert f"# Applies from {day}" in joined
    rf = load_rule_file(path)
    assert rf.jurisdiction == "national" and rf.parameters
    for p in rf.parameters.values():
        assert [w.start for w in p.windows] == [day] and p.windows[0].end is None, p.name
        assert "paper fn" in p.windows[0].reference


@pytest.mark.parametrize("reform", REFORMS)
def test_the_2026_version_differs_only_by_its_date(reform):
    a, b = (load_rule_file(package_reforms()[f"{reform}_{y}"]) for y in DATES)
    assert {n: (w.value, w.reference) for n, p in a.parameters.items() for w in p.windows} == \
        {n: (w.value, w.reference) for n, p in b.parameters.items() for w in p.windows}


def test_the_combination_is_the_five_reforms_together():
    for y in DATES:
        combined = load_rule_file(package_reforms()[f"combined_{y}"]).parameters
        parts = {n: p for r in COMBINED
                 for n, p in load_rule_file(package_reforms()[f"{r}_{y}"]).parameters.items()}
        assert set(combined) == set(parts)
        for n, p in parts.items():
            assert [(w.start, w.value, w.reference) for w in p.windows] == \
                [(w.start, w.value, w.reference) for w in combined[n].windows], n


# ------------------------------------------------------------------ effects (2011 versions)


def _assert_same_before(run: Run, base: Run, month: int) -> None:
    """Before the reform applies nothing may differ; entries never differ."""
    for a, b in ((run.flows, base.flows), (run.stocks, base.stocks),
                 (run.activity, base.activity)):
        np.testing.assert_array_equal(a[:, :month], b[:, :month])
    np.testing.assert_array_equal(run.flows[:, :, ENTRY_FLOWS], base.flows[:, :, ENTRY_FLOWS])


@pytest.mark.parametrize("reform", REFORMS)
def test_every_reform_runs_and_is_the_baseline_before_june_2011(reform):
    run, base = run_of(f"{reform}_2011"), run_of(None)
    _assert_same_before(run, base, M2011)
    assert not np.array_equal(run.flows[:, M2011:], base.flows[:, M2011:])


def test_exit_law_leaves_no_one_trapped():
    """Under the law as written nobody, in a no-release area or anywhere, stays under control
    past three years without a detected use: every trap is empty at every month end."""
    run, base = run_of("exit_law_2011"), run_of(None)
    assert base.stocks[:, M2011:, TRAPS].sum() > 0
    assert run.stocks[:, M2011:, TRAPS].sum() == 0
    # the law itself keeps people with a drug-related criminal case on record (fn 37)
    assert run.stocks[:, M2011:, Stock.HELD_CRIMINAL_CASE].sum() > 0
    assert run.flows[:, M_NEXT:, Flow.RELEASES_PARTIAL].sum() == 0
    j = run.prepared.jurisdictions.index("serious_area")
    assert run.flows[j, M2011:, Flow.RELEASES_FULL].sum() > 0 == base.flows[j, :,
                                                                              Flow.RELEASES_FULL].sum()


def test_deletion_leaves_no_record_after_exit_and_moves_nothing_else():
    """From the reform on no fully released person keeps a record; the people deleted are in
    the records_deleted stock; the true state and police activity do not change (a deleted
    record draws no tests or alerts, neither did a full release), only grid visits to released
    persons and the bookkeeping of deletions and re-entries."""
    from dcsim.results import records_deleted

    run, base = run_of("deletion_2011"), run_of(None)
    assert base.stocks[:, M2011:, Stock.RELEASED].sum() > 0
    assert run.stocks[:, M2011:, Stock.RELEASED].sum() == 0
    deleted = records_deleted(run)
    assert deleted[:, -1].sum() > 0 and deleted[:, :M2011].sum() == 0
    # deleted records plus those held account for every record the baseline holds; only
    # deaths after deletion (which records_deleted does not follow) can make the sum larger
    gap = (run.stocks[:, :, Stock.RECORDS_HELD] + deleted - base.stocks[:, :, Stock.RECORDS_HELD])
    assert gap.min() >= 0
    assert np.all(gap <= np.cumsum(base.flows[:, :, Flow.DEATHS], axis=1))
    changed = {f.name for f in Flow
               if not np.array_equal(run.flows[:, :, f], base.flows[:, :, f])}
    assert changed <= {"RECORD_DELETIONS", "REENTRIES", "RELEASES_REVOKED", "INTRUSIONS_HOME_VISIT",
                       "ENGINE_EVENTS"}, changed
    assert "RECORD_DELETIONS" in changed


def test_alerts_abolished_stop_every_alert():
    run, base = run_of("alerts_abolished_2011"), run_of(None)
    alert_days = [Rate.ALERT_DAYS_NOT_USING, Rate.ALERT_DAYS_USING]
    assert base.flows[:, M2011:, Flow.ALERTS].sum() > 0
    assert run.flows[:, M_NEXT:, Flow.ALERTS].sum() == 0
    assert run.flows[:, M_NEXT:, Flow.INTRUSIONS_PUBLIC_INTERROGATION].sum() == 0
    assert run.activity[:, M2011:, alert_days].sum() == 0
    assert run.activity[:, M2011 - 1, alert_days].sum() > 0


def test_alerts_only_reach_people_under_a_community_order():
    run, base = run_of("alerts_community_order_2011"), run_of(None)
    assert 0 < run.flows[:, M2011:, Flow.ALERTS].sum() < 0.5 * base.flows[:, M2011:,
                                                                          Flow.ALERTS].sum()
    start, checked = day_of(DATES["2011"]), 0
    community = {Pathway.COMMUNITY_DETOX, Pathway.COMMUNITY_REHAB}
    pop = run.population
    for i in np.flatnonzero(pop.intrusions[:, 0] > 0)[:400]:
        df = trace_person(run, int(i))
        before = df.pathway.shift(1)
        hits = df[(df.event == "alert_contact") & (df.day > start)]
        for idx in hits.index:
            assert before[idx] in community, (i, df.loc[idx].to_dict())
            checked += 1
    assert checked >= 5


def test_health_led_orders_no_one_and_isolation_ends():
    run, base = run_of("health_led_2011"), run_of(None)
    orders = [Flow.ORDERS_ISOLATION, Flow.ORDERS_COMMUNITY_DETOX, Flow.ORDERS_COMMUNITY_REHAB,
              Flow.DETENTIONS]
    assert base.flows[:, M2011:, orders].sum() > 0
    assert run.flows[:, M_NEXT:, orders].sum() == 0
    two_years_on = month_of(dt.date(2013, 7, 1))  # isolation in force lasts two years
    assert run.stocks[:, two_years_on:, Stock.PATHWAY_ISOLATION].sum() == 0
    assert run.stocks[:, M2011:, Stock.PATHWAY_VOLUNTARY].sum() > base.stocks[
        :, M2011:, Stock.PATHWAY_VOLUNTARY].sum()


def test_local_correction_changes_only_the_records_in_error():
    """Persons registered in error are corrected sooner; everyone else lives exactly the same
    life (their intrusions and outcomes are identical, person by person)."""
    run, base = run_of("local_correction_2011"), run_of(None)
    pop, bpop = run.population, base.population
    ok = pop.path != EntryPath.DATA_ERROR
    np.testing.assert_array_equal(pop.intrusions[ok], bpop.intrusions[ok])
    np.testing.assert_array_equal(pop.outcome[ok], bpop.outcome[ok])
    err = ~ok
    assert pop.out("exposure_days")[err].sum() < bpop.out("exposure_days")[err].sum()
    # no correction comes later than it would have: cumulative corrections are never behind
    done, base_done = (np.cumsum(r.flows[:, :, Flow.ERROR_CORRECTIONS].sum(axis=0))
                       for r in (run, base))
    assert np.all(done >= base_done) and np.any(done > base_done)


def test_prompt_records_shorten_the_wait_for_an_update_and_nothing_else_of_exit():
    """Records updated within a month instead of a year: by Little's law the people waiting
    for an update fall to about 30/365 of the baseline's once the reform has settled; those
    waiting on the day are released within weeks; the official count reads the same records."""
    run, base = run_of("prompt_records_2011"), run_of(None)
    settled = slice(month_of(dt.date(2013, 1, 1)), month_of(dt.date(2020, 1, 1)))
    waiting = [r.stocks[:, settled, Stock.TRAPPED_AWAITING_UPDATE].sum() for r in (run, base)]
    assert 0.04 < waiting[0] / waiting[1] < 0.15  # 30 / 365 = 0.082
    first = [r.stocks[:, M2011, Stock.TRAPPED_AWAITING_UPDATE].sum() for r in (run, base)]
    assert first[0] < 0.25 * first[1]
    released = [r.flows[:, M2011:, [Flow.RELEASES_FULL, Flow.RELEASES_PARTIAL]].sum()
                for r in (run, base)]
    assert released[0] > released[1]
    recorded = [r.stocks[:, settled, Stock.ABSTINENT_3Y_RECORDED].sum() for r in (run, base)]
    assert recorded[0] > 1.2 * recorded[1]  # a month's lag instead of two years


def test_combination_has_the_effects_of_its_parts():
    run = run_of("combined_2011")
    assert run.stocks[:, M2011:, TRAPS].sum() == 0
    assert run.stocks[:, M2011:, Stock.RELEASED].sum() == 0
    assert run.flows[:, M_NEXT:, [Flow.ORDERS_ISOLATION, Flow.DETENTIONS]].sum() == 0


# ------------------------------------------------------------------ prospective (2026)


@pytest.mark.slow
def test_prospective_exit_law_from_2026_on_the_projection():
    run, base = run_of("exit_law_2026", "national_projection"), run_of(None, "national_projection")
    assert run.scenario.end == dt.date(2035, 12, 31)
    m = month_of(DATES["2026"])
    _assert_same_before(run, base, m)
    assert base.stocks[:, m:, TRAPS].sum() > 0 and run.stocks[:, m:, TRAPS].sum() == 0


@pytest.mark.slow
@pytest.mark.parametrize("reform", REFORMS)
def test_every_prospective_reform_runs_and_is_the_projection_before_2026(reform):
    run, base = run_of(f"{reform}_2026", "national_projection"), run_of(None, "national_projection")
    m = month_of(DATES["2026"])
    _assert_same_before(run, base, m)
    assert not np.array_equal(run.flows[:, m:], base.flows[:, m:])


def test_the_projection_is_the_baseline_up_to_2025():
    """Extending the period changes nothing before 2026 (the inflow file starts then)."""
    base = run_of(None)
    sc = load_scenario("national_projection", scale=BASELINE_SCALE, seed=BASELINE_SEED)
    assert Path(sc.rule_path("dcsim:projection_inflow.yaml")).is_file()
    proj = run_of(None, "national_projection")
    n = base.flows.shape[1]
    np.testing.assert_array_equal(proj.flows[:, :n, ENTRY_FLOWS], base.flows[:, :, ENTRY_FLOWS])
    np.testing.assert_array_equal(proj.stocks[:, : n - 1], base.stocks[:, : n - 1])
