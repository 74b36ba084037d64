"""Hold the model to any file of official figures: `dcsim validate FIGURES.csv [--run DIR]`.

The file has the schema of `official_series.csv` (a `#` comment header, then the columns
date, quantity, value, kind, unit, status, source, note), with one optional column,
period_start: for a flow over part of a year (a briefing's first half), the first day of the
period, the date being its last. Each figure is read here as the model
counts it, by one row of MAPPING below (which monthly metric, a stock on a date, a flow in the
year ending on the date or a count since a date, persons or person-times); a figure with no row
there is listed as not modelled with the reason, never dropped. Dates after 2019, and in the
future, are accepted: the point is that anyone can set the next annual report beside the model.

Whether a figure was an input of the model, calibrated to or predicted is read from targets.yaml
and the report's list of inputs, by the same rule the report uses (report/charts.py).
"""

from __future__ import annotations

import csv
import datetime as dt
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .official_series import ENTRY_KEYS, MAPPING, NOT_MODELLED, Mapping, read

__all__ = ["COLUMNS", "MAPPING", "NOT_MODELLED", "Figure", "FiguresError", "Mapping",
           "compare", "model_series", "read_figures", "run_folder_series"]

COLUMNS = ("date", "quantity", "value", "kind", "unit", "status", "source", "note")
OPTIONAL_COLUMNS = ("period_start",)
KINDS = ("stock", "flow", "cumulative")
UNITS = ("persons", "person-times", "share")
STATUSES = ("reported", "derived", "unclear", "conflicting")


class FiguresError(ValueError):
    """A figures file is unusable; the text names the file, the line and the column."""

    def __init__(self, path: Path, line: int | None, column: str | None, message: str) -> None:
        where = "".join([f": line {line}" if line else "",
                         f", column {column!r}" if column else ""])
        super().__init__(f"{path}{where}: {message}")


@dataclass(frozen=True)
class Figure:
    """One official figure as the file states it (line: its line number in the file;
    period_start: the first day of a flow over part of a year, else None)."""

    line: int
    date: dt.date
    quantity: str
    value: float
    kind: str
    unit: str
    status: str
    source: str
    note: str
    period_start: dt.date | None = None

    @property
    def months(self) -> int:
        """Months a flow sums: twelve, or those of the stated period."""
        if self.period_start is None:
            return 12
        return ((self.date.year - self.period_start.year) * 12
                + self.date.month - self.period_start.month + 1)


# --------------------------------------------------------------------------- reading the file


def _rows(path: Path) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header and data rows (with their line numbers), comment lines skipped."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise FiguresError(path, None, None, f"not UTF-8 text ({e.reason})") from None
    except OSError as e:
        raise FiguresError(path, None, None, f"cannot read: {e.strerror or e}") from None
    numbered = [(i + 1, ln) for i, ln in enumerate(text.splitlines())
                if ln.strip() and not ln.lstrip().startswith("#")]
    if not numbered:
        raise FiguresError(path, None, None, "no header row (date,quantity,value,...)")
    reader = csv.reader(ln for _, ln in numbered)
    out: list[tuple[int, list[str]]] = []
    try:
        for cells in reader:
            out.append((numbered[reader.line_num - 1][0], cells))
    except csv.Error as e:
        raise FiguresError(path, numbered[reader.line_num - 1][0], None, str(e)) from None
    header_line, header = out[0]
    header = [h.strip() for h in header]
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise FiguresError(path, header_line, missing[0],
                           f"missing column (the header needs {', '.join(COLUMNS)})")
    unknown = [c for c in header if c not in COLUMNS + OPTIONAL_COLUMNS]
    if unknown:
        raise FiguresError(path, header_line, unknown[0],
                           f"unknown column (the columns are {', '.join(COLUMNS)}, and "
                           f"optionally {', '.join(OPTIONAL_COLUMNS)})")
    return header, out[1:]


def _cell(path: Path, line: int, row: dict[str, str], column: str, allowed: tuple) -> str:
    v = row[column].strip()
    if v not in allowed:
        raise FiguresError(path, line, column, f"unknown {column} {v!r} "
                                               f"(one of {', '.join(allowed)})")
    return v


