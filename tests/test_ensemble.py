"""Ensembles on Dask distributed: the same bytes whatever the number of workers, an existing
cluster reached through --scheduler, and an ensemble killed at random moments that resumes
without redoing or losing a finished run. Also the machinery fit, calibrate and sensitivity
share: results in task order, the plain-data model a worker rebuilds and caches, one clear
line for a scheduler that cannot be reached, and one for a task that fails on a worker or a
worker that does not run this dcsim (finished runs kept)."""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

import dcsim
from dcsim.cli import app
from dcsim.compare import make_arms
from dcsim.ensemble import (
    HEADLINE_FILE,
    ModelSpec,
    WorkerError,
    check_workers,
    is_finished,
    map_tasks,
    run_ensemble,
)
from dcsim.worker_cache import WorkerCache

ensemble_module = sys.modules["dcsim.ensemble"]  # dcsim.ensemble is the API function
SCALE = 0.002
SRC = str(Path(dcsim.__file__).resolve().parents[1])
TABLES = ("summary.parquet", "per_seed.parquet", "monthly_summary.parquet")
RUN_TABLES = ("monthly.parquet", "exit.parquet", "intrusion_summary.parquet",
              "intrusions_per_person_year.parquet", "paper_figures.parquet", HEADLINE_FILE)


def _env() -> dict[str, str]:
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": SRC + (os.pathsep + path if path else "")}


def _bytes(folder: Path) -> dict[str, bytes]:
    """Every table of an ensemble folder (run manifests hold wall times, so are left out)."""
    out = {t: (folder / t).read_bytes() for t in TABLES}
    for run in sorted((folder / "runs").glob("*/seed-*")):
        for t in RUN_TABLES:
            out[f"{run.parent.name}/{run.name}/{t}"] = (run / t).read_bytes()
    return out


@pytest.mark.slow
def test_one_and_two_workers_give_the_same_bytes(tmp_path):
    arms = make_arms(None, ["alerts_abolished_2011"])
    seeds = [31, 32]
    run_ensemble(arms, seeds, tmp_path / "one", scale=SCALE, workers=1)
    run_ensemble(arms, seeds, tmp_path / "two", scale=SCALE, workers=2)
    one, two = _bytes(tmp_path / "one"), _bytes(tmp_path / "two")
    assert len(one) == len(TABLES) + 2 * 2 * len(RUN_TABLES)
    assert one == two


def test_a_rerun_skips_finished_runs_and_a_different_plan_is_refused(tmp_path):
    arms = make_arms(None, [])
    out = tmp_path / "ens"
    calls = []
    run_ensemble(arms, [3, 4], out, scale=SCALE, workers=1,
                 progress=lambda d, n: calls.append((d, n)))
    stamp = {p: p.stat().st_mtime_ns for p in out.glob("runs/*/seed-*/" + HEADLINE_FILE)}
    calls.clear()
    run_ensemble(arms, [3, 4], out, scale=SCALE, workers=1,
                 progress=lambda d, n: calls.append((d, n)))
    assert calls == [(2, 2)]  # nothing to run: the progress bar starts full
    assert stamp == {p: p.stat().st_mtime_ns for p in stamp}
    from dcsim.compare import CompareError

    with pytest.raises(CompareError, match="holds a different"):
        run_ensemble(arms, [3, 4, 5], out, scale=SCALE, workers=1)


def _start(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=env or _env(), stdout=log.open("w"),
                            stderr=subprocess.STDOUT, start_new_session=True)


def _stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


