"""Bookkeeping: turning one person's changes of state into the monthly tables.

Stocks are kept as changes: each person has one code per group of Stock (or -1), and a change
of code on day t moves one person between columns from that month on. Schedules and
person-days are kept as daily rates (+r on the day a span opens, -r on the day it closes) and
summed by month afterwards; a person's own count of a schedule is the whole number of
intervals in the span. All integers, so sums are exact in any order.
"""

from __future__ import annotations

from numba import njit

from .catalogue import Par
from .jit import KERNEL
from .measures import AGE_BANDS_YEARS, FIXED_POINT, N_DIMS, N_PERIODIC, Intrusion, Rate, Stock
from .state import NEVER, Release, S

_PERIODIC_INTRUSION = (
    int(Intrusion.COUNSELLING), int(Intrusion.HOME_VISIT), int(Intrusion.APP_CHECKIN)
)
DAYS_PER_YEAR = 365.25


@njit(inline="always", **KERNEL)
def in_registry(s) -> bool:  # noqa: ANN001
    return s[S.IN_REGISTRY] == 1 and s[S.RELEASE] != Release.DELETED


@njit(inline="always", **KERNEL)
def stock_codes(s, t, P, out) -> None:  # noqa: ANN001
    """The Stock column of each group for this person on day t (-1: not counted)."""
    for d in range(N_DIMS):
        out[d] = -1
    if s[S.CORRECTED] == 0 and s[S.RELEASE] != Release.DELETED:
        out[7] = Stock.RECORDS_HELD
    if not in_registry(s):
        return
    out[0] = Stock.EXISTING_USERS if t < s[S.OFFICIAL_FLIP] else Stock.ABSTINENT_3Y_RECORDED
    out[1] = Stock.UNDER_CONTROL + s[S.RELEASE]
    out[2] = Stock.PATHWAY_NONE + s[S.PATHWAY]
    if s[S.NEVER_USED] == 1:
        out[3] = Stock.TRUE_NEVER_USED
    elif s[S.USING] == 1:
        out[3] = Stock.TRUE_USING
    elif t >= s[S.TRUE_FLIP]:
        out[3] = Stock.TRUE_ABSTINENT_3Y
    else:
        out[3] = Stock.TRUE_ABSTINENT_UNDER_3Y
    if s[S.RELEASE] != Release.FULL and t >= s[S.EXIT_FLIP]:
        if s[S.RELEASE] == Release.PARTIAL:
            out[4] = Stock.TRAPPED_PARTIAL_RELEASE
        elif P[Par.EXIT__RELEASE_ALLOWED] < 0.5:
            out[4] = Stock.TRAPPED_NO_RELEASE_AREA
        elif s[S.ELIGIBLE] == NEVER:
            out[4] = Stock.TRAPPED_INSUFFICIENT_TESTS
        else:
            out[4] = Stock.TRAPPED_AWAITING_UPDATE
    if s[S.ELIGIBLE] != NEVER:
        out[5] = Stock.ELIGIBLE_BY_LAW
    if s[S.LOST] == 1:
        out[6] = Stock.WHEREABOUTS_UNKNOWN


@njit(inline="always", **KERNEL)
def move_stocks(prev, new, delta_row) -> None:  # noqa: ANN001
    """Record moves between stock columns in this month's row; prev becomes new."""
    for d in range(N_DIMS):
        if prev[d] != new[d]:
            if prev[d] >= 0:
                delta_row[prev[d]] -= 1
            if new[d] >= 0:
                delta_row[new[d]] += 1
            prev[d] = new[d]


@njit(inline="always", **KERNEL)
def fixed_rate(interval) -> int:  # noqa: ANN001
    return int(round(FIXED_POINT / interval))


@njit(inline="always", **KERNEL)
def age_band(s, t) -> int:  # noqa: ANN001
    age = (t - s[S.BIRTH]) / DAYS_PER_YEAR
    if age < AGE_BANDS_YEARS[0]:
        return 0
    if age < AGE_BANDS_YEARS[1]:
        return 1
    return 2


@njit(**KERNEL)
def next_age_flip(s, t) -> int:  # noqa: ANN001
    for a in AGE_BANDS_YEARS:
        day = s[S.BIRTH] + int(a * DAYS_PER_YEAR + 0.999999)
        if day > t:
            return day
    return NEVER


@njit(inline="always", **KERNEL)
def _move_band(s, field, band, rates_j, t, column0) -> None:  # noqa: ANN001
    """A person-day count by band (-1: none): from day t, leave the column of the band held in
    s[field] and join band's."""
    if s[field] != band:
        if s[field] >= 0:
            rates_j[t, column0 + s[field]] -= 1
        if band >= 0:
            rates_j[t, column0 + band] += 1
        s[field] = band


@njit(inline="always", **KERNEL)
def set_spans(s, f, t, intervals, ctrl_band, alert_band, registered, rates_j,
              intrusions) -> None:  # noqa: ANN001
    """Close and reopen the spans whose schedule changed on day t.

    intervals: days between counselling sessions, grid visits and app check-ins (0 = none);
    ctrl_band: age band while under control, or -1; alert_band: raising alerts while not using
    (0) or using (1), or -1; registered: holds a counted record.
    """
    for p in range(N_PERIODIC):
        iv_now = f[4 + p]
        if iv_now != intervals[p]:
            if iv_now > 0.0:
                start = s[S.SPAN_START_0 + p]
                rates_j[t, p] -= fixed_rate(iv_now)
                intrusions[_PERIODIC_INTRUSION[p]] += int((t - start) / iv_now)
            if intervals[p] > 0.0:
                rates_j[t, p] += fixed_rate(intervals[p])
                s[S.SPAN_START_0 + p] = t
            f[4 + p] = intervals[p]
    _move_band(s, S.CTRL_BAND, ctrl_band, rates_j, t, Rate.CONTROL_DAYS_UNDER_25)
    _move_band(s, S.ALERT_BAND, alert_band, rates_j, t, Rate.ALERT_DAYS_NOT_USING)
    if registered and s[S.REG_START] < 0:
        rates_j[t, Rate.REGISTRY_DAYS] += 1
        s[S.REG_START] = t
    elif not registered and s[S.REG_START] >= 0:
        rates_j[t, Rate.REGISTRY_DAYS] -= 1
        s[S.EXPOSURE] += t - s[S.REG_START]
        s[S.REG_START] = -1
