"""Read a run folder or a comparison folder into one shape: arms, each with monthly national
series (mean and, over seeds, a 90% interval) and the per-run tables.

A `dcsim run` folder is one arm with one seed (no interval). A comparison or ensemble folder
(notes: COMPARISON_FORMAT) gives its arms' monthly means and intervals in
monthly_summary.parquet and its headline figures in summary.parquet; the per-run tables
(exit, intrusions) are averaged over each arm's seeds here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

RUN_TABLES = ("monthly.parquet", "exit.parquet", "intrusion_summary.parquet",
              "intrusions_per_person_year.parquet", "manifest.json")


class SourceError(ValueError):
    """The folder is not a run or comparison folder; the message names what is missing."""


@dataclass
class Series:
    """One monthly metric of one arm: mean, and the interval bounds (NaN for a single run)."""

    mean: np.ndarray
    lo: np.ndarray
    hi: np.ndarray


@dataclass
class Source:
    """Everything the report draws, whatever folder it came from."""

    folder: Path
    kind: str  # "run" | "comparison" | "ensemble"
    arms: list[str]
    baseline: str
    months: list[str]
    scale: float
    seeds: list[int]
    manifest: dict  # the folder's own manifest
    run_manifests: dict[str, list[dict]]  # arm -> manifests of its runs
    arm_descriptions: dict[str, str] = field(default_factory=dict)
    arm_sources: dict[str, str] = field(default_factory=dict)
    interval: float | None = None
    interval_method: str = ""
    summary: pd.DataFrame | None = None
    monthly_long: pd.DataFrame | None = None  # national totals, see _national / _summary_long
    exit: dict[str, pd.DataFrame] = field(default_factory=dict)  # arm -> mean over seeds
    intrusion_summary: dict[str, pd.DataFrame] = field(default_factory=dict)
    intrusion_distribution: dict[str, pd.DataFrame] = field(default_factory=dict)
    _rows: dict[tuple[str, str, str], np.ndarray] = field(default_factory=dict, repr=False)
    _arrays: dict[str, np.ndarray] = field(default_factory=dict, repr=False)

    def series(self, key: str, arm: str, kind: str = "level") -> Series:
        """Monthly series of `group.metric` for an arm; zeros if the metric is absent."""
        df = self.monthly_long
        assert df is not None
        if not self._rows:  # row numbers of each (key, arm, kind) and plain arrays, once
            self._rows.update(df.groupby(["key", "arm", "kind"], sort=False).indices)
            pos = {m: i for i, m in enumerate(self.months)}
            self._arrays.update({"month": df["month"].map(pos).to_numpy(np.int64),
                                 **{c: df[c].to_numpy(np.float64) for c in ("mean", "lo", "hi")}})
        n = len(self.months)
        rows = self._rows.get((key, arm, kind))
        if rows is None:
            z = np.full(n, np.nan)
            return Series(np.zeros(n), z, z)
        at = self._arrays["month"][rows]
        out = []
        for c in ("mean", "lo", "hi"):
            v = np.full(n, np.nan)
            v[at] = self._arrays[c][rows]
            out.append(v)
        return Series(*out)

    @property
    def has_intervals(self) -> bool:
        return self.kind != "run"

    @property
    def reforms(self) -> list[str]:
        return [a for a in self.arms if a != self.baseline]


def load(folder: str | Path) -> Source:
    """A run folder (manifest.json with a seed) or a comparison/ensemble folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise SourceError(f"{folder}: not a folder")
    mp = folder / "manifest.json"
    if not mp.is_file():
        raise SourceError(f"{folder}: no manifest.json (not a dcsim run or comparison folder, "
                          "or not complete)")
    try:
        manifest = json.loads(mp.read_text())
    except json.JSONDecodeError as e:
        raise SourceError(f"{mp}: line {e.lineno}: not valid JSON ({e.msg})") from None
    if manifest.get("kind") in ("comparison", "ensemble"):
        return _load_comparison(folder, manifest)
    if manifest.get("kind") == "uncertainty":
        raise SourceError(f"{folder}: a `dcsim uncertainty` folder: its tables are in "
                          f"uncertainty.md; its runs are a comparison folder, "
                          f"{folder / manifest.get('ensemble', 'ensemble')}, which the report "
                          "reads (the draws as arms beside the calibrated run)")
    if "seed" in manifest and "scenario" in manifest:
        return _load_run(folder, manifest)
    raise SourceError(f"{mp}: neither a run manifest (no 'seed') nor a comparison manifest "
                      "(no 'kind')")


def _need(folder: Path, names: tuple[str, ...]) -> None:
    missing = [n for n in names if not (folder / n).is_file()]
    if missing:
        raise SourceError(f"{folder}: missing {', '.join(missing)}")


