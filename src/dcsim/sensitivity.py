"""Which assumptions matter: Morris screening over every value labelled `assumption:`.

Every rule window whose reference has an `assumption:` part is a factor, varied over the range
its rule file states (`range: [low, high]`) or, when none is stated, over the default range
(calibration.DEFAULT_RANGE_RULE: value x [0.5, 1.5] clipped to the unit). Morris's elementary
effects (SALib) measure how much each factor moves the main outputs when it moves across its
range, one factor at a time along random trajectories; mu* (mean absolute effect) ranks the
factors, sigma shows interactions or non-linearity. All runs share one seed (common random
numbers), so an effect is the assumption's, not the dice's.

A factor whose range is a single point (e.g. an app's enrolment of 0 before its pilot: the
assumption there is the start year, not the value) is listed but not varied.

The runs are Dask tasks (`ensemble.dask_client`: a local cluster by default, or an existing
scheduler), one per design row, plus the baseline. A task is plain data (`RowTask`: the model
to rebuild and the rule values the row sets); the worker returns the six outputs only. The
outputs are put back in design-row order, so the table is the same whatever the number of
workers.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .calibration import (
    DEFAULT_RANGE_RULE,
    Assignment,
    RuleWindow,
    apply,
    assignments,
    rule_windows,
)
from .ensemble import ModelSpec, map_tasks, session
from .fit import save_figure
from .measures import Stock
from .model import Run, prepare, simulate
from .results import intrusion_summary
from .scenario import Scenario
from .targets import DistrictAlertsPerDay, FlowShare

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["OUTPUTS", "Factor", "RowTask", "SensitivityResult", "factors", "morris", "outputs",
           "run_row", "write"]

OUTPUTS = {
    "existing_users_2019": "existing users, end of 2019 (persons)",
    "abstinent_2019": "abstinent three years or more, end of 2019 (persons)",
    "alerts_per_day": "alerts per day in the study district",
    "contact_share": "share of alerts where police made contact",
    "released_share_of_eligible": "fully released / eligible under the law, end of period",
    "intrusions_per_person_year": "intrusions per person-year (persons registered a year+)",
}
_ALERTS = DistrictAlertsPerDay(output="district_alerts_per_day")
_CONTACT = FlowShare(output="flow_share", metrics=["alert_contacts"], of=["alerts"],
                     period="district_study")


def outputs(run: Run) -> dict[str, float]:
    """The main outputs the screening reports, read from one run."""
    st = run.stocks.sum(axis=0)
    scale = run.scenario.scale
    m19 = (2019 - run.scenario.start.year) * 12 + 12 - run.scenario.start.month
    in_run = 0 <= m19 < st.shape[0]  # a run that does not reach December 2019 has no value
    eligible = float(st[-1, Stock.ELIGIBLE_BY_LAW])
    summary = intrusion_summary(run).set_index("kind")
    return {
        "existing_users_2019": float(st[m19, Stock.EXISTING_USERS]) / scale
        if in_run else math.nan,
        "abstinent_2019": float(st[m19, Stock.ABSTINENT_3Y_RECORDED]) / scale
        if in_run else math.nan,
        "alerts_per_day": _ALERTS.value(run),
        "contact_share": _CONTACT.value(run),
        "released_share_of_eligible": float(st[-1, Stock.RELEASED]) / eligible
        if eligible else math.nan,
        "intrusions_per_person_year": float(summary.loc["all", "mean"])
        if "all" in summary.index else math.nan,
    }


@dataclass(frozen=True)
class Factor:
    """An assumption-labelled rule window and the range it is varied over."""

    window: RuleWindow
    low: float
    high: float
    range_source: str  # "stated in <file>" or the default rule

    @property
    def id(self) -> str:
        return f"{self.window.label} ({self.window.where})"

    @property
    def varied(self) -> bool:
        return self.high > self.low


def factors(scenario: Scenario) -> list[Factor]:
    """Every window labelled `assumption:` in force in the scenario, with its range."""
    out = []
    for w in rule_windows(scenario):
        if not w.is_assumption:
            continue
        (lo, hi), how = w.bounds()
        src = f"stated in {w.where}" if how == "stated" else "default: " + DEFAULT_RANGE_RULE
        out.append(Factor(w, float(lo), float(hi), src))
    return out


@dataclass
class SensitivityResult:
    factors: list[Factor]
    baseline: dict[str, float]
    table: pd.DataFrame  # long: one row per (factor, output)
    trajectories: int
    levels: int
    scale: float
    seed: int
    runs: int
    undefined: tuple[str, ...] = ()  # outputs the scenario has no value for (its period)


def morris(scenario: Scenario, trajectories: int = 10, levels: int = 4,
           scale: float = 0.02, seed: int = 101, sample_seed: int = 2019,
           progress: Callable[[int, int], None] | None = None, *, workers: int | None = None,
           scheduler: str | None = None, client: Client | None = None) -> SensitivityResult:
    """Morris elementary effects of every assumption on the main outputs.

    Runs trajectories x (varied factors + 1) simulations at `scale`, all with `seed`, plus the
    baseline, as Dask tasks: on `client` if given, else on a local cluster of `workers`
    processes (default 1) or on the cluster of `scheduler` (ensemble.dask_client).
    """
    from SALib.analyze import morris as morris_analyze
    from SALib.sample import morris as morris_sample

    sc = scenario.model_copy(update={"scale": scale, "seed": seed})
    spec = ModelSpec.of(prepare(sc))  # prepared here too: a rule problem is found at once
    fs = factors(sc)
    varied = [f for f in fs if f.varied]
    problem = {"num_vars": len(varied), "names": [f.id for f in varied],
               "bounds": [[f.low, f.high] for f in varied]}
    X = morris_sample.sample(problem, N=trajectories, num_levels=levels, seed=sample_seed)
    tasks = [RowTask(spec, ()), *(RowTask(spec, _row_changes(varied, row, sc.end)) for row in X)]
    if progress is not None:
        progress(0, len(tasks))
    with session(client, workers, scheduler) as c:
        results = map_tasks(c, run_row, tasks, progress, name="dcsim-morris")
    baseline = results[0]  # the rule files' own values
    Y = np.array([list(r.values()) for r in results[1:]], dtype=np.float64).reshape(
        len(X), len(OUTPUTS))
    rows = []
    undefined = tuple(o for o in OUTPUTS if not math.isfinite(baseline[o]))
    for k, out in enumerate(OUTPUTS):
        if out in undefined:  # outside the scenario's period: nothing to rank it on
            continue
        y = Y[:, k]
        ok = np.isfinite(y)
        if not ok.all():  # a run where the output is undefined: effects read it as baseline
            y = np.where(ok, y, baseline[out])
        res = morris_analyze.analyze(problem, X, y, num_levels=levels, print_to_console=False,
                                     seed=sample_seed)
        ref = abs(baseline[out]) or 1.0
        for j, f in enumerate(varied):
            rows.append(_row(f, out, float(res["mu_star"][j]), float(res["sigma"][j]),
                             float(res["mu_star_conf"][j]), float(res["mu"][j]), ref))
        for f in fs:
            if not f.varied:
                rows.append(_row(f, out, 0.0, 0.0, 0.0, 0.0, ref))
    table = pd.DataFrame(rows)
    table["rank"] = (table.groupby("output")["mu_star"].rank(ascending=False, method="min")
                     .astype(int))
    return SensitivityResult(fs, baseline, table, trajectories, levels, scale, seed, len(tasks),
                             undefined)


def _row(f: Factor, out: str, mu_star: float, sigma: float, conf: float, mu: float,
         ref: float) -> dict:
    w = f.window
    return {
        "factor": f.id, "name": w.name, "window": w.label, "file": w.where,
        "value": w.value, "low": f.low, "high": f.high, "range_source": f.range_source,
        "varied": f.varied, "reference": w.reference, "output": out, "mu_star": mu_star,
        "mu_star_relative": mu_star / ref, "mu_star_conf": conf, "mu": mu, "sigma": sigma,
    }


@dataclass(frozen=True)
class RowTask:
    """One run of the screening, as plain data: the model (rebuilt by the worker) and the rule
    values a design row sets (none for the baseline)."""

    model: ModelSpec
    changes: tuple[Assignment, ...]


def _row_changes(varied: list[Factor], row: np.ndarray, end: object) -> tuple[Assignment, ...]:
    changes: list[Assignment] = []
    for f, x in zip(varied, row, strict=True):
        changes.extend(assignments(f.window, float(x), end))  # type: ignore[arg-type]
    return tuple(changes)


def run_row(task: RowTask) -> dict[str, float]:
    """Run one design row (on a worker): the main outputs, nothing else of the run."""
    p = apply(task.model.prepare(), task.changes)
    return outputs(simulate(p, rounds=1))  # one batch of persons: least overhead


def ranking(table: pd.DataFrame) -> pd.DataFrame:
    """One row per factor: mu* relative to each output's baseline, and an overall rank.

    The overall score is the mean over the outputs of mu* as a share of the output's baseline
    value: every output counts in its own proportion, whatever its unit. (Dividing by the
    largest mu* per output instead would blow up an output that no assumption moves, such as
    the contact share, which is a paper value: its mu* are Monte Carlo noise.)
    """
    wide = table.pivot_table(index="factor", columns="output", values="mu_star_relative",
                             aggfunc="first")
    wide = wide[[c for c in OUTPUTS if c in wide.columns]]
    wide["overall"] = wide.fillna(0).mean(axis=1)
    wide = wide.sort_values("overall", ascending=False, kind="stable")
    wide.insert(0, "rank", np.arange(1, len(wide) + 1))
    meta = table.drop_duplicates("factor").set_index("factor")[
        ["value", "low", "high", "range_source", "varied"]]
    return wide.join(meta)


def markdown(result: SensitivityResult, top: int | None = None) -> str:
    """The ranking as a Markdown table: mu* as % of each output's baseline value."""
    r = ranking(result.table)
    if top is not None:
        r = r.head(top)
    cols = [c for c in OUTPUTS if c in r.columns]
    head = ["rank", "assumption (file:line)", "value", "range", *cols, "overall"]
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join(["---:", "---", "---:", "---"]
                                                          + ["---:"] * (len(cols) + 1)) + "|"]
    for factor, x in r.iterrows():
        rng = f"{x['low']:.4g}-{x['high']:.4g}" + ("" if str(x["range_source"]).startswith(
            "stated") else " (d)")
        cells = [str(x["rank"]), str(factor), f"{x['value']:.4g}", rng if x["varied"]
                 else "not varied"]
        cells += [f"{100 * x[c]:.1f}%" for c in cols]
        cells.append(f"{100 * x['overall']:.1f}%")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


