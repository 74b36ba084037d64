"""Output folders: a manifest is only ever beside the tables it describes."""

from __future__ import annotations

import errno
import json
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
