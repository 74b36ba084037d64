"""Registration (paper fn 2, 7, 11-16, 23-25, 76-77): who enters the registry, when, and as whom.

Entries follow the yearly inflow rule (the 2006 launch sweep, then newly found users), split
evenly over the months and days of each year, and over jurisdictions by their share. At entry a
person is given an entry path (detained after a positive test, stopped but not detained,
voluntary treatment, or a data error that registers someone who never used drugs), a main drug,
dependence, age, whether they are using now, whether their whereabouts will be lost, and their
place in the grid and app roll-outs. Each attribute has its own fixed ENTRY draw.
"""

from __future__ import annotations

import datetime as dt
import math
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

from . import data_errors, drug_use, exit, ledger, management, pathways
from .calendar import add_months, month_starts
from .catalogue import Par
from .jit import kernel
from .measures import Flow
from .official_statistics import official_flip_day
from .population import Population
from .rng import Stream, person_key, uniform
from .state import FNEVER, NEVER, Done, Drug, F, Path, S

# position of each attribute's draw in the ENTRY stream
_D_PATH, _D_ERROR, _D_DRUG, _D_DEPENDENT, _D_AGE1, _D_AGE2 = 0, 1, 2, 3, 4, 5
_D_USING, _D_LOST, _D_GRID, _D_APP, _D_PRE, _D_HISTORY = 6, 7, 8, 9, 10, 11
MIN_AGE, MAX_AGE = 16.0, 75.0  # assumption: ages at entry clipped to this range


def entry_counts(table: np.ndarray, shares: np.ndarray, scale: float, start: dt.date,
                 end: dt.date) -> np.ndarray:
    """Persons entering per (jurisdiction, month): a yearly rate is split evenly by month.

    Rounding is cumulative within each jurisdiction, so totals over any span are within one
    person of the rule's value times the scale.
    """
    firsts = month_starts(start, end)
    n_m = len(firsts)
    covered = np.ones(n_m)
    last_first = firsts[-1]
    days_in_last = (add_months(last_first, 1) - last_first).days
    covered[-1] = ((end - last_first).days + 1) / days_in_last
    expected = (
        table[:, :, Par.REGISTRATION__NEWLY_FOUND_PER_YEAR] / 12.0
        * covered[None, :] * shares[:, None] * scale
    )
    cum = np.round(np.cumsum(expected, axis=1)).astype(np.int64)
    return np.diff(cum, axis=1, prepend=0)


def initial_counts(table: np.ndarray, shares: np.ndarray, scale: float) -> np.ndarray:
    """Persons already registered on the first day, per jurisdiction."""
    expected = table[:, 0, Par.REGISTRATION__INITIAL_REGISTRY] * shares * scale
    return np.round(expected).astype(np.int64)


