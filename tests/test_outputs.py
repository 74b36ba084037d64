"""Output folders: a manifest is only ever beside the tables it describes."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dcsim import outputs
from dcsim.outputs import MANIFEST, STAGING_PREFIX, publish


def _writer(tag: str, fail_after: int | None = None):
    def write(folder: Path) -> dict[str, Path]:
        paths = {}
        for i, name in enumerate(("a", "b", "c")):
            if fail_after is not None and i == fail_after:
                raise OSError(errno.ENOSPC, "No space left on device")
            p = folder / f"{name}.parquet"
            p.write_text(f"{tag}-{name}")
            paths[name] = p
        m = folder / MANIFEST
        m.write_text(json.dumps({"tag": tag}))
        paths["manifest"] = m
        return paths
    return write


def test_publish_moves_every_file_into_place_and_leaves_no_staging(tmp_path):
    out = tmp_path / "run"
    paths = publish(out, _writer("one"))
    assert sorted(p.name for p in out.iterdir()) == ["a.parquet", "b.parquet", "c.parquet",
                                                     MANIFEST]
    assert paths["manifest"] == out / MANIFEST and (out / "b.parquet").read_text() == "one-b"


def test_a_failed_write_leaves_the_previous_complete_set(tmp_path):
    out = tmp_path / "run"
    publish(out, _writer("old"))
    with pytest.raises(OSError, match="No space"):
        publish(out, _writer("new", fail_after=2))
    assert json.loads((out / MANIFEST).read_text()) == {"tag": "old"}
    assert {p.read_text() for p in out.glob("*.parquet")} == {"old-a", "old-b", "old-c"}
    assert not list(out.glob(STAGING_PREFIX + "*"))


def test_a_failure_while_moving_leaves_no_manifest(tmp_path, monkeypatch):
    out = tmp_path / "run"
    publish(out, _writer("old"))
    real, moved = outputs.os.replace, []

    def replace(src, dst):
        if moved:
            raise OSError(errno.EIO, "I/O error")
        moved.append(dst)
        real(src, dst)

    monkeypatch.setattr(outputs.os, "replace", replace)
    with pytest.raises(OSError):
        publish(out, _writer("new"))
    assert not (out / MANIFEST).exists()  # tables of two runs: the folder claims nothing


def test_leftovers_of_an_interrupted_run_are_cleared(tmp_path):
    out = tmp_path / "run"
    (out / (STAGING_PREFIX + "x")).mkdir(parents=True)
    (out / (STAGING_PREFIX + "x") / "a.parquet").write_text("half")
    (out / "a.parquet.tmp").write_text("half")
    (out / "old.parquet").write_text("from an earlier version")
    publish(out, _writer("new"), known=("old.parquet",))
    assert sorted(p.name for p in out.iterdir()) == ["a.parquet", "b.parquet", "c.parquet",
                                                     MANIFEST]


# ------------------------------------------------------------------ killed runs


def _cli(args: list[str], cwd: Path) -> list[str]:
    """`dcsim ARGS` as a subprocess of this interpreter, on the package under test."""
    return [sys.executable, "-c", "from dcsim.cli import app; app()", *args]


def _env() -> dict[str, str]:
    import dcsim
    src = str(Path(dcsim.__file__).resolve().parents[1])
    return {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", ""),
            "COLUMNS": "100"}


def claims_are_true(out: Path) -> bool:
    """A folder with a manifest holds every table the manifest names, byte for byte."""
    m = out / MANIFEST
    if not m.exists():
        return True
    manifest = json.loads(m.read_text())
    return all((out / t["file"]).exists()
               and hashlib.sha256((out / t["file"]).read_bytes()).hexdigest() == t["sha256"]
               for t in manifest["tables"].values())


def _tables(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.parquet"))}


def _kill_at(args: list[str], cwd: Path, out: Path, rng: random.Random, sig: int,
             total: float) -> bool:
    """Start the command and kill it: at a random moment, or just after it starts writing.
    True if it was killed while writing (its staging folder was there)."""
    proc = subprocess.Popen(_cli(args, cwd), cwd=cwd, env=_env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    t0 = time.monotonic()
    if rng.random() < 0.5:
        time.sleep(rng.uniform(0.0, total))
    else:  # while the tables are being written or moved into place
        while proc.poll() is None and time.monotonic() - t0 < 3 * total:
            if any(out.glob(STAGING_PREFIX + "*")):
                time.sleep(rng.uniform(0.0, 0.05))
                break
            time.sleep(0.002)
    writing = any(out.glob(STAGING_PREFIX + "*"))
    proc.send_signal(sig)
    proc.wait(timeout=60)
    return writing and proc.returncode != 0


@pytest.mark.slow
def test_killed_runs_never_leave_a_folder_that_claims_to_be_complete(tmp_path):
    """12 kills of `dcsim run` (SIGKILL, SIGTERM, SIGINT) into a folder that held another
    seed's complete run: after each, a manifest (if any) describes the tables beside it; the
    next run into the folder completes with the bytes of an uninterrupted run."""
    run5 = ["run", "--scale", "0.002", "--seed", "5", "--out"]
    ref = tmp_path / "reference"
    t0 = time.monotonic()
    subprocess.run(_cli([*run5, str(ref)], tmp_path), cwd=tmp_path, env=_env(), check=True,
                   capture_output=True, timeout=600)
    total = time.monotonic() - t0
    out = tmp_path / "out"
    subprocess.run(_cli(["run", "--scale", "0.002", "--seed", "6", "--out", str(out)],
                        tmp_path), cwd=tmp_path, env=_env(), check=True, capture_output=True,
                   timeout=600)
    rng = random.Random(12)
    sigs = [signal.SIGKILL, signal.SIGTERM, signal.SIGINT]
    while_writing = 0
    for k in range(12):
        while_writing += _kill_at([*run5, str(out)], tmp_path, out, rng, sigs[k % 3], total)
        assert claims_are_true(out), f"kill {k}: a manifest beside tables it does not describe"
    assert while_writing >= 3, while_writing  # the kills reached the writing, not only startup
    subprocess.run(_cli([*run5, str(out)], tmp_path), cwd=tmp_path, env=_env(), check=True,
                   capture_output=True, timeout=600)
    assert claims_are_true(out) and _tables(out) == _tables(ref)
    assert json.loads((out / MANIFEST).read_text())["seed"] == 5
    assert not list(out.glob(STAGING_PREFIX + "*")) and not list(out.glob("*.tmp"))
