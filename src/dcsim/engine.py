"""The engine: walks each person's life course event by event and orders the procedures in time.

Persons do not interact, so each is simulated from entry to the end of the period on their own,
by the next-event method: the earliest pending event is taken, the procedure that owns it runs
its handler, and what the handler changed decides what follows (state.Changed): nothing, the
stocks, or the clocks, schedules, spans and stocks of every procedure. Cost grows with the
number of events, not with persons x days.

The engine reads no rule value and counts no flow but its own event count: handlers live in
their procedures' modules (the table in docs/model.md). Persons are split into a fixed number of
chunks, each with its own integer accumulators, so the sums (and so the run) are the same
whatever the number of threads.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

import numba
import numpy as np

from . import (
    alerts,
    apps,
    data_errors,
    drug_use,
    exit,
    ledger,
    management,
    official_statistics,
    pathways,
    registration,
    testing,
)
from .jit import kernel
from .measures import N_DIMS, N_FLOWS, N_PERIODIC, N_RATES, N_STOCKS, Dim, Flow
from .rng import person_key
from .state import NEVER, Changed, Done, F, K, Life, S

N_CHUNKS = 16  # fixed: the accumulators (and so the sums) never depend on the thread count


class Event(enum.IntEnum):
    """The events of a life course, in the order ties on the same day are taken (the lowest
    value first). The names are the trace's event names."""

    USE_CHANGE = 0  # drug_use.on_use_change
    SCHEDULED_TEST = 1  # testing.on_scheduled_test
    ALERT_CONTACT = 2  # alerts.on_alert_contact
    INSPECTION = 3  # testing.on_inspection
    ENCOUNTER = 4  # testing.on_encounter
    APP_ALERT = 5  # apps.on_app_alert
    ORDER_END = 6  # pathways.on_order_end
    REASSESSMENT = 7  # management.on_reassessment
    OFFICIAL_FLIP = 8  # official_statistics.on_official_flip
    EXIT_FLIP = 9  # exit.on_exit_flip
    TRUE_FLIP = 10  # exit.on_true_flip
    RELEASE = 11  # exit.on_release
    DEATH = 12  # drug_use.on_death
    CORRECTION = 13  # data_errors.on_correction
    RULE_CHANGE = 14  # exit.on_rule_change
    AGE_BAND = 15  # ledger.on_age_band


N_EVENTS = len(Event)
# plain integers of the events a kernel holds in a variable (Numba types enum members apart)
_USE_CHANGE, _SCHEDULED_TEST, _ALERT_CONTACT, _INSPECTION, _ENCOUNTER, _APP_ALERT = range(6)
_OFFICIAL_FLIP, _EXIT_FLIP = int(Event.OFFICIAL_FLIP), int(Event.EXIT_FLIP)
EVENT_NAMES = tuple(e.name.lower() for e in Event)
TRACE_FIELDS = ("day", "event", "using", "pathway", "tier", "last_detect", "neg_tests",
                "eligible", "release", "in_registry", "release_due", "trap")
_TRACE_S = (S.USING, S.PATHWAY, S.TIER, S.LAST_DETECT, S.NEG_TESTS, S.ELIGIBLE, S.RELEASE,
            S.IN_REGISTRY, S.RELEASE_DUE)


class Rules(NamedTuple):
    """The scenario's rules as the engine takes them (model.Prepared makes them)."""

    table: np.ndarray  # float64 [jurisdiction, month, Par]
    month_of_day: np.ndarray  # int [day]
    rule_days: np.ndarray  # int64 [jurisdiction, k]: days some rule changes, then NEVER
    bounds: np.ndarray  # float64 [jurisdiction, Bound]: thinning bounds
    n_days: int


class Tallies(NamedTuple):
    """Integer accumulators, one slice per chunk."""

    flows: np.ndarray  # int64 [chunk, jurisdiction, month, Flow]
    stock_delta: np.ndarray  # int64 [chunk, jurisdiction, month, Stock]: moves between stocks
    rates: np.ndarray  # int64 [chunk, jurisdiction, day + 1, Rate]: daily rate changes


class Work(NamedTuple):
    """Scratch arrays, one row per chunk (kernels allocate nothing; see jit.py)."""

    s: np.ndarray
    f: np.ndarray
    keys: np.ndarray
    k: np.ndarray
    codes: np.ndarray
    codes_new: np.ndarray
    intervals: np.ndarray
    times: np.ndarray
    trace: np.ndarray  # int64 [rows, TRACE_FIELDS]: an event log when it has rows (trace_one)


