"""Bookkeeping: stock codes, moves between stock columns, periodic spans and person-days.

The ledger turns each person's changes of state into exact integer sums, so most checks here
are identities: per-person counts add up to the monthly flows, person-days to the exposure, the
end-of-period person codes to the last month's stocks, and records are never deleted in the
baseline.
"""

from __future__ import annotations

import numpy as np
import pytest

from conftest import blank_life, blank_state, entries
from dcsim import ledger
from dcsim.catalogue import Par
from dcsim.measures import (
    AGE_BANDS_YEARS,
    FIXED_POINT,
    N_DIMS,
    N_PERIODIC,
    Dim,
    Flow,
    Intrusion,
    Rate,
    Stock,
)
from dcsim.state import NEVER, Pathway, Release, S

CONTROL_DAYS = [Rate.CONTROL_DAYS_UNDER_25, Rate.CONTROL_DAYS_25_59, Rate.CONTROL_DAYS_60_PLUS]
TRAPS = [Stock.TRAPPED_NO_RELEASE_AREA, Stock.TRAPPED_INSUFFICIENT_TESTS,
         Stock.TRAPPED_AWAITING_UPDATE, Stock.TRAPPED_PARTIAL_RELEASE]


def _codes(s, t, P):
    out = np.full(N_DIMS, -1, np.int64)
    ledger.stock_codes(s, t, P, out)
    return out


def _state():
    s, *_ = blank_state()
    s[S.OFFICIAL_FLIP] = 1000
    s[S.EXIT_FLIP] = 1000
    s[S.TRUE_FLIP] = 1000
    return s


# ------------------------------------------------------------------ stock codes


def test_codes_of_a_person_under_control(P):
    s = _state()
    s[S.USING] = 1
    s[S.PATHWAY] = Pathway.COMMUNITY_DETOX
    c = _codes(s, 10, P)
    assert list(c) == [Stock.EXISTING_USERS, Stock.UNDER_CONTROL, Stock.PATHWAY_COMMUNITY_DETOX,
                       Stock.TRUE_USING, -1, -1, -1, Stock.RECORDS_HELD, -1]


def test_official_and_true_abstinence(P):
    s = _state()
    assert _codes(s, 999, P)[0] == Stock.EXISTING_USERS
    assert _codes(s, 1000, P)[0] == Stock.ABSTINENT_3Y_RECORDED
    assert _codes(s, 999, P)[3] == Stock.TRUE_ABSTINENT_UNDER_3Y
    assert _codes(s, 1000, P)[3] == Stock.TRUE_ABSTINENT_3Y
    s[S.NEVER_USED] = 1
    assert _codes(s, 5, P)[3] == Stock.TRUE_NEVER_USED


@pytest.mark.parametrize(("release", "allowed", "eligible", "trap"), [
    (Release.CONTROL, 1, NEVER, Stock.TRAPPED_INSUFFICIENT_TESTS),
    (Release.CONTROL, 1, 1000, Stock.TRAPPED_AWAITING_UPDATE),
    (Release.CONTROL, 0, 1000, Stock.TRAPPED_NO_RELEASE_AREA),
    (Release.CONTROL, 0, NEVER, Stock.TRAPPED_NO_RELEASE_AREA),
    (Release.PARTIAL, 1, 1000, Stock.TRAPPED_PARTIAL_RELEASE),
    (Release.FULL, 1, 1000, -1),
])
def test_trap_reasons(P, release, allowed, eligible, trap):
    s = _state()
    s[S.RELEASE] = release
    s[S.ELIGIBLE] = eligible
    P[Par.EXIT__RELEASE_ALLOWED] = allowed
    assert _codes(s, 999, P)[4] == -1  # not yet three years by record
    c = _codes(s, 1000, P)
    assert c[4] == trap
    assert c[1] == Stock.UNDER_CONTROL + release
    assert c[5] == (Stock.ELIGIBLE_BY_LAW if eligible != NEVER else -1)


