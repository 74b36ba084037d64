"""The fit report: how close the (calibrated) baseline comes to every published figure.

`dcsim fit` runs a scenario over several seeds (default 20, full scale) and sets each target's
published value beside the model's mean and 90% interval over the seeds, with the relative
error and whether the model passes the target's tolerance. The interval is Monte Carlo
uncertainty (how much the figure moves from seed to seed), not uncertainty about the
assumptions: `dcsim sensitivity` speaks to those. Each time-series group of targets is also
drawn as a PNG: the model's band over the seeds against the published points.

The runs are Dask tasks (`ensemble.dask_client`: a local cluster by default, or an existing
scheduler), one per seed. A task is plain data (`FitTask`); the worker prepares the model
itself and returns only that seed's target values and plotted series. The report is built in
seed order, so it is the same whatever the number of workers.
"""

from __future__ import annotations

import dataclasses
import math
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .ensemble import ModelSpec, map_tasks, session, targets_json, worker_targets
from .model import Run, prepare, simulate
from .scenario import Scenario
from .targets import AtMeasure, Target, TargetsFile

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["FitReport", "FitTask", "compact", "fit", "fit_table", "formatted", "markdown",
           "plot_series", "role", "run_fit_task", "scale_check", "write"]

TABLE_COLUMNS = [
    "target", "id", "source", "kind", "unit", "role", "published", "model_mean", "model_p05",
    "model_p95", "relative_error", "absolute_error", "tolerance", "passes", "role_why",
]
ROLES = ("input", "calibrated", "predicted")


def role(targets: TargetsFile, target: Target) -> tuple[str, str]:
    """(role, why) of a target: `input` if a rule is set from the figure (the report's list,
    report/labels.yaml input_targets), else `calibrated` if calibration uses it (weight > 0,
    or a fitted value names it in `informs`), else `predicted` (never used to set or fit the
    model: a test of it). The report marks published figures by the same list."""
    from .report.labels import load_labels

    inputs = load_labels().input_targets
    if target.id in inputs:
        return "input", inputs[target.id]
    informs = [f.id for f in targets.calibration.fitted if target.id in f.informs]
    if target.weight > 0 or informs:
        why = f"weight {target.weight:g} in the calibration loss"
        if informs:
            why += "; informs fitted " + ", ".join(informs)
        return "calibrated", why
    return "predicted", "weight 0 and no fitted value names it: reported only"


@dataclass
class FitReport:
    """Per-seed values of every target and monthly series of the plotted ones."""

    targets: TargetsFile
    scenario: Scenario
    seeds: list[int]
    values: pd.DataFrame  # one row per seed, one column per target id
    months: list = field(default_factory=list)
    # plotted group -> line -> values [seed, month]
    series: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    @property
    def table(self) -> pd.DataFrame:
        return fit_table(self.targets, self.values)


def _line_key(t: Target) -> str:
    """Targets read from the same measure at different dates share one line in a plot."""
    m = t.measure
    assert isinstance(m, AtMeasure)
    return m.model_dump_json(exclude={"at"})


def _line_label(t: Target) -> str:
    m = t.measure.model_dump(exclude={"at"})
    out = m.pop("output").replace("_", " ")
    if "metrics" in m:
        out = " + ".join(x.replace("_", " ") for x in m["metrics"])
        if "of" in m:
            out += " / (" + " + ".join(x.replace("_", " ") for x in m["of"]) + ")"
    return out


@dataclass(frozen=True)
class FitTask:
    """One seed of a fit, as plain data: the model (rebuilt by the worker), the targets file
    as JSON and the seed."""

    model: ModelSpec
    targets: str
    seed: int


def run_fit_task(task: FitTask) -> dict:
    """Run one seed (on a worker) and return only what the report needs: every target's value
    and the series of each plotted line, keyed (group, line)."""
    prepared = task.model.prepare()
    targets = worker_targets(task.targets)
    sc = prepared.scenario.model_copy(update={"seed": int(task.seed)})
    run = simulate(dataclasses.replace(prepared, scenario=sc), rounds=1)
    series: dict[tuple[str, str], np.ndarray] = {}
    for t in targets.targets:
        if t.plotted() and (t.series or "", _line_key(t)) not in series:
            series[(t.series or "", _line_key(t))] = _series(t, run)
    return {"values": {t.id: t.evaluate(run) for t in targets.targets}, "series": series}


