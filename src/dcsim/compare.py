"""Paired comparisons: a baseline and reforms run on the same seeds, summarised with intervals.

Every arm runs on the same seeds, and every draw is keyed by (seed, person, stream), so a person
who lives the same life under both rules draws the same numbers (common random numbers, exact).
The difference reform minus baseline is therefore taken seed by seed, and its 90% interval is a
Student t interval of the mean of the paired differences: mean +- t(0.95, n-1) sd / sqrt(n).
Pairing removes the seed-to-seed variation both arms share, so the interval on a difference is
narrower than one computed from the two arms apart (tests/test_compare.py checks both).
"""

from __future__ import annotations

import json
import math
import re
import textwrap
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from .rules import RuleError, load_rule_file
from .scenario import PACKAGE_REFORMS, Scenario, ScenarioError, find_scenario, load_scenario

INTERVAL = 0.9
PACKAGE_SWITCHES = "data/switches"
INTERVAL_METHOD = (
    "90% Student t interval of the mean over seeds: mean +- t(0.95, n-1) x sd / sqrt(n); for a "
    "difference, computed on the per-seed paired differences (reform minus baseline on the same "
    "seed, common random numbers)")
DAYS_PER_YEAR = 365.25
_USE_ASSUMPTIONS = ("true drug use: the drug_use.* assumptions (use spells, relapse), and that "
                    "rules change use only through custody and the app effect")


class CompareError(ValueError):
    pass


# --------------------------------------------------------------------------- arms


def package_reforms() -> dict[str, Path]:
    """The package's reform overlays by name (file stem)."""
    folder = resources.files("dcsim").joinpath(PACKAGE_REFORMS)
    return {Path(f.name).stem: Path(str(f)) for f in sorted(folder.iterdir(), key=str)
            if f.name.endswith(".yaml")}


def package_switches() -> dict[str, Path]:
    """The package's structural switches by name: overlays that set one contested reading of
    the evidence the other way (data/switches; docs/calibration.md reports their effects)."""
    folder = resources.files("dcsim").joinpath(PACKAGE_SWITCHES)
    return {Path(f.name).stem: Path(str(f)) for f in sorted(folder.iterdir(), key=str)
            if f.name.endswith(".yaml")}


def find_reform(ref: str | Path) -> Path | None:
    """A rule overlay: a file path, else a package reform or switch by name (with or without
    .yaml)."""
    p = Path(ref)
    if p.is_file():
        return p.resolve()
    if p.parent != Path("."):
        return None
    name = p.name.removesuffix(".yaml")
    return package_reforms().get(name) or package_switches().get(name)


@dataclass
class Arm:
    """One arm: a name, how to load its scenario, and what it represents."""

    name: str
    scenario_ref: str
    overlays: list[str] = field(default_factory=list)
    description: str = ""
    sources: str = ""

    def load(self, scale: float | None = None, seed: int | None = None) -> Scenario:
        return load_scenario(self.scenario_ref, overlays=self.overlays or None, scale=scale,
                             seed=seed)


def _is_rule_file(path: Path) -> bool:
    import yaml

    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and "parameters" in data and "jurisdiction" in data


def _overlay_arm(baseline: Arm, ref: str, path: Path) -> Arm:
    try:
        rf = load_rule_file(path)
    except RuleError as e:
        raise CompareError(str(e)) from e
    refs = sorted({w.reference for p in rf.parameters.values() for w in p.windows})
    return Arm(Path(ref).name.removesuffix(".yaml"), baseline.scenario_ref,
               [*baseline.overlays, str(path)], " ".join(rf.description.split()),
               "; ".join(refs))


