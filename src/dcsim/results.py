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
from concurrent.futures import ThreadPoolExecutor
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .catalogue import Par
from .jit import kernel
from .measures import Flow, Intrusion, Rate, Stock

if TYPE_CHECKING:  # kernels' cache key follows imports (jit.py): a type only
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
        _long(records_deleted(run)[:, :, None], run, "stock", ["records_deleted"]),
        _long(act, run, "activity", [r.name.lower() for r in Rate]),
        _long(hours, run, "hours", ["officer_hours_alerts", "officer_hours_inspections",
                                    "grid_worker_hours", "app_staff_hours"]),
        _long(intr, run, "intrusion", [i.name.lower() for i in Intrusion]),
    ]
    return pd.concat(parts, ignore_index=True)


def records_deleted(run: Run) -> np.ndarray:
    """[jurisdiction, month] records deleted at exit and not re-created by a later detection,
    at the end of each month: the people a deletion reform removes from every other stock
    (those who die after deletion stay counted: a deleted record is not followed)."""
    net = run.flows[:, :, Flow.RECORD_DELETIONS] - run.flows[:, :, Flow.REENTRIES]
    return np.cumsum(net, axis=1).astype(np.float64)


KINDS = ("all", *[i.name.lower() for i in Intrusion])


@kernel(nogil=True, python=True)
def _rates_and_bins(years, jur, intrusions, kind, edges, x, hist) -> int:  # noqa: ANN001
    """One pass over the persons for one kind of intrusion (-1: all kinds together): the per
    person-year rate of those with years >= 0 (registered long enough) into x (returns how
    many), and their count per (jurisdiction, bin) into hist; bin b holds
    edges[b] <= rate < edges[b + 1], the top bin everything above."""
    n_bins = hist.shape[1]
    m = 0
    for i in range(years.shape[0]):
        if years[i] < 0.0:
            continue
        if kind < 0:
            c = np.int64(0)
            for q in range(intrusions.shape[1]):
                c += intrusions[i, q]
        else:
            c = np.int64(intrusions[i, kind])
        v = c / years[i]
        x[m] = v
        m += 1
        b = 0  # edges rise from 0, so the bin is how many edges above the first lie <= v
        for e in range(1, n_bins):
            b += edges[e] <= v
        hist[jur[i], b] += 1
    return m


@kernel(nogil=True, python=True)
def _top_counts(bits, hist) -> None:  # noqa: ANN001
    """Counts of the values by their top 16 bits: the first pass of every selection."""
    hist[:] = 0
    for i in range(bits.shape[0]):
        hist[bits[i] >> 48] += 1


@kernel(inline="always")
def _bucket_holding(hist, k):  # noqa: ANN001, ANN202
    """(bucket holding the k-th smallest value, k's rank within that bucket)."""
    bucket = 0
    while hist[bucket] <= k:
        k -= hist[bucket]
        bucket += 1
    return bucket, k


@kernel(nogil=True, python=True)
def _kth_smallest(bits, k, top, hist, cand) -> int:  # noqa: ANN001
    """The k-th smallest (from 0) of non-negative doubles given as their int64 bits, whose
    order is the values' order: radix selection, 16 bits a pass (top: _top_counts), exact and
    without a sort. hist holds 65,536 counts; cand has room for every value."""
    bucket, k = _bucket_holding(top, k)
    m = 0
    for i in range(bits.shape[0]):
        if bits[i] >> 48 == bucket:
            cand[m] = bits[i]
            m += 1
    for shift in (32, 16, 0):
        hist[:] = 0
        for i in range(m):
            hist[(cand[i] >> shift) & 0xFFFF] += 1
        bucket, k = _bucket_holding(hist, k)
        kept = 0
        for i in range(m):
            if (cand[i] >> shift) & 0xFFFF == bucket:
                cand[kept] = cand[i]
                kept += 1
        m = kept
    return cand[0]


