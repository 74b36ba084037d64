"""Argument checks: each bad value refused with the argument's name and what is allowed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dcsim import checks
from dcsim.checks import ArgumentError

SRC = str(Path(checks.__file__).resolve().parents[1])


@pytest.mark.parametrize("value", [0, -3, 10_001, True, 2.5])
def test_int_in_refuses_out_of_range_and_non_integers(value):
    with pytest.raises(ArgumentError, match=r"^--seeds: must be a whole number"):
        checks.int_in("--seeds", value, 1, 10_000)


@pytest.mark.parametrize("value", [0.0, -0.1, 1.5, float("nan"), float("inf")])
def test_float_in_refuses_outside_open_interval(value):
    with pytest.raises(ArgumentError, match=r"^--scale: must be a number in \(0, 1\]"):
        checks.float_in("--scale", value, 0.0, 1.0, low_open=True)
    assert checks.float_in("--scale", 1.0, 0.0, 1.0, low_open=True) == 1.0


@pytest.mark.parametrize("text", ["", " ", "1,,2", "1,a", "-1", "1,1", str(2**63)])
def test_seed_list_refuses_bad_lists(text):
    with pytest.raises(ArgumentError, match=r"^--seeds: "):
        checks.seed_list("--seeds", text)
    assert checks.seed_list("--seeds", " 101, 102") == [101, 102]


def test_output_folder_refuses_files_devices_and_the_package(tmp_path):
    f = tmp_path / "a_file"
    f.write_text("x")
    cases = {f: "not a folder", f / "under": "not a folder", Path("/dev/null"): "system path",
             checks.package_folder() / "data": "inside the installed dcsim package",
             "": "empty"}
    for path, why in cases.items():
        with pytest.raises(ArgumentError, match=why):
            checks.output_folder("--out", path)
    new = tmp_path / "new" / "deeper"
    assert checks.output_folder("--out", new) == new.resolve()
    assert not new.exists() and not list(tmp_path.glob("new*"))  # the check creates nothing
    assert checks.output_folder("--out", checks.package_folder() / "x", allow_package=True)


def test_output_folder_refuses_a_name_too_long_to_create(tmp_path):
    with pytest.raises(ArgumentError, match="too long"):
        checks.output_folder("--out", tmp_path / ("x" * 300))


def test_output_folder_refuses_a_symlink_loop(tmp_path):
    (tmp_path / "a").symlink_to(tmp_path / "b")
    (tmp_path / "b").symlink_to(tmp_path / "a")
    with pytest.raises(ArgumentError, match="--out"):
        checks.output_folder("--out", tmp_path / "a" / "x")


def test_output_folder_refuses_an_unwritable_folder(tmp_path, monkeypatch):
    # as root, permissions do not stop writes, so the probe's failure is what is tested
    def refuse(*_a, **_k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(checks.tempfile, "mkstemp", refuse)
    with pytest.raises(ArgumentError, match="^--out: cannot write in .*Permission denied"):
        checks.output_folder("--out", tmp_path / "o")


def test_input_file_refuses_missing_folders_and_fifos(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path, why in {tmp_path / "none": "does not exist", tmp_path: "is a folder",
                      fifo: "not a regular file", Path("/dev/zero"): "not a regular file"}.items():
        with pytest.raises(ArgumentError, match=why):
            checks.input_file("--targets", path)


@pytest.mark.parametrize("value", ["0", "abc", "-1", "", "1025", "1.5"])
def test_bad_thread_setting_is_refused_before_numba_starts(value):
    assert "NUMBA_NUM_THREADS" in checks.environment_problem({"NUMBA_NUM_THREADS": value})
    assert checks.environment_problem({"NUMBA_NUM_THREADS": "2"}) is None
    assert checks.environment_problem({}) is None


def test_bad_thread_setting_ends_the_program_with_one_line():
    env = {**os.environ, "NUMBA_NUM_THREADS": "0", "PYTHONPATH": SRC}
    res = subprocess.run([sys.executable, "-c", "import dcsim.cli"], env=env,
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    assert res.stderr.strip().splitlines() == [
        "error: NUMBA_NUM_THREADS='0': must be a whole number from 1 to 1024 "
        "(or unset: one thread per core)"]


@pytest.mark.parametrize("text", ["nowhere", "tcp://127.0.0.1", "127.0.0.1:0", ":8786",
                                  "host:99999", "host:port"])
def test_scheduler_endpoint_refuses_what_cannot_be_an_address(text):
    with pytest.raises(ArgumentError, match="--scheduler"):
        checks.scheduler_endpoint("--scheduler", text)


@pytest.mark.parametrize("text", ["tcp://127.0.0.1:8786", "127.0.0.1:8786", "tls://h:1"])
def test_scheduler_endpoint_takes_host_and_port(text):
    assert checks.scheduler_endpoint("--scheduler", text) == text