def fit(scenario: Scenario, targets: TargetsFile, seeds: Sequence[int],
        progress: Callable[[int, int], None] | None = None, *, workers: int | None = None,
        scheduler: str | None = None, client: Client | None = None) -> FitReport:
    """Run the scenario once per seed and keep every target's value and plotted series.

    The runs are Dask tasks: on `client` if given, else on a local cluster of `workers`
    processes (default 1) or on the cluster of `scheduler` (ensemble.dask_client).
    """
    prepared = prepare(scenario)  # here too: a rule problem is found before any task
    spec, tj = ModelSpec.of(prepared), targets_json(targets)
    tasks = [FitTask(spec, tj, int(s)) for s in seeds]
    if progress is not None:
        progress(0, len(tasks))
    with session(client, workers, scheduler) as c:
        results = map_tasks(c, run_fit_task, tasks, progress, name="dcsim-fit")
    values = pd.DataFrame([{"seed": t.seed, **r["values"]} for t, r in zip(tasks, results,
                                                                           strict=True)])
    report = FitReport(targets, scenario, list(seeds), values.set_index("seed"),
                       prepared.months)
    for t in targets.targets:  # groups and lines in the order of the targets file
        key = (t.series or "", _line_key(t)) if t.plotted() else None
        if key is not None and key[1] not in report.series.setdefault(key[0], {}):
            report.series[key[0]][key[1]] = np.stack([r["series"][key] for r in results])
    return report


def _series(t: Target, run: Run) -> np.ndarray:
    assert isinstance(t.measure, AtMeasure)
    return np.asarray(t.measure.series(run), dtype=np.float64)


def fit_table(targets: TargetsFile, values: pd.DataFrame) -> pd.DataFrame:
    """One row per target: its role (input, calibrated, predicted), published value, model
    mean and 90% interval over the seeds, relative and absolute error, the tolerance and
    whether the mean passes it."""
    rows = []
    for t in targets.targets:
        x = values[t.id].to_numpy(dtype=np.float64)
        x = x[~np.isnan(x)]
        mean = float(x.mean()) if x.size else math.nan
        lo, hi = (float(np.quantile(x, 0.05)), float(np.quantile(x, 0.95))) if x.size else (
            math.nan, math.nan)
        used, why = role(targets, t)
        rows.append({
            "target": t.label, "id": t.id, "source": t.source, "kind": t.kind, "unit": t.unit,
            "role": used, "role_why": why, "published": t.value, "model_mean": mean,
            "model_p05": lo, "model_p95": hi,
            "relative_error": (mean - t.value) / t.value if t.value else math.nan,
            "absolute_error": mean - t.value,
            "tolerance": t.tolerance.describe(t.unit),
            "passes": bool(t.tolerance.passes(mean, t.value)),
        })
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)


def _fmt(v: float, unit: str) -> str:
    if v != v:
        return "-"
    if unit == "share":
        return f"{100 * v:.2f}%"
    if unit == "ratio":
        return f"{v:.3f}"
    if unit in ("persons", "person_times"):
        return f"{v:,.0f}"
    return f"{v:,.2f}"


def _err(r: pd.Series) -> str:
    if r["relative_error"] != r["relative_error"]:
        return "-"
    rel = f"{100 * r['relative_error']:+.1f}%"
    if r["unit"] == "share":
        rel += f" ({100 * r['absolute_error']:+.2f} pts)"
    return rel


def formatted(table: pd.DataFrame) -> list[dict[str, str]]:
    """The table as text cells, for the terminal and for Markdown."""
    out = []
    for _, r in table.iterrows():
        verdict = _verdict(r)
        out.append({
            "target": r["target"], "source": r["source"], "kind": r["kind"], "role": r["role"],
            "published": _fmt(r["published"], r["unit"]),
            "model mean": _fmt(r["model_mean"], r["unit"]),
            "90% interval": f"{_fmt(r['model_p05'], r['unit'])} to "
                            f"{_fmt(r['model_p95'], r['unit'])}",
            "error": _err(r), "tolerance": r["tolerance"], "result": verdict,
        })
    return out


ROLE_CODES = {"input": "in", "calibrated": "cal", "predicted": "pred"}


def _verdict(r: pd.Series) -> str:
    """pass, else FAIL for a hard target (the model must reproduce it), miss for a soft one."""
    return "pass" if r["passes"] else ("FAIL" if r["kind"] == "hard" else "miss")


def _short_err(r: pd.Series) -> str:
    """The error a reader judges the target by: points for a share (its tolerance is mostly
    in points), else the relative error."""
    if r["unit"] == "share" and r["absolute_error"] == r["absolute_error"]:
        return f"{100 * r['absolute_error']:+.2f}pt"
    return _err(r).split(" (")[0]


