"""Output folders that never claim more than they hold.

A command's files are written into a staging folder inside the target and moved into place
only when every one is written, the manifest last and the old manifest removed first. A run
killed at any moment therefore leaves either the previous complete set or a folder without a
manifest: never a manifest beside tables it does not describe. Staging folders left by a
killed run are removed by the next run into the same folder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["MANIFEST", "STAGING_PREFIX", "publish"]

MANIFEST = "manifest.json"
STAGING_PREFIX = ".partial-"


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def _clear_stale(out: Path, names: set[str], current: Path) -> None:
    """Staging folders and half-written files that an interrupted earlier run left."""
    for p in out.iterdir():
        if p == current:
            continue
        if p.name.startswith(STAGING_PREFIX) and p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        elif p.name.endswith(".tmp") and p.name[: -len(".tmp")] in names:
            p.unlink(missing_ok=True)


def publish(out: str | Path, write: Callable[[Path], dict[str, Path]],
            known: tuple[str, ...] = ()) -> dict[str, Path]:
    """Call `write(staging)` (which writes its files into the empty folder `staging` and
    returns {name: path}) and move the files into `out`, manifest last. `known` names files
    of earlier runs that this run does not rewrite: they are removed, so no stale table sits
    beside a new manifest. Returns the paths in `out`. On any error nothing of this run is
    left in `out`, and the previous run's manifest only if none of its files was touched."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out))
    try:
        written = write(staging)
        files = {name: Path(p) for name, p in written.items()}
        names = {p.name for p in files.values()}
        _clear_stale(out, names | set(known), staging)
        for p in files.values():
            _fsync_file(p)
        (out / MANIFEST).unlink(missing_ok=True)  # the old set no longer claims completeness
        _fsync_dir(out)
        for stale in set(known) - names:
            (out / stale).unlink(missing_ok=True)
        placed = {}
        manifest = [(n, p) for n, p in files.items() if p.name == MANIFEST]
        for name, p in [*((n, p) for n, p in files.items() if p.name != MANIFEST), *manifest]:
            target = out / p.name
            os.replace(p, target)
            placed[name] = target
            if p.name == MANIFEST:
                _fsync_dir(out)
        _fsync_dir(out)
        return placed
    finally:
        shutil.rmtree(staging, ignore_errors=True)