def _date(path: Path, line: int, column: str, text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        raise FiguresError(path, line, column, f"bad date {text!r} (write YYYY-MM-DD)") from None


def _figure(path: Path, line: int, row: dict[str, str]) -> Figure:
    date = _date(path, line, "date", row["date"])
    if not row["quantity"].strip():
        raise FiguresError(path, line, "quantity", "empty")
    try:
        value = float(row["value"].replace(",", "").strip())
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise FiguresError(path, line, "value", f"{row['value']!r} is not a number >= 0")
    kind = _cell(path, line, row, "kind", KINDS)
    unit = _cell(path, line, row, "unit", UNITS)
    if unit == "share" and value > 1:
        raise FiguresError(path, line, "value", f"a share is from 0 to 1, got {value:g}")
    status = _cell(path, line, row, "status", STATUSES)
    return Figure(line, date, row["quantity"].strip(), value, kind, unit, status,
                  row["source"].strip(), row["note"].strip(),
                  _period_start(path, line, row.get("period_start", ""), kind, date))


def _period_start(path: Path, line: int, cell: str, kind: str, date: dt.date) -> dt.date | None:
    """The optional first day of a flow's period: whole months, ending on the date (the model
    counts flows by month), so it is the first of a month and the date the last of one."""
    cell = cell.strip()
    if not cell:
        return None
    start = _date(path, line, "period_start", cell)
    if kind != "flow":
        raise FiguresError(path, line, "period_start", f"only a flow has a period; this "
                                                       f"figure is a {kind}")
    if start.day != 1:
        raise FiguresError(path, line, "period_start", f"{cell} is not the first day of a "
                                                       "month (the model counts whole months)")
    if (date + dt.timedelta(days=1)).day != 1:
        raise FiguresError(path, line, "date", f"{date} is not the last day of a month, as "
                                               "the end of a period must be")
    if start > date:
        raise FiguresError(path, line, "period_start", f"{cell} is after the date {date}")
    return start


def read_figures(path: str | Path) -> list[Figure]:
    """Every figure of the file, checked; the first bad row raises FiguresError naming the
    line and column, before anything is simulated."""
    path = Path(path)
    header, rows = _rows(path)
    figures = []
    for line, cells in rows:
        if len(cells) != len(header):
            raise FiguresError(path, line, None, f"{len(cells)} cells, the header has "
                                                 f"{len(header)}")
        figures.append(_figure(path, line, dict(zip(header, cells, strict=True))))
    if not figures:
        raise FiguresError(path, None, None, "no figures below the header")
    return figures


# --------------------------------------------------------------------------- the model's side


def model_series(monthly: pd.DataFrame) -> dict[str, np.ndarray]:
    """National monthly series keyed `group.metric` (national-equivalent: the tables' value),
    from a run's monthly table; index 0 is the run's first month."""
    nat = monthly.groupby(["group", "metric", "month"], sort=True)["value"].sum()
    out: dict[str, np.ndarray] = {}
    for (group, metric), s in nat.groupby(level=[0, 1], sort=False):
        out[f"{group}.{metric}"] = s.to_numpy(np.float64)
    months = sorted(pd.to_datetime(monthly["month"].unique()))
    out["_first_month"] = np.array([months[0].year, months[0].month])
    out["_n_months"] = np.array([len(months)])
    return out


def run_folder_series(folder: Path) -> tuple[list[dict[str, np.ndarray]], str]:
    """Series of each seed's run in a `dcsim run` folder (one), an ensemble/compare folder
    (its baseline arm's runs) or a `dcsim uncertainty` folder (its draws' runs), and a
    description of what was read."""
    from .report.source import load

    drawn = _draw_folder_series(folder)
    if drawn is not None:
        return drawn
    src = load(folder)
    if src.kind == "run":
        paths = [folder]
        what = f"one run (seed {src.seeds[0]}, scale {src.scale:g}): no interval"
    else:
        paths = [folder / p for p in src.manifest["runs"][src.baseline].values()]
        what = (f"{src.kind} arm {src.baseline!r}: {len(paths)} seeds at scale {src.scale:g}, "
                "the range of 90% of the seeds (5th to 95th percentile, as dcsim fit) below "
                "the mean")
    return [model_series(pd.read_parquet(p / "monthly.parquet")) for p in paths], what


def _draw_folder_series(folder: Path) -> tuple[list[dict[str, np.ndarray]], str] | None:
    """The draws' runs of a `dcsim uncertainty` folder (None for any other folder)."""
    import json

    from .uncertainty import KIND, draw_series

    try:
        manifest = json.loads((folder / "manifest.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("kind") != KIND:
        return None
    _, draws = draw_series(folder / manifest["ensemble"])
    what = (f"{len(draws)} draws of the assumptions (dcsim uncertainty) at scale "
            f"{manifest['run_scale']:g}, one seed: the range of 90% of the draws (5th to 95th "
            "percentile) below the mean over the draws")
    return draws, what


def _month(series: dict[str, np.ndarray], day: dt.date) -> int:
    y, m = (int(x) for x in series["_first_month"])
    return (day.year - y) * 12 + day.month - m


def _value(mp: Mapping, fig: Figure, series: dict[str, np.ndarray]) -> float | str:
    """The model's value for one figure of one run, or why the run cannot give it."""
    n = int(series["_n_months"][0])
    since = 0 if mp.since is None else _month(series, mp.since)
    value = read(mp, _month(series, fig.date), since, n, series, fig.months)
    if value is None:
        y, m = (int(x) for x in series["_first_month"])
        last = dt.date(y + (m - 1 + n - 1) // 12, (m - 1 + n - 1) % 12 + 1, 1)
        span = "the month read lies" if mp.reading == "stock" else "the months read lie"
        return f"outside the run: {span} outside {y:04d}-{m:02d} to {last:%Y-%m}"
    return value


def _role(mp: Mapping, fig: Figure) -> tuple[str, str]:
    """input / calibrated / predicted: a figure that is itself a target of targets.yaml (an
    `official` one of the same quantity and date, or a `flow_in_year` one of the same flows
    and year) takes that target's role (fit.role); a flow over part of a year is predicted;
    any other figure is judged by the report's rule on the published targets
    (report/charts.py)."""
    from .fit import role
    from .report.charts import figure_status, published_targets
    from .report.labels import load_labels
    from .targets import FlowInYear, OfficialFigure, load_targets

    if fig.months != 12:
        return "predicted", "a flow over part of a year: no target reads one"
    tf = load_targets()
    for t in tf.targets:
        m = t.measure
        if isinstance(m, OfficialFigure) and m.quantity == fig.quantity and m.at == fig.date:
            return role(tf, t)
        if (isinstance(m, FlowInYear) and mp.reading == "flow" and m.at == fig.date
                and {f"flow.{x}" for x in m.metrics} == set(mp.keys)):
            return role(tf, t)  # the same flows in the same year: a split's target
    if mp.reading == "stock":
        keys = list(mp.keys)  # the report's keys of a stock target
    elif mp.reading == "cumulative" and mp.keys == ENTRY_KEYS and mp.since is None:
        keys = ["cumulative"]  # the report's key of a cumulative_entries target
    else:
        return "predicted", "not a target of the calibration"
    month = f"{fig.date.year:04d}-{fig.date.month:02d}-01"
    return figure_status(load_labels(), keys, month, published_targets(), fig.value)


def _not_modelled(fig: Figure) -> str | None:
    mp = MAPPING.get(fig.quantity)
    if mp is None:
        return NOT_MODELLED.get(fig.quantity, f"no mapping for the quantity {fig.quantity!r} "
                                              "(see dcsim/validate.py MAPPING)")
    if (fig.kind, fig.unit) != (mp.reading, mp.unit):
        return (f"the model reads {fig.quantity} as {mp.reading} in {mp.unit}; the file says "
                f"{fig.kind} in {fig.unit}")
    return None


def compare(figures: list[Figure], runs: list[dict[str, np.ndarray]]) -> pd.DataFrame:
    """One row per figure: the figure, the model's mean, median and 90% interval over the runs
    (NaN for one run), relative difference, role; or the reason it is not compared."""
    rows = []
    for f in figures:
        why = _not_modelled(f)
        mean = lo = mid = hi = math.nan
        role, role_why, meaning = "", "", ""
        if why is None:
            mp = MAPPING[f.quantity]
            meaning = mp.meaning
            values = [_value(mp, f, s) for s in runs]
            if isinstance(values[0], str):
                why = values[0]
            else:
                x = np.array(values, dtype=np.float64)
                mean = float(x.mean())
                if x.size > 1:
                    lo, mid, hi = (float(q) for q in np.quantile(x, [0.05, 0.5, 0.95]))
                role, role_why = _role(mp, f)
        rows.append({
            "line": f.line, "date": f.date.isoformat(),
            "period_start": "" if f.period_start is None else f.period_start.isoformat(),
            "quantity": f.quantity,
            "kind": f.kind, "unit": f.unit, "status": f.status, "published": f.value,
            "model": mean, "model_p05": lo, "model_p50": mid, "model_p95": hi,
            "relative_difference": (mean - f.value) / f.value if f.value else math.nan,
            "role": role, "role_why": role_why, "model_counts": meaning,
            "not_modelled": why or "", "source": f.source,
        })
    return pd.DataFrame(rows)