def compact(table: pd.DataFrame) -> list[dict[str, str]]:
    """The table as short cells for a terminal, hard targets first (each kind in the order of
    the targets file): the interval, source and tolerance stay in fit.md and fit.csv, which
    would not fit in 80 columns beside them."""
    out = []
    for kind in ("hard", "soft"):
        for _, r in table[table["kind"] == kind].iterrows():
            out.append({"id": r["id"], "kind": kind, "role": ROLE_CODES.get(r["role"], r["role"]),
                        "published": _fmt(r["published"], r["unit"]),
                        "model mean": _fmt(r["model_mean"], r["unit"]),
                        "error": _short_err(r), "result": _verdict(r)})
    return out


def markdown(table: pd.DataFrame) -> str:
    """A Markdown table of the fit (for docs/calibration.md)."""
    cells = formatted(table)
    if not cells:
        return ""
    head = list(cells[0])
    right = {"published", "model mean", "90% interval", "error"}
    lines = ["| " + " | ".join(head) + " |",
             "|" + "|".join("---:" if h in right else "---" for h in head) + "|"]
    for c in cells:
        lines.append("| " + " | ".join(str(c[h]).replace("|", "/") for h in head) + " |")
    return "\n".join(lines) + "\n"


GROUP_WORDS = {"registry": "The register", "official_statistics": "The official statistics",
               "drug_mix": "Heroin users among everyone registered",
               "official_community_split": "Community orders by kind (2014)"}


def _measure_words(t: Target) -> str:
    """What the model line of a target measures, in plain words (labels of dcsim report)."""
    from .report.labels import load_labels

    labels = load_labels()
    m = t.measure.model_dump(exclude={"at"})
    out = m["output"]
    if out == "cumulative_entries":
        return "everyone ever entered on the register"
    if out == "heroin_share_of_registrations":
        return "heroin users among everyone registered so far"
    if out in ("official", "flow_in_year"):  # the published figure's words, without the date
        return t.label.rsplit(", ", 1)[0] if _dated(t.label) else t.label
    if out in ("stock", "stock_share"):
        words = " plus ".join(labels.label(f"stock.{x}").split(" (")[0] for x in m["metrics"])
        if out == "stock_share":
            words += ", as a share of " + " plus ".join(
                labels.label(f"stock.{x}").split(" (")[0] for x in m["of"])
        return words
    return _line_label(t)


def _dated(label: str) -> bool:
    """Whether a label ends in ", YYYY-MM-DD" (the official series' targets do)."""
    return re.search(r", \d{4}-\d{2}-\d{2}$", label) is not None


def _axis_words(targets: list[Target]) -> str:
    """The y axis of a group: per cent, or millions of persons or person-times (orders and
    catches count events, not people)."""
    units = {t.unit for t in targets}
    if units == {"share"}:
        return "per cent"
    if units == {"person_times"}:
        return "million person-times"
    if units == {"persons"}:
        return "million people"
    return "million (people or person-times)"