def tallies(n_chunks: int, n_jurisdictions: int, n_months: int, n_days: int) -> Tallies:
    return Tallies(np.zeros((n_chunks, n_jurisdictions, n_months, N_FLOWS), np.int64),
                   np.zeros((n_chunks, n_jurisdictions, n_months, N_STOCKS), np.int64),
                   np.zeros((n_chunks, n_jurisdictions, n_days + 1, N_RATES), np.int64))


def scratch(n_chunks: int, trace_rows: int = 0) -> Work:
    return Work(
        np.zeros((n_chunks, int(S.N)), np.int64), np.zeros((n_chunks, int(F.N))),
        np.zeros((n_chunks, int(K.N)), np.uint64), np.zeros((n_chunks, int(K.N)), np.int64),
        np.full((n_chunks, N_DIMS), -1, np.int64), np.full((n_chunks, N_DIMS), -1, np.int64),
        np.zeros((n_chunks, N_PERIODIC)), np.zeros((n_chunks, N_EVENTS), np.int64),
        np.zeros((trace_rows, len(TRACE_FIELDS)), np.int64),
    )


@kernel(inline="always")
def _follow(life, t, P, delta_row) -> None:  # noqa: ANN001
    """After an event that changed the state, every procedure's clocks, schedules and spans
    follow, then the stocks."""
    management.follow(life, t, P)
    apps.follow(life, t, P)
    alerts.follow(life, t, P)
    ledger.follow(life, t, P, delta_row)


@kernel(inline="always")
def _handle(ev, life, t, P, fl) -> int:  # noqa: ANN001
    """Dispatch an event to the handler of the procedure that owns it."""
    if ev == Event.USE_CHANGE:
        return drug_use.on_use_change(life, t, P, fl)
    if ev == Event.SCHEDULED_TEST:
        return testing.on_scheduled_test(life, t, P, fl)
    if ev == Event.ALERT_CONTACT:
        return alerts.on_alert_contact(life, t, P, fl)
    if ev == Event.INSPECTION:
        return testing.on_inspection(life, t, P, fl)
    if ev == Event.ENCOUNTER:
        return testing.on_encounter(life, t, P, fl)
    if ev == Event.APP_ALERT:
        return apps.on_app_alert(life, t, P, fl)
    if ev == Event.ORDER_END:
        return pathways.on_order_end(life, t, P, fl)
    if ev == Event.REASSESSMENT:
        return management.on_reassessment(life, t, P, fl)
    if ev == Event.OFFICIAL_FLIP:
        return official_statistics.on_official_flip(life, t, P, fl)
    if ev == Event.EXIT_FLIP:
        return exit.on_exit_flip(life, t, P, fl)
    if ev == Event.TRUE_FLIP:
        return exit.on_true_flip(life, t, P, fl)
    if ev == Event.RELEASE:
        return exit.on_release(life, t, P, fl)
    if ev == Event.DEATH:
        return drug_use.on_death(life, t, P, fl)
    if ev == Event.CORRECTION:
        return data_errors.on_correction(life, t, P, fl)
    if ev == Event.RULE_CHANGE:
        return exit.on_rule_change(life, t, P, fl)
    return ledger.on_age_band(life, t, P, fl)


# the handler of each event, in Event order: _handle dispatches to them (tests/test_engine.py
# checks the two agree)
HANDLERS = (drug_use.on_use_change, testing.on_scheduled_test, alerts.on_alert_contact,
            testing.on_inspection, testing.on_encounter, apps.on_app_alert,
            pathways.on_order_end, management.on_reassessment,
            official_statistics.on_official_flip, exit.on_exit_flip, exit.on_true_flip,
            exit.on_release, drug_use.on_death, data_errors.on_correction, exit.on_rule_change,
            ledger.on_age_band)


@kernel(inline="always")
def _is_rare(ev) -> bool:  # noqa: ANN001
    return ev == Event.USE_CHANGE or ev >= Event.ORDER_END