OUTPUT_HEADS = {  # two short lines a column of the terminal table, spelled out below it
    "existing_users_2019": ("users", "2019"),
    "abstinent_2019": ("abstin.", "2019"),
    "alerts_per_day": ("alerts", "a day"),
    "contact_share": ("contact", "share"),
    "released_share_of_eligible": ("released", "/qualify"),
    "intrusions_per_person_year": ("intrus.", "/p-year"),
    "overall": ("overall", ""),
}
COLUMN = 9  # characters a column of the terminal table
MEAN_WORDS = "the mean over these outputs"


def terminal_lines(ranked: pd.DataFrame, top: int = 15, width: int = 80) -> list[str]:
    """The top of the ranking as plain lines of at most `width` characters: each assumption on
    a line of its own (wrapped, never cut), its mu* per output on the line under it, and the
    short column heads spelled out at the end."""
    cols = [c for c in OUTPUTS if c in ranked.columns] + ["overall"]
    indent = " " * 5
    lines = [indent + "".join(f"{OUTPUT_HEADS[c][k]:>{COLUMN}}" for c in cols) for k in (0, 1)]
    lines.append(indent + "-" * (COLUMN * len(cols)))
    for factor, r in ranked.head(top).iterrows():
        lines += textwrap.wrap(f"{int(r['rank']):>3}. {factor}", width,
                               subsequent_indent=indent, break_on_hyphens=False)
        lines.append(indent + "".join(f"{100 * r[c]:>{COLUMN - 1}.1f}%" for c in cols))
    legend = "; ".join(f"{' '.join(OUTPUT_HEADS[c]).strip()} = {OUTPUTS.get(c, MEAN_WORDS)}"
                       for c in cols)
    lines += textwrap.wrap(f"mu* as % of the baseline value: {legend}.", width)
    return lines