def test_codes_out_of_the_registry(P):
    s = _state()
    s[S.LOST] = 1
    assert _codes(s, 5, P)[6] == Stock.WHEREABOUTS_UNKNOWN
    dead = s.copy()
    dead[S.IN_REGISTRY] = 0
    dead[S.ALIVE] = 0
    assert list(_codes(dead, 5, P)) == [-1] * 7 + [Stock.RECORDS_HELD, -1]  # the record stays
    corrected = dead.copy()
    corrected[S.CORRECTED] = 1
    assert list(_codes(corrected, 5, P)) == [-1] * N_DIMS
    deleted = s.copy()
    deleted[S.RELEASE] = Release.DELETED
    assert list(_codes(deleted, 5, P)) == [-1] * N_DIMS


def test_community_codes_follow_the_order_carried_out_and_the_truth(P):
    s = _state()
    s[S.PATHWAY] = Pathway.COMMUNITY_DETOX
    assert _codes(s, 10, P)[Dim.COMMUNITY] == -1  # ordered, not carried out
    s[S.ORDER_ACTIVE] = 1
    assert _codes(s, 10, P)[Dim.COMMUNITY] == Stock.COMMUNITY_ORDER_NOT_USING
    s[S.USING] = 1
    assert _codes(s, 10, P)[Dim.COMMUNITY] == Stock.COMMUNITY_ORDER_USING


def test_move_stocks():
    prev = np.array([0, 2, 5, 11, -1, -1, -1, 21, -1], np.int64)
    new = np.array([1, 2, 6, 11, 16, -1, -1, 21, 22], np.int64)
    delta = np.zeros(len(Stock), np.int64)
    ledger.move_stocks(prev, new, delta)
    expected = np.zeros(len(Stock), np.int64)
    expected[[0, 5]] = -1
    expected[[1, 6, 16, 22]] = 1
    np.testing.assert_array_equal(delta, expected)
    np.testing.assert_array_equal(prev, new)
    out = np.zeros(len(Stock), np.int64)
    ledger.move_stocks(prev, np.full(N_DIMS, -1, np.int64), out)  # leaves every column
    expected = np.zeros(len(Stock), np.int64)
    expected[new[new >= 0]] = -1
    np.testing.assert_array_equal(out, expected)
    assert np.all(prev == -1)


# ------------------------------------------------------------------ age bands


def test_age_bands_and_their_flips():
    s, *_ = blank_state()
    s[S.BIRTH] = -7000
    t = 0
    seen = [ledger.age_band(s, t)]
    while True:
        flip = ledger.next_age_flip(s, t)
        if flip == NEVER:
            break
        assert ledger.age_band(s, flip - 1) == seen[-1]
        assert ledger.age_band(s, flip) == seen[-1] + 1
        seen.append(ledger.age_band(s, flip))
        t = flip
    assert seen == [0, 1, 2]
    assert ledger.next_age_flip(s, 0) == -7000 + int(AGE_BANDS_YEARS[0] * 365.25 + 0.999999)


# ------------------------------------------------------------------ spans


def test_spans_open_close_and_count():
    life = blank_life(n_days=200)
    s, rates, intr = life.s, life.rates, life.intrusions
    iv = np.array([30.0, 14.0, 0.0])
    ledger.set_spans(life, 10, iv, 1, -1, True)
    assert rates[10, Rate.COUNSELLING] == round(FIXED_POINT / 30)
    assert rates[10, Rate.GRID_VISITS] == round(FIXED_POINT / 14)
    assert rates[10, Rate.CONTROL_DAYS_25_59] == 1 and rates[10, Rate.REGISTRY_DAYS] == 1
    ledger.set_spans(life, 10, iv, 1, -1, True)  # nothing changed: nothing moves
    assert np.count_nonzero(rates) == 4
    iv2 = np.array([14.0, 14.0, 1.0])  # counselling tightens, the app starts
    ledger.set_spans(life, 75, iv2, 2, -1, True)
    assert rates[75, Rate.COUNSELLING] == round(FIXED_POINT / 14) - round(FIXED_POINT / 30)
    assert intr[Intrusion.COUNSELLING] == (75 - 10) // 30
    assert rates[75, Rate.CONTROL_DAYS_25_59] == -1 and rates[75, Rate.CONTROL_DAYS_60_PLUS] == 1
    ledger.set_spans(life, 150, np.zeros(N_PERIODIC), -1, -1, False)
    assert intr[Intrusion.COUNSELLING] == (75 - 10) // 30 + (150 - 75) // 14
    assert intr[Intrusion.HOME_VISIT] == (150 - 10) // 14
    assert intr[Intrusion.APP_CHECKIN] == 150 - 75
    assert s[S.EXPOSURE] == 140
    # every span closed: the daily levels return to zero
    np.testing.assert_array_equal(rates.sum(axis=0), 0)


