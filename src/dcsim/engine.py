"""The engine: walks each person's life course event by event and orders the procedures in time.

Persons do not interact, so each is simulated from entry to the end of the period on their own,
by the next-event method: the earliest pending event (a change of use, a test due, an ID use,
an inspection, an order ending, a reassessment, a release, ...) is taken, its procedure is run,
and the bookkeeping records what changed. Cost grows with the number of events, not with
persons x days. Persons are split into a fixed number of chunks, each with its own integer
accumulators, so the sums (and so the run) are the same whatever the number of threads.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit, prange

from . import alerts, apps, data_errors, drug_use, exit, grid, ledger, management, pathways
from .catalogue import Par
from .jit import KERNEL
from .measures import (
    FLOW_ALERT_VENUE0,
    FLOW_INTERROGATION_VENUE0,
    N_DIMS,
    N_PERIODIC,
    Flow,
    Intrusion,
)
from .rng import Stream, chance, draw, peek, person_key
from .state import FNEVER, NEVER, F, K, Release, S
from .testing import is_positive, positive_result, record_detection, record_negative

N_CHUNKS = 16  # fixed: the accumulators (and so the sums) never depend on the thread count

# event codes, in the order ties on the same day are taken
_EV_USE, _EV_TEST, _EV_ID, _EV_INSPECT, _EV_ENCOUNTER, _EV_APP = 0, 1, 2, 3, 4, 5
_EV_ORDER_END, _EV_ASSESS, _EV_OFFICIAL, _EV_EXIT_FLIP, _EV_TRUE_FLIP = 6, 7, 8, 9, 10
_EV_RELEASE, _EV_DEATH, _EV_CORRECT, _EV_RULE, _EV_AGE = 11, 12, 13, 14, 15
N_EVENTS = 16
_NS, _NF, _NK = int(S.N), int(F.N), int(K.N)

# columns of max_rates: bounds of the thinned Poisson processes of one locality
_MAX_ID, _MAX_ENCOUNTER, _MAX_APP, _MAX_INSPECT0 = 0, 1, 2, 3  # inspections: one per tier
N_BOUNDS = 7


@njit(inline="always", **KERNEL)
def _next_clock(t, bound, keys, k, stream) -> float:  # noqa: ANN001
    """Next candidate of a thinned Poisson process with rate `bound` a year."""
    if bound <= 0.0:
        return FNEVER
    return t - 365.25 * math.log(1.0 - draw(keys, k, stream)) / bound


@njit(**KERNEL)
def _refresh(s, f, t, P, grid_rank, app_rank, codes, codes_new, delta_row, rates_j,
             intrusions, keys, k, bounds, intervals) -> None:  # noqa: ANN001
    """After an event that changed the state: clocks, schedules, spans and stocks follow.

    A clock whose process cannot fire is parked (FNEVER) and restarted from day t when it can
    again; Poisson processes are memoryless, so this is exact.
    """
    management.reschedule_test(s, t, P)
    app = apps.enrolled_app(s, P, app_rank)
    if app != s[S.APP]:
        s[S.APP] = app
        f[F.APP_ALERT] = FNEVER
        if app >= 0:
            f[F.APP_ALERT] = _next_clock(t, bounds[_MAX_APP], keys, k, Stream.APP)
    tier = s[S.TIER] if management.reachable(s) else -1
    if tier != s[S.INSPECT_TIER]:
        s[S.INSPECT_TIER] = tier
        f[F.INSPECT] = FNEVER
        if tier >= 0:
            f[F.INSPECT] = _next_clock(t, bounds[_MAX_INSPECT0 + tier], keys, k, Stream.INSPECT)
    if alerts.raises_alert(s, P):
        if f[F.ID_USE] >= FNEVER:
            f[F.ID_USE] = _next_clock(t, bounds[_MAX_ID], keys, k, Stream.ID_USE)
    else:
        f[F.ID_USE] = FNEVER
    if s[S.USING] == 1 and s[S.ALIVE] == 1 and not pathways.is_custodial(s[S.PATHWAY]):
        if f[F.ENCOUNTER] >= FNEVER:
            f[F.ENCOUNTER] = _next_clock(t, bounds[_MAX_ENCOUNTER], keys, k, Stream.ENCOUNTER)
    else:
        f[F.ENCOUNTER] = FNEVER
    intervals[0] = management.counselling_interval(s, P)
    intervals[1] = grid.visit_interval(s, P, grid_rank)
    intervals[2] = apps.checkin_interval(P, app)
    registered = ledger.in_registry(s)
    band = ledger.age_band(s, t) if registered and s[S.RELEASE] <= Release.PARTIAL else -1
    ledger.set_spans(s, f, t, intervals, band, alerts.alert_band(s, P), registered, rates_j,
                     intrusions)
    ledger.stock_codes(s, t, P, codes_new)
    ledger.move_stocks(codes, codes_new, delta_row)


@njit(inline="always", **KERNEL)
def _detect(s, t, P, keys, k, fl) -> bool:  # noqa: ANN001
    """Record a detected use; True if anything that schedules or stocks depend on changed
    (a repeat detection of someone already at extreme risk with no order changes nothing)."""
    before = _what_refresh_reads(s, t)
    record_detection(s, t, P, keys, k, fl)
    if pathways.is_custodial(s[S.PATHWAY]):
        drug_use.enter_custody(s, t, P)
    return _what_refresh_reads(s, t) != before


@njit(inline="always", **KERNEL)
def _what_refresh_reads(s, t):  # noqa: ANN001, ANN202
    """The state _refresh depends on that a detection can change."""
    return (s[S.TIER], s[S.NEG_TESTS], s[S.ELIGIBLE], s[S.RELEASE_DUE], s[S.RELEASE],
            s[S.PATHWAY], s[S.ORDER_END], s[S.NEXT_ASSESS], s[S.USING], s[S.ORDER_ACTIVE],
            s[S.ORDER_KIND], int(t >= s[S.OFFICIAL_FLIP]) + 2 * int(t >= s[S.EXIT_FLIP]))


@njit(inline="always", **KERNEL)
def _negative(s, f, t, P, keys, k, fl, scheduled) -> bool:  # noqa: ANN001
    """A negative test may count towards exit; True if it made the person eligible."""
    record_negative(s, P, scheduled)
    return exit.check_eligibility(s, f, t, P, keys, k, fl)


@njit(inline="always", **KERNEL)
def _test(s, f, t, P, positive, keys, k, fl) -> bool:  # noqa: ANN001
    """The consequence of a test by police or inspectors; True if the state changed."""
    if positive:
        return _detect(s, t, P, keys, k, fl)
    return _negative(s, f, t, P, keys, k, fl, False)


@njit(inline="always", **KERNEL)
def _alert_reaches(s, f, t, P, v, keys, k, fl, intrusions) -> bool:  # noqa: ANN001
    """An alert at venue v that police answer and that reaches the person (paper fn 22): an
    interrogation in public, usually a test. True if the state changed. (The alerts that reach
    no one are counted by alerts.unreached_alerts.)"""
    # a contact owns two POLICE draws: tested, result
    tested = chance(P[Par.ALERTS__TEST_GIVEN_CONTACT], keys, k, Stream.POLICE, 0)
    positive = tested and positive_result(s, P, keys, k, Stream.POLICE, 1)
    k[Stream.POLICE] += 2
    fl[Flow.ALERTS] += 1
    fl[FLOW_ALERT_VENUE0 + v] += 1
    fl[Flow.ALERT_RESPONSES] += 1
    fl[Flow.ALERT_CONTACTS] += 1
    fl[FLOW_INTERROGATION_VENUE0 + v] += 1
    fl[Flow.INTRUSIONS_PUBLIC_INTERROGATION] += 1
    intrusions[Intrusion.PUBLIC_INTERROGATION] += 1
    fl[Flow.OFFICER_MINUTES_ALERTS] += int(round(60.0 * P[Par.ALERTS__OFFICER_HOURS_PER_RESPONSE]
                                                 + 60.0 * P[Par.ALERTS__OFFICER_HOURS_PER_CONTACT]))
    changed = False
    if s[S.LOST] == 1:
        s[S.LOST] = 0
        fl[Flow.WHEREABOUTS_FOUND] += 1
        changed = True
    if tested:
        fl[Flow.ALERT_TESTS] += 1
        fl[Flow.INTRUSIONS_PUBLIC_TEST] += 1
        intrusions[Intrusion.PUBLIC_TEST] += 1
        if positive:
            fl[Flow.ALERT_POSITIVES] += 1
        changed = _test(s, f, t, P, positive, keys, k, fl) or changed
    return changed


@njit(**KERNEL)
def _inspect(s, f, t, P, u_work, u_neighbour, u_result, keys, k, fl, intrusions) -> bool:  # noqa: ANN001
    """An unscheduled inspection with a test, at home or at work (paper fn 21, 51)."""
    fl[Flow.OFFICER_MINUTES_INSPECTIONS] += int(
        round(60.0 * P[Par.MANAGEMENT__OFFICER_HOURS_PER_INSPECTION]))
    if u_work < P[Par.MANAGEMENT__WORKPLACE_SHARE]:
        fl[Flow.INSPECTIONS_WORKPLACE] += 1
        fl[Flow.INTRUSIONS_WORKPLACE_TEST] += 1
        intrusions[Intrusion.WORKPLACE_TEST] += 1
    else:
        fl[Flow.INSPECTIONS_HOME] += 1
        fl[Flow.INTRUSIONS_HOME_VISIT] += 1
        fl[Flow.INTRUSIONS_HOME_TEST] += 1
        intrusions[Intrusion.HOME_VISIT] += 1
        intrusions[Intrusion.HOME_TEST] += 1
        if u_neighbour < P[Par.MANAGEMENT__NEIGHBOUR_INTERVIEW_PROBABILITY]:
            fl[Flow.INTRUSIONS_NEIGHBOUR_INTERVIEW] += 1
            intrusions[Intrusion.NEIGHBOUR_INTERVIEW] += 1
    positive = is_positive(s, P, u_result)
    if positive:
        fl[Flow.INSPECTION_POSITIVES] += 1
    return _test(s, f, t, P, positive, keys, k, fl)


@njit(**KERNEL)
def _rules_changed(s, f, t, P, keys, k, fl) -> None:  # noqa: ANN001
    """New rule values from today: the dates that depend on them move, and the exit criteria
    are judged again, so a reform reaches everyone on the day it takes effect."""
    s[S.OFFICIAL_FLIP] = s[S.LAST_DETECT] + int(P[Par.STATISTICS__ABSTINENT_DAYS])
    s[S.EXIT_FLIP] = s[S.LAST_DETECT] + int(P[Par.EXIT__ABSTINENCE_DAYS_REQUIRED])
    done = s[S.FLIPS_DONE]
    done = (done | 1) if s[S.OFFICIAL_FLIP] <= t else (done & ~1)
    done = (done | 2) if s[S.EXIT_FLIP] <= t else (done & ~2)
    if s[S.NEVER_USED] == 0 and s[S.USING] == 0:
        s[S.TRUE_FLIP] = drug_use.true_flip_day(s[S.ABST_START], P)
        done = (done | 4) if s[S.TRUE_FLIP] <= t else (done & ~4)
    s[S.FLIPS_DONE] = done
    exit.check_eligibility(s, f, t, P, keys, k, fl)
    exit.schedule_release(s, f, t, P)
    data_errors.rejudge_correction(s, t, P, keys)


@njit(inline="always", **KERNEL)
def _is_rare(ev) -> bool:  # noqa: ANN001
    return ev == _EV_USE or ev >= _EV_ORDER_END


@njit(**KERNEL)
def _earliest_rare(s, rule_day, times) -> tuple[int, int]:  # noqa: ANN001
    """(event, day) of the earliest rare event; the lowest code wins a tie."""
    done = s[S.FLIPS_DONE]
    times[_EV_USE] = s[S.USE_NEXT]
    times[_EV_ORDER_END] = s[S.ORDER_END]
    times[_EV_ASSESS] = s[S.NEXT_ASSESS]
    times[_EV_OFFICIAL] = NEVER if done & 1 else s[S.OFFICIAL_FLIP]
    times[_EV_EXIT_FLIP] = NEVER if done & 2 else s[S.EXIT_FLIP]
    times[_EV_TRUE_FLIP] = NEVER if done & 4 else s[S.TRUE_FLIP]
    times[_EV_RELEASE] = s[S.RELEASE_DUE]
    times[_EV_DEATH] = s[S.DEATH]
    times[_EV_CORRECT] = s[S.CORRECT]
    times[_EV_RULE] = rule_day
    times[_EV_AGE] = s[S.AGE_FLIP]
    ev = _EV_USE
    for e in range(_EV_ORDER_END, N_EVENTS):
        if times[e] < times[ev]:
            ev = e
    return ev, times[ev]


EVENT_NAMES = ("use_change", "scheduled_test", "alert_contact", "inspection", "encounter",
               "app_alert", "order_end", "reassessment", "official_flip", "exit_flip", "true_flip",
               "release", "death", "correction", "rule_change", "age_band")
TRACE_FIELDS = ("day", "event", "using", "pathway", "tier", "last_detect", "neg_tests",
                "eligible", "release", "in_registry", "release_due")
_TRACE_S = (S.USING, S.PATHWAY, S.TIER, S.LAST_DETECT, S.NEG_TESTS, S.ELIGIBLE, S.RELEASE,
            S.IN_REGISTRY, S.RELEASE_DUE)


@njit(**KERNEL)
def _trace(trace, t, ev, s) -> None:  # noqa: ANN001
    """Row 0 column 0 holds the number of rows written; rows 1.. the events."""
    n = trace[0, 0] + 1
    if n < trace.shape[0]:
        trace[n, 0] = t
        trace[n, 1] = ev
        for c in range(len(_TRACE_S)):
            trace[n, 2 + c] = s[_TRACE_S[c]]
        trace[0, 0] = n


@njit(**KERNEL)
def simulate_person(
    i, seed, entry_day, jur, path, dependent, birth_day, using0, lost, grid_rank, app_rank,
    table, month_of_day, n_days, rule_days, max_rates,
    flows, stock_delta, rates, intrusions, person_out,
    s, f, keys, k, codes, codes_new, buf, times, trace,
) -> None:  # noqa: ANN001
    """One person's life course from entry to the end of the period (or death, or correction)."""
    j = jur
    t = entry_day
    for st in range(_NK):
        keys[st] = person_key(seed, st, i)
        k[st] = 0
    s[:] = 0
    f[:] = 0.0
    for d in range(N_DIMS):
        codes[d] = -1
    bounds = max_rates[j]
    P = table[j, month_of_day[t]]
    fl = flows[j, month_of_day[t]]
    never_used = 1 if path == 3 else 0

    # --- registration (population.py drew the attributes)
    s[S.J] = j
    s[S.ALIVE] = 1
    s[S.IN_REGISTRY] = 1
    s[S.NEVER_USED] = never_used
    s[S.DEPENDENT] = dependent
    s[S.LOST] = lost
    s[S.BIRTH] = birth_day
    s[S.APP] = -1
    s[S.CTRL_BAND] = -1
    s[S.ALERT_BAND] = -1
    s[S.REG_START] = -1
    s[S.ELIGIBLE] = NEVER
    s[S.RELEASE_DUE] = NEVER
    s[S.NEXT_TEST] = NEVER
    s[S.CORRECT] = NEVER
    s[S.USE_NEXT] = NEVER
    s[S.FIRST_RELEASE] = NEVER
    s[S.ABST_START] = t
    s[S.TRUE_FLIP] = drug_use.true_flip_day(t, P)
    s[S.LAST_DETECT] = t
    s[S.OFFICIAL_FLIP] = t + int(P[Par.STATISTICS__ABSTINENT_DAYS])
    s[S.EXIT_FLIP] = t + int(P[Par.EXIT__ABSTINENCE_DAYS_REQUIRED])
    s[S.ENTRY] = t
    s[S.NEXT_ASSESS] = management.next_assessment(s, t, P)
    s[S.AGE_FLIP] = ledger.next_age_flip(s, t)
    s[S.NEXT_RULE] = 0
    while rule_days[j, s[S.NEXT_RULE]] <= t:
        s[S.NEXT_RULE] += 1
    s[S.TIER] = int(
        P[Par.MANAGEMENT__ENTRY_TIER__USING] if using0 else P[Par.MANAGEMENT__ENTRY_TIER__NOT_USING]
    )
    s[S.DEATH] = t + 1 + int(
        -365.25 * math.log(1.0 - draw(keys, k, Stream.DEATH)) / P[Par.DRUG_USE__MORTALITY_PER_YEAR]
    ) if P[Par.DRUG_USE__MORTALITY_PER_YEAR] > 0.0 else NEVER
    if never_used == 1:
        s[S.CORRECT] = data_errors.correction_day(t, P, keys, k)
        s[S.FLIPS_DONE] |= 4  # never used: no abstinence to count
    if using0 and never_used == 0:
        drug_use.start_use(s, t, P, keys, k)
    elif never_used == 0:
        drug_use.start_abstinence(s, t, P, keys, k, 1.0)
    fl[Flow.ENTRIES_DETAINED_POSITIVE + path] += 1
    pathways.order_at_entry(s, t, P, path, keys, k, fl)
    if pathways.is_custodial(s[S.PATHWAY]):
        drug_use.enter_custody(s, t, P)
    f[F.ENCOUNTER] = FNEVER
    f[F.ID_USE] = FNEVER
    f[F.INSPECT] = FNEVER
    f[F.APP_ALERT] = FNEVER
    s[S.INSPECT_TIER] = -1
    _refresh(s, f, t, P, grid_rank, app_rank, codes, codes_new, stock_delta[j, month_of_day[t]],
             rates[j], intrusions, keys, k, bounds, buf)
    if trace.shape[0] > 0:
        _trace(trace, t, -1, s)

    rare_stale = True
    rare_ev, rare_t = 0, NEVER
    while True:
        # Rare events (use changes, order ends, flips, releases...) move only when the state
        # changes, so their earliest is cached; the frequent clocks are read every time.
        # Ties go to the lower event code, as if all sixteen were scanned together.
        if rare_stale:
            rare_ev, rare_t = _earliest_rare(s, rule_days[j, s[S.NEXT_RULE]], times)
            rare_stale = False
        ev, t = rare_ev, rare_t
        t_test = s[S.NEXT_TEST]
        if t_test < t or (t_test == t and _EV_TEST < ev):
            ev, t = _EV_TEST, t_test
        for e, clock in ((_EV_ID, f[F.ID_USE]), (_EV_INSPECT, f[F.INSPECT]),
                         (_EV_ENCOUNTER, f[F.ENCOUNTER]), (_EV_APP, f[F.APP_ALERT])):
            day = int(min(clock, 4e9))
            if day < t or (day == t and e < ev):
                ev, t = e, day
        if t >= n_days:
            break
        m = month_of_day[t]
        P = table[j, m]
        fl = flows[j, m]
        s[S.T] = t
        fl[Flow.ENGINE_EVENTS] += 1
        changed = True  # most events change the state; the frequent ones say when they do not

        if ev == _EV_USE:
            if s[S.USING] == 1:
                fl[Flow.TRUE_CESSATIONS] += 1
                drug_use.start_abstinence(s, t, P, keys, k, apps.relapse_multiplier(P, s[S.APP]))
            else:
                fl[Flow.TRUE_RELAPSES] += 1
                drug_use.start_use(s, t, P, keys, k)
        elif ev == _EV_TEST:
            fl[Flow.SCHEDULED_TESTS_DUE] += 1
            done = chance(P[Par.MANAGEMENT__TEST_DONE_PROBABILITY], keys, k, Stream.TEST, 0)
            positive = done and positive_result(s, P, keys, k, Stream.TEST, 1)
            k[Stream.TEST] += 2  # a scheduled test owns two draws: done, result
            s[S.NEXT_TEST] = NEVER
            changed = False
            if done:
                fl[Flow.SCHEDULED_TESTS_DONE] += 1
                fl[Flow.INTRUSIONS_SCHEDULED_TEST] += 1
                intrusions[Intrusion.SCHEDULED_TEST] += 1
                if positive:
                    fl[Flow.SCHEDULED_TEST_POSITIVES] += 1
                    changed = _detect(s, t, P, keys, k, fl)
                else:
                    changed = _negative(s, f, t, P, keys, k, fl, True)
            iv = management.test_interval(s, P)
            if iv > 0.0 and s[S.NEXT_TEST] == NEVER:
                s[S.NEXT_TEST] = t + int(iv)
        elif ev == _EV_ID:
            changed = False
            # a candidate owns three ID_USE draws: accept, venue, next candidate
            total = alerts.venue_total(P)
            rate = alerts.id_use_rate(s, P, total) * alerts.reach_probability(P)
            accept = rate >= bounds[_MAX_ID] or (
                rate > 0.0 and peek(keys, k, Stream.ID_USE, 0) * bounds[_MAX_ID] < rate)
            v = alerts.venue_of(P, peek(keys, k, Stream.ID_USE, 1), total) if accept else 0
            k[Stream.ID_USE] += 2
            f[F.ID_USE] = _next_clock(f[F.ID_USE], bounds[_MAX_ID], keys, k, Stream.ID_USE)
            if accept:
                changed = _alert_reaches(s, f, t, P, v, keys, k, fl, intrusions)
        elif ev == _EV_INSPECT:
            changed = False
            u_accept = draw(keys, k, Stream.INSPECT)
            u_work = draw(keys, k, Stream.INSPECT)
            u_neighbour = draw(keys, k, Stream.INSPECT)
            u_result = draw(keys, k, Stream.INSPECT)
            bound = bounds[_MAX_INSPECT0 + s[S.INSPECT_TIER]]
            f[F.INSPECT] = _next_clock(f[F.INSPECT], bound, keys, k, Stream.INSPECT)
            if u_accept * bound < management.inspection_rate(s, P):
                changed = _inspect(s, f, t, P, u_work, u_neighbour, u_result, keys, k, fl,
                                   intrusions)
        elif ev == _EV_ENCOUNTER:
            u_accept = draw(keys, k, Stream.ENCOUNTER)
            f[F.ENCOUNTER] = _next_clock(
                f[F.ENCOUNTER], bounds[_MAX_ENCOUNTER], keys, k, Stream.ENCOUNTER)
            changed = False
            if u_accept * bounds[_MAX_ENCOUNTER] < P[Par.MANAGEMENT__ENCOUNTER_RATE_PER_YEAR]:
                fl[Flow.ENCOUNTER_DETECTIONS] += 1
                changed = _detect(s, t, P, keys, k, fl)
        elif ev == _EV_APP:
            changed = False
            u_accept = draw(keys, k, Stream.APP)
            f[F.APP_ALERT] = _next_clock(f[F.APP_ALERT], bounds[_MAX_APP], keys, k, Stream.APP)
            if u_accept * bounds[_MAX_APP] < apps.alert_rate(P, s[S.APP]):
                fl[Flow.APP_ALERTS] += 1
                fl[Flow.INTRUSIONS_APP_ALERT_FOLLOWUP] += 1
                intrusions[Intrusion.APP_ALERT_FOLLOWUP] += 1
                fl[Flow.STAFF_MINUTES_APP] += int(round(60.0 * P[Par.APPS__ALERT_FOLLOWUP_HOURS]))
        elif ev == _EV_ORDER_END:
            was_custodial = pathways.is_custodial(s[S.PATHWAY])
            pathways.order_ends(s, t, P, keys, k, fl)
            if was_custodial and s[S.NEVER_USED] == 0:
                drug_use.start_abstinence(s, t, P, keys, k, 1.0)
        elif ev == _EV_ASSESS:
            changed = management.reassess(s, t, P)
        elif ev == _EV_OFFICIAL or ev == _EV_EXIT_FLIP or ev == _EV_TRUE_FLIP:
            # A day count crosses three years: the law may now be met, and stocks move.
            # Nothing a schedule or clock depends on changes, so only the stocks are redone.
            s[S.FLIPS_DONE] |= 1 if ev == _EV_OFFICIAL else (2 if ev == _EV_EXIT_FLIP else 4)
            if ev != _EV_OFFICIAL:
                exit.check_eligibility(s, f, t, P, keys, k, fl)
            ledger.stock_codes(s, t, P, codes_new)
            ledger.move_stocks(codes, codes_new, stock_delta[j, m])
            changed = False
        elif ev == _EV_RELEASE:
            exit.release(s, f, P, fl)
            if s[S.FIRST_RELEASE] == NEVER:
                s[S.FIRST_RELEASE] = t
        elif ev == _EV_DEATH or ev == _EV_CORRECT:
            if ev == _EV_DEATH:
                fl[Flow.DEATHS] += 1
                s[S.ALIVE] = 0
            else:
                fl[Flow.ERROR_CORRECTIONS] += 1
                s[S.CORRECTED] = 1
            s[S.IN_REGISTRY] = 0
            _refresh(s, f, t, P, grid_rank, app_rank, codes, codes_new,
                     stock_delta[j, m], rates[j], intrusions, keys, k, bounds, buf)
            if trace.shape[0] > 0:
                _trace(trace, t, ev, s)
            break
        elif ev == _EV_RULE:
            s[S.NEXT_RULE] += 1
            _rules_changed(s, f, t, P, keys, k, fl)
        elif ev == _EV_AGE:
            s[S.AGE_FLIP] = ledger.next_age_flip(s, t)
        if changed:
            _refresh(s, f, t, P, grid_rank, app_rank, codes, codes_new, stock_delta[j, m],
                     rates[j], intrusions, keys, k, bounds, buf)
        if changed or _is_rare(ev):
            rare_stale = True
        elif s[S.LAST_DETECT] == t:
            # A detection that changed nothing else moves only the two record flips (later,
            # and re-armed): merge them into the cached earliest unless it was one of them.
            if rare_ev == _EV_OFFICIAL or rare_ev == _EV_EXIT_FLIP:
                rare_stale = True
            else:
                for e, day in ((_EV_OFFICIAL, s[S.OFFICIAL_FLIP]), (_EV_EXIT_FLIP, s[S.EXIT_FLIP])):
                    if day < rare_t or (day == rare_t and e < rare_ev):
                        rare_ev, rare_t = e, day
        if trace.shape[0] > 0:
            _trace(trace, t, ev, s)

    # close the open spans at the end of the period (or at death / correction)
    t_end = min(t, n_days)
    buf[:] = 0.0
    ledger.set_spans(s, f, t_end, buf, -1, -1, False, rates[j], intrusions)
    person_out[0] = s[S.EXPOSURE]
    person_out[1] = s[S.ELIGIBLE]
    person_out[2] = s[S.DETECTIONS]
    person_out[3] = codes[4]  # trap group code at the end (-1: not trapped)
    person_out[4] = codes[1]  # control status at the end
    person_out[5] = s[S.USING]
    person_out[6] = s[S.FIRST_RELEASE]


