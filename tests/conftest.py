"""Shared fixtures: one small baseline run per session, and writers for overlays and scenarios.

The baseline run (scale 0.002, about 11,000 modelled persons, 2006-2025) is computed once and
shared read-only by every test file; tests must not modify its arrays. The first run of a
session compiles the Numba kernels (cached on disk afterwards).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from dcsim.catalogue import CATALOGUE
from dcsim.measures import Flow
from dcsim.model import Prepared, Run, prepare, simulate, trace_person
from dcsim.scenario import Scenario, load_scenario
from dcsim.state import S
from dcsim.targets import TargetsFile, load_targets

BASELINE_SCALE = 0.002
BASELINE_SEED = 1
START = dt.date(2006, 1, 1)

ENTRY_FLOWS = [
    Flow.ENTRIES_DETAINED_POSITIVE, Flow.ENTRIES_STOPPED_NOT_DETAINED, Flow.ENTRIES_VOLUNTARY,
    Flow.ENTRIES_DATA_ERROR, Flow.ENTRIES_PRE_LAUNCH,
]


def day_of(date: dt.date, start: dt.date = START) -> int:
    """Model day of a calendar date (day 0 is the scenario start)."""
    return (date - start).days


def month_of(date: dt.date, start: dt.date = START) -> int:
    """Month index of a calendar date in a run's monthly arrays."""
    return (date.year - start.year) * 12 + (date.month - start.month)


def entries(run: Run) -> np.ndarray:
    """Entries per [jurisdiction, month], all paths."""
    return run.flows[:, :, ENTRY_FLOWS].sum(axis=2)


def jur(run: Run, name: str) -> int:
    return run.prepared.jurisdictions.index(name)


def blank_state() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(s, f, keys, k) for calling procedure kernels directly: a registered person under
    control, alive, with no events pending (all day fields NEVER where that means 'none')."""
    from dcsim.state import NEVER, F, K

    s = np.zeros(int(S.N), np.int64)
    f = np.zeros(int(F.N), np.float64)
    keys = np.zeros(int(K.N), np.uint64)
    k = np.zeros(int(K.N), np.int64)
    s[S.ALIVE] = 1
    s[S.IN_REGISTRY] = 1
    s[S.APP] = -1
    s[S.CTRL_BAND] = -1
    s[S.ALERT_BAND] = -1
    s[S.REG_START] = -1
    s[S.INSPECT_TIER] = -1
    for fld in (S.ELIGIBLE, S.RELEASE_DUE, S.NEXT_TEST, S.CORRECT, S.USE_NEXT,
                S.FIRST_RELEASE, S.DEATH, S.ORDER_END, S.NEXT_ASSESS):
        s[fld] = NEVER
    return s, f, keys, k


def blank_life(n_days: int = 1000):  # noqa: ANN201 - a state.Life
    """A Life around blank_state() for calling handlers and bookkeeping directly: fresh
    accumulators for n_days days, no stock codes held, zero thinning bounds."""
    from dcsim.measures import N_DIMS, N_INTRUSIONS, N_PERIODIC, N_RATES
    from dcsim.population import Outcome
    from dcsim.state import Bound, Life

    s, f, keys, k = blank_state()
    return Life(s, f, keys, k, np.zeros(N_INTRUSIONS, np.int32),
                np.zeros(len(Outcome), np.int32), np.full(N_DIMS, -1, np.int64),
                np.full(N_DIMS, -1, np.int64), np.zeros(N_PERIODIC),
                np.zeros((n_days + 1, N_RATES), np.int64), np.zeros(int(Bound.N)))


@pytest.fixture(scope="module")
def targets() -> TargetsFile:
    """The embedded targets file, loaded afresh for each test module that asks for it (the
    calibration, recovery and fit tests), so a module cannot see another's changes."""
    return load_targets()


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    """The default scenario (the national baseline with its calibrated overlay, full scale),
    once per test module; the studies of the calibration and recovery tests start from it."""
    return load_scenario()


@pytest.fixture(scope="session")
def baseline_prepared() -> Prepared:
    return prepare(load_scenario(scale=BASELINE_SCALE, seed=BASELINE_SEED))


@pytest.fixture(scope="session")
def baseline(baseline_prepared: Prepared) -> Run:
    """The national baseline at scale 0.002, seed 1 (shared; do not modify)."""
    return simulate(baseline_prepared)


@pytest.fixture(scope="session")
def national_params(baseline_prepared: Prepared) -> np.ndarray:
    """A copy of the national_default rule vector of January 2020 (modify freely per test)."""
    return baseline_prepared.table[0, month_of(dt.date(2020, 1, 1))].copy()


@pytest.fixture()
def P(national_params: np.ndarray) -> np.ndarray:
    return national_params.copy()


@pytest.fixture(scope="session")
def trace_cache(baseline: Run) -> Callable[[int], pd.DataFrame]:
    """trace_person of the baseline, memoised (tracing costs about 10 ms a person)."""
    cache: dict[int, pd.DataFrame] = {}

    def get(i: int) -> pd.DataFrame:
        i = int(i)
        if i not in cache:
            cache[i] = trace_person(baseline, i)
        return cache[i]

    return get


def _date(d: dt.date | str) -> dt.date:
    return d if isinstance(d, dt.date) else dt.date.fromisoformat(d)