def make_arms(baseline_ref: str | Path | None, reform_refs: list[str]) -> list[Arm]:
    """Baseline first; a reform is a rule overlay (file or package reform name) added to the
    baseline, or a scenario file of its own (for example one that `extends:` the baseline)."""
    base_ref = str(baseline_ref) if baseline_ref is not None else "national_baseline"
    found = find_scenario(base_ref)
    base_ref = str(found.resolve()) if found is not None else base_ref  # workers' cwd may differ
    base_sc = load_scenario(base_ref)
    arms = [Arm(base_sc.name, base_ref, [], " ".join(base_sc.description.split()),
                "the scenario's rule files")]
    for ref in reform_refs:
        path = find_reform(ref)
        if path is not None and _is_rule_file(path):
            arm = _overlay_arm(arms[0], ref, path)
        elif (sc_path := find_scenario(ref)) is not None:
            sc = load_scenario(sc_path)
            arm = Arm(sc.name, str(sc_path.resolve()), [], " ".join(sc.description.split()),
                      "; ".join(str(p.name) for p in sc.rule_files()))
        else:
            raise CompareError(f"{ref!r}: no rule overlay, package reform or scenario of that "
                               f"name (package reforms: {', '.join(package_reforms())})")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", arm.name):
            raise CompareError(f"{ref!r}: arm name {arm.name!r} must be letters, digits, '_', "
                               "'-' or '.' (it names the runs' folder)")
        if arm.name in {a.name for a in arms}:
            raise CompareError(f"{ref!r}: two arms would be named {arm.name!r}")
        _check_applies_in_period(arm, base_sc)
        arms.append(arm)
    return arms


def _check_applies_in_period(arm: Arm, base: Scenario) -> None:
    """A reform that takes effect after the period ends would compare equal to the baseline."""
    firsts = []
    for name in arm.overlays:
        rf = load_rule_file(name)
        firsts += [p.windows[0].start for p in rf.parameters.values()]
    sc = arm.load()
    if firsts and min(firsts) > sc.end:
        raise CompareError(
            f"{arm.name}: takes effect {min(firsts)}, after the period ends ({sc.end}); compare "
            "it with a scenario that runs past that date, e.g. national-projection")


# --------------------------------------------------------------------------- headline


@dataclass(frozen=True)
class Headline:
    key: str
    label: str
    unit: str
    depends_on: str = ""


def _intrusion_headlines() -> list[Headline]:
    from .measures import Intrusion

    out = [Headline("intrusions_per_person_year.all", "intrusions per person-year, all",
                    "per person-year since entry")]
    out += [Headline(f"intrusions_per_person_year.{i.name.lower()}",
                     f"  {i.name.lower().replace('_', ' ')}", "per person-year since entry")
            for i in Intrusion]
    return out


HEADLINES: list[Headline] = [
    Headline("person_years_under_control", "person-years under control", "person-years"),
    Headline("person_years_under_alerts", "person-years under alerts",
             "person-years"),
    Headline("releases_full", "full releases", "persons"),
    Headline("releases_partial", "partial releases", "persons"),
    Headline("median_years_entry_to_release", "median years, entry to release",
             "years"),
    Headline("trapped_no_release_area", "trapped at end: no-release area", "persons"),
    Headline("trapped_insufficient_tests", "trapped at end: too few tests", "persons"),
    Headline("trapped_awaiting_update", "trapped at end: not updated", "persons"),
    Headline("trapped_partial_release", "trapped at end: partial release", "persons"),
    Headline("held_criminal_case", "held at end: criminal case", "persons",
             "exit.criminal_case_share (fn 37: no source gives the share)"),
    Headline("records_held_at_end", "records held at end", "persons"),
    Headline("records_deleted_at_end", "records deleted (not re-created)",
             "persons"),
    *_intrusion_headlines(),
    Headline("officer_hours", "police hours, alerts+inspections", "hours",
             "the officer-hours assumptions (alerts.officer_hours_*, management.officer_hours_*)"),
    Headline("alerts", "ID-use alerts", "alerts"),
    Headline("alert_positives", "drug-related findings at alerts", "alerts"),
    Headline("person_years_isolation", "person-years in isolation",
             "person-years"),
    Headline("person_years_control_under_25", "control person-years, under 25",
             "person-years"),
    Headline("person_years_control_25_59", "control person-years, 25-59",
             "person-years"),
    Headline("person_years_using", "person-years of true drug use",
             "person-years", _USE_ASSUMPTIONS),
    Headline("true_relapses", "true relapses", "events", _USE_ASSUMPTIONS),
]
HEADLINE_KEYS = [h.key for h in HEADLINES]