def entry_days(counts: np.ndarray, start: dt.date, end: dt.date,
               initial: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Entry day and jurisdiction of every person, ordered by day (then jurisdiction).

    Within a month, a jurisdiction's n entrants are spread evenly over its days: the q-th
    enters on day a + floor((q + 1/2) (b - a) / n). Persons already registered (`initial`, per
    jurisdiction) enter on day 0, first in their (day, jurisdiction) cell.
    """
    firsts = month_starts(start, end)
    n_days = (end - start).days + 1
    a = np.array([max(0, (f - start).days) for f in firsts], dtype=np.int64)
    b = np.array([min(n_days, (add_months(f, 1) - start).days) for f in firsts], dtype=np.int64)
    counts = np.ascontiguousarray(counts, dtype=np.int64)
    init = np.zeros(counts.shape[0], np.int64) if initial is None else np.asarray(
        initial, dtype=np.int64)
    n = int(counts.sum() + init.sum())
    out_day = np.empty(n, np.int32)
    out_j = np.empty(n, np.int8)
    _place_entries(counts, init, a, b, out_day, out_j, np.zeros(counts.shape[0], np.int64))
    return out_day, out_j


@kernel(python=True)
def _place_entries(counts, initial, a, b, out_day, out_j, next_q) -> None:  # noqa: ANN001
    """Write persons in (day, jurisdiction) order directly: day by day, each jurisdiction's
    entrants whose spread day is today (their days rise with q, so one pointer each)."""
    n_j, n_m = counts.shape
    pos = 0
    for m in range(n_m):
        lo, hi = a[m], b[m]
        for j in range(n_j):
            next_q[j] = 0
        for d in range(lo, hi):
            for j in range(n_j):
                if m == 0 and d == 0:
                    for _ in range(initial[j]):
                        out_day[pos] = 0
                        out_j[pos] = j
                        pos += 1
                n = counts[j, m]
                while next_q[j] < n:
                    if lo + int((next_q[j] + 0.5) * (hi - lo) / n) != d:
                        break
                    out_day[pos] = d
                    out_j[pos] = j
                    pos += 1
                    next_q[j] += 1


@kernel
def _entry_path(key, P) -> int:  # noqa: ANN001
    """Entry path from the ENTRY draws _D_PRE, _D_ERROR and _D_PATH (in that order of rules)."""
    if uniform(key, _D_PRE) < P[Par.REGISTRATION__SHARE__PRE_LAUNCH]:
        return Path.PRE_LAUNCH
    if uniform(key, _D_ERROR) < P[Par.REGISTRATION__ERROR_SHARE]:
        return Path.DATA_ERROR
    u = uniform(key, _D_PATH)
    if u < P[Par.REGISTRATION__SHARE__DETAINED_POSITIVE]:
        return Path.DETAINED_POSITIVE
    if u < (P[Par.REGISTRATION__SHARE__DETAINED_POSITIVE]
            + P[Par.REGISTRATION__SHARE__STOPPED_NOT_DETAINED]):
        return Path.STOPPED_NOT_DETAINED
    return Path.VOLUNTARY


@kernel
def _using_share(P, p) -> float:  # noqa: ANN001
    """Probability of truly using at entry, by entry path."""
    if p == Path.DETAINED_POSITIVE:
        return P[Par.REGISTRATION__USING_AT_ENTRY__DETAINED_POSITIVE]
    if p == Path.STOPPED_NOT_DETAINED:
        return P[Par.REGISTRATION__USING_AT_ENTRY__STOPPED_NOT_DETAINED]
    if p == Path.VOLUNTARY:
        return P[Par.REGISTRATION__USING_AT_ENTRY__VOLUNTARY]
    if p == Path.PRE_LAUNCH:
        return P[Par.REGISTRATION__USING_AT_ENTRY__PRE_LAUNCH]
    return 0.0


@kernel(nogil=True, python=True)
def _draw_attributes(seed, persons, table, month_of_day, span) -> None:  # noqa: ANN001
    """Attributes of persons span[0] <= i < span[1] (keyed by person: any split is the same)."""
    entry_day, jur, path, drug = persons.entry_day, persons.jurisdiction, persons.path, persons.drug
    dependent, birth_day, using0 = persons.dependent, persons.birth_day, persons.using_at_entry
    lost, grid_rank, app_rank = persons.lost, persons.grid_rank, persons.app_rank
    for i in range(span[0], span[1]):
        key = person_key(seed, Stream.ENTRY, i)
        t = entry_day[i]
        P = table[jur[i], month_of_day[t]]
        p = _entry_path(key, P)
        path[i] = p
        heroin = uniform(key, _D_DRUG) < P[Par.REGISTRATION__HEROIN_SHARE]
        drug[i] = Drug.HEROIN if heroin else Drug.SYNTHETIC
        dep_share = (P[Par.REGISTRATION__DEPENDENT_SHARE__HEROIN] if heroin
                     else P[Par.REGISTRATION__DEPENDENT_SHARE__SYNTHETIC])
        dependent[i] = 1 if (p != Path.DATA_ERROR and uniform(key, _D_DEPENDENT) < dep_share) else 0
        # Box-Muller normal age, clipped
        z = math.sqrt(-2.0 * math.log(1.0 - uniform(key, _D_AGE1))) * math.cos(
            2.0 * math.pi * uniform(key, _D_AGE2))
        age = P[Par.REGISTRATION__MEAN_AGE_AT_ENTRY] + P[Par.REGISTRATION__SD_AGE_AT_ENTRY] * z
        age = min(MAX_AGE, max(MIN_AGE, age))
        birth_day[i] = t - int(age * 365.25)
        using0[i] = 1 if uniform(key, _D_USING) < _using_share(P, p) else 0
        persons.history_days[i] = (
            int(uniform(key, _D_HISTORY) * P[Par.REGISTRATION__PRE_LAUNCH_HISTORY_DAYS])
            if p == Path.PRE_LAUNCH else 0)
        lost[i] = 1 if uniform(key, _D_LOST) < P[Par.REGISTRATION__LOST_TO_FOLLOW_UP_SHARE] else 0
        grid_rank[i] = uniform(key, _D_GRID)
        app_rank[i] = uniform(key, _D_APP)


def register(table: np.ndarray, shares: np.ndarray, scale: float, start: dt.date,
             end: dt.date, month_of_day: np.ndarray, seed: int) -> Population:
    """Draw the whole registry of the period: every person who will ever enter."""
    counts = entry_counts(table, shares, scale, start, end)
    day, jur = entry_days(counts, start, end, initial_counts(table, shares, scale))
    pop = Population.allocate(len(day))
    pop.entry_day[:] = day
    pop.jurisdiction[:] = jur
    persons, n = pop.arrays(), len(pop)
    n_threads = numba.get_num_threads()
    spans = [(n * w // n_threads, n * (w + 1) // n_threads) for w in range(n_threads)]
    with ThreadPoolExecutor(max_workers=n_threads) as pool:
        list(pool.map(lambda span: _draw_attributes(seed, persons, table, month_of_day, span),
                      spans))
    return pop


@kernel
def enter(life, t, P, fl, persons, i) -> None:  # noqa: ANN001
    """Person i enters the registry on day t with the attributes drawn at registration.

    Writes the whole initial state (record, tier, schedules to come, the first spell of use or
    abstinence, the order at entry); counts the entry by path and the order; owns the person's
    DEATH draw, two ERRORS draws for a data error, two USE draws and three PATHWAY draws.
    A pre-launch registrant (evidence.md#pre-launch-stock) brings the day of their last
    detection, and the abstinence of one not using began then; the sweep orders nothing."""
    s, f, keys, k = life.s, life.f, life.keys, life.k
    path = persons.path[i]
    never_used = 1 if path == Path.DATA_ERROR else 0
    s[S.J] = persons.jurisdiction[i]
    s[S.ALIVE] = 1
    s[S.IN_REGISTRY] = 1
    s[S.NEVER_USED] = never_used
    s[S.DEPENDENT] = persons.dependent[i]
    s[S.DRUG] = persons.drug[i]
    s[S.LOST] = persons.lost[i]
    s[S.BIRTH] = persons.birth_day[i]
    f[F.GRID_RANK] = persons.grid_rank[i]
    f[F.APP_RANK] = persons.app_rank[i]
    for field in (S.APP, S.CTRL_BAND, S.ALERT_BAND, S.REG_START, S.INSPECT_TIER):
        s[field] = -1
    for field in (S.ELIGIBLE, S.RELEASE_DUE, S.NEXT_TEST, S.CORRECT, S.USE_NEXT,
                  S.FIRST_RELEASE):
        s[field] = NEVER
    for clock in (F.ENCOUNTER, F.ID_USE, F.INSPECT, F.APP_ALERT):
        f[clock] = FNEVER
    last = t - persons.history_days[i]  # a pre-launch record keeps its last detection
    s[S.ABST_START] = last
    s[S.TRUE_FLIP] = drug_use.true_flip_day(last, P)
    s[S.LAST_DETECT] = last
    s[S.OFFICIAL_FLIP] = official_flip_day(last, P, keys)
    s[S.EXIT_FLIP] = exit.exit_flip_day(last, P)
    s[S.ENTRY] = t
    s[S.NEXT_ASSESS] = management.next_assessment(s, t, P)
    s[S.AGE_FLIP] = ledger.next_age_flip(s, t)
    using0 = persons.using_at_entry[i] == 1
    s[S.TIER] = int(P[Par.MANAGEMENT__ENTRY_TIER__USING] if using0
                    else P[Par.MANAGEMENT__ENTRY_TIER__NOT_USING])
    s[S.DEATH] = drug_use.death_day(t, P, keys, k)
    if never_used == 1:
        s[S.CORRECT] = data_errors.correction_day(t, P, keys, k)
        s[S.FLIPS_DONE] |= Done.TRUE_FLIP  # never used: no abstinence to count
    elif using0:
        drug_use.start_use(s, t, P, keys, k)
    else:
        drug_use.start_abstinence(s, t, P, keys, k, 1.0, False)
    fl[Flow.ENTRIES_DETAINED_POSITIVE + path] += 1
    pathways.order_at_entry(s, t, P, path, keys, k, fl)
    if pathways.is_custodial(s[S.PATHWAY]):
        drug_use.enter_custody(s, t, P)