@kernel(inline="always")
def _earliest_rare(s, rule_day, times) -> tuple[int, int]:  # noqa: ANN001
    """(event, day) of the earliest rare event; the lowest code wins a tie."""
    done = s[S.FLIPS_DONE]
    times[Event.USE_CHANGE] = s[S.USE_NEXT]
    times[Event.ORDER_END] = s[S.ORDER_END]
    times[Event.REASSESSMENT] = s[S.NEXT_ASSESS]
    times[Event.OFFICIAL_FLIP] = NEVER if done & Done.OFFICIAL_FLIP else s[S.OFFICIAL_FLIP]
    times[Event.EXIT_FLIP] = NEVER if done & Done.EXIT_FLIP else s[S.EXIT_FLIP]
    times[Event.TRUE_FLIP] = NEVER if done & Done.TRUE_FLIP else s[S.TRUE_FLIP]
    times[Event.RELEASE] = s[S.RELEASE_DUE]
    times[Event.DEATH] = s[S.DEATH]
    times[Event.CORRECTION] = s[S.CORRECT]
    times[Event.RULE_CHANGE] = rule_day
    times[Event.AGE_BAND] = s[S.AGE_FLIP]
    ev = _USE_CHANGE
    for e in range(Event.ORDER_END, N_EVENTS):
        if times[e] < times[ev]:
            ev = e
    return ev, times[ev]


@kernel(inline="always")
def _earliest(life, rare_ev, rare_t) -> tuple[int, int]:  # noqa: ANN001
    """The next event: the cached earliest rare one, or a frequent clock that comes first
    (ties to the lower event code, as if all sixteen were scanned together)."""
    s, f = life.s, life.f
    ev, t = rare_ev, rare_t
    t_test = s[S.NEXT_TEST]
    if t_test < t or (t_test == t and _SCHEDULED_TEST < ev):
        ev, t = _SCHEDULED_TEST, t_test
    for e, clock in ((_ALERT_CONTACT, f[F.ID_USE]), (_INSPECTION, f[F.INSPECT]),
                     (_ENCOUNTER, f[F.ENCOUNTER]), (_APP_ALERT, f[F.APP_ALERT])):
        day = int(min(clock, 4e9))
        if day < t or (day == t and e < ev):
            ev, t = e, day
    return ev, t


@kernel
def _trace(trace, t, ev, s, codes) -> None:  # noqa: ANN001
    """Row 0 column 0 holds the number of rows written; rows 1.. the events, with the
    person's trap stock after it (ledger.stock_codes: -1 when not trapped)."""
    n = trace[0, 0] + 1
    if n < trace.shape[0]:
        trace[n, 0] = t
        trace[n, 1] = ev
        for c in range(len(_TRACE_S)):
            trace[n, 2 + c] = s[_TRACE_S[c]]
        trace[n, 2 + len(_TRACE_S)] = codes[Dim.TRAP]
        trace[0, 0] = n


@kernel
def _start(i, c, seed, persons, rules, tallies, work):  # noqa: ANN001, ANN202
    """The person's Life (views into chunk c's scratch and accumulators), keyed draws reset."""
    j = persons.jurisdiction[i]
    life = Life(work.s[c], work.f[c], work.keys[c], work.k[c], persons.intrusions[i],
                persons.outcome[i], work.codes[c], work.codes_new[c], work.intervals[c],
                tallies.rates[c, j], rules.bounds[j])
    for st in range(life.keys.shape[0]):
        life.keys[st] = person_key(seed, st, i)
        life.k[st] = 0
    life.s[:] = 0
    life.f[:] = 0.0
    life.codes[:] = -1
    return life


@kernel(inline="always")
def _merge_record_flips(s, rare_ev, rare_t):  # noqa: ANN001, ANN202
    """A detection that changed nothing else moves only the two record flips (later, and
    re-armed): merge them into the cached earliest rare event unless it was one of them."""
    if rare_ev == _OFFICIAL_FLIP or rare_ev == _EXIT_FLIP:
        return rare_ev, rare_t, True
    for e, day in ((_OFFICIAL_FLIP, s[S.OFFICIAL_FLIP]), (_EXIT_FLIP, s[S.EXIT_FLIP])):
        if day < rare_t or (day == rare_t and e < rare_ev):
            rare_ev, rare_t = e, day
    return rare_ev, rare_t, False


