"""Ensembles and comparisons on Dask distributed: one task per (arm, seed), results on disk.

Each task runs one scenario on one seed and writes a normal `dcsim run` folder under
runs/<arm>/seed-<seed>/, first into a temporary folder that is renamed when complete, so a
folder that exists is a finished run. The task returns only its headline figures (a few dozen
numbers); the monthly tables are read back from disk. A rerun of an interrupted ensemble skips
the finished runs and loses none, and the summary is computed in a fixed order from the files,
so its bytes do not depend on the number of workers or the order runs finish in.

A local cluster (every port bound to 127.0.0.1, dashboard off) is started by default;
`scheduler` connects to an existing one instead (its workers must be able to import dcsim and
read and write `out`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd

from .compare import (
    HEADLINE_KEYS,
    INTERVAL,
    INTERVAL_METHOD,
    Arm,
    CompareError,
    Comparison,
    monthly_summary,
    national_monthly,
    summary_table,
)

HEADLINE_FILE = "headline.json"
PLAN_FILE = "plan.json"


@dataclass(frozen=True)
class Task:
    """One run: what a worker needs to load, simulate and write it (plain, picklable)."""

    arm: str
    scenario_ref: str
    overlays: tuple[str, ...]
    scale: float | None
    seed: int
    folder: str


def run_folder(out: Path, arm: str, seed: int) -> Path:
    return out / "runs" / arm / f"seed-{seed}"


def is_finished(folder: Path) -> bool:
    return (folder / HEADLINE_FILE).is_file()


def run_task(task: Task) -> dict:
    """Run one (arm, seed) unless its folder is complete; return its headline figures."""
    from . import figures, results
    from .compare import headline_values
    from .model import prepare, simulate
    from .scenario import load_scenario

    folder = Path(task.folder)
    if is_finished(folder):
        return {"arm": task.arm, "seed": task.seed, "ran": False,
                "headline": json.loads((folder / HEADLINE_FILE).read_text())}
    sc = load_scenario(task.scenario_ref, overlays=list(task.overlays) or None,
                       scale=task.scale, seed=task.seed)
    run = simulate(prepare(sc))
    tmp = folder.with_name(f".{folder.name}.tmp-{uuid.uuid4().hex[:8]}")
    try:
        results.write(run, tmp, comparison=figures.comparison(run))
        headline = headline_values(run)
        (tmp / HEADLINE_FILE).write_text(json.dumps(headline, indent=1, sort_keys=True) + "\n")
        if is_finished(folder):  # another attempt finished first: keep its folder
            shutil.rmtree(tmp)
        else:
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"arm": task.arm, "seed": task.seed, "ran": True, "headline": headline}


def _client(workers: int | None, scheduler: str | None):  # noqa: ANN202 - (client, cluster)
    from distributed import Client, LocalCluster

    if scheduler:
        return Client(scheduler, timeout="20s"), None
    cluster = LocalCluster(n_workers=workers or 1, threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address="127.0.0.1:0", silence_logs=50,
                           scheduler_kwargs={"dashboard": False})
    return Client(cluster), cluster


def execute(tasks: list[Task], workers: int | None = None, scheduler: str | None = None,
            progress: Callable[[int, int], None] | None = None) -> list[dict]:
    """Run the unfinished tasks on Dask; results of all tasks in the order given."""
    done: dict[tuple[str, int], dict] = {}
    todo = []
    for t in tasks:
        if is_finished(Path(t.folder)):
            done[(t.arm, t.seed)] = run_task(t)  # reads the headline, runs nothing
        else:
            todo.append(t)
    if progress is not None:
        progress(len(done), len(tasks))
    if todo:
        from distributed import as_completed

        client, cluster = _client(workers, scheduler)
        try:
            futures = [client.submit(run_task, t, key=f"dcsim-run-{t.arm}-{t.seed}-"
                                     f"{hashlib.sha1(t.folder.encode()).hexdigest()[:8]}",
                                     pure=False) for t in todo]
            for fut in as_completed(futures):
                r = fut.result()
                done[(r["arm"], r["seed"])] = r
                if progress is not None:
                    progress(len(done), len(tasks))
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    return [done[(t.arm, t.seed)] for t in tasks]


def _plan(kind: str, arms: list[Arm], seeds: list[int], scale: float | None) -> dict:
    def digest(path: str) -> str:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest() if Path(path).is_file() else ""

    return {"kind": kind, "seeds": seeds, "scale": scale,
            "arms": [{**asdict(a), "overlay_sha256": [digest(o) for o in a.overlays]}
                     for a in arms]}


def _check_plan(out: Path, plan: dict) -> None:
    """A folder holds one comparison: a rerun must ask for the same one (it then resumes)."""
    p = out / PLAN_FILE
    if p.is_file():
        old = json.loads(p.read_text())
        if old != plan:
            raise CompareError(f"{out}: holds a different ensemble or comparison ({PLAN_FILE}); "
                               "choose another --out, or delete the folder to start again")
    else:
        out.mkdir(parents=True, exist_ok=True)
        _write_atomic(p, json.dumps(plan, indent=1, sort_keys=True) + "\n")


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _write_table(df: pd.DataFrame, path: Path) -> str:
    tmp = path.with_name(f".{path.name}.tmp")
    df.to_parquet(tmp, index=False, compression="zstd")
    os.replace(tmp, path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def run_ensemble(arms: list[Arm], seeds: list[int], out: str | Path, scale: float | None = None,
                 workers: int | None = None, scheduler: str | None = None,
                 progress: Callable[[int, int], None] | None = None) -> Comparison:
    """Every arm on every seed, then the comparison folder of COMPARISON_FORMAT.md."""
    from . import results

    out = Path(out).resolve()
    kind = "ensemble" if len(arms) == 1 else "comparison"
    if not seeds or len(set(seeds)) != len(seeds):
        raise CompareError(f"seeds must be distinct and at least one, got {seeds}")
    _check_plan(out, _plan(kind, arms, seeds, scale))
    (out / "manifest.json").unlink(missing_ok=True)  # the folder is incomplete until the end
    tasks = [Task(a.name, a.scenario_ref, tuple(a.overlays), scale, s,
                  str(run_folder(out, a.name, s))) for a in arms for s in seeds]
    for t in tasks:
        Path(t.folder).parent.mkdir(parents=True, exist_ok=True)
    done = execute(tasks, workers=workers, scheduler=scheduler, progress=progress)
    names = [a.name for a in arms]
    per_seed = pd.DataFrame([{"key": k, "arm": r["arm"], "seed": r["seed"],
                              "value": r["headline"][k]} for r in done for k in HEADLINE_KEYS])
    per_seed = per_seed.astype({"seed": "int64", "value": "float64"})
    national = {(t.arm, t.seed): national_monthly(pd.read_parquet(
        Path(t.folder) / "monthly.parquet")) for t in tasks}
    tables = {
        "summary.parquet": summary_table(per_seed, names),
        "per_seed.parquet": per_seed,
        "monthly_summary.parquet": monthly_summary(national, names, seeds),
    }
    hashes = {name: _write_table(df, out / name) for name, df in tables.items()}
    sc = arms[0].load(scale=scale)
    manifest = {
        "kind": kind, "dcsim_version": results.dcsim_version(), "scenario": sc.name,
        "arms": names, "baseline": names[0], "seeds": seeds, "scale": sc.scale,
        "interval": INTERVAL, "interval_method": INTERVAL_METHOD,
        "runs": {a: {str(s): f"runs/{a}/seed-{s}" for s in seeds} for a in names},
        "arm_descriptions": {a.name: a.description for a in arms},
        "arm_sources": {a.name: a.sources for a in arms},
        "tables": hashes,
    }
    _write_atomic(out / "manifest.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return Comparison.read(out)
