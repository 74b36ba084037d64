"""Bookkeeping: turning one person's changes of state into the monthly tables.

Stocks are kept as changes: each person has one code per group of Stock (or -1), and a change
of code on day t moves one person between columns from that month on. Schedules and
person-days are kept as daily rates (+r on the day a span opens, -r on the day it closes) and
summed by month afterwards; a person's own count of a schedule is the whole number of
intervals in the span. All integers, so sums are exact in any order.
"""

from __future__ import annotations

import numpy as np

from . import alerts, apps, grid, management
from .catalogue import Par
from .exit import meets_law
from .jit import kernel
from .measures import (
    AGE_BANDS_YEARS,
    FIXED_POINT,
    N_DIMS,
    N_PERIODIC,
    Dim,
    Intrusion,
    Rate,
    Stock,
)
from .population import Outcome
from .state import NEVER, Changed, F, Release, S

_PERIODIC_INTRUSION = (
    int(Intrusion.COUNSELLING), int(Intrusion.HOME_VISIT), int(Intrusion.APP_CHECKIN)
)
DAYS_PER_YEAR = 365.25


@kernel
def in_registry(s) -> bool:  # noqa: ANN001
    return s[S.IN_REGISTRY] == 1 and s[S.RELEASE] != Release.DELETED


@kernel(inline="always")
def stock_codes(s, t, P, out) -> None:  # noqa: ANN001
    """The Stock column of each group for this person on day t (-1: not counted)."""
    for d in range(N_DIMS):
        out[d] = -1
    if s[S.CORRECTED] == 0 and s[S.RELEASE] != Release.DELETED:
        out[Dim.RECORDS] = Stock.RECORDS_HELD
    if not in_registry(s):
        return
    out[Dim.OFFICIAL] = (Stock.EXISTING_USERS if t < s[S.OFFICIAL_FLIP]
                         else Stock.ABSTINENT_3Y_RECORDED)
    out[Dim.CONTROL] = Stock.UNDER_CONTROL + s[S.RELEASE]
    out[Dim.PATHWAY] = Stock.PATHWAY_NONE + s[S.PATHWAY]
    if s[S.NEVER_USED] == 1:
        out[Dim.TRUTH] = Stock.TRUE_NEVER_USED
    elif s[S.USING] == 1:
        out[Dim.TRUTH] = Stock.TRUE_USING
    elif t >= s[S.TRUE_FLIP]:
        out[Dim.TRUTH] = Stock.TRUE_ABSTINENT_3Y
    else:
        out[Dim.TRUTH] = Stock.TRUE_ABSTINENT_UNDER_3Y
    if s[S.RELEASE] != Release.FULL and t >= s[S.EXIT_FLIP]:
        if s[S.RELEASE] == Release.PARTIAL:
            out[Dim.TRAP] = Stock.TRAPPED_PARTIAL_RELEASE
        elif P[Par.EXIT__RELEASE_ALLOWED] < 0.5:
            out[Dim.TRAP] = Stock.TRAPPED_NO_RELEASE_AREA
        elif s[S.ELIGIBLE] == NEVER:  # meets the law yet not eligible: barred by fn 37
            out[Dim.TRAP] = (Stock.HELD_CRIMINAL_CASE if meets_law(s, t, P)
                             else Stock.TRAPPED_INSUFFICIENT_TESTS)
        else:
            out[Dim.TRAP] = Stock.TRAPPED_AWAITING_UPDATE
    if s[S.ELIGIBLE] != NEVER:
        out[Dim.ELIGIBLE] = Stock.ELIGIBLE_BY_LAW
    if s[S.LOST] == 1:
        out[Dim.LOST] = Stock.WHEREABOUTS_UNKNOWN
    if s[S.ORDER_ACTIVE] == 1 and s[S.NEVER_USED] == 0:  # a community order carried out
        out[Dim.COMMUNITY] = (Stock.COMMUNITY_ORDER_USING if s[S.USING] == 1
                              else Stock.COMMUNITY_ORDER_NOT_USING)


@kernel(inline="always")
def move_stocks(prev, new, delta_row) -> None:  # noqa: ANN001
    """Record moves between stock columns in this month's row; prev becomes new."""
    for d in range(N_DIMS):
        if prev[d] != new[d]:
            if prev[d] >= 0:
                delta_row[prev[d]] -= 1
            if new[d] >= 0:
                delta_row[new[d]] += 1
            prev[d] = new[d]


@kernel
def fixed_rate(interval) -> int:  # noqa: ANN001
    return int(round(FIXED_POINT / interval))


@kernel
def age_band(s, t) -> int:  # noqa: ANN001
    age = (t - s[S.BIRTH]) / DAYS_PER_YEAR
    if age < AGE_BANDS_YEARS[0]:
        return 0
    if age < AGE_BANDS_YEARS[1]:
        return 1
    return 2


