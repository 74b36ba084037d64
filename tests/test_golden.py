"""Optimisations must not change results: a fixed run's outputs hash to a recorded value.

Two fixed runs: the DCS baseline with the uncalibrated national rules (so calibration does not
move it), and the registry-core benchmark model. A change to the engine that changes either
hash is not an optimisation. If a change of model semantics is intended, regenerate with
`DCSIM_UPDATE_GOLDEN=1 python -m pytest tests/test_golden.py` and say why in the commit.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from dcsim import model
from dcsim.measures import Flow
from dcsim.scenario import load_scenario

GOLDEN = Path(__file__).with_name("data") / "golden.json"
BASE_RULES = ["national.yaml", "exit_practice.yaml", "grid.yaml", "apps.yaml"]


def _digest(run: model.Run) -> str:
    """Every flow but ENGINE_EVENTS (a diagnostic: a rule window restated in two parts adds a
    rule-change day, one event a person, and changes nothing else), every stock, activity
    count and person's outcome."""
    h = hashlib.sha256()
    pop = run.population
    flows = np.delete(run.flows, int(Flow.ENGINE_EVENTS), axis=-1)
    for a in (flows, run.stocks, run.activity, pop.entry_day, pop.jurisdiction, pop.path,
              pop.dependent, pop.birth_day, pop.using_at_entry, pop.intrusions, pop.outcome):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def _dcs() -> model.Run:
    return model.simulate(model.prepare(load_scenario(scale=0.002, seed=99, rules=BASE_RULES)))


def _registry_core() -> model.Run:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from benchmarks.peers import dcsim_model

    return model.simulate(dcsim_model.prepare(5000, 1095, 7))


@pytest.mark.parametrize("name,make", [("dcs_baseline", _dcs), ("registry_core", _registry_core)])
def test_outputs_hash_to_the_recorded_value(name, make):
    digest = _digest(make())
    recorded = json.loads(GOLDEN.read_text()) if GOLDEN.exists() else {}
    if os.environ.get("DCSIM_UPDATE_GOLDEN") == "1":
        recorded[name] = digest
        GOLDEN.write_text(json.dumps(recorded, indent=2, sort_keys=True) + "\n")
    assert recorded.get(name) == digest, (
        f"{name}: outputs changed. An optimisation must keep them bit-identical; if the model's "
        "semantics changed on purpose, regenerate tests/data/golden.json (see module docstring)")
