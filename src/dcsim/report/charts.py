"""The report's charts as plain data: each chart is one wide table (the CSV a reader downloads)
and a list of traces that name its columns. The page's script draws them with Plotly, so the
numbers drawn, the numbers in the table and the numbers in the CSV are the same numbers.

Values are rounded to 6 significant digits (far finer than the model's Monte Carlo error) to
keep the file small; the headline tables of a comparison keep full precision.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import numpy as np
import yaml

from .. import official_series
from .labels import Labels, load_labels
from .source import Series, Source

SIGNIFICANT = 6
ENTRY_KEYS = list(official_series.ENTRY_KEYS)
VENUES = ["hotel", "bank", "government_office", "mobile_phone", "education", "travel", "rental"]
# official quantity -> the model's monthly keys it is compared with (summed), and how read
OFFICIAL_STOCKS = {
    "existing_users": ["stock.existing_users"],
    "abstinent_3y": ["stock.abstinent_3y_recorded"],
    "registered": ["stock.existing_users", "stock.abstinent_3y_recorded"],
}
OFFICIAL_CUMULATIVE = ("registered_cumulative", "dcs_records_entered")
OFFICIAL_ORDERS = {"isolation_orders": ["flow.orders_isolation"],
                   "community_orders": ["flow.orders_community_detox",
                                        "flow.orders_community_rehab"]}


def rounded(x: Any) -> float | None:
    """6 significant digits; NaN and infinities become None (JSON null, an empty CSV cell)."""
    v = float(x)
    if not math.isfinite(v):
        return None
    return float(f"{v:.{SIGNIFICANT}g}")


@dataclass
class Chart:
    """One chart: a wide table (x and columns) and traces drawn from its columns."""

    id: str
    section: str
    title: str
    note: str
    x_label: str
    y_label: str
    x: list[Any]
    columns: list[dict[str, Any]] = field(default_factory=list)  # {label, values}
    traces: list[dict[str, Any]] = field(default_factory=list)
    layout: dict[str, Any] = field(default_factory=dict)
    control: dict[str, Any] | None = None  # an in-chart choice: {label, options, default}
    unit: str = "persons"

    def add(self, label: str, values: Any) -> int:
        """Add a column (rounded) and return its index."""
        self.columns.append({"label": label, "values": [rounded(v) for v in values]})
        return len(self.columns) - 1

    def add_series(self, name: str, s: Series, arm: str, style: dict | None = None,
                   band: bool = True, group: str | None = None) -> None:
        """A mean line with, when the source has intervals, its 90% band."""
        arm_tag = "" if arm == "this run" else f" [{arm}]"
        y = self.add(f"{name}{arm_tag}", s.mean)
        lo = hi = None
        if band and np.isfinite(s.lo).any():
            lo = self.add(f"{name}{arm_tag}: low end of 90% interval", s.lo)
            hi = self.add(f"{name}{arm_tag}: high end of 90% interval", s.hi)
        self.traces.append({"name": name, "y": y, "lo": lo, "hi": hi, "arm": arm,
                            "type": "line", "group": group, **(style or {})})

    def as_dict(self) -> dict[str, Any]:
        return {"id": self.id, "section": self.section, "title": self.title, "note": self.note,
                "x_label": self.x_label, "y_label": self.y_label, "x": self.x,
                "columns": self.columns, "traces": self.traces, "layout": self.layout,
                "control": self.control, "unit": self.unit}


def _sum(src: Source, keys: list[str], arm: str) -> Series:
    """Sum of several monthly metrics: the mean is exact; the interval of a sum is not the
    sum of intervals, so it is left out (NaN)."""
    parts = [src.series(k, arm) for k in keys]
    if len(parts) == 1:
        return parts[0]
    nan = np.full(len(src.months), np.nan)
    return Series(np.sum([p.mean for p in parts], axis=0), nan, nan)


def _years(src: Source) -> tuple[list[str], np.ndarray]:
    years = np.array([int(m[:4]) for m in src.months])
    return [str(y) for y in np.unique(years)], years


def _yearly(src: Source, keys: list[str], arm: str) -> np.ndarray:
    labels, years = _years(src)
    s = _sum(src, keys, arm).mean
    return np.array([s[years == int(y)].sum() for y in labels])


def _official_rows() -> list[dict[str, str]]:
    text = resources.files("dcsim.report").joinpath("official_series.csv").read_text("utf-8")
    lines = [ln for ln in text.splitlines() if not ln.startswith("#")]
    return list(csv.DictReader(lines))


def published_targets() -> list[dict[str, Any]]:
    """The published figures of data/targets.yaml, as plain records."""
    text = resources.files("dcsim").joinpath("data/targets.yaml").read_text("utf-8")
    return yaml.safe_load(text)["targets"]


def _month_of(date: str) -> str:
    d = dt.date.fromisoformat(str(date))
    return f"{d.year:04d}-{d.month:02d}-01"


def _target_keys(t: dict[str, Any]) -> list[str] | None:
    m = t["measure"]
    if m["output"] == "stock":
        return [f"stock.{x}" for x in m["metrics"]]
    if m["output"] == "cumulative_entries":
        return ["cumulative"]
    return None


SAME_FIGURE = 0.1  # a published value within 10% of a target's is the same figure, rounded


def figure_status(labels: Labels, keys: list[str], month: str, targets: list[dict],
                  value: float) -> tuple[str, str]:
    """(status, why) of a published figure: input if a rule is set from a target read at the
    same month from the same outputs with (about) the same value; calibrated if such a target
    informs calibration (weight > 0); predicted otherwise (a figure that conflicts with the
    target, e.g. 460,000 records by March 2007 against the paper's 785,900, is predicted)."""
    for t in targets:
        if (_target_keys(t) == keys and _month_of(t["measure"]["at"]) == month
                and abs(value - t["value"]) <= SAME_FIGURE * abs(t["value"])):
            if t["id"] in labels.input_targets:
                return "input", labels.input_targets[t["id"]]
            if t["weight"] > 0:
                return "calibrated", f"target {t['id']} in targets.yaml (weight {t['weight']})"
            return "predicted", f"target {t['id']} is reported only (weight 0)"
    return "predicted", "not a target of the calibration"


def published_points(labels: Labels, src: Source, kind: str) -> list[dict[str, Any]]:
    """Published figures for the registry charts ('stock' or 'cumulative'), official series
    first, then targets.yaml figures that are not in it, each with its status."""
    targets = published_targets()
    months = set(src.months)
    out = []
    for r in _official_rows():
        q = r["quantity"]
        if kind == "stock" and q in OFFICIAL_STOCKS:
            keys = OFFICIAL_STOCKS[q]
        elif kind == "cumulative" and q in OFFICIAL_CUMULATIVE:
            keys = ["cumulative"]
        else:
            continue
        month = _month_of(r["date"])
        if month not in months:
            continue
        status, why = figure_status(labels, keys, month, targets, float(r["value"]))
        out.append({"quantity": labels.official_quantities[q], "keys": keys, "month": month,
                    "value": float(r["value"]), "status": status, "why": why,
                    "source": r["source"], "note": r["note"], "reported": r["status"]})
    for t in targets:
        keys = _target_keys(t)
        if keys is None or (kind == "cumulative") != (keys == ["cumulative"]):
            continue
        month = _month_of(t["measure"]["at"])
        if month not in months or any(p["month"] == month and p["keys"] == keys
                                      and p["value"] == t["value"] for p in out):
            continue
        status, why = figure_status(labels, keys, month, targets, float(t["value"]))
        out.append({"quantity": t["label"], "keys": keys, "month": month,
                    "value": float(t["value"]), "status": status, "why": why,
                    "source": t["source"], "note": " ".join(t["interpretation"].split()),
                    "reported": "published"})
    return out


def _add_points(chart: Chart, src: Source, points: list[dict], keys: list[str],
                line: str) -> None:
    """Published points for the model line named `line` (drawn in its colour)."""
    index = {m: i for i, m in enumerate(src.months)}
    groups = dict.fromkeys((p["quantity"], p["status"]) for p in points if p["keys"] == keys)
    for quantity, status in groups:
        sel = [p for p in points if p["keys"] == keys and p["status"] == status
               and p["quantity"] == quantity]
        values = np.full(len(src.months), np.nan)
        for p in sel:
            values[index[p["month"]]] = p["value"]
        name = f"{sel[0]['quantity']} - {status}"
        col = chart.add(f"published: {name}", values)
        chart.traces.append({"name": name, "y": col, "type": "points", "status": status,
                             "arm": None, "line": line})


def registry_charts(src: Source, labels: Labels) -> list[Chart]:
    """The register each month (with published stocks), everyone ever entered (with published
    cumulative counts), orders per year (with published orders), control status."""
    sec = "registry"
    stock = Chart("registry_stock", sec, "People on the register at the end of each month",
                  "Lines: the model (shaded: 90% interval over the seeds). Points: published "
                  "figures; circle = calibrated, diamond = input, cross = predicted.",
                  "month", "people", src.months)
    points = published_points(labels, src, "stock")
    for arm in src.arms:
        stock.add_series(labels.label("stock.existing_users"),
                         src.series("stock.existing_users", arm), arm)
        stock.add_series(labels.label("stock.abstinent_3y_recorded"),
                         src.series("stock.abstinent_3y_recorded", arm), arm)
        stock.add_series("registered in all (current users plus abstinent)",
                         _sum(src, list(OFFICIAL_STOCKS["registered"]), arm), arm,
                         {"dash": "dot"})
    lines = [labels.label("stock.existing_users"), labels.label("stock.abstinent_3y_recorded"),
             "registered in all (current users plus abstinent)"]
    for keys, line in zip(OFFICIAL_STOCKS.values(), lines, strict=True):
        _add_points(stock, src, points, keys, line)
    cum = Chart("registry_cumulative", sec, "Everyone ever entered on the register",
                "All new records from the 2006 launch on (the model's mean over seeds), beside "
                "the published counts of records entered.", "month", "people", src.months)
    cpoints = published_points(labels, src, "cumulative")
    for arm in src.arms:
        cum.add_series("everyone ever entered (model)",
                       Series(np.cumsum(_sum(src, ENTRY_KEYS, arm).mean),
                              *(np.full(len(src.months), np.nan),) * 2), arm)
    _add_points(cum, src, cpoints, ["cumulative"], "everyone ever entered (model)")
    years, _ = _years(src)
    orders = Chart("registry_orders", sec, "Treatment orders per year",
                   "Orders made in the year (one person can be ordered more than once: "
                   "person-times), the model's mean over seeds, beside the published counts.",
                   "year", "orders (person-times)", years, unit="person_times")
    for arm in src.arms:
        for q, keys in OFFICIAL_ORDERS.items():
            orders.add_series(labels.official_quantities[q].replace(" (official)", ""),
                              Series(_yearly(src, keys, arm), *(np.full(len(years),
                                                                        np.nan),) * 2), arm)
    for q in OFFICIAL_ORDERS:
        vals = np.full(len(years), np.nan)
        for r in _official_rows():
            if r["quantity"] == q and r["date"][:4] in years:
                vals[years.index(r["date"][:4])] = float(r["value"])
        col = orders.add(f"published: {labels.official_quantities[q]} - predicted", vals)
        orders.traces.append({"name": f"{labels.official_quantities[q]} - predicted",
                              "y": col, "type": "points", "status": "predicted", "arm": None,
                              "line": labels.official_quantities[q].replace(" (official)", "")})
    status = _lines(src, labels, "registry_control", sec, "Control status of the register",
                    "People under control, partly released and fully released, at the end of "
                    "each month.", ["stock.under_control", "stock.partially_released",
                                    "stock.released"], "people")
    return [stock, cum, orders, status]


def _lines(src: Source, labels: Labels, cid: str, sec: str, title: str, note: str,
           keys: list[str], y_label: str, scale: np.ndarray | float = 1.0,
           log: bool = False, unit: str = "persons") -> Chart:
    """A chart of monthly series (one line per metric and arm, with bands)."""
    c = Chart(cid, sec, title, note, "month", y_label, src.months, unit=unit)
    for arm in src.arms:
        for k in keys:
            s = src.series(k, arm)
            c.add_series(labels.label(k), Series(s.mean * scale, s.lo * scale, s.hi * scale),
                         arm)
    if log:
        c.layout = {"yaxis": {"type": "log"}}
    return c


def police_charts(src: Source, labels: Labels) -> list[Chart]:
    """Alerts and what came of them, officer hours, what found drug use, alerts by venue,
    and how many alerts it takes to find one drug use."""
    sec = "police"
    alerts = _lines(src, labels, "police_alerts", sec, "Alerts and police responses per month",
                    "Log scale: each step up is ten times more.",
                    ["flow.alerts", "flow.alert_responses", "flow.alert_contacts",
                     "flow.alert_positives"], "per month", log=True, unit="events")
    hours = _lines(src, labels, "police_hours", sec, "Staff hours per month",
                   "Hours spent by police, grid workers and app staff on the system's "
                   "procedures.", ["hours.officer_hours_alerts", "hours.officer_hours_inspections",
                                   "hours.grid_worker_hours", "hours.app_staff_hours"],
                   "hours per month", unit="hours")
    finds = _lines(src, labels, "police_findings", sec, "How drug use was found, per month",
                   "Each line counts findings by one route; the last counts wrongful findings.",
                   ["flow.alert_positives", "flow.scheduled_test_positives",
                    "flow.inspection_positives", "flow.encounter_detections",
                    "flow.false_positive_detections"], "per month", unit="events")
    years, _ = _years(src)
    yield_ = Chart("police_yield", sec, "Alerts needed to find one case of drug use",
                   "Alerts in the year divided by the alerts whose drug test was positive "
                   "(the model's mean over seeds).", "year", "alerts per finding", years,
                   unit="events")
    venue = Chart("police_venues", sec, "Alerts by venue, whole period",
                  "All alerts from the start to the end of the run, by where the ID card was "
                  "used (the model's mean over seeds).", "venue", "alerts",
                  [labels.venues[v] for v in VENUES], unit="events")
    for arm in src.arms:
        a = _yearly(src, ["flow.alerts"], arm)
        p = _yearly(src, ["flow.alert_positives"], arm)
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(p > 0, a / np.maximum(p, 1e-300), np.nan)
        nan = np.full(len(years), np.nan)
        yield_.add_series("alerts per drug finding", Series(ratio, nan, nan), arm)
        tot = [src.series(f"flow.alerts_{v}", arm).mean.sum() for v in VENUES]
        venue.add_series("alerts", Series(np.array(tot), *(np.full(len(VENUES), np.nan),) * 2),
                         arm, {"type": "bar"})
    return [alerts, hours, finds, yield_, venue]


def _exit_sum(src: Source, arm: str, col: str, years: list[int]) -> np.ndarray:
    ex = src.exit[arm].groupby("entry_year")[col].sum()
    return ex.reindex(years, fill_value=0.0).to_numpy(float)


def _wait_jurisdiction(src: Source) -> str:
    """The national rules' jurisdiction, unless no one there is released in the baseline (a
    small run): then the jurisdiction with the most people released."""
    ex = src.exit[src.baseline]
    released = ex.groupby("jurisdiction")["ever_released"].sum()
    if released.get("national_default", 0) > 0 or released.max() <= 0:
        return "national_default"
    return str(released.idxmax())


def exit_charts(src: Source, labels: Labels) -> list[Chart]:
    """Eligible against released over time, by year of entry, the wait, and who is kept."""
    sec = "exit"
    stock = _lines(src, labels, "exit_stock", sec,
                   "Meeting the law's conditions to leave control, and released",
                   "At the end of each month.", ["stock.eligible_by_law", "stock.released",
                                                 "stock.partially_released"], "people")
    years = sorted({int(y) for arm in src.arms for y in src.exit[arm]["entry_year"]})
    cohort = Chart("exit_cohort", sec, "By year first registered: qualify to leave, and released",
                   "People registered each year who meet the law's conditions at the end of "
                   "the run, beside those ever fully released (mean over seeds).",
                   "year first registered", "people", [str(y) for y in years])
    where = _wait_jurisdiction(src)
    wait = Chart("exit_wait", sec, "Median wait from qualifying to release",
                 "Days from meeting the law's conditions to full release, for people released, "
                 f"in {labels.jurisdiction(where)} (mean over seeds of the median)"
                 + ("" if where == "national_default" else
                    f"; no one in {labels.jurisdiction('national_default')} was released") + ".",
                 "year first registered", "days", [str(y) for y in years], unit="days")
    nan = np.full(len(years), np.nan)
    for arm in src.arms:
        for col in ("eligible_at_end", "ever_released"):
            cohort.add_series(labels.label(f"exit.{col}"),
                              Series(_exit_sum(src, arm, col, years), nan, nan), arm,
                              {"type": "bar"})
        ex = src.exit[arm]
        nd = ex[ex["jurisdiction"] == where].set_index("entry_year")
        med = nd["median_days_eligible_to_release"].reindex(years).to_numpy(float)
        wait.add_series(labels.label("exit.median_days_eligible_to_release"),
                        Series(med, nan, nan), arm)
    trapped = _lines(src, labels, "exit_trapped", sec,
                     "Abstinent three years by the record, yet kept under control: why",
                     "At the end of each month, by cause.",
                     ["stock.trapped_no_release_area", "stock.trapped_insufficient_tests",
                      "stock.trapped_awaiting_update", "stock.trapped_partial_release",
                      "stock.held_criminal_case"],
                     "people")
    return [stock, cohort, wait, trapped]


def intrusion_charts(src: Source, labels: Labels) -> list[Chart]:
    """Average intrusions per person-year by kind, how they are spread over people (a kind
    chosen by the reader), and police questioning by venue."""
    sec = "intrusions"
    kinds = [k for k in src.intrusion_summary[src.baseline]["kind"] if k != "all"]
    by_kind = Chart("intrusions_kind", sec, "Intrusions per year on the register, by kind",
                    "Average per person-year, people registered a year or more (mean over "
                    "seeds). The table also gives the median and the top 10% and 1%.",
                    "kind", "per person-year", [labels.kind(k) for k in kinds],
                    unit="per_person_year", layout={"horizontal": True})
    for arm in src.arms:
        s = src.intrusion_summary[arm].set_index("kind").reindex(kinds)
        nan = np.full(len(kinds), np.nan)
        by_kind.add_series(labels.label("summary_column.mean"), Series(s["mean"], nan, nan),
                           arm, {"type": "bar"})
        for q in ("p50", "p90", "p99"):
            by_kind.add(f"{labels.label('summary_column.' + q)} [{arm}]", s[q])
    dist = _distribution(src, labels)
    venue = Chart("intrusions_venue", sec, "Police questioning in public, by venue",
                  "Questionings after an ID-card alert per person-year on the register, "
                  "whole period (mean over seeds).", "venue", "per person-year",
                  [labels.venues[v] for v in VENUES], unit="per_person_year")
    for arm in src.arms:
        years = src.series("activity.registry_days", arm).mean.sum() / 365.25
        rate = [src.series(f"flow.interrogations_{v}", arm).mean.sum() / years if years else
                math.nan for v in VENUES]
        venue.add_series("questionings per person-year", Series(
            np.array(rate), *(np.full(len(VENUES), np.nan),) * 2), arm, {"type": "bar"})
    return [by_kind, dist, venue]


def _distribution(src: Source, labels: Labels) -> Chart:
    base = src.intrusion_distribution[src.baseline]
    base = base[(base["jurisdiction"] == "all") & (base["kind"] == "all")]
    bins = [f"{a:g} to {b:g}" if math.isfinite(b) else f"{a:g} or more"
            for a, b in zip(base["per_year_from"], base["per_year_to"], strict=True)]
    kinds = list(dict.fromkeys(src.intrusion_distribution[src.baseline]["kind"]))
    c = Chart("intrusions_distribution", "intrusions",
              "How intrusions are spread: people by intrusions per year on the register",
              "Choose a kind of intrusion. People registered a year or more, national "
              "equivalent (mean over seeds).", "intrusions per person-year", "people", bins)
    c.control = {"label": "Kind of intrusion",
                 "options": [{"value": k, "label": labels.kind(k)} for k in kinds],
                 "default": "all"}
    for arm in src.arms:
        d = src.intrusion_distribution[arm]
        d = d[d["jurisdiction"] == "all"]
        for k in kinds:
            v = d[d["kind"] == k]["value"].to_numpy(float)
            c.add_series(labels.kind(k), Series(v, *(np.full(len(v), np.nan),) * 2), arm,
                         {"type": "bar"}, group=k)
    return c


def age_charts(src: Source, labels: Labels) -> list[Chart]:
    """Average persons under control on a day of each month, by age band."""
    days = np.array([(dt.date.fromisoformat(m) + dt.timedelta(days=32)).replace(day=1).toordinal()
                     - dt.date.fromisoformat(m).toordinal() for m in src.months], float)
    keys = ["activity.control_days_under_25", "activity.control_days_25_59",
            "activity.control_days_60_plus"]
    c = _lines(src, labels, "age_control", "age", "Under control on an average day, by age",
               "Person-days under control in the month divided by its days.", keys,
               "people", scale=1.0 / days)
    return [c]


DIFFERENCE_KEYS = ["stock.existing_users", "stock.abstinent_3y_recorded", "stock.under_control",
                   "stock.released", "stock.eligible_by_law", "flow.alerts",
                   "hours.officer_hours_alerts", "hours.officer_hours_inspections",
                   "activity.control_days_under_25"]


def reform_charts(src: Source, labels: Labels) -> list[Chart]:
    """Each reform minus the baseline over time, paired by seed (monthly_summary's
    'difference' rows), for a result the reader chooses."""
    if not src.reforms:
        return []
    c = Chart("reforms_over_time", "reforms",
              "The chosen reform minus the baseline, month by month",
              "Choose a result. The line is the reform's value minus the baseline's, run by run "
              "with the same seeds; the band is the 90% interval of that paired difference. "
              "Zero: no effect.", "month", "difference", src.months)
    c.control = {"label": "Result", "options": [{"value": k, "label": labels.label(k)}
                                                for k in DIFFERENCE_KEYS],
                 "default": DIFFERENCE_KEYS[0]}
    for arm in src.reforms:
        for k in DIFFERENCE_KEYS:
            c.add_series(f"{labels.label(k)}: difference", src.series(k, arm, "difference"), arm,
                         {"difference": True}, group=k)
    return [c]


def _one_run_words(note: str) -> str:
    """A single run has no mean over seeds and no interval: say so instead."""
    note = note.replace(" (shaded: 90% interval over the seeds)", " (one run)")
    note = re.sub(r"the model's mean over seeds", "the model, one run", note)
    note = re.sub(r" ?\(mean over seeds( of the median)?\)", "", note)
    return note.replace(" (mean over seeds)", "")


def all_charts(src: Source, labels: Labels | None = None) -> list[Chart]:
    """Every chart of the report, section by section."""
    labels = labels or load_labels()
    charts = [*registry_charts(src, labels), *police_charts(src, labels),
              *exit_charts(src, labels), *intrusion_charts(src, labels),
              *age_charts(src, labels), *reform_charts(src, labels)]
    if not src.has_intervals:
        for c in charts:
            c.note = _one_run_words(c.note)
    return charts
