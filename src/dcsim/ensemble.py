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

The same machinery runs the model evaluations of `dcsim fit`, `calibrate` and `sensitivity`:
`dask_client` opens the cluster for one command, `map_tasks` runs one task per model run and
returns the results in the order of the tasks (never the order they finish in), and a task
carries only plain data (`ModelSpec`: the scenario as JSON) from which a worker prepares the
model again, once per worker process thanks to `worker_cache.WorkerCache`. (Dask itself is
imported only when a cluster is opened: importing this module stays cheap.)

A worker must run the dcsim of the command: `dask_client` checks every worker before any task
(`check_workers`), since a worker that cannot unpickle a task (dcsim missing there) drops its
link to the scheduler and the task then waits forever instead of failing. A task that fails on
a worker for a reason outside the model (an import, another version, a worker that died) comes
back from `map_tasks` as one `WorkerError` naming the task, the worker and what to do; the
model's own errors (dcsim's exception types) come back as they are.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import shutil
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

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

if TYPE_CHECKING:
    from distributed import Client

    from .model import Prepared
    from .targets import TargetsFile

HEADLINE_FILE = "headline.json"
PLAN_FILE = "plan.json"
CONNECT_TIMEOUT = "20s"  # to reach an existing scheduler
WORKERS_TIMEOUT = 60.0  # seconds an existing scheduler may take to have a worker
T = TypeVar("T")


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


class ClusterError(RuntimeError):
    """The scheduler given cannot be reached, has no worker to run the tasks, or a worker
    reads other rule files than the command."""


class WorkerError(RuntimeError):
    """A worker cannot run the command's tasks for a reason outside the model: dcsim does not
    import there, it is another dcsim, or the worker died. The message is one line: what
    failed, on which worker when known, and what to do. `before_tasks`: found by
    `check_workers`, so no task of the command ran."""

    def __init__(self, message: str, *, before_tasks: bool = False) -> None:
        super().__init__(message)
        self.before_tasks = before_tasks


def _identity_probe() -> Callable[[], tuple[str, str]]:
    """A function naming the dcsim of the process it runs in: (version, source hash), or
    ("", why dcsim does not import). Made inside a function so that cloudpickle sends it by
    value: it must run on a worker where dcsim cannot be imported."""

    def probe() -> tuple[str, str]:
        import hashlib
        from importlib import metadata
        from pathlib import Path

        try:
            import dcsim
        except (Exception, SystemExit) as e:  # dcsim's start-up check raises SystemExit
            return "", f"{type(e).__name__}: {e}"
        try:
            version = metadata.version("dcsim")
        except metadata.PackageNotFoundError:
            version = "unknown"
        root = Path(dcsim.__file__).parent
        h = hashlib.sha256()
        for f in sorted(root.rglob("*.py")):
            h.update(f.relative_to(root).as_posix().encode() + b"\0" + f.read_bytes())
        return version, h.hexdigest()[:12]

    return probe


@functools.cache
def dcsim_identity() -> tuple[str, str]:
    """This process's dcsim as (version, source hash): what every worker must run."""
    return _identity_probe()()


def _install_hint(dependencies: bool = False) -> str:
    version, source = dcsim_identity()
    what = "this dcsim" if version == "unknown" else f"dcsim {version}"
    what += " and its dependencies" if dependencies else ""
    return f"install {what} on the workers, as this command runs it (source hash {source})"


def check_workers(client: Client) -> None:
    """WorkerError unless every worker imports the dcsim this process runs (same version,
    same Python source), checked before any task is sent."""
    here = dcsim_identity()
    for worker, got in sorted(client.run(_identity_probe(), on_error="return").items()):
        if isinstance(got, BaseException):
            what = f"cannot be checked ({type(got).__name__}: {_first_line(got)})"
        elif not got[0]:
            what = f"cannot import dcsim ({got[1].splitlines()[0] if got[1] else '?'})"
        elif tuple(got) != here:
            what = f"runs another dcsim ({got[0]}, source hash {got[1]})"
        else:
            continue
        raise WorkerError(f"worker {worker} {what}; {_install_hint()}", before_tasks=True)


