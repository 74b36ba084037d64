"""The published figures the model must reproduce, set beside the model's own (paper fn 7, 8,
22, 48). Each row names its source and how the model's value is read from the run."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from .calendar import month_index
from .measures import Flow, Stock
from .model import Run

ENTRY_FLOWS = [Flow.ENTRIES_DETAINED_POSITIVE, Flow.ENTRIES_STOPPED_NOT_DETAINED,
               Flow.ENTRIES_VOLUNTARY, Flow.ENTRIES_DATA_ERROR]


def _m(run: Run, day: dt.date) -> int | None:
    m = month_index(run.scenario.start, day)
    return m if 0 <= m < len(run.prepared.months) else None


def comparison(run: Run) -> pd.DataFrame:
    """One row per published figure: paper value, model value (national-equivalent), source."""
    sc = run.scenario
    scale = sc.scale
    flows = run.flows.sum(axis=0)
    stocks = run.stocks.sum(axis=0)
    rows: list[dict] = []

    def add(figure: str, source: str, paper: float, model: float | None, unit: str,
            how: str) -> None:
        rows.append({"figure": figure, "source": source, "paper": paper,
                     "model": np.nan if model is None else float(model), "unit": unit,
                     "how_measured": how})

    m07 = _m(run, dt.date(2007, 3, 1))
    add("registered by end of March 2007", "paper fn 7", 785_900,
        None if m07 is None else flows[: m07 + 1, ENTRY_FLOWS].sum() / scale, "persons",
        "all entries from the start to the end of March 2007")
    m19 = _m(run, dt.date(2019, 12, 1))
    if m19 is not None:
        ex = stocks[m19, Stock.EXISTING_USERS] / scale
        ab = stocks[m19, Stock.ABSTINENT_3Y_RECORDED] / scale
    else:
        ex = ab = None
    add("registered, end of 2019", "paper fn 8, 48", 4_700_000,
        None if ex is None else ex + ab, "persons",
        "alive records at the end of 2019: existing users plus abstinent three years")
    add("existing (current) users, end of 2019", "paper fn 8, 48", 2_200_000, ex, "persons",
        "records with a detected use in the last three years (or entered since)")
    add("abstinent three years or more, end of 2019", "paper fn 8, 48", 2_500_000, ab, "persons",
        "records with no detected use for three years or more")
    ds = sc.district_study
    a, b = _m(run, ds.start), _m(run, ds.end)
    if a is not None and b is not None:
        sl = slice(a, b + 1)
        alerts = flows[sl, Flow.ALERTS].sum()
        contacts = flows[sl, Flow.ALERT_CONTACTS].sum()
        positives = flows[sl, Flow.ALERT_POSITIVES].sum()
        under_alert = stocks[sl, Stock.UNDER_CONTROL].mean()
        days = (ds.end - ds.start).days + 1
        per_day = alerts / days / under_alert * ds.registrants_under_alert if under_alert else None
        share_c = contacts / alerts if alerts else None
        share_p = positives / alerts if alerts else None
    else:
        per_day = share_c = share_p = None
    period = f"{ds.start:%Y-%m} to {ds.end:%Y-%m}"
    add("alerts per day in the study district", "paper fn 22", 12.0, per_day, "alerts/day",
        f"national alerts per person under alert per day, {period}, times "
        f"{ds.registrants_under_alert} registrants ({ds.reference.strip()})")
    add("share of alerts where police made contact", "paper fn 22", 0.26, share_c, "share",
        f"alert contacts / alerts, {period}")
    add("share of alerts related to drug use", "paper fn 22", 51 / 3640, share_p, "share",
        f"alerts whose test was positive / alerts, {period}")
    df = pd.DataFrame(rows)
    df["relative_error"] = (df["model"] - df["paper"]) / df["paper"]
    return df
