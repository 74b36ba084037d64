"""The official national series as the model counts it: one mapping per published quantity.

`official_series.csv` (evidence.md#official-series) states each figure as a stock on a date, a
flow in the year ending on the date or a count since a date, in persons or person-times. Each
row of MAPPING below says which of the run's monthly metrics stand for the same thing. `dcsim
validate` prints the model beside any file of such figures, and the targets of kind `official`
(targets.yaml) are read through the same rows, so the fit and the validation cannot disagree
on what a figure means.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np

__all__ = ["ENTRY_KEYS", "MAPPING", "NOT_MODELLED", "Mapping", "monthly", "read"]

ENTRY_KEYS = ("flow.entries_detained_positive", "flow.entries_stopped_not_detained",
              "flow.entries_voluntary", "flow.entries_data_error", "flow.entries_pre_launch")


@dataclass(frozen=True)
class Mapping:
    """What the model counts as the same thing as an official quantity.

    reading: `stock` (sum of `keys` at the end of the month holding the date), `flow` (sum of
    `keys` over the twelve months ending with that month, or the whole months of a stated
    period, as a briefing's first half-year), `cumulative` (sum of `keys` from
    `since`, or the run's first month, to that month). kind and unit: what the figure must
    say it is for the reading to apply.
    """

    quantity: str
    reading: str
    unit: str
    keys: tuple[str, ...]
    meaning: str
    since: dt.date | None = None


# One row per official quantity the model has a counterpart for (evidence.md#official-series,
# #official-definitions; the header of official_series.csv).
MAPPING: dict[str, Mapping] = {m.quantity: m for m in (
    # stock, persons: records with a detected use (or an entry) in the last three years, and
    # those not yet updated to say otherwise (statistics.update_lag_days, fn 38, 45)
    Mapping("existing_users", "stock", "persons", ("stock.existing_users",),
            "records with a detected use in the last three years, or entered in them, or not "
            "yet updated (statistics.update_lag_days)"),
    # stock, persons: records with no detected use for three years, updated, alive, not emigrated
    Mapping("abstinent_3y", "stock", "persons", ("stock.abstinent_3y_recorded",),
            "records with no detected use for three years or more, once updated "
            "(statistics.update_lag_days)"),
    # stock, persons: 'registered' with no stated definition, read as living records
    Mapping("registered", "stock", "persons",
            ("stock.existing_users", "stock.abstinent_3y_recorded"),
            "living records: existing users plus abstinent three years (definition unclear)"),
    # cumulative, persons: everyone entered since the 2006 launch, the records made before
    # 2006 among them (the sweep entered them, registration.share.pre_launch)
    Mapping("registered_cumulative", "cumulative", "persons", ENTRY_KEYS,
            "everyone entered from the run's start (records made before 2006 via the sweep)"),
    # cumulative, persons: records entered in the DCS since its launch in 2006
    Mapping("dcs_records_entered", "cumulative", "persons", ENTRY_KEYS,
            "everyone entered from the 2006 launch"),
    # cumulative, persons: registrants who died (the model's deaths include emigration)
    Mapping("registered_dead_cumulative", "cumulative", "persons", ("flow.deaths",),
            "deaths and emigration of registrants from the run's start"),
    # flow, person-times: orders to compulsory isolation made in the year
    Mapping("isolation_orders", "flow", "person-times", ("flow.orders_isolation",),
            "orders to compulsory isolation in the year"),
    # flow, person-times: community detoxification and rehabilitation orders in the year
    Mapping("community_orders", "flow", "person-times",
            ("flow.orders_community_detox", "flow.orders_community_rehab"),
            "community detoxification plus rehabilitation orders in the year"),
    # flow, person-times: the two kinds of community order apart (a briefing's split, as the
    # note of the 2014 community orders gives it: targets community_*_orders_2014)
    Mapping("community_detox_orders", "flow", "person-times", ("flow.orders_community_detox",),
            "community detoxification orders in the year (after a detection)"),
    Mapping("community_rehab_orders", "flow", "person-times", ("flow.orders_community_rehab",),
            "community rehabilitation orders in the year (after release from isolation)"),
    # flow, person-times: detections in the year, new users (entries after a detection) and
    # detected relapses; voluntary and erroneous entries are not 'caught'
    Mapping("caught", "flow", "person-times",
            ("flow.entries_detained_positive", "flow.entries_stopped_not_detained",
             "flow.detected_relapses"),
            "new entries after a detection plus detected relapses in the year"),
    # flow, person-times: detected relapses of registrants in the year
    Mapping("relapsers_caught", "flow", "person-times", ("flow.detected_relapses",),
            "detected relapses in the year"),
    # stock, persons: held in compulsory isolation; the model does not split the centres run
    # by the judicial administration from those run by public security, so it counts all
    Mapping("isolation_held_justice_centres", "stock", "persons",
            ("stock.pathway_isolation",),
            "everyone in compulsory isolation (all centres, not the judicial ones only)"),
    # cumulative since 2008 (the 2008 law): admissions to compulsory isolation (orders carried
    # out, pathways.order_carried_out.isolation), against persons admitted to the judicial
    # centres (admissions are person-times: a person admitted twice counts twice)
    Mapping("isolation_admitted_justice_centres", "cumulative", "persons",
            ("flow.isolation_admissions",),
            "admissions to compulsory isolation since 2008 (all centres; person-times)",
            since=dt.date(2008, 1, 1)),
    # stock, persons: under a community detoxification (or rehabilitation) order on the date,
    # carried out or not (official_press.csv: the national office's mid-2016 figures)
    Mapping("community_detox_under_order", "stock", "persons",
            ("stock.pathway_community_detox",),
            "everyone under a community detoxification order (carried out or not)"),
    Mapping("community_rehab_under_order", "stock", "persons",
            ("stock.pathway_community_rehab",),
            "everyone under a community rehabilitation order (carried out or not)"),
    # stock, persons: community orders being carried out (pathways.order_carried_out;
    # erroneous entries, who never used, are not counted)
    Mapping("community_orders_carried_out", "stock", "persons",
            ("stock.community_order_using", "stock.community_order_not_using"),
            "everyone under a community order that is carried out (its tests happen)"),
    # flow: the same admissions in the twelve months ending on the date; the difference of
    # two of the cumulative figures a year apart (official_derived.csv)
    Mapping("isolation_admitted_justice_centres_year", "flow", "persons",
            ("flow.isolation_admissions",),
            "admissions to compulsory isolation in the year (all centres; person-times)"),
)}

# Official quantities the model has no counterpart for, and why.
NOT_MODELLED: dict[str, str] = {
    "heroin_share": "the run's tables do not count registrants by drug (dcsim fit reads the "
                    "heroin share of registrations from the population, targets heroin_share_*)",
    "new_users_meth_share": "the model does not follow which drug new users take up",
}



def monthly(mp: Mapping, since: int, n: int, series: dict[str, np.ndarray],
            months: int = 12) -> np.ndarray:
    """The mapped value at every month of national monthly series keyed `group.metric`, `n`
    months long (a metric missing from `series` counts zero; `since`: the first month a
    cumulative reading counts, clipped to the run; `months`: how many months a flow sums,
    ending with the month read); NaN where a month read lies outside. The one reading of a
    mapping: the `official` targets take the whole series, `read` a month."""
    zero = np.zeros(n)
    total = np.zeros(n)
    for k in mp.keys:
        total += series.get(k, zero)
    if mp.reading == "stock":
        return total
    if mp.reading == "flow":
        c = np.concatenate([[0.0], np.cumsum(total)])
        out = np.full(n, np.nan)
        out[months - 1:] = c[months:] - c[:-months]
        return out
    since = max(since, 0)
    out = np.cumsum(np.where(np.arange(n) >= since, total, 0.0))
    out[:since] = np.nan
    return out


def read(mp: Mapping, at: int, since: int, n: int, series: dict[str, np.ndarray],
         months: int = 12) -> float | None:
    """The mapped value at month index `at` (as `monthly`); None when a month read lies
    outside the `n` months of the series."""
    start = {"stock": at, "flow": at - months + 1, "cumulative": max(since, 0)}[mp.reading]
    if not 0 <= start <= at < n:
        return None
    return float(monthly(mp, since, n, series, months)[at])