@contextlib.contextmanager
def _cluster(tmp_path: Path, worker_env: dict[str, str] | None = None) -> Iterator[str]:
    """A scheduler and one worker started as separate processes on 127.0.0.1 (the worker in
    `worker_env` if given); yields the scheduler's address."""
    sched_file = tmp_path / "scheduler.json"
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    sched = _start([*dask, "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                    "--scheduler-file", str(sched_file)], tmp_path / "scheduler.log")
    worker = None
    try:
        deadline = time.time() + 60
        while not sched_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        worker = _start([sys.executable, "-m", "distributed.cli.dask_worker", address,
                         "--host", "127.0.0.1", "--nthreads", "1", "--nworkers", "1",
                         "--no-dashboard"], tmp_path / "worker.log", worker_env)
        yield address
    finally:
        for p in (worker, sched):
            if p is not None:
                _stop(p)


@pytest.mark.slow
def test_an_ensemble_runs_on_an_existing_cluster_through_scheduler(tmp_path):
    with _cluster(tmp_path) as address:
        result = CliRunner().invoke(app, ["ensemble", "national-baseline", "--seeds", "2",
                                          "--scale", str(SCALE), "--scheduler", address,
                                          "--out", str(tmp_path / "ens")])
    assert result.exit_code == 0, result.output
    assert f"scheduler {address}" in result.output
    assert all(is_finished(p) for p in (tmp_path / "ens").glob("runs/*/seed-*"))
    assert (tmp_path / "ens" / "manifest.json").is_file()


@pytest.mark.slow
def test_a_worker_that_cannot_import_dcsim_is_one_line_before_any_task(tmp_path):
    """A worker whose dcsim fails to import (one that shadows the real one) is refused when
    the command connects: without the check, a task it cannot unpickle waits forever."""
    broken = tmp_path / "broken" / "dcsim"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text('raise ImportError("dcsim is broken here (test)")\n')
    env = {**os.environ, "PYTHONPATH": str(broken.parent)}
    with _cluster(tmp_path, worker_env=env) as address:
        for command in (["ensemble", "national-baseline", "--seeds", "1"],
                        ["recover", "--trials", "1", "--seeds", "5"]):
            out = tmp_path / command[0]
            done = subprocess.run(
                [sys.executable, "-m", "dcsim", *command, "--scale", str(SCALE),
                 "--scheduler", address, "--out", str(out)], env={**_env(), "COLUMNS": "300"},
                capture_output=True, text=True, timeout=180)
            assert done.returncode == 1, done.stdout + done.stderr
            assert "Traceback" not in done.stdout + done.stderr
            (line,) = [x for x in done.stdout.splitlines() if x.startswith("error: ")]
            assert line.startswith(f"error: worker {address.rsplit(':', 1)[0]}:")
            assert "cannot import dcsim (ImportError: dcsim is broken here (test)); install " \
                   "dcsim" in line
            assert "kept" not in line  # no task ran: nothing to keep
            assert not list(out.glob("runs/*/seed-*"))  # no run started, no trial
            assert not (out / "journal.log").exists()


KILLS = 10 if os.environ.get("CI") else 2


@pytest.mark.slow
def test_a_killed_ensemble_resumes_without_redoing_or_losing_runs(tmp_path):
    """Kill the whole ensemble (driver and local cluster) at random moments, KILLS times,
    then let it finish: no finished run is ever run again, and the tables are the bytes of
    an ensemble never interrupted."""
    seeds = "10"
    cmd = [sys.executable, "-c", "from dcsim.cli import app; app()", "ensemble",
           "national-baseline", "--seeds", seeds, "--scale", str(SCALE), "--workers", "1",
           "--first-seed", "70"]
    out = tmp_path / "killed"
    rng = random.Random(12)
    seen: dict[Path, int] = {}
    finished_at_kill = []
    for k in range(KILLS):
        p = _start([*cmd, "--out", str(out)], tmp_path / f"kill-{k}.log")
        if k % 2 == 0:  # any moment, from start-up (driver, cluster) on
            time.sleep(rng.uniform(0.5, 8.0))
        else:  # a moment while runs are being written
            deadline = time.time() + 60
            while (p.poll() is None and time.time() < deadline
                   and not any(out.glob("runs/*/.seed-*.tmp-*"))):
                time.sleep(0.05)
            time.sleep(rng.uniform(0.0, 2.5))
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # the ensemble (and all it started) finished before this kill
        p.wait()
        for h in out.glob("runs/*/seed-*/" + HEADLINE_FILE):
            stamp = h.stat().st_mtime_ns
            assert seen.setdefault(h, stamp) == stamp, f"{h} was run again"
        assert not (out / "manifest.json").exists() or len(seen) == int(seeds)
        finished_at_kill.append(len(seen))
    done = subprocess.run([*cmd, "--out", str(out)], env=_env(), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    for h, stamp in seen.items():
        assert h.stat().st_mtime_ns == stamp
    ref = subprocess.run([*cmd, "--out", str(tmp_path / "ref")], env=_env(),
                         capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0
    assert _bytes(out) == _bytes(tmp_path / "ref")
    # with ten kills at random moments, at least one lands while some runs are finished and
    # others not (the case a resume must handle)
    assert KILLS < 10 or any(0 < n < int(seeds) for n in finished_at_kill), finished_at_kill


# ------------------------------------------------------------------ the shared machinery


def test_results_come_back_in_task_order_not_finishing_order(dask_client_2):
    """Two workers, the first tasks the slowest: they finish last and are still first."""
    tasks = [(i, 0.3 if i < 2 else 0.0) for i in range(6)]
    done = []
    out = map_tasks(dask_client_2, lambda t: (time.sleep(t[1]), t[0])[1], tasks,
                    progress=lambda d, n: done.append((d, n)))
    assert out == list(range(6))
    assert done == [(d, 6) for d in range(1, 7)]


def test_a_worker_cache_builds_once_and_drops_the_least_recent():
    cache = WorkerCache(size=2)
    cache.setup(None)
    built = []

    def build(key):
        return lambda: built.append(key) or key.upper()

    assert cache.get("a", build("a")) == "A" and cache.get("a", build("a")) == "A"
    cache.get("b", build("b"))
    cache.get("a", build("a"))  # a is now the most recent
    cache.get("c", build("c"))  # drops b
    cache.get("a", build("a"))
    cache.get("b", build("b"))
    assert built == ["a", "b", "c", "b"]
    cache.teardown(None)
    assert cache.get("a", build("a")) == "A" and built[-1] == "a"


def test_a_model_spec_is_plain_data_a_worker_rebuilds_and_checks(tmp_path, monkeypatch):
    import dataclasses
    import pickle

    import numpy as np

    from dcsim.model import prepare, with_values
    from dcsim.scenario import load_scenario

    p = prepare(load_scenario(scale=0.001))
    spec = ModelSpec.of(p)
    assert pickle.loads(pickle.dumps(spec)) == spec and isinstance(spec.scenario, str)
    again = spec.prepare()  # not on a worker: built, not cached
    assert again.scenario.model_dump() == p.scenario.model_dump()
    np.testing.assert_array_equal(again.table, p.table)
    with pytest.raises(ensemble_module.ClusterError, match="rule files .* differ"):
        dataclasses.replace(spec, rules_hash="0" * 64).prepare()
    with pytest.raises(ValueError, match="values changed in memory"):
        ModelSpec.of(with_values(p, {"alerts.contact_probability": 0.5}))
    # a scenario file named by a relative path is found from any working directory
    monkeypatch.chdir(Path(dcsim.__file__).parent / "data")
    rel = ModelSpec.of(prepare(load_scenario("scenarios/national_baseline.yaml",
                                             scale=0.001)))
    monkeypatch.chdir(tmp_path)
    np.testing.assert_array_equal(rel.prepare().table, p.table)


@pytest.mark.parametrize("command", [
    ["fit", "--seeds", "1"],
    ["sensitivity", "--trajectories", "2"],
    ["calibrate", "--trials", "1", "--seeds", "5"],
    ["ensemble", "--seeds", "1"],
])
def test_a_scheduler_that_cannot_be_reached_is_one_line_naming_it(command, tmp_path,
                                                                  monkeypatch):
    monkeypatch.setattr(ensemble_module, "CONNECT_TIMEOUT", "1s")
    monkeypatch.chdir(tmp_path)
    address = "tcp://127.0.0.1:1"  # nothing listens on port 1
    res = CliRunner().invoke(app, [*command, "--scale", "0.001", "--scheduler", address],
                             env={"COLUMNS": "300"})
    assert res.exit_code == 2, res.output
    assert f"error: cannot connect to scheduler {address}: " in res.output
    assert "Traceback" not in res.output and isinstance(res.exception, SystemExit)


def test_dcsim_ensemble_stays_the_api_function_once_the_module_is_imported():
    """The module dcsim.ensemble (imported by fit, calibration and sensitivity) must not take
    the name of the API function dcsim.ensemble."""
    code = ("import dcsim, dcsim.fit, dcsim.ensemble, dcsim.calibration, dcsim.sensitivity, sys;"
            "assert dcsim.ensemble is dcsim.api.ensemble, dcsim.ensemble;"
            "assert 'distributed' not in sys.modules, 'importing dcsim imported Dask'")
    done = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr


# ------------------------------------------------------------------ a task failing on a worker


def test_a_task_failing_on_a_worker_is_one_line_naming_it_and_the_worker(dask_client):
    def boom(task: int) -> int:  # defined here: sent by value, raises on the worker
        raise ImportError(f"No module named 'pyarrow' (simulated, task {task})")

    (worker,) = dask_client.scheduler_info()["workers"]
    with pytest.raises(WorkerError) as failed:
        map_tasks(dask_client, boom, [1, 2], name="dcsim-test")
    message = str(failed.value)
    assert "\n" not in message and message.startswith("task dcsim-test-")
    assert f" failed on worker {worker}: ImportError: No module named 'pyarrow'" in message
    assert "; install dcsim " in message and "on the workers" in message
    assert isinstance(failed.value.__cause__, ImportError)


def test_the_models_own_errors_come_back_from_a_worker_as_they_are(dask_client):
    def refuse(task: int) -> int:
        from dcsim.ensemble import ClusterError

        raise ClusterError(f"the rule files differ (simulated, task {task})")

    with pytest.raises(ensemble_module.ClusterError, match=r"rule files differ \(simulated"):
        map_tasks(dask_client, refuse, [1])


def test_a_task_that_kills_its_worker_is_one_line_naming_the_worker(dask_client):
    from types import SimpleNamespace

    from distributed import KilledWorker

    died = KilledWorker("dcsim-run-x-0", SimpleNamespace(address="tcp://10.0.0.7:4000"), 3)
    message = str(ensemble_module.task_failure(dask_client, "dcsim-run-x-0", died))
    assert message.startswith("task dcsim-run-x-0 killed its worker tcp://10.0.0.7:4000 (out "
                              "of memory, or a crash): ")


def test_workers_that_run_another_dcsim_are_refused(dask_client, monkeypatch):
    check_workers(dask_client)  # the session's workers run this dcsim
    (worker,) = dask_client.scheduler_info()["workers"]
    monkeypatch.setattr(ensemble_module, "dcsim_identity", lambda: ("9.9.9", "0" * 12))
    with pytest.raises(WorkerError) as failed:
        check_workers(dask_client)
    message = str(failed.value)
    assert message.startswith(f"worker {worker} runs another dcsim (")
    assert "; install dcsim 9.9.9 on the workers, as this command runs it (source hash " \
           "000000000000)" in message
    assert failed.value.before_tasks  # the command says nothing of runs kept


def _failing(module: str, function: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The task function `module.function` replaced, in this process, by one that raises
    ImportError on the worker (sent by value, since it is defined here)."""

    def boom(task: object) -> object:
        raise ImportError("No module named 'pyarrow' (simulated)")

    monkeypatch.setattr(importlib.import_module(module), function, boom)


@pytest.mark.parametrize(("command", "module", "function", "kept"), [
    (["ensemble", "--seeds", "1"], "dcsim.ensemble", "run_task", "the finished runs are kept"),
    (["compare", "national-baseline", "exit_law_2011", "--seeds", "1"], "dcsim.ensemble",
     "run_task", "the finished runs are kept"),
    (["fit", "--seeds", "1"], "dcsim.fit", "run_fit_task", None),
    (["sensitivity", "--trajectories", "2"], "dcsim.sensitivity", "run_row", None),
    (["calibrate", "--trials", "1", "--seeds", "5"], "dcsim.calibration", "run_trial_task",
     "the trials done are kept in runs/calibration/journal.log"),
    (["recover", "--trials", "1", "--seeds", "5", "--out", "rec"], "dcsim.recovery",
     "run_trial_task", "the trials done are kept in rec/journal.log"),
])
def test_a_task_failing_on_a_worker_ends_every_command_in_one_line(
        command, module, function, kept, tmp_path, monkeypatch, dask_client):
    _failing(module, function, monkeypatch)
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, [*command, "--scale", "0.001", "--scheduler",
                                   dask_client.scheduler.address], env={"COLUMNS": "300"})
    assert res.exit_code == 1, res.output
    assert "Traceback" not in res.output and isinstance(res.exception, SystemExit)
    (line,) = [x for x in res.output.splitlines() if x.startswith("error: ")]
    assert " failed on worker tcp://127.0.0.1:" in line
    assert ": ImportError: No module named 'pyarrow' (simulated); install dcsim " in line
    assert kept is None or kept in line


def test_an_ensemble_keeps_its_finished_runs_when_a_task_fails_on_a_worker(
        tmp_path, monkeypatch, dask_client_2):
    """Seed 4 fails once seed 3 is finished (two workers: they run side by side); seed 3's
    run stays on disk, and the same command then runs seed 4 only."""

    def fails_after_seed_3(task):  # noqa: ANN001, ANN202 - an ensemble Task
        from dcsim.ensemble import is_finished, run_task  # the worker's own: not replaced

        if task.seed != 4:
            return run_task(task)
        deadline = time.time() + 120
        while not is_finished(Path(task.folder).with_name("seed-3")) and time.time() < deadline:
            time.sleep(0.05)
        raise ImportError("No module named 'pyarrow' (simulated)")

    monkeypatch.setattr(ensemble_module, "run_task", fails_after_seed_3)
    out = tmp_path / "ens"
    cmd = ["ensemble", "--seeds", "2", "--first-seed", "3", "--scale", "0.001", "--out",
           str(out), "--scheduler", dask_client_2.scheduler.address]
    res = CliRunner().invoke(app, cmd, env={"COLUMNS": "300"})
    assert res.exit_code == 1, res.output
    assert f"the finished runs are kept in {out}/runs" in res.output
    (done,) = out.glob("runs/*/seed-3")
    assert is_finished(done) and not list(out.glob("runs/*/seed-4"))
    assert not list(out.glob("runs/*/.seed-*")) and not (out / "manifest.json").exists()
    stamp = (done / HEADLINE_FILE).stat().st_mtime_ns
    monkeypatch.undo()
    res = CliRunner().invoke(app, cmd, env={"COLUMNS": "300"})
    assert res.exit_code == 0, res.output
    assert (done / HEADLINE_FILE).stat().st_mtime_ns == stamp  # not run again
    assert is_finished(done.with_name("seed-4")) and (out / "manifest.json").is_file()