def _overlay_text(params: dict[str, object]) -> str:
    """A rule file (jurisdiction national) setting each parameter from 2006 on.

    A value may be a number (from 2006-01-01 on) or a list of (from, to, value) windows (dates
    or ISO strings, `to` None for open-ended); an overlay may start later than 2006, and then
    leaves earlier values (national and local) as they are.
    """
    out: dict[str, object] = {}
    for name, v in params.items():
        if isinstance(v, list):
            windows = []
            for start, end, value in v:
                w = {"from": _date(start), "value": value, "reference": "assumption: test"}
                if end is not None:
                    w["to"] = _date(end)
                windows.append(w)
        else:
            windows = [{"from": START, "value": v, "reference": "assumption: test"}]
        out[name] = {"unit": CATALOGUE[name].unit, "values": windows}
    return yaml.safe_dump({"jurisdiction": "national", "description": "test rules",
                           "parameters": out}, sort_keys=False)


def write_rules(directory: Path, name: str, params: dict[str, object]) -> Path:
    path = directory / name
    path.write_text(_overlay_text(params))
    return path


@pytest.fixture(scope="session")
def run_with(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Run]:
    """run_with(params, scale=..., seed=...): the baseline scenario with an overlay of rules."""
    cache: dict[tuple, Run] = {}

    def run(params: dict[str, object], scale: float = BASELINE_SCALE,
            seed: int = BASELINE_SEED) -> Run:
        key = (repr(sorted(params.items())), scale, seed)
        if key not in cache:
            d = tmp_path_factory.mktemp("overlay")
            path = write_rules(d, "overlay.yaml", params)
            cache[key] = simulate(prepare(load_scenario(scale=scale, seed=seed,
                                                        overlays=[str(path)])))
        return cache[key]

    return run


def write_scenario(directory: Path, *, jurisdictions: list[dict], start: dt.date, end: dt.date,
                   scale: float, seed: int = 7, overlays: list[str] | None = None,
                   rules: list[str] | None = None) -> Path:
    """A scenario file; rule files it names are paths beside it, or dcsim:NAME (shipped)."""
    data = {
        "name": "test-scenario",
        "description": "written by a test",
        "start": start,
        "end": end,
        "scale": scale,
        "seed": seed,
        "rules": rules or ["dcsim:national.yaml", "dcsim:exit_practice.yaml", "dcsim:grid.yaml",
                           "dcsim:apps.yaml"],
        "overlays": overlays or [],
        "jurisdictions": [
            {"reference": "assumption: test", "rules": [], **j} for j in jurisdictions
        ],
        "district_study": {
            "start": dt.date(2013, 1, 1), "end": dt.date(2013, 10, 31),
            "registrants_under_alert": 1300, "reference": "assumption: test",
        },
    }
    path = directory / "scenario.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


# Everyone stays reachable under control: no custody (entrants are stopped but not detained and
# relapses lead to community orders), no lost whereabouts, no release.
REACHABLE = {
    "registration.share.detained_positive": 0.0,
    "registration.share.stopped_not_detained": 1.0,
    "registration.share.voluntary": 0.0,
    "registration.lost_to_follow_up_share": 0.0,
    "pathways.relapse_outside_order_to_isolation": 0.0,
    "pathways.relapse_outside_order_to_detox": 1.0,
    "pathways.positive_in_community_to_isolation": 0.0,
    "exit.release_allowed": 0,
}


@pytest.fixture()
def scenario_to_2012(tmp_path: Path) -> Path:
    """A scenario file: the national baseline ended in 2012, before the 2019 targets."""
    path = tmp_path / "short.yaml"
    path.write_text("extends: national_baseline\nname: short\nend: 2012-12-31\n")
    return path


@pytest.fixture(scope="session")
def tier_run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """Four jurisdictions tier0..tier3, each holding everyone at one risk tier, 2010-2013, with
    no custody (everyone stopped but not detained; relapses lead to community orders), no lost
    whereabouts, no release and the same ID use whether using or not: person-days under
    control are then person-days reachable, and person-days raising alerts."""
    from dcsim.state import Tier

    d = tmp_path_factory.mktemp("tiers")
    write_rules(d, "common.yaml", {
        **REACHABLE,
        "management.step_down_after_days": 100_000,
        "alerts.id_use_multiplier_while_using": 1.0,
    })
    for t in Tier:
        write_rules(d, f"tier{int(t)}.yaml", {
            "management.entry_tier.using": int(t),
            "management.entry_tier.not_using": int(t),
            "management.tier_after_detected_use": int(t),
        })
    path = write_scenario(
        d, jurisdictions=[{"id": f"tier{int(t)}", "share": 0.25, "rules": [f"tier{int(t)}.yaml"]}
                          for t in Tier],
        start=dt.date(2010, 1, 1), end=dt.date(2013, 12, 31), scale=0.01, seed=5,
        overlays=["common.yaml"])
    return simulate(prepare(load_scenario(path)))


@pytest.fixture(scope="session")
def dask_client():  # noqa: ANN201 - a distributed Client
    """One local Dask cluster (1 worker) for the session: the fit, calibration and sensitivity
    tests run their tasks on it instead of starting a cluster per call. Its scheduler's
    address serves the commands' --scheduler."""
    from dcsim.ensemble import dask_client as open_client

    with open_client(workers=1) as client:
        yield client


@pytest.fixture(scope="session")
def dask_client_2():  # noqa: ANN201 - a distributed Client
    """A second local cluster, of 2 workers: the same tasks must give the same results."""
    from dcsim.ensemble import dask_client as open_client

    with open_client(workers=2) as client:
        yield client