def _national(monthly: pd.DataFrame) -> pd.DataFrame:
    """National totals (summed over jurisdictions) of `value`, keyed group.metric."""
    df = monthly.groupby(["month", "group", "metric"], sort=False, as_index=False)["value"].sum()
    df["key"] = df["group"] + "." + df["metric"]
    df["month"] = pd.to_datetime(df["month"]).dt.strftime("%Y-%m-%d")
    return df


def _months(df: pd.DataFrame) -> list[str]:
    return sorted(df["month"].unique().tolist())


def _load_run(folder: Path, manifest: dict) -> Source:
    _need(folder, RUN_TABLES)
    nat = _national(pd.read_parquet(folder / "monthly.parquet"))
    arm = "this run"
    long = pd.DataFrame({"month": nat["month"], "key": nat["key"], "arm": arm,
                         "kind": "level", "mean": nat["value"], "lo": np.nan, "hi": np.nan})
    scen = manifest.get("scenario") or {}
    src = Source(folder=folder, kind="run", arms=[arm], baseline=arm, months=_months(nat),
                 scale=float(manifest.get("scale", scen.get("scale", 1.0))),
                 seeds=[int(manifest["seed"])], manifest=manifest,
                 run_manifests={arm: [manifest]}, monthly_long=long,
                 arm_descriptions={arm: scen.get("description", "").strip()})
    _read_run_tables(src, arm, [folder])
    return src


def _load_comparison(folder: Path, manifest: dict) -> Source:
    for key in ("arms", "baseline", "seeds", "runs"):
        if key not in manifest:
            raise SourceError(f"{folder / 'manifest.json'}: key '{key}' missing")
    _need(folder, ("summary.parquet", "monthly_summary.parquet"))
    ms = pd.read_parquet(folder / "monthly_summary.parquet")
    ms["key"] = ms["group"] + "." + ms["metric"]
    ms["month"] = pd.to_datetime(ms["month"]).dt.strftime("%Y-%m-%d")
    arms = list(manifest["arms"])
    runs: dict[str, list[Path]] = {}
    for arm in arms:
        paths = [folder / p for p in manifest["runs"].get(arm, {}).values()]
        for p in paths:
            _need(p, RUN_TABLES)
        runs[arm] = paths
    src = Source(
        folder=folder, kind=manifest["kind"], arms=arms, baseline=manifest["baseline"],
        months=_months(ms), scale=float(manifest.get("scale", 1.0)),
        seeds=[int(s) for s in manifest["seeds"]], manifest=manifest,
        run_manifests={a: [json.loads((p / "manifest.json").read_text()) for p in runs[a]]
                       for a in arms},
        arm_descriptions=dict(manifest.get("arm_descriptions", {})),
        arm_sources=dict(manifest.get("arm_sources", {})),
        interval=manifest.get("interval"), interval_method=manifest.get("interval_method", ""),
        summary=pd.read_parquet(folder / "summary.parquet"),
        monthly_long=ms[["month", "key", "arm", "kind", "mean", "lo", "hi"]],
    )
    for arm in arms:
        _read_run_tables(src, arm, runs[arm])
    return src


def _read_run_tables(src: Source, arm: str, folders: list[Path]) -> None:
    """Per-run tables of an arm, averaged over its seeds (national-equivalent values)."""
    exits, summaries, dists = [], [], []
    for f in folders:
        m = json.loads((f / "manifest.json").read_text())
        scale = float(m.get("scale", 1.0))
        ex = pd.read_parquet(f / "exit.parquet")
        counts = [c for c in ex.columns if c not in ("jurisdiction", "entry_year",
                                                     "median_days_eligible_to_release")]
        ex[counts] = ex[counts].astype(float) / scale
        exits.append(ex)
        summaries.append(pd.read_parquet(f / "intrusion_summary.parquet"))
        dists.append(pd.read_parquet(f / "intrusions_per_person_year.parquet"))
    keys = ["jurisdiction", "entry_year"]
    ex = pd.concat(exits).groupby(keys, as_index=False)
    counts = ex.sum(numeric_only=True)  # a row absent from a seed counts as zero people
    value_cols = [c for c in counts.columns if c not in keys]
    counts[value_cols] = counts[value_cols] / len(folders)
    med = "median_days_eligible_to_release"
    counts[med] = ex[med].mean()[med].to_numpy()  # mean over the seeds that have a median
    src.exit[arm] = counts
    s = pd.concat(summaries).groupby("kind", sort=False, as_index=False).mean(numeric_only=True)
    src.intrusion_summary[arm] = s
    d = pd.concat(dists).groupby(["jurisdiction", "kind", "per_year_from", "per_year_to"],
                                 sort=False, as_index=False)["value"].mean()
    src.intrusion_distribution[arm] = d