@kernel
def next_age_flip(s, t) -> int:  # noqa: ANN001
    for a in AGE_BANDS_YEARS:
        day = s[S.BIRTH] + int(a * DAYS_PER_YEAR + 0.999999)
        if day > t:
            return day
    return NEVER


@kernel(inline="always")
def _move_band(s, field, band, rates_j, t, column0) -> None:  # noqa: ANN001
    """A person-day count by band (-1: none): from day t, leave the column of the band held in
    s[field] and join band's."""
    if s[field] != band:
        if s[field] >= 0:
            rates_j[t, column0 + s[field]] -= 1
        if band >= 0:
            rates_j[t, column0 + band] += 1
        s[field] = band


@kernel(inline="always")
def set_spans(life, t, intervals, ctrl_band, alert_band, registered) -> None:  # noqa: ANN001
    """Close and reopen the spans whose schedule changed on day t.

    intervals: days between counselling sessions, grid visits and app check-ins (0 = none);
    ctrl_band: age band while under control, or -1; alert_band: raising alerts while not using
    (0) or using (1), or -1; registered: holds a counted record.
    """
    s, f, rates_j, intrusions = life.s, life.f, life.rates, life.intrusions
    for p in range(N_PERIODIC):
        iv_now = f[F.SPAN_IV_0 + p]
        if iv_now != intervals[p]:
            if iv_now > 0.0:
                start = s[S.SPAN_START_0 + p]
                rates_j[t, p] -= fixed_rate(iv_now)
                intrusions[_PERIODIC_INTRUSION[p]] += int((t - start) / iv_now)
            if intervals[p] > 0.0:
                rates_j[t, p] += fixed_rate(intervals[p])
                s[S.SPAN_START_0 + p] = t
            f[F.SPAN_IV_0 + p] = intervals[p]
    _move_band(s, S.CTRL_BAND, ctrl_band, rates_j, t, Rate.CONTROL_DAYS_UNDER_25)
    _move_band(s, S.ALERT_BAND, alert_band, rates_j, t, Rate.ALERT_DAYS_NOT_USING)
    if registered and s[S.REG_START] < 0:
        rates_j[t, Rate.REGISTRY_DAYS] += 1
        s[S.REG_START] = t
    elif not registered and s[S.REG_START] >= 0:
        rates_j[t, Rate.REGISTRY_DAYS] -= 1
        s[S.EXPOSURE] += t - s[S.REG_START]
        s[S.REG_START] = -1


@kernel(inline="always")
def restock(life, t, P, delta_row) -> None:  # noqa: ANN001
    """The person's stock codes on day t; moves between columns go into this month's row."""
    stock_codes(life.s, t, P, life.codes_new)
    move_stocks(life.codes, life.codes_new, delta_row)


@kernel(inline="always")
def follow(life, t, P, delta_row) -> None:  # noqa: ANN001
    """After a change of state: the spans of schedules and person-days, and the stocks.

    Reads the schedules of management, grid and apps and the alert band; writes s[SPAN_*,
    CTRL_BAND, ALERT_BAND, REG_START, EXPOSURE], f[SPAN_IV_*], the daily rates, the person's
    periodic intrusions and stock codes. No draws: schedules are counted, not drawn."""
    s, iv = life.s, life.intervals
    iv[0] = management.counselling_interval(s, P)
    iv[1] = grid.visit_interval(s, P, life.f[F.GRID_RANK])
    iv[2] = apps.checkin_interval(P, s[S.APP])
    registered = in_registry(s)
    band = age_band(s, t) if registered and s[S.RELEASE] <= Release.PARTIAL else -1
    set_spans(life, t, iv, band, alerts.alert_band(s, P), registered)
    restock(life, t, P, delta_row)


@kernel(inline="always")
def on_age_band(life, t, P, fl) -> int:  # noqa: ANN001
    """Event AGE_BAND: the person crosses an age boundary (person-days under control by age,
    paper fn 64-67). Writes s[AGE_FLIP]; the spans follow; no draws."""
    life.s[S.AGE_FLIP] = next_age_flip(life.s, t)
    return Changed.STATE


@kernel
def finish(life, t_end) -> None:  # noqa: ANN001
    """Close the open spans at the end of the life course and write the person's outcome."""
    s = life.s
    life.intervals[:] = 0.0
    none = np.int64(-1)  # not a literal: one compiled set_spans serves every caller
    set_spans(life, t_end, life.intervals, none, none, none >= 0)
    out = life.outcome
    out[Outcome.EXPOSURE_DAYS] = s[S.EXPOSURE]
    out[Outcome.ELIGIBLE_DAY] = s[S.ELIGIBLE]
    out[Outcome.DETECTIONS] = s[S.DETECTIONS]
    out[Outcome.TRAP_CODE] = life.codes[Dim.TRAP]
    out[Outcome.CONTROL_CODE] = life.codes[Dim.CONTROL]
    out[Outcome.USING_AT_END] = s[S.USING]
    out[Outcome.FIRST_RELEASE_DAY] = s[S.FIRST_RELEASE]
