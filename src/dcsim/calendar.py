"""Model time: whole days since the scenario start, binned by calendar month for rules and results.

Rules change on the first of a month (a parameter window may not start mid-month), so a rule
lookup is a table index by month; persons live on a daily clock.
"""

from __future__ import annotations

import datetime as dt

import numpy as np


def month_index(start: dt.date, day: dt.date) -> int:
    """Calendar months from the month of `start` to the month of `day`."""
    return (day.year - start.year) * 12 + (day.month - start.month)


def add_months(day: dt.date, months: int) -> dt.date:
    """First day of the month `months` after the month of `day`."""
    total = day.year * 12 + (day.month - 1) + months
    return dt.date(total // 12, total % 12 + 1, 1)


def month_starts(start: dt.date, end: dt.date) -> list[dt.date]:
    """First day of every calendar month from the month of start to the month of end."""
    n = month_index(start, end) + 1
    first = dt.date(start.year, start.month, 1)
    return [add_months(first, m) for m in range(n)]


def month_of_day_table(start: dt.date, end: dt.date) -> np.ndarray:
    """For each model day 0..(end-start), the index of its calendar month (int16)."""
    n_days = (end - start).days + 1
    out = np.empty(n_days, dtype=np.int16)
    firsts = month_starts(start, end)
    for m, first in enumerate(firsts):
        a = max(0, (first - start).days)
        b = (add_months(first, 1) - start).days
        out[a : min(b, n_days)] = m
    return out