def quantiles(x: np.ndarray, qs: tuple[float, ...]) -> list[float]:
    """np.quantile(x, qs) (its default 'linear' method, bit for bit) for non-negative x
    without NaN, by selecting the order statistics it needs instead of partitioning x."""
    n = x.shape[0]
    bits = np.ascontiguousarray(x).view(np.int64)
    top, hist, cand = np.empty(65536, np.int64), np.empty(65536, np.int64), np.empty(n, np.int64)
    _top_counts(bits, top)
    cache: dict[int, np.float64] = {}

    def order_stat(i: int) -> np.float64:
        if i not in cache:
            cache[i] = np.int64(_kth_smallest(bits, i, top, hist, cand)).view(np.float64)
        return cache[i]

    out = []
    for q in qs:
        virtual = np.float64(n - 1) * np.float64(q)
        lo = int(np.floor(virtual))
        hi = lo + 1
        if virtual >= n - 1:
            lo = hi = -1
        gamma = virtual - np.float64(lo)
        a, b = order_stat(lo % n), order_stat(hi % n)
        diff = b - a
        out.append(float(b - diff * (1 - gamma) if gamma >= 0.5 else a + diff * gamma))
    return out


def _kind_stats(run: Run, kind: int, years: np.ndarray,
                edges: np.ndarray) -> tuple[np.ndarray, tuple | None]:
    """(count per jurisdiction and bin, summary row or None) for one kind; runs in a thread
    (the kernels release the GIL)."""
    pop = run.population
    hist = np.zeros((len(run.prepared.jurisdictions), len(edges) - 1), np.int64)
    x = np.empty(len(pop), np.float64)
    m = _rates_and_bins(years, pop.jurisdiction, pop.intrusions, kind, edges, x, hist)
    x = x[:m]
    if m == 0:
        return hist, None
    q = quantiles(x, (0.5, 0.9, 0.99))
    return hist, (KINDS[kind + 1], m, float(x.mean()), *q, float(x.max()))


