"""A stand-in for `dcsim compare` (not on main yet), for the report's tests and benchmark only.

It writes a comparison folder in the layout of notes/COMPARISON_FORMAT.md from real tiny-scale
runs: the baseline and reform arms made with model.with_values, each over a few seeds, every
run written by results.write, then summary.parquet (level and paired difference, 90% interval
over seeds), per_seed.parquet and monthly_summary.parquet, and manifest.json last. Kept apart
from the tests so the lead can swap it for `dcsim compare` when that lands.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from dcsim import results
from dcsim.model import Run, prepare, simulate, with_values
from dcsim.scenario import load_scenario

TIERS = ("extreme", "high", "medium", "low")
# lever -> (plain words, rule values it sets from its start date on)
LEVERS: dict[str, tuple[str, dict[str, float]]] = {
    "no_inspections": ("no unannounced home or work visits",
                       {f"management.inspection_rate_per_year.{t}": 0.0 for t in TIERS}),
    "prompt_release": ("records updated promptly at three years",
                       {"exit.record_update_probability": 1.0,
                        "exit.mean_update_delay_days": 1.0}),
    "release_everywhere": ("every area releases people who qualify",
                           {"exit.release_allowed": 1.0}),
    "no_alert_response": ("police do not respond to ID-card alerts",
                          {"alerts.response_probability": 0.0}),
    "no_grid": ("no grid-worker home visits", {"grid.coverage_share": 0.0}),
    "records_deleted": ("records deleted on release", {"exit.record_deleted_on_exit": 1.0}),
}
REFORM_FROM = dt.date(2016, 1, 1)


def _stock_at(run: Run, name: str, when: dt.date) -> float:
    from dcsim.measures import Stock

    m = (when.year - run.scenario.start.year) * 12 + when.month - run.scenario.start.month
    return float(run.stocks.sum(axis=0)[m, Stock[name.upper()]]) / run.scenario.scale


def headline(run: Run) -> dict[str, float]:
    """The headline figures (key -> value) of one run."""
    from dcsim.measures import Flow

    flows = run.flows.sum(axis=(0, 1)).astype(float) / run.scenario.scale
    summary = results.intrusion_summary(run).set_index("kind")
    end = run.prepared.months[-1]
    return {
        "registered_2025": _stock_at(run, "existing_users", end)
        + _stock_at(run, "abstinent_3y_recorded", end),
        "released_2025": _stock_at(run, "released", end),
        "trapped_2025": sum(_stock_at(run, f"trapped_{c}", end) for c in (
            "no_release_area", "insufficient_tests", "awaiting_update", "partial_release")),
        "alerts_total": float(flows[Flow.ALERTS]),
        "inspections_total": float(flows[Flow.INSPECTIONS_HOME]
                                   + flows[Flow.INSPECTIONS_WORKPLACE]),
        "intrusions_per_person_year": float(summary.loc["all", "mean"]),
    }


KEYS = {  # key -> (label, unit, depends_on)
    "registered_2025": ("people on the register at the end of 2025", "persons",
                        "how often people relapse; deaths and departures"),
    "released_2025": ("people fully released from control by the end of 2025", "persons",
                      "how long offices take to act on a release"),
    "trapped_2025": ("people abstinent three years yet kept under control, end of 2025",
                     "persons", "how long offices take to act on a release"),
    "alerts_total": ("ID-card alerts, 2006-2025", "events", "how often people use their ID card"),
    "inspections_total": ("unannounced police visits, 2006-2025", "events",
                          "how often police visit unannounced"),
    "intrusions_per_person_year": ("intrusions per person-year on the register",
                                   "per person-year", "how often grid workers visit"),
}


def _interval(x: np.ndarray) -> tuple[float, float, float]:
    return float(x.mean()), float(np.quantile(x, 0.05)), float(np.quantile(x, 0.95))


def build_comparison(out: Path, arms: dict[str, list[str]], seeds: list[int],
                     scale: float = 0.001,
                     progress: Callable[[str], None] | None = None) -> Path:
    """arms: name -> levers switched on (the first arm is the baseline, with no levers)."""
    out.mkdir(parents=True, exist_ok=True)
    base_prep = prepare(load_scenario(scale=scale, seed=seeds[0]))
    end = base_prep.scenario.end
    per_seed, monthly, runs = [], [], {}
    for arm, levers in arms.items():
        values: dict[str, float] = {}
        for lever in levers:
            values.update(LEVERS[lever][1])
        prep = with_values(base_prep, values, windows=dict.fromkeys(values, (REFORM_FROM, end)))
        runs[arm] = {}
        for seed in seeds:
            sc = prep.scenario.model_copy(update={"seed": seed})
            run = simulate(type(prep)(**{**prep.__dict__, "scenario": sc}), rounds=1)
            rel = f"runs/{arm}/seed-{seed}"
            results.write(run, out / rel)
            runs[arm][str(seed)] = rel
            per_seed += [{"key": k, "arm": arm, "seed": seed, "value": v}
                         for k, v in headline(run).items()]
            m = pd.read_parquet(out / rel / "monthly.parquet")
            nat = m.groupby(["month", "group", "metric"], sort=False, as_index=False)["value"].sum()
            monthly.append(nat.assign(arm=arm, seed=seed))
            if progress:
                progress(f"{arm} seed {seed}")
    baseline = next(iter(arms))
    ps = pd.DataFrame(per_seed)
    summary = _summary(ps, baseline, len(seeds))
    ms = _monthly_summary(pd.concat(monthly, ignore_index=True), baseline)
    tables = {}
    for name, df in (("summary.parquet", summary), ("per_seed.parquet", ps),
                     ("monthly_summary.parquet", ms)):
        df.to_parquet(out / name, index=False)
        tables[name] = hashlib.sha256((out / name).read_bytes()).hexdigest()
    manifest = {
        "kind": "comparison", "dcsim_version": results.dcsim_version(),
        "scenario": base_prep.scenario.name, "arms": list(arms), "baseline": baseline,
        "seeds": seeds, "scale": scale, "interval": 0.9,
        "interval_method": "5th to 95th percentile over seeds; differences paired by seed",
        "runs": runs,
        "arm_descriptions": {a: (" and ".join(LEVERS[lv][0] for lv in ls) if ls else
                                 "the rules as documented") for a, ls in arms.items()},
        "arm_sources": {a: ("assumption: test reform from 2016" if ls else "") for a, ls in
                        arms.items()},
        "tables": tables,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out


def _summary(ps: pd.DataFrame, baseline: str, n: int) -> pd.DataFrame:
    rows = []
    wide = ps.pivot_table(index=["key", "seed"], columns="arm", values="value")
    for key, (label, unit, dep) in KEYS.items():
        w = wide.loc[key]
        for arm in w.columns:
            for kind, x in (("level", w[arm]), ("difference", w[arm] - w[baseline])):
                mean, lo, hi = _interval(x.to_numpy(float))
                rows.append({"key": key, "label": label, "unit": unit, "arm": arm, "kind": kind,
                             "mean": mean, "lo": lo, "hi": hi, "n_seeds": n, "depends_on": dep})
    return pd.DataFrame(rows)


def _monthly_summary(m: pd.DataFrame, baseline: str) -> pd.DataFrame:
    keys = ["month", "group", "metric"]
    wide = m.pivot_table(index=[*keys, "arm"], columns="seed", values="value", sort=False)
    base = wide.xs(baseline, level="arm")
    out = []
    for arm in m["arm"].unique():
        x = wide.xs(arm, level="arm")
        for kind, v in (("level", x), ("difference", x - base.loc[x.index])):
            a = v.to_numpy(float)
            df = x.index.to_frame(index=False)
            df["arm"], df["kind"] = arm, kind
            df["mean"], df["lo"] = a.mean(axis=1), np.quantile(a, 0.05, axis=1)
            df["hi"], df["n_seeds"] = np.quantile(a, 0.95, axis=1), a.shape[1]
            out.append(df)
    df = pd.concat(out, ignore_index=True)
    df["month"] = pd.to_datetime(df["month"]).dt.date
    return df[["month", "group", "metric", "arm", "kind", "mean", "lo", "hi", "n_seeds"]]