def _first_line(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0] if lines else repr(e)


def _erred_on(client: Client, key: str) -> str | None:
    """The worker(s) a task failed on, as the scheduler recorded them; None if not known."""

    def where(key: str = key, dask_scheduler: Any = None) -> list[str]:  # noqa: ANN401
        ts = dask_scheduler.tasks.get(key)  # by value, as above: the scheduler needs no dcsim
        return sorted(ts.erred_on or ()) if ts is not None else []

    try:
        found = client.run_on_scheduler(where)
    except Exception:  # noqa: BLE001 - only a detail of the message is lost
        return None
    return ", ".join(found) or None


def task_failure(client: Client, key: str, error: BaseException) -> WorkerError:
    """The WorkerError saying which task failed, where, and what to do."""
    from distributed import KilledWorker

    if isinstance(error, KilledWorker):
        last = getattr(getattr(error, "last_worker", None), "address", None)
        return WorkerError(f"task {key} killed its worker{f' {last}' if last else 's'} (out of "
                           "memory, or a crash): give the workers more memory, or run fewer "
                           "on each machine")
    where = _erred_on(client, key)
    return WorkerError(f"task {key} failed on worker {where or '(not known)'}: "
                       f"{type(error).__name__}: {_first_line(error)}; "
                       f"{_install_hint(dependencies=True)}")


def _is_model_error(e: BaseException) -> bool:
    """An exception of dcsim's own (a rule, scenario or cluster error): its message already
    says what to do."""
    return type(e).__module__.partition(".")[0] == "dcsim"


@contextlib.contextmanager
def dask_client(workers: int | None = None, scheduler: str | None = None) -> Iterator[Client]:
    """A Dask client for one command, closed on leaving (with the local cluster, if one was
    started), also on an error or an interrupt.

    Without `scheduler`: a local cluster of `workers` processes (default 1) of one thread each,
    every port bound to 127.0.0.1, no dashboard. With `scheduler`: that cluster (`workers` is
    then not used); ClusterError if it cannot be reached or has no worker. Either way the
    workers get a `WorkerCache`.
    """
    from distributed import Client, LocalCluster

    from .worker_cache import WorkerCache

    cluster = None
    if scheduler:
        try:
            client = Client(scheduler, timeout=CONNECT_TIMEOUT)
        except (OSError, ValueError, TypeError) as e:  # TimeoutError is an OSError
            raise ClusterError(f"cannot connect to scheduler {scheduler}: {e}") from None
    else:
        cluster = LocalCluster(n_workers=workers or 1, threads_per_worker=1, processes=True,
                               host="127.0.0.1", dashboard_address="127.0.0.1:0",
                               silence_logs=50, scheduler_kwargs={"dashboard": False})
        client = Client(cluster)
    try:
        if scheduler:
            try:
                client.wait_for_workers(1, timeout=WORKERS_TIMEOUT)
            except (OSError, TimeoutError) as e:
                raise ClusterError(f"scheduler {scheduler} has no worker (waited "
                                   f"{WORKERS_TIMEOUT:g} s): {e}") from None
        check_workers(client)
        client.register_plugin(WorkerCache())
        yield client
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


@contextlib.contextmanager
def session(client: Client | None = None, workers: int | None = None,
            scheduler: str | None = None) -> Iterator[Client]:
    """`client` if given (left open: it is the caller's), else a `dask_client`."""
    if client is not None:
        yield client
    else:
        with dask_client(workers, scheduler) as c:
            yield c