OUTPUT_WORDS = {  # the outputs as a reader would name them (figure columns)
    "existing_users_2019": "current users\n(official count),\nend of 2019",
    "abstinent_2019": "abstinent three\nyears or more,\nend of 2019",
    "alerts_per_day": "alerts a day\nin the study\ndistrict",
    "contact_share": "alerts where\npolice reached\nthe person",
    "released_share_of_eligible": "released, of\nthose who\nqualify",
    "intrusions_per_person_year": "intrusions per\nperson-year",
}


def factor_words(factor: str) -> str:
    """'name [2013-01..2013-12] (file:line)' in words: the catalogue's description of the rule,
    when it applies and its file, e.g. 'an abstinent spell ends in relapse (calibrated.yaml)'."""
    import re

    from .catalogue import CATALOGUE

    m = re.match(r"^(\S+) \[([^\]]*)\] \(([^:)]+)", factor)
    if m is None:
        return factor
    name, window, where = m.groups()
    spec = CATALOGUE.get(name)
    words = spec.doc if spec is not None else name
    words = words.replace("_", " ")
    first, _, last = window.partition("..")
    if last and first[:4] == last[:4]:
        words += f", in {first[:4]}"
    elif last:
        words += f", {first} to {last}"
    elif first and first != "2006-01":
        words += f", from {first}"
    return f"{words} ({where})"


