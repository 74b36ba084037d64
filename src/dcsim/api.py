"""The Python API: `dcsim.run`, `dcsim.compare`, `dcsim.ensemble` and a labelled `trace_person`.

Thin wrappers over the same code the command line uses, returning objects whose `to_df()`
gives tidy tables with months as datetime64 (first day of the month), for pandas users.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .catalogue import TIERS
from .compare import Comparison, make_arms
from .measures import Stock
from .model import Run
from .state import NEVER, Pathway, Release

__all__ = ["RunResult", "compare", "ensemble", "run", "trace_person"]


@dataclass
class RunResult:
    """One run in memory: `to_df()` for its tables, `trace_person(i)` for one life course."""

    raw: Run

    @property
    def scenario(self):  # noqa: ANN201 - a Scenario
        return self.raw.scenario

    def to_df(self, table: str = "monthly") -> pd.DataFrame:
        """'monthly' (tidy: month, jurisdiction, group, metric, count, value), 'exit',
        'intrusion_summary' or 'headline' (key, value)."""
        from . import results
        from .compare import headline_values

        if table == "monthly":
            df = results.monthly_table(self.raw)
            df["month"] = pd.to_datetime(df["month"])
            return df
        if table == "exit":
            return results.exit_table(self.raw)
        if table == "intrusion_summary":
            return results.intrusion_summary(self.raw)
        if table == "headline":
            h = headline_values(self.raw)
            return pd.DataFrame({"key": list(h), "value": list(h.values())})
        raise ValueError(f"table must be monthly, exit, intrusion_summary or headline, "
                         f"got {table!r}")

    def trace_person(self, i: int) -> pd.DataFrame:
        return trace_person(self.raw, i)

    def write(self, out: str | Path) -> dict[str, Path]:
        """The tables and manifest of `dcsim run`."""
        from . import figures, results

        return results.write(self.raw, out, comparison=figures.comparison(self.raw))


def run(scenario: str | Path | None = None, *, overlays: Sequence[str | Path] = (),
        scale: float | None = None, seed: int | None = None) -> RunResult:
    """Run a scenario (file or package name; default the national baseline) with optional
    rule overlays (files or package reform names such as 'exit_law_2011')."""
    from .compare import CompareError, find_reform
    from .model import prepare, simulate
    from .scenario import load_scenario

    paths = []
    for o in overlays:
        p = find_reform(o)
        if p is None:
            raise CompareError(f"overlay {str(o)!r}: no such file or package reform")
        paths.append(p)
    sc = load_scenario(scenario, overlays=paths or None, scale=scale, seed=seed)
    return RunResult(simulate(prepare(sc)))


def compare(baseline: str | Path | None = None, reforms: Sequence[str] = (), *, seeds: int = 10,
            scale: float | None = None, first_seed: int | None = None,
            out: str | Path | None = None, workers: int | None = None,
            scheduler: str | None = None) -> Comparison:
    """Baseline and reforms on the same seeds, on Dask; returns the comparison folder read
    back (`to_df('summary' | 'per_seed' | 'monthly')`, `difference(key, arm)`)."""
    from .ensemble import run_ensemble

    arms = make_arms(baseline, list(reforms))
    sc = arms[0].load(scale=scale)
    first = sc.seed if first_seed is None else first_seed
    out = out or Path("runs") / f"compare-{'-'.join(a.name for a in arms)}"
    return run_ensemble(arms, [first + k for k in range(seeds)], out, scale=scale,
                        workers=workers, scheduler=scheduler)


def ensemble(scenario: str | Path | None = None, *, seeds: int = 10,
             **kwargs: object) -> Comparison:
    """One scenario over several seeds (see `compare` for the keyword arguments)."""
    name = Path(str(scenario or "baseline")).stem
    kwargs.setdefault("out", Path("runs") / f"ensemble-{name}")
    return compare(scenario, (), seeds=seeds, **kwargs)  # type: ignore[arg-type]


WHY_TRAPPED = {  # the trap stocks of ledger.stock_codes, as the trace names them
    Stock.TRAPPED_PARTIAL_RELEASE: "partial release: alerts stopped, control goes on",
    Stock.TRAPPED_NO_RELEASE_AREA: "no-release area: nobody is released here",
    Stock.TRAPPED_INSUFFICIENT_TESTS: "too few negative tests to show the three years",
    Stock.HELD_CRIMINAL_CASE: "a drug-related criminal case on record bars exit (fn 37)",
    Stock.TRAPPED_AWAITING_UPDATE: "eligible: waiting for the record to be updated",
}


def trace_person(run: Run | RunResult, i: int) -> pd.DataFrame:
    """The event log of modelled person i with names: date, event, pathway, tier, release
    status and, after each event, why they are trapped (if they are): the trap stock the
    engine counts them in, so the trace and the tables agree."""
    from .model import trace_person as raw_trace

    r = run.raw if isinstance(run, RunResult) else run
    df = raw_trace(r, i)
    why = [WHY_TRAPPED.get(int(code), "") for code in df["trap"]]
    out = pd.DataFrame({
        "day": df["day"],
        "date": [r.scenario.start + dt.timedelta(days=int(d)) for d in df["day"]],
        "event": df["event"],
        "using": df["using"].astype(bool),
        "pathway": [Pathway(int(p)).name.lower() for p in df["pathway"]],
        "tier": [TIERS[int(t)] if 0 <= t < len(TIERS) else "" for t in df["tier"]],
        "release": [Release(int(x)).name.lower() for x in df["release"]],
        "in_registry": df["in_registry"].astype(bool),
        "last_detect_date": [r.scenario.start + dt.timedelta(days=int(d))
                             for d in df["last_detect"]],
        "negative_tests": df["neg_tests"],
        "eligible_date": [None if e == NEVER else r.scenario.start + dt.timedelta(days=int(e))
                          for e in df["eligible"]],
        "why_trapped": why,
    })
    out["date"] = pd.to_datetime(out["date"])
    return out