def headline_values(run) -> dict[str, float]:  # noqa: ANN001 - a model.Run
    """The headline figures of one run, national-equivalent (divided by the scale)."""
    from .measures import Flow, Intrusion, Rate, Stock

    scale = run.scenario.scale
    fl = run.flows.sum(axis=(0, 1)).astype(np.float64)
    st = run.stocks.sum(axis=0).astype(np.float64)  # [month, Stock]
    act = run.activity.sum(axis=(0, 1))
    pop = run.population
    ctrl = [Rate.CONTROL_DAYS_UNDER_25, Rate.CONTROL_DAYS_25_59, Rate.CONTROL_DAYS_60_PLUS]
    never = np.iinfo(np.int32).max
    first = pop.out("first_release_day")
    rel = first != never
    years = (first[rel] - pop.entry_day[rel]) / DAYS_PER_YEAR
    # per person-year since entry (to the end of the period): the same denominator in every arm,
    # so a reform that removes records cannot raise a rate by shrinking it
    exposure = (run.prepared.n_days - pop.entry_day.astype(np.float64)).sum() / DAYS_PER_YEAR
    intr = pop.intrusions.sum(axis=0).astype(np.float64)
    deleted = fl[Flow.RECORD_DELETIONS] - fl[Flow.REENTRIES]  # re-entries: deleted, found again
    v = {
        "person_years_under_control": sum(act[r] for r in ctrl) / DAYS_PER_YEAR / scale,
        "person_years_under_alerts": (act[Rate.ALERT_DAYS_NOT_USING]
                                      + act[Rate.ALERT_DAYS_USING]) / DAYS_PER_YEAR / scale,
        "releases_full": fl[Flow.RELEASES_FULL] / scale,
        "releases_partial": fl[Flow.RELEASES_PARTIAL] / scale,
        "median_years_entry_to_release": float(np.median(years)) if years.size else math.nan,
        "trapped_no_release_area": st[-1, Stock.TRAPPED_NO_RELEASE_AREA] / scale,
        "trapped_insufficient_tests": st[-1, Stock.TRAPPED_INSUFFICIENT_TESTS] / scale,
        "trapped_awaiting_update": st[-1, Stock.TRAPPED_AWAITING_UPDATE] / scale,
        "trapped_partial_release": st[-1, Stock.TRAPPED_PARTIAL_RELEASE] / scale,
        "held_criminal_case": st[-1, Stock.HELD_CRIMINAL_CASE] / scale,
        "records_held_at_end": st[-1, Stock.RECORDS_HELD] / scale,
        "records_deleted_at_end": deleted / scale,
        "intrusions_per_person_year.all": intr.sum() / exposure if exposure else math.nan,
        "officer_hours": (fl[Flow.OFFICER_MINUTES_ALERTS] + fl[Flow.OFFICER_MINUTES_INSPECTIONS])
        / 60.0 / scale,
        "alerts": fl[Flow.ALERTS] / scale,
        "alert_positives": fl[Flow.ALERT_POSITIVES] / scale,
        "person_years_isolation": st[:, Stock.PATHWAY_ISOLATION].sum() / 12.0 / scale,
        "person_years_control_under_25": act[Rate.CONTROL_DAYS_UNDER_25] / DAYS_PER_YEAR / scale,
        "person_years_control_25_59": act[Rate.CONTROL_DAYS_25_59] / DAYS_PER_YEAR / scale,
        "person_years_using": st[:, Stock.TRUE_USING].sum() / 12.0 / scale,
        "true_relapses": fl[Flow.TRUE_RELAPSES] / scale,
    }
    for i in Intrusion:
        v[f"intrusions_per_person_year.{i.name.lower()}"] = (
            intr[i] / exposure if exposure else math.nan)
    return {k: float(v[k]) for k in HEADLINE_KEYS}


# --------------------------------------------------------------------------- intervals


