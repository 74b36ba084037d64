"""Compiled code (jit.py): kernels without Numba's CPython wrapper still answer calls from
Python, the engine's handler table is the one it dispatches to, the procedures a helper
process compiles have the engine's own types, and a first compile shared by two processes
gives the same run as one.
"""

from __future__ import annotations

import ast
import hashlib
import inspect
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from dcsim import engine, jit, model, rng
from dcsim.scenario import load_scenario


def test_a_kernel_only_kernels_call_has_no_wrapper_but_answers_python():
    assert type(rng.uniform) is jit.Kernel
    assert type(engine.run_chunk) is not jit.Kernel  # Python calls it: it keeps the wrapper
    keys, ks = np.array([1, 2**63 + 5], np.uint64), np.array([0, 7])
    got = [rng.uniform(keys[i], ks[i]) for i in range(2)]
    np.testing.assert_array_equal(got, rng.uniform_np(keys, ks))
    assert rng.uniform.python_entry.overloads  # the calls went to the twin with the wrapper


def test_handlers_are_those_the_engine_dispatches_to():
    tree = ast.parse(textwrap.dedent(inspect.getsource(engine._handle.py_func)))
    returns = sorted((n for n in ast.walk(tree) if isinstance(n, ast.Return)),
                     key=lambda n: n.lineno)
    called = [f"{n.value.func.value.id}.{n.value.func.attr}" for n in returns]
    listed = [f"{h.py_func.__module__.rsplit('.', 1)[-1]}.{h.py_func.__name__}"
              for h in engine.HANDLERS]
    assert called == listed


def test_a_claim_goes_to_the_first_to_ask(tmp_path):
    assert jit._claim(tmp_path, "3")
    assert not jit._claim(tmp_path, "3")
    assert jit._claim(tmp_path, "4")


def test_without_a_helper_this_process_does_everything(monkeypatch):
    monkeypatch.setenv("DCSIM_COMPILE_HELPER", "0")
    with jit.Helper("model:_compile_helper") as helper:
        assert helper.proc is None
        assert helper.claim("0") and helper.claim("0")
        helper.wait_for(["0"])


def test_the_helpers_work_runs():
    """What the helper process does, here (from the cache, once the kernels are compiled)."""
    claimed = []
    model._compile_helper(lambda item: claimed.append(item) or True, lambda item: None)
    assert claimed == [str(i) for i in reversed(range(len(engine.HANDLERS) + 7))]


_FIRST_COMPILE = """
import hashlib, json, sys
from numba.core import event
rec = event.RecordingListener()
event.register("numba:compile", rec)
from dcsim import engine, model
from dcsim.population import Population
from dcsim.scenario import load_scenario
model.compile_kernels()
prepared = model.prepare(load_scenario(scale=0.002, seed=3))
listed = dict(engine.callees(*model._engine_args(prepared, Population.allocate(0))[2:]))
other = sorted({f"{e.data['dispatcher'].py_func.__name__}" for _, e in rec.buffer
                if e.is_start and e.data["dispatcher"] in listed
                and tuple(e.data["args"]) != tuple(listed[e.data["dispatcher"]])})
run = model.simulate(prepared)
print(json.dumps({"other_types": other, "flows": hashlib.sha256(run.flows).hexdigest()}))
"""


@pytest.mark.slow
@pytest.mark.parametrize("helper", ["1", "0"])
def test_a_first_compile_gives_the_same_run(tmp_path, helper):
    """On an empty cache, with and without the helper process: the run is the same bit for
    bit, and no procedure the helper may compile is compiled with other types than listed
    (it would then be compiled twice)."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path), "DCSIM_COMPILE_HELPER": helper}
    out = subprocess.run([sys.executable, "-c", _FIRST_COMPILE], env=env, check=True,
                         capture_output=True, text=True).stdout
    got = json.loads(out.strip().splitlines()[-1])
    assert got["other_types"] == []
    run = model.simulate(model.prepare(load_scenario(scale=0.002, seed=3)))
    assert got["flows"] == hashlib.sha256(run.flows).hexdigest()