def scratch(n_chunks: int) -> tuple[np.ndarray, ...]:
    """Per-chunk working arrays (kernels allocate nothing; see jit.py)."""
    return (
        np.zeros((n_chunks, _NS), np.int64), np.zeros((n_chunks, _NF)),
        np.zeros((n_chunks, _NK), np.uint64), np.zeros((n_chunks, _NK), np.int64),
        np.full((n_chunks, N_DIMS), -1, np.int64), np.full((n_chunks, N_DIMS), -1, np.int64),
        np.zeros((n_chunks, N_PERIODIC)), np.zeros((n_chunks, N_EVENTS), np.int64),
        np.zeros((0, len(TRACE_FIELDS)), np.int64),
    )


@njit(parallel=True, **KERNEL)
def run_chunks(
    seed, order, q_lo, q_hi, entry_day, jur, path, dependent, birth_day, using0, lost,
    grid_rank, app_rank, table, month_of_day, n_days, rule_days, max_rates,
    flows, stock_delta, rates, intrusions, person_out,
    s_all, f_all, keys_all, k_all, codes_all, codes_new_all, buf_all, times_all, no_trace,
) -> None:  # noqa: ANN001
    """Chunk c simulates persons i = order[q * n_chunks + c] for q in [q_lo, q_hi), into
    flows[c], stock_delta[c] and rates[c]. Striding spreads early and late entrants evenly over
    chunks, so the threads share the work equally. `order` lists persons by locality, so a
    thread works on one locality's rules and tables at a time (they then stay in its cache);
    the sums are integers, so the order cannot change them."""
    n_chunks = flows.shape[0]
    n = entry_day.shape[0]
    for c in prange(n_chunks):
        for q in range(q_lo, q_hi):
            r = q * n_chunks + c
            if r >= n:
                break
            i = order[r]
            simulate_person(
                i, seed, entry_day[i], jur[i], path[i], dependent[i], birth_day[i], using0[i],
                lost[i], grid_rank[i], app_rank[i], table, month_of_day, n_days, rule_days,
                max_rates, flows[c], stock_delta[c], rates[c], intrusions[i], person_out[i],
                s_all[c], f_all[c], keys_all[c], k_all[c], codes_all[c], codes_new_all[c],
                buf_all[c], times_all[c], no_trace,
            )


