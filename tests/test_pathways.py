"""Treatment pathways (Anti-Drug Law 2008, Regulation 2011): orders at entry, after a detected
relapse and when an order ends; their lengths in the engine.

Shares are checked over N persons' own PATHWAY draws with a tolerance of 4 binomial standard
errors, sqrt(p (1 - p) / N): deterministic with the fixed seed, and a correct model fails with
probability about 1e-4.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pytest

from conftest import blank_state
from dcsim import pathways
from dcsim.catalogue import Par
from dcsim.measures import N_FLOWS, Flow
from dcsim.rng import Stream, person_key_np
from dcsim.state import NEVER, Path, Pathway, S

N = 20_000
SEED = 77
LAW_DAY = (dt.date(2008, 6, 1) - dt.date(2006, 1, 1)).days  # the Anti-Drug Law in force (fn 70)

DURATION = {
    Pathway.COMMUNITY_DETOX: Par.PATHWAYS__COMMUNITY_DETOX_DAYS,
    Pathway.COMMUNITY_REHAB: Par.PATHWAYS__COMMUNITY_REHAB_DAYS,
    Pathway.ISOLATION: Par.PATHWAYS__ISOLATION_DAYS,
    Pathway.VOLUNTARY: Par.PATHWAYS__VOLUNTARY_DAYS,
    Pathway.DETENTION: Par.PATHWAYS__DETENTION_DAYS__MINOR,  # set_order's; punish the other
}
TERMS = (Par.PATHWAYS__DETENTION_DAYS__MINOR, Par.PATHWAYS__DETENTION_DAYS__SERIOUS)


def _share_ok(count: int, n: int, p: float) -> None:
    assert abs(count / n - p) <= 4 * math.sqrt(p * (1 - p) / n) + 1e-12, (count / n, p)


@pytest.fixture
def P(national_params: np.ndarray) -> np.ndarray:
    """National rules with every isolation order carried out, so the draws below test the
    choice of order alone; test_isolation_not_carried_out_* test the admission draw."""
    out = national_params.copy()
    out[Par.PATHWAYS__ORDER_CARRIED_OUT__ISOLATION] = 1.0
    return out


@pytest.fixture(scope="module")
def pw_keys() -> np.ndarray:
    return person_key_np(SEED, Stream.PATHWAY, np.arange(N))


def test_custodial_pathways():
    assert [pathways.is_custodial(int(p)) for p in Pathway] == [
        False, False, False, True, True, True]


@pytest.mark.parametrize("pw", list(Pathway))
def test_set_order_lengths_kinds_and_flows(P, pw):
    s, f, keys, k = blank_state()
    fl = np.zeros(N_FLOWS, np.int64)
    pathways.set_order(s, 100, P, int(pw), 1, fl)
    # ORDER_ACTIVE marks a community order's tests; an isolation order carried out admits
    assert s[S.PATHWAY] == pw and s[S.ORDER_ACTIVE] == (0 if pw == Pathway.ISOLATION else 1)
    if pw == Pathway.NONE:
        assert s[S.ORDER_END] == NEVER
    else:
        assert s[S.ORDER_END] == 100 + int(P[DURATION[pw]])
    assert s[S.ORDER_KIND] == {Pathway.COMMUNITY_DETOX: 1, Pathway.COMMUNITY_REHAB: 2}.get(pw, 0)
    flow = {Pathway.COMMUNITY_DETOX: Flow.ORDERS_COMMUNITY_DETOX,
            Pathway.COMMUNITY_REHAB: Flow.ORDERS_COMMUNITY_REHAB,
            Pathway.ISOLATION: Flow.ORDERS_ISOLATION, Pathway.DETENTION: Flow.DETENTIONS}.get(pw)
    expected = np.zeros(N_FLOWS, np.int64)
    if flow is not None:
        expected[flow] = 1
    if pw == Pathway.ISOLATION:
        expected[Flow.ISOLATION_ADMISSIONS] = 1
    np.testing.assert_array_equal(fl, expected)


def test_law_lengths(P):
    """Community orders three years, isolation two (paper fn 37, 77)."""
    assert P[Par.PATHWAYS__COMMUNITY_DETOX_DAYS] == 1095
    assert P[Par.PATHWAYS__COMMUNITY_REHAB_DAYS] == 1095
    assert 365 <= P[Par.PATHWAYS__ISOLATION_DAYS] <= 730  # the time served, calibrated


def test_carried_out(P):
    p = P[Par.PATHWAYS__ORDER_CARRIED_OUT__COMMUNITY_DETOX]
    assert pathways.carried_out(P, Pathway.COMMUNITY_DETOX, p - 1e-9) == 1
    assert pathways.carried_out(P, Pathway.COMMUNITY_DETOX, p) == 0
    q = P[Par.PATHWAYS__ORDER_CARRIED_OUT__COMMUNITY_REHAB]
    assert pathways.carried_out(P, Pathway.COMMUNITY_REHAB, q - 1e-9) == 1
    assert pathways.carried_out(P, Pathway.COMMUNITY_REHAB, q) == 0
    r = P[Par.PATHWAYS__ORDER_CARRIED_OUT__ISOLATION]
    assert pathways.carried_out(P, Pathway.ISOLATION, r - 1e-9) == 1
    for pw in (Pathway.NONE, Pathway.DETENTION, Pathway.VOLUNTARY):
        assert pathways.carried_out(P, int(pw), 0.0) == 0


def _at_entry(P, keys_pw, path, dependent):
    out = np.empty((len(keys_pw), 2), np.int64)
    s, f, keys, k = blank_state()
    fl = np.zeros(N_FLOWS, np.int64)
    for i, key in enumerate(keys_pw):
        s[S.DEPENDENT] = dependent
        k[:] = 0
        keys[Stream.PATHWAY] = key
        pathways.order_at_entry(s, 5, P, int(path), keys, k, fl)
        assert k[Stream.PATHWAY] == 3 and k.sum() == 3  # always three PATHWAY draws
        out[i] = s[S.PATHWAY], s[S.ORDER_ACTIVE]
    return out


@pytest.mark.parametrize(("path", "dependent", "expected"), [
    (Path.DATA_ERROR, 0, Pathway.NONE),
    (Path.VOLUNTARY, 1, Pathway.VOLUNTARY),
    (Path.VOLUNTARY, 0, Pathway.VOLUNTARY),
    (Path.STOPPED_NOT_DETAINED, 1, Pathway.NONE),
    (Path.STOPPED_NOT_DETAINED, 0, Pathway.NONE),
    (Path.DETAINED_POSITIVE, 0, Pathway.DETENTION),
])
def test_order_at_entry_fixed_paths(P, pw_keys, path, dependent, expected):
    out = _at_entry(P, pw_keys[:300], path, dependent)
    assert np.all(out[:, 0] == expected)


def test_dependent_detained_entrants(P, pw_keys):
    """Isolation with dependent_to_isolation, else community detoxification, carried out with
    order_carried_out.community_detox."""
    out = _at_entry(P, pw_keys, Path.DETAINED_POSITIVE, 1)
    iso = out[:, 0] == Pathway.ISOLATION
    detox = out[:, 0] == Pathway.COMMUNITY_DETOX
    assert np.all(iso | detox)
    _share_ok(iso.sum(), N, P[Par.PATHWAYS__DEPENDENT_TO_ISOLATION])
    _share_ok(out[detox, 1].sum(), detox.sum(), P[Par.PATHWAYS__ORDER_CARRIED_OUT__COMMUNITY_DETOX])
    assert out[iso, 1].sum() == 0


def test_before_the_anti_drug_law_no_community_order_at_entry(P, pw_keys):
    """Without community orders in law (before June 2008) the dependent entrants not isolated
    are detained; the isolation share and the draws are unchanged (paper fn 70)."""
    with_law = _at_entry(P, pw_keys, Path.DETAINED_POSITIVE, 1)
    P[Par.PATHWAYS__COMMUNITY_ORDERS_IN_LAW] = 0.0
    before = _at_entry(P, pw_keys, Path.DETAINED_POSITIVE, 1)
    iso = with_law[:, 0] == Pathway.ISOLATION
    np.testing.assert_array_equal(before[:, 0] == Pathway.ISOLATION, iso)
    assert np.all(before[~iso, 0] == Pathway.DETENTION)


def test_the_law_is_in_force_from_june_2008(baseline_prepared):
    """national.yaml: no community order before 1 June 2008, community orders after."""
    col = baseline_prepared.table[0, :, Par.PATHWAYS__COMMUNITY_ORDERS_IN_LAW]
    months = baseline_prepared.months
    first = next(i for i, m in enumerate(months) if m >= dt.date(2008, 6, 1))
    assert np.all(col[:first] == 0) and np.all(col[first:] == 1)


def _after_detection(P, keys_pw, pathway):
    out = np.empty((len(keys_pw), 3), np.int64)
    s, f, keys, k = blank_state()
    fl = np.zeros(N_FLOWS, np.int64)
    for i, key in enumerate(keys_pw):
        pathways.set_order(s, 0, P, int(pathway), 1, fl)
        k[:] = 0
        keys[Stream.PATHWAY] = key
        pathways.order_after_detection(s, 200, P, keys, k, fl)
        assert k[Stream.PATHWAY] == 3 and k.sum() == 3
        out[i] = s[S.PATHWAY], s[S.ORDER_ACTIVE], s[S.ORDER_END]
    return out


def test_relapse_outside_any_order(P, pw_keys):
    out = _after_detection(P, pw_keys, Pathway.NONE)
    p_iso = P[Par.PATHWAYS__RELAPSE_OUTSIDE_ORDER_TO_ISOLATION]
    p_detox = (1 - p_iso) * P[Par.PATHWAYS__RELAPSE_OUTSIDE_ORDER_TO_DETOX]
    iso = out[:, 0] == Pathway.ISOLATION
    detox = out[:, 0] == Pathway.COMMUNITY_DETOX
    det = out[:, 0] == Pathway.DETENTION
    assert np.all(iso | detox | det)
    _share_ok(iso.sum(), N, p_iso)
    _share_ok(detox.sum(), N, p_detox)
    _share_ok(det.sum(), N, 1 - p_iso - p_detox)
    np.testing.assert_array_equal(out[iso, 2], 200 + int(P[Par.PATHWAYS__ISOLATION_DAYS]))
    _terms_ok(P, out[det, 2] - 200)


def _terms_ok(P, days: np.ndarray) -> None:
    """Every detention is the shorter or the longer term of fn 75, the longer with
    detention_serious_share."""
    minor, serious = (int(P[t]) for t in TERMS)
    assert days.size > 0 and np.all((days == minor) | (days == serious))
    _share_ok(int((days == serious).sum()), days.size, P[Par.PATHWAYS__DETENTION_SERIOUS_SHARE])


def test_fn75_terms_are_five_and_fifteen_days(P):
    assert [P[t] for t in TERMS] == [5, 15]


def test_relapse_outside_order_without_detention_is_a_fine(P, pw_keys):
    """Where detention is not the rule for the rest, they are fined: no order, no custody,
    and a fine counted for each (paper fn 75); the isolations are the same draws."""
    before = _after_detection(P, pw_keys[:5000], Pathway.NONE)
    P[Par.PATHWAYS__RELAPSE_OUTSIDE_ORDER_TO_DETENTION] = 0.0
    out = _after_detection(P, pw_keys[:5000], Pathway.NONE)
    assert not np.any(out[:, 0] == Pathway.DETENTION)
    np.testing.assert_array_equal(out[:, 0] == Pathway.NONE, before[:, 0] == Pathway.DETENTION)
    s, f, keys, k = blank_state()
    fl = np.zeros(N_FLOWS, np.int64)
    keys[Stream.PATHWAY] = pw_keys[0]
    p_iso = P[Par.PATHWAYS__RELAPSE_OUTSIDE_ORDER_TO_ISOLATION]
    P[Par.PATHWAYS__RELAPSE_OUTSIDE_ORDER_TO_ISOLATION] = 0.0
    P[Par.PATHWAYS__RELAPSE_OUTSIDE_ORDER_TO_DETOX] = 0.0
    pathways.order_after_detection(s, 10, P, keys, k, fl)
    assert s[S.PATHWAY] == Pathway.NONE and fl[Flow.FINES] == 1 and fl.sum() == 1
    assert p_iso > 0


def test_entrants_the_rules_punish_are_detained_or_fined(P, pw_keys):
    """Non-dependent detected entrants: detained with entry_to_detention (five or 15 days),
    else fined and left on no order (fn 75); still three PATHWAY draws each."""
    P[Par.PATHWAYS__ENTRY_TO_DETENTION] = 0.3
    s, f, keys, k = blank_state()
    fl = np.zeros(N_FLOWS, np.int64)
    days = []
    for key in pw_keys:
        k[:] = 0
        keys[Stream.PATHWAY] = key
        pathways.order_at_entry(s, 5, P, int(Path.DETAINED_POSITIVE), keys, k, fl)
        assert k.sum() == 3
        if s[S.PATHWAY] == Pathway.DETENTION:
            days.append(s[S.ORDER_END] - 5)
        else:
            assert s[S.PATHWAY] == Pathway.NONE and s[S.ORDER_END] == NEVER
    assert fl[Flow.DETENTIONS] == len(days) and fl[Flow.FINES] == N - len(days)
    _share_ok(len(days), N, 0.3)
    _terms_ok(P, np.array(days))


def test_relapse_outside_any_order_before_the_law(P, pw_keys):
    """Before June 2008 a detected relapse outside any order is isolated as before, and the
    rest who would have had a community order are detained: same draws, same isolations."""
    with_law = _after_detection(P, pw_keys[:5000], Pathway.NONE)
    P[Par.PATHWAYS__COMMUNITY_ORDERS_IN_LAW] = 0.0
    before = _after_detection(P, pw_keys[:5000], Pathway.NONE)
    iso = with_law[:, 0] == Pathway.ISOLATION
    np.testing.assert_array_equal(before[:, 0] == Pathway.ISOLATION, iso)
    assert np.any(with_law[:, 0] == Pathway.COMMUNITY_DETOX)
    assert np.all(before[~iso, 0] == Pathway.DETENTION)


def test_isolation_is_followed_by_nothing_before_the_law(P, pw_keys):
    P[Par.PATHWAYS__COMMUNITY_ORDERS_IN_LAW] = 0.0
    s, f, keys, k = blank_state()
    fl = np.zeros(N_FLOWS, np.int64)
    for key in pw_keys[:500]:
        pathways.set_order(s, 0, P, Pathway.ISOLATION, 1, fl)
        k[:] = 0
        keys[Stream.PATHWAY] = key
        pathways.order_ends(s, 730, P, keys, k, fl)
        assert k.sum() == 3 and s[S.PATHWAY] == Pathway.NONE
    assert fl[Flow.ORDERS_COMMUNITY_REHAB] == 0


@pytest.mark.parametrize("pathway", [Pathway.COMMUNITY_DETOX, Pathway.COMMUNITY_REHAB])
def test_positive_in_community_order(P, pw_keys, pathway):
    out = _after_detection(P, pw_keys, pathway)
    iso = out[:, 0] == Pathway.ISOLATION
    kept = out[:, 0] == pathway
    assert np.all(iso | kept)
    _share_ok(iso.sum(), N, P[Par.PATHWAYS__POSITIVE_IN_COMMUNITY_TO_ISOLATION])
    # the order goes on unchanged: same end day (set on day 0)
    np.testing.assert_array_equal(out[kept, 2], int(P[DURATION[pathway]]))


@pytest.mark.parametrize("pathway", [Pathway.ISOLATION, Pathway.VOLUNTARY, Pathway.DETENTION])
def test_detection_in_custody_changes_nothing(P, pw_keys, pathway):
    out = _after_detection(P, pw_keys[:200], pathway)
    assert np.all(out[:, 0] == pathway)


def test_order_ends(P, pw_keys):
    s, f, keys, k = blank_state()
    fl = np.zeros(N_FLOWS, np.int64)
    rehab = 0
    for key in pw_keys:
        pathways.set_order(s, 0, P, Pathway.ISOLATION, 1, fl)
        k[:] = 0
        keys[Stream.PATHWAY] = key
        pathways.order_ends(s, 730, P, keys, k, fl)
        assert k.sum() == 3
        assert s[S.PATHWAY] in (Pathway.COMMUNITY_REHAB, Pathway.NONE)
        if s[S.PATHWAY] == Pathway.COMMUNITY_REHAB:
            rehab += 1
            assert s[S.ORDER_END] == 730 + int(P[Par.PATHWAYS__COMMUNITY_REHAB_DAYS])
            assert s[S.ORDER_KIND] == 2
        else:
            assert s[S.ORDER_END] == NEVER
    _share_ok(rehab, N, P[Par.PATHWAYS__ISOLATION_TO_REHAB])
    for pw in (Pathway.DETENTION, Pathway.VOLUNTARY, Pathway.COMMUNITY_DETOX,
               Pathway.COMMUNITY_REHAB):
        for key in pw_keys[:100]:
            pathways.set_order(s, 0, P, int(pw), 1, fl)
            keys[Stream.PATHWAY] = key
            pathways.order_ends(s, 10, P, keys, k, fl)
            assert s[S.PATHWAY] == Pathway.NONE and s[S.ORDER_END] == NEVER


def test_entry_pathway_in_the_engine(baseline, trace_cache):
    """The first row of each traced life course shows the order the entry path sets."""
    pop = baseline.population
    sample = np.concatenate([np.flatnonzero((pop.path == p) & after)[:40]
                             for p in range(4) for after in (pop.entry_day < LAW_DAY,
                                                             pop.entry_day >= LAW_DAY)])
    dependent_orders = []
    for i in sample:
        row = trace_cache(i).iloc[0]
        assert row.event == "entry" and row.day == pop.entry_day[i]
        path, dep = pop.path[i], pop.dependent[i]
        if path == Path.DATA_ERROR or path == Path.STOPPED_NOT_DETAINED:
            assert row.pathway == Pathway.NONE
        elif path == Path.VOLUNTARY:
            assert row.pathway == Pathway.VOLUNTARY
        elif dep and row.day < LAW_DAY:  # before the Anti-Drug Law: no community order
            assert row.pathway in (Pathway.ISOLATION, Pathway.DETENTION, Pathway.NONE)
        elif dep:  # no order: an isolation order not carried out (order_carried_out.isolation)
            assert row.pathway in (Pathway.ISOLATION, Pathway.COMMUNITY_DETOX, Pathway.NONE)
            dependent_orders.append(row.pathway != Pathway.NONE)
        else:
            assert row.pathway == Pathway.DETENTION
    assert any(dependent_orders)


def test_orders_last_their_legal_length_in_the_engine(baseline, baseline_prepared, trace_cache):
    """Each custodial spell ends by order_end exactly its length after it began (the length in
    force on the day it began: the isolation term before the Anti-Drug Law is not the law's);
    a community order ends the same way or earlier by isolation after a detected relapse."""
    n_days = baseline_prepared.n_days
    pop = baseline.population

    def lengths_in_force(i: int, pathway: int, day: int) -> tuple[int, ...]:
        month = baseline_prepared.month_of_day[min(day, n_days - 1)]
        row = baseline_prepared.table[pop.jurisdiction[i], month]
        return tuple(int(row[p]) for p in (TERMS if pathway == Pathway.DETENTION
                                           else (DURATION[pathway],)))

    sample = np.flatnonzero(pop.path != Path.DATA_ERROR)[::41][:250]
    checked = {pw: 0 for pw in DURATION}
    for i in sample:
        df = trace_cache(i)
        cur, start = int(df.pathway.iloc[0]), int(df.day.iloc[0])
        for r in df.iloc[1:].itertuples():
            if r.pathway == cur:
                continue
            if cur != Pathway.NONE:
                lengths = lengths_in_force(i, cur, start)
                if pathways.is_custodial(cur) or r.event == "order_end":
                    assert r.event == "order_end", (i, r)
                    assert r.day - start in lengths, (i, r, start)
                else:  # community order cut short by an isolation order after a detection
                    # (not carried out: the person stays out, on no order)
                    assert r.pathway in (Pathway.ISOLATION, Pathway.NONE), (i, r)
                    assert r.last_detect == r.day and r.day < start + lengths[0], (i, r)
                checked[cur] += 1
            cur, start = int(r.pathway), int(r.day)
        if cur != Pathway.NONE and pop.out("control_code")[i] >= 0:  # alive at the end
            assert start + max(lengths_in_force(i, cur, start)) >= n_days, (i, cur, start)
    assert all(v > 0 for v in checked.values()), checked


def test_order_flows_counted(baseline):
    for fl in (Flow.ORDERS_COMMUNITY_DETOX, Flow.ORDERS_COMMUNITY_REHAB, Flow.ORDERS_ISOLATION,
               Flow.DETENTIONS):
        assert baseline.flows[:, :, fl].sum() > 0


@pytest.mark.parametrize("dependent", [0, 1])
def test_health_led_entry_brings_an_offer_never_an_order(P, pw_keys, dependent):
    """pathways.health_led: a detained entrant is offered voluntary treatment, taken up with
    treatment_offer_accepted (the entry's third PATHWAY draw), and never ordered anything."""
    P[Par.PATHWAYS__HEALTH_LED] = 1
    P[Par.PATHWAYS__TREATMENT_OFFER_ACCEPTED] = 0.3
    out = _at_entry(P, pw_keys, Path.DETAINED_POSITIVE, dependent)
    vol = out[:, 0] == Pathway.VOLUNTARY
    assert np.all(vol | (out[:, 0] == Pathway.NONE))
    _share_ok(vol.sum(), N, P[Par.PATHWAYS__TREATMENT_OFFER_ACCEPTED])


@pytest.mark.parametrize("pathway", [Pathway.NONE, Pathway.COMMUNITY_DETOX,
                                     Pathway.COMMUNITY_REHAB])
def test_health_led_detection_brings_an_offer_never_an_order(P, pw_keys, pathway):
    P[Par.PATHWAYS__HEALTH_LED] = 1
    P[Par.PATHWAYS__TREATMENT_OFFER_ACCEPTED] = 0.3
    out = _after_detection(P, pw_keys, pathway)
    vol = out[:, 0] == Pathway.VOLUNTARY
    assert np.all(vol | (out[:, 0] == pathway))
    _share_ok(vol.sum(), N, P[Par.PATHWAYS__TREATMENT_OFFER_ACCEPTED])


def test_health_led_isolation_is_not_followed_by_rehabilitation(P):
    P[Par.PATHWAYS__HEALTH_LED] = 1
    s, f, keys, k = blank_state()
    fl = np.zeros(N_FLOWS, np.int64)
    for key in person_key_np(SEED, Stream.PATHWAY, np.arange(200)):
        pathways.set_order(s, 0, P, int(Pathway.ISOLATION), 0, fl)
        k[:] = 0
        keys[Stream.PATHWAY] = key
        pathways.order_ends(s, 800, P, keys, k, fl)
        assert s[S.PATHWAY] == Pathway.NONE and k[Stream.PATHWAY] == 3


def test_isolation_not_carried_out_counts_the_order_but_no_admission(national_params):
    """An isolation order not carried out (pathways.order_carried_out.isolation) is counted
    as an order, admits no one and leaves the person on no order; one carried out admits."""
    P = national_params.copy()
    for done, pathway, admitted in ((0, Pathway.NONE, 0), (1, Pathway.ISOLATION, 1)):
        s, *_ = blank_state()
        fl = np.zeros(N_FLOWS, np.int64)
        pathways.set_order(s, 100, P, Pathway.ISOLATION, np.int64(done), fl)
        assert s[S.PATHWAY] == pathway and fl[Flow.ORDERS_ISOLATION] == 1
        assert fl[Flow.ISOLATION_ADMISSIONS] == admitted
        assert s[S.ORDER_END] == (100 + int(P[Par.PATHWAYS__ISOLATION_DAYS]) if done else NEVER)


def test_isolation_admission_share(national_params, pw_keys):
    """carried_out for isolation follows its rule value over N persons' draws."""
    P = national_params.copy()
    p = P[Par.PATHWAYS__ORDER_CARRIED_OUT__ISOLATION]
    from dcsim.rng import uniform_np
    u = uniform_np(pw_keys, 0)
    done = sum(pathways.carried_out(P, Pathway.ISOLATION, float(x)) for x in u)
    _share_ok(done, N, p)


def test_admissions_never_exceed_orders_in_the_engine(baseline):
    fl = baseline.flows
    adm, orders = fl[:, :, Flow.ISOLATION_ADMISSIONS], fl[:, :, Flow.ORDERS_ISOLATION]
    assert np.all(adm <= orders) and 0 < adm.sum() < orders.sum()