# ------------------------------------------------------------------ in the engine


def test_records_never_deleted_in_the_baseline(baseline):
    """RECORDS_HELD changes each month by entries less error corrections, nothing else."""
    st, fl = baseline.stocks, baseline.flows
    change = entries(baseline) - fl[:, :, Flow.ERROR_CORRECTIONS]
    np.testing.assert_array_equal(st[:, :, Stock.RECORDS_HELD], np.cumsum(change, axis=1))
    assert fl[:, :, Flow.RECORD_DELETIONS].sum() == 0
    # the record outlives death
    registry = st[:, :, Stock.EXISTING_USERS] + st[:, :, Stock.ABSTINENT_3Y_RECORDED]
    np.testing.assert_array_equal(st[:, :, Stock.RECORDS_HELD] - registry,
                                  np.cumsum(fl[:, :, Flow.DEATHS], axis=1))


def test_registry_days_equal_exposure(baseline):
    act = baseline.activity
    assert act[:, :, Rate.REGISTRY_DAYS].sum() == baseline.population.out("exposure_days").sum()
    assert np.all(act[:, :, CONTROL_DAYS].sum(axis=2) <= act[:, :, Rate.REGISTRY_DAYS] + 1e-6)
    # a month's registry days lie between 28 and 31 times the smallest and largest stock
    st = baseline.stocks
    reg = st[:, :, Stock.EXISTING_USERS] + st[:, :, Stock.ABSTINENT_3Y_RECORDED]
    prev = np.concatenate([np.zeros((reg.shape[0], 1), reg.dtype), reg[:, :-1]], axis=1)
    ent = entries(baseline)
    assert np.all(act[:, :, Rate.REGISTRY_DAYS] <= 31 * (prev + ent) + 1e-6)


def test_person_intrusions_add_up_to_flows(baseline):
    pop, fl = baseline.population, baseline.flows.sum(axis=(0, 1))
    for kind, flow in ((Intrusion.PUBLIC_INTERROGATION, Flow.INTRUSIONS_PUBLIC_INTERROGATION),
                       (Intrusion.PUBLIC_TEST, Flow.INTRUSIONS_PUBLIC_TEST),
                       (Intrusion.HOME_TEST, Flow.INTRUSIONS_HOME_TEST),
                       (Intrusion.WORKPLACE_TEST, Flow.INTRUSIONS_WORKPLACE_TEST),
                       (Intrusion.NEIGHBOUR_INTERVIEW, Flow.INTRUSIONS_NEIGHBOUR_INTERVIEW),
                       (Intrusion.SCHEDULED_TEST, Flow.INTRUSIONS_SCHEDULED_TEST),
                       (Intrusion.APP_ALERT_FOLLOWUP, Flow.INTRUSIONS_APP_ALERT_FOLLOWUP)):
        assert pop.intrusions[:, kind].sum() == fl[flow], kind
    assert pop.intrusions.min() >= 0


def test_person_schedules_within_the_activity(baseline):
    """A person's own count of a schedule is the whole number of intervals in each span, so
    it is at most the activity (fractions of intervals) and more than a large part of it."""
    pop, act, fl = baseline.population, baseline.activity, baseline.flows
    own_counsel = pop.intrusions[:, Intrusion.COUNSELLING].sum()
    own_grid = (pop.intrusions[:, Intrusion.HOME_VISIT].sum()
                - fl[:, :, Flow.INTRUSIONS_HOME_VISIT].sum())
    own_app = pop.intrusions[:, Intrusion.APP_CHECKIN].sum()
    for own, rate in ((own_counsel, Rate.COUNSELLING), (own_grid, Rate.GRID_VISITS),
                      (own_app, Rate.APP_CHECKINS)):
        total = act[:, :, rate].sum()
        assert 0.8 * total < own <= total + 1e-6, rate
    # daily check-ins are whole days: no fraction is lost
    assert own_app == act[:, :, Rate.APP_CHECKINS].sum()


