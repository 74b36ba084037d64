"""Results as tidy tables (Parquet) plus a manifest that ties them to the rules and the seed.

Every count is given twice: `count`, what the simulated population did, and `value`, the same
divided by the scenario's scale (national-equivalent). Tables are written in a fixed order with
fixed types, so the same seed gives byte-identical files.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd

from .catalogue import Par
from .measures import Flow, Intrusion, Rate, Stock
from .model import Run

INTRUSION_BINS = (0, 1, 2, 5, 10, 20, 50, 100, 200, 500, np.inf)
MIN_EXPOSURE_DAYS = 365  # per person-year rates only for persons registered a year or more


def _long(values: np.ndarray, run: Run, group: str, names: list[str]) -> pd.DataFrame:
    """[jurisdiction, month, metric] array -> long table."""
    n_j, n_m, n_k = values.shape
    months = pd.to_datetime(pd.Series(run.prepared.months)).dt.date
    df = pd.DataFrame({
        "month": np.tile(np.repeat(np.array(months), n_k), n_j),
        "jurisdiction": np.repeat(np.array(run.prepared.jurisdictions, dtype=object), n_m * n_k),
        "group": group,
        "metric": np.tile(np.array(names, dtype=object), n_j * n_m),
        "count": values.reshape(-1).astype(np.float64),
    })
    df["value"] = df["count"] / run.scenario.scale
    return df


def monthly_table(run: Run) -> pd.DataFrame:
    """Flows, end-of-month stocks, schedules, person-days, officer hours and intrusions."""
    table = run.prepared.table
    flows = run.flows.astype(np.float64)
    act = run.activity
    hours = np.stack([
        flows[:, :, Flow.OFFICER_MINUTES_ALERTS] / 60.0,
        flows[:, :, Flow.OFFICER_MINUTES_INSPECTIONS] / 60.0,
        act[:, :, Rate.GRID_VISITS] * table[:, :, Par.GRID__WORKER_HOURS_PER_VISIT],
        flows[:, :, Flow.STAFF_MINUTES_APP] / 60.0,
    ], axis=2)
    intr = flows[:, :, [Flow.INTRUSIONS_PUBLIC_INTERROGATION + i for i in range(len(Intrusion))]]
    intr = intr.copy()
    intr[:, :, Intrusion.COUNSELLING] = act[:, :, Rate.COUNSELLING]
    intr[:, :, Intrusion.HOME_VISIT] += act[:, :, Rate.GRID_VISITS]
    intr[:, :, Intrusion.APP_CHECKIN] = act[:, :, Rate.APP_CHECKINS]
    parts = [
        _long(flows, run, "flow", [f.name.lower() for f in Flow]),
        _long(run.stocks.astype(np.float64), run, "stock", [s.name.lower() for s in Stock]),
        _long(act, run, "activity", [r.name.lower() for r in Rate]),
        _long(hours, run, "hours", ["officer_hours_alerts", "officer_hours_inspections",
                                    "grid_worker_hours", "app_staff_hours"]),
        _long(intr, run, "intrusion", [i.name.lower() for i in Intrusion]),
    ]
    return pd.concat(parts, ignore_index=True)


def intrusion_distribution(run: Run) -> pd.DataFrame:
    """How many persons bear how many intrusions per person-year, by kind and jurisdiction."""
    pop = run.population
    exposure = pop.out("exposure_days").astype(np.float64)
    keep = exposure >= MIN_EXPOSURE_DAYS
    years = exposure[keep] / 365.25
    per_year = pop.intrusions[keep].astype(np.float64) / years[:, None]
    jur = pop.jurisdiction[keep]
    kinds = [i.name.lower() for i in Intrusion]
    cols = {**{k: per_year[:, i] for i, k in enumerate(kinds)}, "all": per_year.sum(axis=1)}
    edges = np.array(INTRUSION_BINS, dtype=np.float64)
    rows = []
    names = run.prepared.jurisdictions
    for j_name, mask in [("all", np.ones(len(jur), bool))] + [
        (n, jur == j) for j, n in enumerate(names)
    ]:
        for kind, x in cols.items():
            xs = x[mask]
            counts = np.histogram(xs, bins=edges)[0] if xs.size else np.zeros(len(edges) - 1)
            for b in range(len(edges) - 1):
                rows.append((j_name, kind, float(edges[b]), float(edges[b + 1]), int(counts[b]),
                             int(counts[b]) / run.scenario.scale))
    return pd.DataFrame(rows, columns=["jurisdiction", "kind", "per_year_from", "per_year_to",
                                       "count", "value"])


def intrusion_summary(run: Run) -> pd.DataFrame:
    """Mean and quantiles of intrusions per person-year (persons registered a year or more)."""
    pop = run.population
    exposure = pop.out("exposure_days").astype(np.float64)
    keep = exposure >= MIN_EXPOSURE_DAYS
    per_year = pop.intrusions[keep].astype(np.float64) / (exposure[keep] / 365.25)[:, None]
    total = per_year.sum(axis=1)
    rows = []
    for kind, x in [("all", total)] + [(i.name.lower(), per_year[:, i]) for i in Intrusion]:
        if x.size == 0:
            continue
        q = np.quantile(x, [0.5, 0.9, 0.99])
        rows.append((kind, int(x.size), float(x.mean()), *map(float, q), float(x.max())))
    return pd.DataFrame(rows, columns=["kind", "persons", "mean", "p50", "p90", "p99", "max"])


def exit_table(run: Run) -> pd.DataFrame:
    """Who became eligible under the law, who was released, how long it took, who is trapped."""
    pop = run.population
    eligible = pop.out("eligible_day")
    first_release = pop.out("first_release_day")
    trap = pop.out("trap_code")
    never = np.iinfo(np.int32).max
    start_year = run.scenario.start.year
    cohort = start_year + (pop.entry_day // 365.25).astype(np.int64)
    rows = []
    for j, name in enumerate(run.prepared.jurisdictions):
        for year in np.unique(cohort):
            m = (pop.jurisdiction == j) & (cohort == year)
            n = int(m.sum())
            if n == 0:
                continue
            el = eligible[m] != never
            rel = first_release[m] != never
            wait = (first_release[m] - eligible[m])[el & rel]
            row = {
                "jurisdiction": name, "entry_year": int(year), "persons": n,
                "eligible_at_end": int(el.sum()), "ever_released": int(rel.sum()),
                "median_days_eligible_to_release": float(np.median(wait)) if wait.size else np.nan,
            }
            for s in (Stock.TRAPPED_NO_RELEASE_AREA, Stock.TRAPPED_INSUFFICIENT_TESTS,
                      Stock.TRAPPED_AWAITING_UPDATE, Stock.TRAPPED_PARTIAL_RELEASE):
                row[s.name.lower() + "_at_end"] = int((trap[m] == s).sum())
            rows.append(row)
    df = pd.DataFrame(rows)
    return df


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write(run: Run, out: str | Path, comparison: pd.DataFrame | None = None) -> dict[str, Path]:
    """Write the tables and manifest.json into `out`; returns the paths written."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tables = {
        "monthly": monthly_table(run),
        "intrusions_per_person_year": intrusion_distribution(run),
        "intrusion_summary": intrusion_summary(run),
        "exit": exit_table(run),
    }
    if comparison is not None:
        tables["paper_figures"] = comparison
    paths = {}
    for name, df in tables.items():
        p = out / f"{name}.parquet"
        tmp = p.with_suffix(".parquet.tmp")
        df.to_parquet(tmp, index=False, compression="zstd")
        os.replace(tmp, p)  # a failed write never leaves a half table behind
        paths[name] = p
    sc = run.scenario
    manifest = {
        "dcsim_version": _version(),
        "scenario": sc.model_dump(mode="json", exclude={"source"}),
        "scenario_file": str(sc.source) if sc.source else None,
        "seed": sc.seed,
        "scale": sc.scale,
        "persons_simulated": len(run.population),
        "rules_hash": run.prepared.rules_hash,
        "rule_files": {str(p.name): _sha256(p) for p in sc.rule_files()},
        "tables": {name: {"file": p.name, "sha256": _sha256(p)} for name, p in paths.items()},
        "wall_seconds": round(run.wall_seconds, 3),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    mp = out / "manifest.json"
    mp.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    paths["manifest"] = mp
    return paths


def _version() -> str:
    try:
        return metadata.version("dcsim")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "unknown"