def plot_series(report: FitReport, group: str, path: str | Path) -> Path:
    """The model's band (5-95% over seeds, edged so it shows even when narrow) and mean
    against the published points of a group, every label in words and outside the data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    targets = [t for t in report.targets.targets if t.plotted() and t.series == group]
    lines = report.series[group]
    dates = pd.to_datetime(pd.Series(report.months)) + pd.offsets.MonthEnd(0)
    k = 100.0 if all(t.unit == "share" for t in targets) else 1e-6
    fig, ax = plt.subplots(figsize=(9, 5.6), dpi=130)
    colours = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    widest = 0.0
    for i, (key, arr) in enumerate(lines.items()):
        c = colours[i % len(colours)]
        members = [t for t in targets if _line_key(t) == key]
        with warnings.catch_warnings():  # a month no run measures is a gap in the line
            warnings.simplefilter("ignore", RuntimeWarning)
            lo = np.nanquantile(arr, 0.05, axis=0) * k
            hi = np.nanquantile(arr, 0.95, axis=0) * k
            mean = np.nanmean(arr, axis=0) * k
        with np.errstate(invalid="ignore", divide="ignore"):
            widest = max(widest, float(np.nanmax(np.where(mean > 0, (hi - lo) / mean, 0))))
        ax.fill_between(dates, lo, hi, color=c, alpha=0.3, linewidth=0)
        ax.plot(dates, lo, color=c, linewidth=0.6, alpha=0.8)
        ax.plot(dates, hi, color=c, linewidth=0.6, alpha=0.8)
        ax.plot(dates, mean, color=c, linewidth=2,
                label=f"model: {_measure_words(members[0])} (line: mean, band: 90% of runs)")
        for t in members:
            at = pd.Timestamp(t.measure.at) + pd.offsets.MonthEnd(0)  # type: ignore[union-attr]
            tol = t.tolerance
            if tol.interval is not None:
                lo_e, hi_e = t.value - tol.interval[0], tol.interval[1] - t.value
            else:
                d = tol.relative * abs(t.value) if tol.relative is not None else tol.absolute
                lo_e = hi_e = float(d)  # type: ignore[arg-type]
            hard = t.kind == "hard"
            ax.errorbar([at], [t.value * k], yerr=[[lo_e * k], [hi_e * k]], color=c,
                        fmt="o" if hard else "s", capsize=4, markersize=7, zorder=5,
                        markerfacecolor=c if hard else "white", markeredgecolor=c,
                        markeredgewidth=1.6, label=f"published ({t.source}): {t.label}")
    ax.set_ylabel(_axis_words(targets), fontsize=11)
    ax.grid(alpha=0.3)
    ax.tick_params(labelsize=10)
    fig.suptitle(f"{GROUP_WORDS.get(group, group.replace('_', ' '))}: the model beside the "
                 "published figures", fontsize=13, x=0.01, ha="left")
    ax.legend(fontsize=8.5, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=1,
              frameon=False)
    note = (f"{len(report.seeds)} runs at {100 * report.scenario.scale:g}% of the register. "
            "Published: filled = a figure the model must reproduce, open = supporting evidence; "
            "bars = the tolerance the model is held to.")
    if widest < 0.02:
        note += f" The band is narrow: the runs agree within {100 * widest:.1f}%."
    fig.text(0.01, 0.005, note, fontsize=8, color="#444", wrap=True)
    return save_figure(fig, path)


def save_figure(fig, path: str | Path,  # noqa: ANN001 - a matplotlib Figure
                rect: tuple[float, float, float, float] = (0, 0.03, 1, 0.96)) -> Path:
    """Lay out (leaving `rect`'s margins for a title above and a note below), save as PNG
    (creating the folder) and release a figure."""
    import matplotlib.pyplot as plt

    fig.tight_layout(rect=rect)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def write(report: FitReport, out: str | Path) -> dict[str, Path]:
    """fit.parquet / fit.csv / fit.md (the table), fit_values.parquet (per seed), PNGs."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = report.table
    paths = {"fit": out / "fit.parquet", "fit_csv": out / "fit.csv", "fit_md": out / "fit.md",
             "values": out / "fit_values.parquet"}
    table.to_parquet(paths["fit"], index=False)
    table.to_csv(paths["fit_csv"], index=False)
    paths["fit_md"].write_text(markdown(table))
    report.values.assign(scale=report.scenario.scale).to_parquet(paths["values"])
    for group in report.series:
        paths[f"plot_{group}"] = plot_series(report, group, out / f"fit_{group}.png")
    return paths


def scale_check(small: pd.DataFrame, full: pd.DataFrame, small_scale: float,
                full_scale: float = 1.0, z: float = 4.0,
                floor_relative: float = 1e-3) -> pd.DataFrame:
    """Is a reduced scale unbiased? Per target: means at both scales, their difference and
    its Monte Carlo standard error, and whether the difference is within z errors.

    Values per seed (rows) by target (columns). Counts divided by the scale have a variance
    proportional to 1/scale, so with one or two full-scale seeds their spread is taken from
    the reduced scale: sd_full = sd_small * sqrt(small_scale / full_scale). `floor_relative`
    allows for the rounding of entries to whole persons per jurisdiction and month.
    """
    rows = []
    for col in small.columns:
        if col == "scale":
            continue
        a = small[col].to_numpy(float)
        b = full[col].to_numpy(float)
        sd_a = float(a.std(ddof=1)) if a.size > 1 else 0.0
        sd_b = float(b.std(ddof=1)) if b.size > 2 else sd_a * math.sqrt(small_scale / full_scale)
        se = math.sqrt(sd_a**2 / a.size + sd_b**2 / b.size)
        diff = float(b.mean() - a.mean())
        allowed = z * se + floor_relative * abs(float(b.mean()))
        rows.append({"id": col, "mean_reduced": float(a.mean()), "mean_full": float(b.mean()),
                     "difference": diff, "relative_difference": diff / b.mean() if b.mean()
                     else math.nan, "se": se, "z": diff / se if se else math.nan,
                     "within": abs(diff) <= allowed, "n_reduced": a.size, "n_full": b.size})
    return pd.DataFrame(rows)