def trace_one(
    i, seed, entry_day, jur, path, dependent, birth_day, using0, lost, grid_rank, app_rank,
    table, month_of_day, n_days, rule_days, max_rates, n_flows, n_stocks, n_rates, n_intr,
    capacity,
):  # noqa: ANN001, ANN201
    """Replay one person with scratch accumulators and return their event log."""
    n_j, n_m = table.shape[0], table.shape[1]
    flows = np.zeros((n_j, n_m, n_flows), np.int64)
    stock_delta = np.zeros((n_j, n_m, n_stocks), np.int64)
    rates = np.zeros((n_j, n_days + 1, n_rates), np.int64)
    intrusions = np.zeros(n_intr, np.int32)
    person_out = np.zeros(8, np.int32)
    trace = np.zeros((capacity + 1, len(TRACE_FIELDS)), np.int64)
    s, f, keys, k, codes, codes_new, buf, times = (a[0] for a in scratch(1)[:-1])
    simulate_person(
        i, seed, entry_day, jur, path, dependent, birth_day, using0, lost, grid_rank, app_rank,
        table, month_of_day, n_days, rule_days, max_rates, flows, stock_delta, rates,
        intrusions, person_out, s, f, keys, k, codes, codes_new, buf, times, trace,
    )
    return trace[1 : trace[0, 0] + 1], intrusions, person_out