def plot(result: SensitivityResult, path: str | Path, top: int = 20) -> Path:
    """The top assumptions and how much each moves each output, in words (see plot_ranking)."""
    return plot_ranking(ranking(result.table), path, len(result.factors), result.trajectories,
                        result.scale, top)


def plot_ranking(r: pd.DataFrame, path: str | Path, n_factors: int, trajectories: int,
                 scale: float, top: int = 20) -> Path:
    """Heat map for a non-specialist: rows are assumptions in words (most influential first),
    columns the outputs in words, each cell the typical change of the output when the
    assumption moves across its range, as a share of the output (Morris mu*)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.colors import PowerNorm

    r = r.head(top)
    cols = [c for c in OUTPUTS if c in r.columns]
    shade = r[cols].clip(upper=1.0).fillna(0)
    fig, ax = plt.subplots(figsize=(11, 0.5 * len(r) + 2.6), dpi=130)
    im = ax.imshow(shade.to_numpy(), aspect="auto", cmap="YlOrRd",
                   norm=PowerNorm(gamma=0.5, vmin=0, vmax=1))
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels([OUTPUT_WORDS.get(c, c) for c in cols], fontsize=9)
    ax.xaxis.tick_top()
    ax.set_yticks(range(len(r)))
    ax.set_yticklabels([f"{i}. " + textwrap.fill(factor_words(str(f)), 58)
                        for i, f in zip(r["rank"], r.index, strict=True)], fontsize=8.5)
    for i in range(len(r)):
        for j, c in enumerate(cols):
            v = r[c].iloc[i]
            if v >= 0.005:
                ax.text(j, i, f"{100 * v:.0f}%" if v >= 0.01 else "<1%", ha="center",
                        va="center", fontsize=8.5,
                        color="white" if shade[c].iloc[i] > 0.45 else "black")
    ax.set_xticks(np.arange(-0.5, len(cols)), minor=True)
    ax.set_yticks(np.arange(-0.5, len(r)), minor=True)
    ax.grid(which="minor", color="white", linewidth=1.5)
    ax.tick_params(which="minor", length=0)
    fig.colorbar(im, ax=ax, shrink=0.5, pad=0.02,
                 label="change in the result, as a share of its value (capped at 100%)")
    fig.suptitle(f"Which assumptions move the results most: the top {len(r)} of {n_factors}",
                 fontsize=12, x=0.01, ha="left")
    fig.text(0.01, 0.005, textwrap.fill(
        "Each cell: how much the result typically changes when the assumption moves across its "
        "stated range, as a share of the result's value (Morris screening, mean absolute "
        f"effect; {trajectories} trajectories at {100 * scale:g}% of the register). Blank: "
        "under 0.5%.", 150), fontsize=8, color="#444")
    return save_figure(fig, path)


def write(result: SensitivityResult, out: str | Path) -> dict[str, Path]:
    """sensitivity.parquet / .csv (long table), ranking.csv, sensitivity.md, sensitivity.png."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"table": out / "sensitivity.parquet", "csv": out / "sensitivity.csv",
             "ranking": out / "ranking.csv", "md": out / "sensitivity.md",
             "plot": out / "sensitivity.png"}
    result.table.to_parquet(paths["table"], index=False)
    result.table.to_csv(paths["csv"], index=False)
    ranking(result.table).to_csv(paths["ranking"])
    head = (f"Morris screening, {result.trajectories} trajectories x {result.levels} levels, "
            f"{result.runs} runs at scale {result.scale:g}, seed {result.seed}. Cells: mu* as a "
            "share of the output's baseline value; overall: their mean; (d) = default range "
            f"({DEFAULT_RANGE_RULE}).\n\nBaseline: "
            + ", ".join(f"{k} = {v:.4g}" for k, v in result.baseline.items()) + "\n\n"
            + (f"Not ranked (no value in the scenario's period): {', '.join(result.undefined)}."
               "\n\n" if result.undefined else ""))
    paths["md"].write_text(head + markdown(result))
    plot(result, paths["plot"])
    return paths