@kernel(nogil=True, python=True)
def run_chunk(c, seed, order, span, persons, rules, tallies, work) -> None:  # noqa: ANN001
    """Chunk c simulates the life course of persons i = order[q * n_chunks + c] for q in
    range(*span), each from entry to the end of the period (or death, or correction), into its
    own accumulators; work.trace (if it has rows) logs every event. Striding spreads early and
    late entrants evenly over chunks, so threads share the work equally; `order` lists persons
    by locality, so a thread works on one locality's rules and tables at a time (they then
    stay in its cache). The sums are integers, so neither order nor threads can change them.
    Releases the GIL: chunks run on Python threads (model.simulate). One kernel with the
    person's loop inside: compiled once, where a kernel per person was compiled twice."""
    n_chunks, trace = tallies.flows.shape[0], work.trace
    for q in range(span[0], span[1]):
        if q * n_chunks + c >= order.shape[0]:
            break
        i = order[q * n_chunks + c]
        life = _start(i, c, seed, persons, rules, tallies, work)
        s, j, t = life.s, persons.jurisdiction[i], np.int64(persons.entry_day[i])
        m = rules.month_of_day[t]
        P, fl = rules.table[j, m], tallies.flows[c, j, m]
        registration.enter(life, t, P, fl, persons, i)
        s[S.NEXT_RULE] = 0
        while rules.rule_days[j, s[S.NEXT_RULE]] <= t:
            s[S.NEXT_RULE] += 1
        _follow(life, t, P, tallies.stock_delta[c, j, m])
        if trace.shape[0] > 0:
            _trace(trace, t, np.int64(-1), s, life.codes)  # not a literal: one compiled _trace
        rare_stale, rare_ev, rare_t = True, _USE_CHANGE, NEVER
        while True:
            # Rare events (use changes, order ends, flips, releases...) move only when the
            # state changes, so their earliest is cached; the frequent clocks are read always.
            if rare_stale:
                rare_ev, rare_t = _earliest_rare(s, rules.rule_days[j, s[S.NEXT_RULE]],
                                                 work.times[c])
                rare_stale = False
            ev, t = _earliest(life, rare_ev, rare_t)
            if t >= rules.n_days:
                break
            m = rules.month_of_day[t]
            P, fl = rules.table[j, m], tallies.flows[c, j, m]
            s[S.T] = t
            fl[Flow.ENGINE_EVENTS] += 1
            if ev == Event.RULE_CHANGE:
                s[S.NEXT_RULE] += 1
            changed = _handle(ev, life, t, P, fl)
            if changed >= Changed.STATE:
                _follow(life, t, P, tallies.stock_delta[c, j, m])
            elif changed == Changed.STOCKS:
                ledger.restock(life, t, P, tallies.stock_delta[c, j, m])
            if trace.shape[0] > 0:
                _trace(trace, t, ev, s, life.codes)
            if changed == Changed.LEFT:
                break
            if changed == Changed.STATE or _is_rare(ev):
                rare_stale = True
            elif s[S.LAST_DETECT] == t:
                rare_ev, rare_t, rare_stale = _merge_record_flips(s, rare_ev, rare_t)
        ledger.finish(life, min(t, rules.n_days))


def callees(persons: tuple, rules: Rules, tallies: Tallies, work: Work) -> list[tuple]:
    """(kernel, argument types) of the procedures run_chunk calls, in the order it first
    calls them, with the types it calls them with (the run's bundles give the types): a second
    process compiles them from the last while this one compiles the engine from the first
    (model.compile_kernels). tests/test_engine.py checks the types are the engine's."""
    def row(a: np.ndarray, drop: int = 1) -> numba.types.Array:  # type of a[i], a[i, j]...
        return numba.typeof(a).copy(ndim=a.ndim - drop)

    fields = (row(work.s), row(work.f), row(work.keys), row(work.k), row(persons.intrusions),
              row(persons.outcome), row(work.codes), row(work.codes_new), row(work.intervals),
              row(tallies.rates, 2), row(rules.bounds))
    life, day = numba.types.BaseTuple.from_types(fields, Life), numba.types.int64
    P, fl, delta = row(rules.table, 2), row(tallies.flows, 3), row(tallies.stock_delta, 3)
    follow = [(k, (life, day, P)) for k in (management.follow, apps.follow, alerts.follow)]
    return [(registration.enter, (life, day, P, fl, numba.typeof(persons), day)), *follow,
            (ledger.follow, (life, day, P, delta)), *[(h, (life, day, P, fl)) for h in HANDLERS],
            (ledger.restock, (life, day, P, delta)), (ledger.finish, (life, day))]


def trace_one(i: int, seed: int, persons: tuple, rules: Rules, n_jurisdictions: int,
              n_months: int, capacity: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Replay person i with scratch accumulators: (event log, intrusions, outcome row). The
    run's own arrays are not written (fresh zero rows; np.zeros maps pages only when touched)."""
    bundle = persons._replace(intrusions=np.zeros((i + 1, persons.intrusions.shape[1]), np.int32),
                              outcome=np.zeros((i + 1, persons.outcome.shape[1]), np.int32))
    work = scratch(1, capacity + 1)
    run_chunk(0, seed, np.array([i], np.int64), (0, 1), bundle, rules,
              tallies(1, n_jurisdictions, n_months, rules.n_days), work)
    return work.trace[1 : work.trace[0, 0] + 1], bundle.intrusions[i], bundle.outcome[i]