def intrusion_stats(run: Run) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(intrusion_distribution, intrusion_summary), computed together: one pass per kind."""
    edges = np.array(INTRUSION_BINS, dtype=np.float64)
    pop = run.population
    exposure = pop.out("exposure_days")
    years = np.where(exposure >= MIN_EXPOSURE_DAYS, exposure / 365.25, -1.0)
    with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
        stats = list(pool.map(lambda k: _kind_stats(run, k, years, edges),
                              range(-1, len(Intrusion))))
    n_bins, names = len(edges) - 1, run.prepared.jurisdictions
    rows = []
    for j in range(-1, len(names)):  # -1: all jurisdictions together
        j_name = "all" if j < 0 else names[j]
        for kind, (t, _) in zip(KINDS, stats, strict=True):
            row = t.sum(axis=0) if j < 0 else t[j]
            for k in range(n_bins):
                rows.append((j_name, kind, float(edges[k]), float(edges[k + 1]), int(row[k]),
                             int(row[k]) / run.scenario.scale))
    distribution = pd.DataFrame(rows, columns=["jurisdiction", "kind", "per_year_from",
                                               "per_year_to", "count", "value"])
    summary = pd.DataFrame([r for _, r in stats if r is not None],
                           columns=["kind", "persons", "mean", "p50", "p90", "p99", "max"])
    return distribution, summary


def intrusion_distribution(run: Run) -> pd.DataFrame:
    """How many persons bear how many intrusions per person-year, by kind and jurisdiction
    (persons registered a year or more)."""
    return intrusion_stats(run)[0]


def intrusion_summary(run: Run) -> pd.DataFrame:
    """Mean and quantiles of intrusions per person-year (persons registered a year or more)."""
    return intrusion_stats(run)[1]


_TRAPS = (Stock.TRAPPED_NO_RELEASE_AREA, Stock.TRAPPED_INSUFFICIENT_TESTS,
          Stock.TRAPPED_AWAITING_UPDATE, Stock.TRAPPED_PARTIAL_RELEASE)


def exit_table(run: Run) -> pd.DataFrame:
    """Who became eligible under the law, who was released, how long it took, who is trapped.

    The median wait from eligibility to release is over persons whose first release ended
    the eligibility episode open at the end of the run (see the comment below)."""
    pop = run.population
    never = np.iinfo(np.int32).max
    eligible, released = pop.out("eligible_day"), pop.out("first_release_day")
    el, rel = eligible != never, released != never
    cohort = (pop.entry_day // 365.25).astype(np.int64)
    n_y = int(cohort.max()) + 1 if len(pop) else 0
    key = pop.jurisdiction.astype(np.int64) * n_y + cohort
    size = len(run.prepared.jurisdictions) * n_y

    def count(mask: np.ndarray) -> np.ndarray:
        return np.bincount(key[mask], minlength=size)

    df = pd.DataFrame({
        "jurisdiction": np.repeat(np.array(run.prepared.jurisdictions, dtype=object), n_y),
        "entry_year": np.tile(run.scenario.start.year + np.arange(n_y), len(
            run.prepared.jurisdictions)),
        "persons": np.bincount(key, minlength=size),
        "eligible_at_end": count(el),
        "ever_released": count(rel),
    })
    # eligible_day is the day the person's last eligibility episode opened; a first release
    # that came before it ended an earlier episode (revoked by a detected relapse), whose
    # opening day is not kept: such persons have no wait to report (it would be negative)
    both = el & rel & (released >= eligible)
    wait = (released - eligible)[both].astype(np.float64)
    med = np.full(size, np.nan)
    if wait.size:
        order = np.lexsort((wait, key[both]))
        k_sorted, w_sorted = key[both][order], wait[order]
        starts = np.searchsorted(k_sorted, np.arange(size), side="left")
        ends = np.searchsorted(k_sorted, np.arange(size), side="right")
        for g in np.flatnonzero(ends > starts):
            med[g] = float(np.median(w_sorted[starts[g] : ends[g]]))
    df["median_days_eligible_to_release"] = med
    trap = pop.out("trap_code")
    for s in (*_TRAPS, Stock.HELD_CRIMINAL_CASE):
        df[s.name.lower() + "_at_end"] = count(trap == s)
    return df[df["persons"] > 0].reset_index(drop=True)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


TABLES = ("monthly", "intrusions_per_person_year", "intrusion_summary", "exit", "paper_figures")


def write(run: Run, out: str | Path, comparison: pd.DataFrame | None = None) -> dict[str, Path]:
    """Write the tables and manifest.json into `out`; returns the paths written.

    Everything is computed first and written into a staging folder, then moved into `out`
    with the manifest last (outputs.publish): a run killed at any moment, or a full disk,
    leaves no manifest beside tables it does not describe."""
    from .outputs import MANIFEST, publish  # not a kernel module: keep it out of the cache key

    distribution, summary = intrusion_stats(run)
    tables = {
        "monthly": monthly_table(run),
        "intrusions_per_person_year": distribution,
        "intrusion_summary": summary,
        "exit": exit_table(run),
    }
    if comparison is not None:
        tables["paper_figures"] = comparison

    def write_into(folder: Path) -> dict[str, Path]:
        paths = {}
        for name, df in tables.items():
            p = folder / f"{name}.parquet"
            df.to_parquet(p, index=False, compression="zstd")
            paths[name] = p
        mp = folder / MANIFEST
        mp.write_text(json.dumps(_manifest(run, paths), indent=2, sort_keys=True) + "\n")
        paths["manifest"] = mp
        return paths

    return publish(out, write_into, known=tuple(f"{t}.parquet" for t in TABLES))


def _manifest(run: Run, paths: dict[str, Path]) -> dict:
    sc = run.scenario
    return {
        "dcsim_version": dcsim_version(),
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


def dcsim_version() -> str:
    try:
        return metadata.version("dcsim")
    except metadata.PackageNotFoundError:  # running from a source tree
        return "unknown"
