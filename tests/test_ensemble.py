"""Ensembles on Dask distributed: the same bytes whatever the number of workers, an existing
cluster reached through --scheduler, and an ensemble killed at random moments that resumes
without redoing or losing a finished run."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import dcsim
from dcsim.cli import app
from dcsim.compare import make_arms
from dcsim.ensemble import HEADLINE_FILE, is_finished, run_ensemble

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


def _start(cmd: list[str], log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=_env(), stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def _stop(p: subprocess.Popen) -> None:
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()


@pytest.mark.slow
def test_an_ensemble_runs_on_an_existing_cluster_through_scheduler(tmp_path):
    """A scheduler and a worker started as separate processes on 127.0.0.1."""
    sched_file = tmp_path / "scheduler.json"
    dask = [sys.executable, "-m", "distributed.cli.dask_scheduler"]
    sched = _start([*dask, "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
                    "--scheduler-file", str(sched_file)], tmp_path / "scheduler.log")
    worker = None
    try:
        deadline = time.time() + 60
        while not sched_file.exists() and time.time() < deadline:
            time.sleep(0.2)
        import json

        address = json.loads(sched_file.read_text())["address"]
        assert address.startswith("tcp://127.0.0.1:")
        worker = _start([sys.executable, "-m", "distributed.cli.dask_worker", address,
                         "--host", "127.0.0.1", "--nthreads", "1", "--nworkers", "1",
                         "--no-dashboard"], tmp_path / "worker.log")
        result = CliRunner().invoke(app, ["ensemble", "national-baseline", "--seeds", "2",
                                          "--scale", str(SCALE), "--scheduler", address,
                                          "--out", str(tmp_path / "ens")])
        assert result.exit_code == 0, result.output
        assert f"scheduler {address}" in result.output
        assert all(is_finished(p) for p in (tmp_path / "ens").glob("runs/*/seed-*"))
        assert (tmp_path / "ens" / "manifest.json").is_file()
    finally:
        for p in (worker, sched):
            if p is not None:
                _stop(p)


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