def map_tasks(client: Client, fn: Callable[[Any], T], tasks: Sequence[Any],
              progress: Callable[[int, int], None] | None = None,
              name: str = "dcsim") -> list[T]:
    """fn(task) for every task, run on the cluster; the results in the order of `tasks`,
    whatever the order they finish in, so nothing downstream depends on the number of
    workers. `progress(done, total)` after each one. On an error or an interrupt the tasks
    not finished are cancelled; a task failing for a reason outside the model raises
    WorkerError (`task_failure`), one of dcsim's own errors is raised as it is."""
    from distributed import as_completed

    token = uuid.uuid4().hex[:8]
    futures = [client.submit(fn, t, key=f"{name}-{token}-{i}", pure=False)
               for i, t in enumerate(tasks)]
    index = {f.key: i for i, f in enumerate(futures)}
    out: list[Any] = [None] * len(tasks)
    try:
        for done, fut in enumerate(as_completed(futures), 1):
            try:
                out[index[fut.key]] = fut.result()
            except Exception as e:
                if _is_model_error(e):
                    raise
                raise task_failure(client, fut.key, e) from e
            fut.release()  # the worker forgets the result: it is here now
            if progress is not None:
                progress(done, len(tasks))
    except BaseException:
        client.cancel([f for f in futures if not f.done()])
        raise
    return out


@dataclass(frozen=True)
class ModelSpec:
    """A prepared model as plain data: the scenario as JSON (its file's path made absolute)
    and the rules hash of the caller's copy. A worker prepares it again from the rule files
    where it runs, and refuses to run if their hash differs (a file changed since the command
    started, or a remote worker with other files)."""

    scenario: str
    rules_hash: str

    @classmethod
    def of(cls, prepared: Prepared) -> ModelSpec:
        if prepared.rules_hash.endswith("+values"):
            raise ValueError("a prepared model with values changed in memory cannot be "
                             "rebuilt from its scenario; pass the changes in the task")
        sc = prepared.scenario
        if sc.source is not None:
            sc = sc.model_copy(update={"source": Path(sc.source).resolve()})
        return cls(sc.model_dump_json(), prepared.rules_hash)

    def prepare(self) -> Prepared:
        """The prepared model (from this worker's cache when it holds it)."""
        from .worker_cache import cached

        return cached(self.scenario, self._prepare)

    def _prepare(self) -> Prepared:
        from .model import prepare
        from .scenario import Scenario

        p = prepare(Scenario.model_validate_json(self.scenario))
        if p.rules_hash != self.rules_hash:
            raise ClusterError(
                f"the rule files of scenario {p.scenario.name} read on this worker differ "
                f"from those the command read (rules hash {p.rules_hash[:12]}, expected "
                f"{self.rules_hash[:12]}): changed since it started, or another copy")
        return p


def targets_json(targets: TargetsFile) -> str:
    """A targets file as the JSON a task carries (its bytes left out: a worker needs the
    parsed targets only)."""
    return targets.model_dump_json(exclude={"content"})


def worker_targets(text: str) -> TargetsFile:
    """The targets file of `targets_json` (from this worker's cache when it holds it)."""
    from .targets import TargetsFile
    from .worker_cache import cached

    return cached(text, lambda: TargetsFile.model_validate_json(text))


def execute(tasks: list[Task], workers: int | None = None, scheduler: str | None = None,
            progress: Callable[[int, int], None] | None = None,
            client: Client | None = None) -> list[dict]:
    """Run the unfinished tasks on Dask (on `client` if given); results of all tasks in the
    order given."""
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
        base = len(done)

        def tick(n: int, _total: int) -> None:
            if progress is not None:
                progress(base + n, len(tasks))

        with session(client, workers, scheduler) as c:
            for r in map_tasks(c, run_task, todo, tick, name="dcsim-run"):
                done[(r["arm"], r["seed"])] = r
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
                 progress: Callable[[int, int], None] | None = None,
                 client: Client | None = None) -> Comparison:
    """Every arm on every seed (on `client` if given), then the comparison folder of
    COMPARISON_FORMAT.md."""
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
    done = execute(tasks, workers=workers, scheduler=scheduler, progress=progress,
                   client=client)
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