def test_end_codes_match_last_stocks(baseline):
    pop, st = baseline.population, baseline.stocks
    n_j = st.shape[0]
    ctrl = pop.out("control_code")
    for col in (Stock.UNDER_CONTROL, Stock.PARTIALLY_RELEASED, Stock.RELEASED):
        got = np.bincount(pop.jurisdiction[ctrl == col], minlength=n_j)
        np.testing.assert_array_equal(st[:, -1, col], got)
    trap = pop.out("trap_code")
    for col in TRAPS:
        np.testing.assert_array_equal(st[:, -1, col],
                                      np.bincount(pop.jurisdiction[trap == col], minlength=n_j))
    using = (pop.out("using_at_end") == 1) & (ctrl >= 0)
    np.testing.assert_array_equal(st[:, -1, Stock.TRUE_USING],
                                  np.bincount(pop.jurisdiction[using], minlength=n_j))


def test_record_flips_three_years_after_the_last_detection(baseline, trace_cache):
    """The exit clock is complete exactly exit.abstinence_days_required after the last
    detected use, and a registrant stops counting as an 'existing user' statistics.
    abstinent_days plus the record's update lag in force on that day after it (official_flip_day,
    the person's own draw); the true flip only
    ever happens while not using."""
    from dcsim.official_statistics import official_flip_day
    from dcsim.rng import Stream, person_key_np

    pop = baseline.population
    table, months = baseline.prepared.table, baseline.prepared.month_of_day
    keys = blank_state()[2]
    seen = 0
    for i in np.arange(0, len(pop), 47)[:200]:
        df = trace_cache(i)
        P_rows = table[int(pop.jurisdiction[i])]
        keys[Stream.EXIT] = person_key_np(baseline.scenario.seed, int(Stream.EXIT),
                                          np.array([i]))[0]
        for ev in ("official_flip", "exit_flip"):
            rows = df[df.event == ev]
            for _, r in rows.iterrows():
                P_then = P_rows[months[int(r.day)]]
                want = (official_flip_day(int(r.last_detect), P_then, keys) - r.last_detect
                        if ev == "official_flip"
                        else P_then[Par.EXIT__ABSTINENCE_DAYS_REQUIRED])
                assert r.day - r.last_detect == int(want), (i, ev)
            seen += len(rows)
        assert (df.using[df.event == "true_flip"] == 0).all(), i
    assert seen > 100


def test_trap_reasons_agree_with_the_person(baseline):
    pop = baseline.population
    trap, elig = pop.out("trap_code"), pop.out("eligible_day")
    assert np.all(elig[trap == Stock.TRAPPED_INSUFFICIENT_TESTS] == NEVER)
    assert np.all(elig[trap == Stock.TRAPPED_AWAITING_UPDATE] != NEVER)
    assert np.all(pop.out("control_code")[trap == Stock.TRAPPED_PARTIAL_RELEASE]
                  == Stock.PARTIALLY_RELEASED)
    assert np.all(trap[pop.out("control_code") == Stock.RELEASED] == -1)
    for col in TRAPS:
        if col != Stock.TRAPPED_NO_RELEASE_AREA:
            assert (trap == col).sum() > 0, col


def test_age_bands_of_control_days(run_with):
    """Everyone enters at exactly 16 (mean 16, no spread): no one is 60 or more within the
    period, and no one reaches 25 before 9 x 365.25 days after the first entries (2015-01-02)."""
    run = run_with({"registration.mean_age_at_entry": 16, "registration.sd_age_at_entry": 0})
    act = run.activity
    assert act[:, :, Rate.CONTROL_DAYS_60_PLUS].sum() == 0
    first = 12 * 9  # January 2015
    assert act[:, :first, Rate.CONTROL_DAYS_25_59].sum() == 0
    assert act[:, first, Rate.CONTROL_DAYS_25_59].sum() > 0
    assert act[:, :, Rate.CONTROL_DAYS_UNDER_25].sum() > 0
    old = run_with({"registration.mean_age_at_entry": 70, "registration.sd_age_at_entry": 0})
    assert old.activity[:, :, Rate.CONTROL_DAYS_UNDER_25].sum() == 0
    assert old.activity[:, :, Rate.CONTROL_DAYS_25_59].sum() == 0
    np.testing.assert_allclose(old.activity[:, :, CONTROL_DAYS].sum(axis=2),
                               old.activity[:, :, Rate.CONTROL_DAYS_60_PLUS])