def t_interval(x: np.ndarray, level: float = INTERVAL) -> tuple[float, float, float]:
    """(mean, lo, hi) of the mean of x over its last axis: a Student t interval."""
    from scipy import stats

    x = np.asarray(x, dtype=np.float64)
    n = x.shape[-1]
    mean = x.mean(axis=-1)
    if n < 2:
        nan = np.full_like(mean, np.nan)
        return mean, nan, nan
    half = stats.t.ppf(0.5 + level / 2, n - 1) * x.std(axis=-1, ddof=1) / math.sqrt(n)
    return mean, mean - half, mean + half


def summarise(values: dict[str, np.ndarray], baseline: str) -> pd.DataFrame:
    """values[arm]: [..., seed] arrays on the same seeds -> rows (arm, kind, mean, lo, hi)."""
    rows = []
    for arm, x in values.items():
        rows.append((arm, "level", *t_interval(x)))
        if arm != baseline:
            rows.append((arm, "difference", *t_interval(x - values[baseline])))
    return rows


def summary_table(per_seed: pd.DataFrame, arms: list[str]) -> pd.DataFrame:
    """The headline table of COMPARISON_FORMAT.md from per_seed (key, arm, seed, value)."""
    wide = per_seed.pivot_table(index=["key", "seed"], columns="arm", values="value",
                                aggfunc="first", dropna=False)
    seeds = sorted(per_seed["seed"].unique())
    meta = {h.key: h for h in HEADLINES}
    out = []
    for key in HEADLINE_KEYS:
        block = wide.loc[key].reindex(seeds)
        values = {a: block[a].to_numpy(np.float64) for a in arms}
        for arm, kind, mean, lo, hi in summarise(values, arms[0]):
            h = meta[key]
            label = h.label.strip() + (" per person-year" if h.label[0] == " " else "")
            out.append({"key": key, "label": label, "unit": h.unit, "arm": arm,
                        "kind": kind, "mean": float(mean), "lo": float(lo), "hi": float(hi),
                        "n_seeds": len(seeds), "depends_on": h.depends_on})
    df = pd.DataFrame(out)
    return df.astype({"n_seeds": np.int64})


def national_monthly(monthly: pd.DataFrame) -> pd.DataFrame:
    """National totals of every monthly metric (sum over jurisdictions of `value`)."""
    g = monthly.groupby(["month", "group", "metric"], sort=False)["value"].sum()
    return g.reset_index()


def monthly_summary(national: dict[tuple[str, int], pd.DataFrame], arms: list[str],
                    seeds: list[int]) -> pd.DataFrame:
    """monthly_summary.parquet from each run's national monthly totals."""
    first = national[(arms[0], seeds[0])]
    index = first[["month", "group", "metric"]]
    values = {a: np.stack([national[(a, s)]["value"].to_numpy(np.float64) for s in seeds],
                          axis=-1) for a in arms}
    parts = []
    for arm, kind, mean, lo, hi in summarise(values, arms[0]):
        part = index.copy()
        part["arm"], part["kind"] = arm, kind
        part["mean"], part["lo"], part["hi"] = mean, lo, hi
        part["n_seeds"] = np.int64(len(seeds))
        parts.append(part)
    df = pd.concat(parts, ignore_index=True)
    df["month"] = pd.to_datetime(df["month"]).dt.date
    return df


# --------------------------------------------------------------------------- results


@dataclass
class Comparison:
    """A finished comparison (or ensemble) folder, read back: `to_df()` gives tidy tables."""

    folder: Path
    manifest: dict
    summary: pd.DataFrame
    per_seed: pd.DataFrame
    monthly: pd.DataFrame

    @classmethod
    def read(cls, folder: str | Path) -> Comparison:
        folder = Path(folder)
        manifest = json.loads((folder / "manifest.json").read_text())
        return cls(folder, manifest, pd.read_parquet(folder / "summary.parquet"),
                   pd.read_parquet(folder / "per_seed.parquet"),
                   pd.read_parquet(folder / "monthly_summary.parquet"))

    @property
    def arms(self) -> list[str]:
        return list(self.manifest["arms"])

    def to_df(self, table: str = "summary") -> pd.DataFrame:
        """'summary' (headline), 'per_seed' or 'monthly' (months as datetime64, first day)."""
        if table == "summary":
            return self.summary.copy()
        if table == "per_seed":
            return self.per_seed.copy()
        if table == "monthly":
            df = self.monthly.copy()
            df["month"] = pd.to_datetime(df["month"])
            return df
        raise ValueError(f"table must be 'summary', 'per_seed' or 'monthly', got {table!r}")

    def difference(self, key: str, arm: str) -> tuple[float, float, float]:
        """(mean, lo, hi) of arm minus baseline for a headline key."""
        r = self.summary[(self.summary.key == key) & (self.summary.arm == arm)
                         & (self.summary.kind == "difference")]
        if r.empty:
            raise KeyError(f"no difference for {key!r} in arm {arm!r}")
        return float(r["mean"].iloc[0]), float(r["lo"].iloc[0]), float(r["hi"].iloc[0])


# --------------------------------------------------------------------------- terminal


def _num(v: float) -> str:
    """A figure in at most 7 characters (8 with a sign): 1.23M, 45.6k, 12.3, 0.00123, 4.6e-5.
    A value that rounds up to the next unit takes it (999.7 is 1k, never 1e+03)."""
    if v != v:
        return "-"
    a = abs(v)
    if a == 0:
        return "0"
    if a < 1e-3:
        mantissa, exponent = f"{v:.1e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    for div, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if a >= div * (1 - 5e-4):  # 3 significant figures reach this unit
            return f"{v / div:.3g}{suffix}"
    return f"{v:.3g}"


def _signed(v: float) -> str:
    return "-" if v != v else ("+" if v > 0 else "") + _num(v)


def summary_lines(c: Comparison, width: int = 80) -> list[str]:
    """The headline table as plain lines of at most `width` characters, arm by arm."""
    s = c.summary
    lines = [f"{c.manifest['kind']} over {len(c.manifest['seeds'])} seeds, scale "
             f"{c.manifest['scale']:g}; national-equivalent figures;",
             "90% t intervals over seeds (for differences: of the paired differences)"]
    label_w = width - 48
    base = c.manifest["baseline"]

    def row(key: str, arm: str, kind: str) -> pd.Series:
        r = s[(s.key == key) & (s.arm == arm) & (s.kind == kind)]
        return r.iloc[0]

    arms = [a for a in c.arms if a != base] or [base]
    for arm in arms:
        lines.append("")
        if arm == base:
            lines.append(f"{base}: mean and 90% interval over seeds")
            lines.append(f"{'figure':<{label_w}} {'mean':>8} {'90% interval':>38}"[:width])
        else:
            lines.append(f"{arm} minus {base}"[:width])
            lines.append(f"{'figure':<{label_w}} {'baseline':>8} {'reform':>8} "
                         f"{'difference [90% interval]':>29}")
        for h in HEADLINES:
            label = h.label if len(h.label) <= label_w else h.label[:label_w - 1] + "~"
            b = row(h.key, base, "level")
            if arm == base:
                ci = f"[{_num(b['lo'])}, {_num(b['hi'])}]"
                lines.append(f"{label:<{label_w}} {_num(b['mean']):>8} {ci:>38}")
                continue
            r, d = row(h.key, arm, "level"), row(h.key, arm, "difference")
            ci = f"{_signed(d['mean'])} [{_signed(d['lo'])}, {_signed(d['hi'])}]"
            lines.append(f"{label:<{label_w}} {_num(b['mean']):>8} {_num(r['mean']):>8} "
                         f"{ci:>29}")
    uses = {h.depends_on for h in HEADLINES if h.depends_on}
    lines.append("")
    for u in sorted(uses):
        lines += textwrap.wrap(f"depends on {u}", width, subsequent_indent="  ")
    return lines


__all__ = ["Arm", "CompareError", "Comparison", "HEADLINES", "INTERVAL_METHOD", "ScenarioError",
           "find_reform", "headline_values", "make_arms", "package_reforms", "summary_lines",
           "summary_table",
           "t_interval"]
