"""Assumption uncertainty: the sampler on densities whose answer is known (a Gaussian, a
truncated uniform), its exact invariants (bounds, walls, resuming, keyed steps), the draws'
placement, the effective sample size, and one tiny run of the whole command: its chain file,
draws, ensemble, tables, `dcsim validate` on its folder and the command's refusals."""

from __future__ import annotations

import dataclasses
import json
import math

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from dcsim.cli import app
from dcsim.compare import find_reform
from dcsim.scenario import load_scenario
from dcsim.uncertainty import (
    CHAIN_FILE,
    Adaptation,
    ChainSettings,
    Problem,
    UncertaintyError,
    draw_indices,
    effective_sample_size,
    read_history,
    reflect,
    run_chains,
    uncertainty,
    write,
)

runner = CliRunner()


def gaussian(mu: np.ndarray, sd: np.ndarray):  # noqa: ANN201 - a LogDensity
    def log_density(points):  # noqa: ANN001, ANN202
        return [(float(-0.5 * np.sum(((p - mu) / sd) ** 2)), {"loss": 0.0}) for p in points]

    return log_density


def kept_states(steps, settings: ChainSettings, chain: int | None = None) -> np.ndarray:
    return np.array([s.x for s in steps if s.step >= settings.burn_in
                     and (chain is None or s.chain == chain)])


# --------------------------------------------------------------------------- the sampler


def test_reflect_folds_into_the_unit_interval():
    z = np.array([0.3, 1.2, -0.3, 2.5, -1.75, 1.0, 0.0])
    assert reflect(z) == pytest.approx([0.3, 0.8, 0.3, 0.5, 0.25, 1.0, 0.0])
    wide = np.random.default_rng(3).normal(0, 10, 10_000)
    r = reflect(wide)
    assert r.min() >= 0.0 and r.max() <= 1.0


def test_chains_recover_a_gaussian_within_their_monte_carlo_error():
    """Mean and sd of a 2-D Gaussian far from the bounds, to within 4 standard errors that
    the chains' own effective sample size gives; acceptance adapted to near 0.234."""
    mu, sd = np.array([0.4, 0.6]), np.array([0.05, 0.1])
    s = ChainSettings(steps=6000, burn_in=1000, chains=2, seed=11, initial_step=0.02)
    start = np.array([0.5, 0.5])
    lp = gaussian(mu, sd)
    steps = run_chains(lp, start, lp([start])[0], s)
    x = kept_states(steps, s)
    for k in range(2):
        ess = sum(effective_sample_size(kept_states(steps, s, c)[:, k]) for c in range(2))
        assert ess > 200  # enough for the tolerances below to mean something
        assert abs(x[:, k].mean() - mu[k]) < 4 * sd[k] / math.sqrt(ess)
        assert abs(x[:, k].std() / sd[k] - 1) < 4 / math.sqrt(2 * ess)
    acc = np.mean([st.accepted for st in steps if st.step >= s.burn_in])
    assert 0.15 < acc < 0.35


def test_a_wall_is_never_crossed_and_the_region_inside_is_sampled_evenly():
    """Density flat where x0 < 0.3 and 0 (-inf) elsewhere: no state ever lies beyond the wall,
    and the kept mean of x0 is the uniform's 0.15 within 4 standard errors."""
    def lp(points):  # noqa: ANN001, ANN202
        return [(0.0 if p[0] < 0.3 else -math.inf, {}) for p in points]

    s = ChainSettings(steps=4000, burn_in=500, chains=2, seed=5, initial_step=0.05)
    start = np.array([0.1, 0.5])
    steps = run_chains(lp, start, lp([start])[0], s)
    assert max(st.x[0] for st in steps) < 0.3
    x0 = kept_states(steps, s)[:, 0]
    ess = sum(effective_sample_size(kept_states(steps, s, c)[:, 0]) for c in range(2))
    assert abs(x0.mean() - 0.15) < 4 * (0.3 / math.sqrt(12)) / math.sqrt(ess)


def test_a_resumed_chain_is_the_chain_that_was_not_interrupted():
    lp = gaussian(np.array([0.3, 0.7, 0.5]), np.array([0.1, 0.1, 0.2]))
    start = np.full(3, 0.5)
    full = ChainSettings(steps=40, burn_in=25, chains=2, seed=9)
    whole = run_chains(lp, start, lp([start])[0], full)
    saved = []

    def save_then_stop(new):  # noqa: ANN001, ANN202 - interrupted after step 11 is saved
        saved.extend(new)
        if new[0].step == 11:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_chains(lp, start, lp([start])[0], full, on_steps=save_then_stop)
    assert len(saved) == 24
    resumed = run_chains(lp, start, lp([start])[0], full, history=saved)
    assert len(resumed) == len(whole) == 80
    for a, b in zip(whole, resumed, strict=True):
        assert (a.chain, a.step, a.accepted) == (b.chain, b.step, b.accepted)
        assert np.array_equal(a.x, b.x) and a.alpha == b.alpha


def test_steps_are_keyed_by_chain_so_adding_a_chain_leaves_the_others_unchanged():
    lp = gaussian(np.array([0.5, 0.5]), np.array([0.1, 0.1]))
    start = np.full(2, 0.5)
    two = run_chains(lp, start, lp([start])[0], ChainSettings(steps=30, burn_in=10, chains=2))
    three = run_chains(lp, start, lp([start])[0], ChainSettings(steps=30, burn_in=10, chains=3))
    for c in (0, 1):
        a = [s.x for s in two if s.chain == c]
        b = [s.x for s in three if s.chain == c]
        assert all(np.array_equal(u, v) for u, v in zip(a, b, strict=True))


def test_the_adaptation_starts_from_the_initial_step_and_learns_the_spread():
    a = Adaptation(np.full(2, 0.5), 0.02)
    assert a.chol() @ a.chol().T == pytest.approx(np.eye(2) * 0.02 ** 2, rel=1e-3)  # + jitter
    for _ in range(3):  # a chain that does not move must not collapse the covariance at once
        a.update(np.full(2, 0.5), 0.0)
    assert np.diag(a.cov).min() > 0.5 * 0.02 ** 2
    rng = np.random.default_rng(1)
    for _ in range(5000):
        a.update(np.array([0.5, 0.5]) + rng.normal(0, [0.1, 0.01]), TARGET)
    assert math.sqrt(a.cov[0, 0]) == pytest.approx(0.1, rel=0.15)
    assert math.sqrt(a.cov[1, 1]) == pytest.approx(0.01, rel=0.15)


TARGET = 0.234


def test_draws_are_spread_over_the_kept_steps_of_every_chain():
    s = ChainSettings(steps=100, burn_in=60, chains=2)
    d = draw_indices(s, 5)
    assert [c for c, _ in d] == [0, 0, 0, 1, 1]
    assert all(60 <= i <= 99 for _, i in d)
    assert (0, 99) in d and (1, 99) in d
    assert len(set(d)) == 5
    with pytest.raises(ValueError, match="kept steps"):
        draw_indices(s, 90)


def test_settings_refuse_what_cannot_be_a_chain():
    with pytest.raises(ValueError, match="burn-in"):
        ChainSettings(steps=10, burn_in=10)
    with pytest.raises(ValueError, match="initial_step"):
        ChainSettings(initial_step=0.0)


def test_effective_sample_size_of_independent_and_correlated_series():
    rng = np.random.default_rng(2)
    n = 20_000
    iid = rng.normal(size=n)
    assert 0.85 * n < effective_sample_size(iid) <= n
    phi = 0.9
    ar = np.empty(n)
    ar[0] = 0.0
    e = rng.normal(size=n)
    for i in range(1, n):
        ar[i] = phi * ar[i - 1] + e[i]
    assert effective_sample_size(ar) == pytest.approx(n * (1 - phi) / (1 + phi), rel=0.3)
    assert effective_sample_size(np.ones(50)) == 1.0


# --------------------------------------------------------------------------- the command

TINY_CHAIN = ChainSettings(steps=4, burn_in=2, chains=2, seed=3)
REFORM = find_reform("alerts_abolished_2011")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, dask_client):
    from dcsim.targets import load_targets

    folder = tmp_path_factory.mktemp("unc")
    sc, tf = load_scenario(), load_targets()
    result = uncertainty(sc, tf, folder, TINY_CHAIN, 3, scale=0.002, client=dask_client,
                         chain_scale=0.002, chain_seeds=(7,), reforms=[REFORM])
    write(result, folder, "test")
    return result, folder


def test_the_chain_file_holds_every_step_and_reads_back_exactly(tiny):
    result, folder = tiny
    table = pd.read_parquet(folder / CHAIN_FILE)
    assert len(table) == TINY_CHAIN.steps * TINY_CHAIN.chains
    assert set(table["phase"]) == {"burn-in", "kept"}
    back = read_history(result.problem, TINY_CHAIN, folder)
    assert all(np.array_equal(a.x, b.x) for a, b in zip(
        sorted(result.steps, key=lambda s: (s.step, s.chain)), back, strict=True))
    for d in result.problem.dims:  # the values written are the unit coordinates mapped
        assert table[d.id].to_numpy() == pytest.approx(
            d.low + table[f"unit.{d.id}"].to_numpy() * (d.high - d.low))


def test_each_draw_is_a_scenario_that_sets_the_chains_values(tiny):
    from dcsim.calibration import values_in_force

    result, _ = tiny
    assert len(result.draws) == 3
    for d in result.draws:
        sc = load_scenario(d.scenario)
        assert not any("calibrated.yaml" in r for r in sc.rules)
        got = values_in_force(result.problem.dims, sc)
        for dim in result.problem.dims:  # as written: rounded to the unit's precision
            assert got[dim.id] == pytest.approx(d.values[dim.id], rel=2e-3, abs=0.51)


def test_the_tables_set_the_draws_beside_the_calibrated_run(tiny):
    result, folder = tiny
    pred = result.predictions
    assert (pred["draws"] == 3).all()
    assert (pred["p05"] <= pred["median"] + 1e-9).all()
    assert (pred["median"] <= pred["p95"] + 1e-9).all()
    off = result.official
    assert set(off.loc[off["date"] > "2020", "role"]) == {"predicted"}
    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["kind"] == "uncertainty" and len(manifest["draws"]) == 3
    post = result.posterior
    assert (post["p05"] >= post["low"] - 1e-12).all() and (post["p95"] <= post["high"]).all()


def test_a_reform_is_run_on_every_draw_and_its_effect_is_the_paired_difference(tiny):
    result, folder = tiny
    eff = result.effects.set_index("key")
    base = pd.read_parquet(folder / "ensemble" / "per_seed.parquet")
    reform = pd.read_parquet(folder / "reform-alerts_abolished_2011" / "per_seed.parquet")
    b = base.set_index(["key", "arm"])["value"]
    r = reform.set_index(["key", "arm"])["value"]
    key = "person_years_under_alerts"
    assert eff.loc[key, "calibrated"] == pytest.approx(
        r[(key, "calibrated+alerts_abolished_2011")] - b[(key, "calibrated")])
    per_draw = [r[(key, f"{d.name}+alerts_abolished_2011")] - b[(key, d.name)]
                for d in result.draws]
    assert eff.loc[key, "median"] == pytest.approx(np.median(per_draw))
    assert eff.loc["alerts", "same_sign"] == 1.0  # no alert after 2011, under every draw
    assert (eff["draws"] == 3).all()


def test_a_draws_arm_names_its_values_so_other_draws_never_reuse_its_runs(tiny):
    from dcsim.uncertainty import draw_arms

    result, _ = tiny
    d = result.draws[0]
    other = dataclasses.replace(d, values={**d.values, result.problem.dims[0].id: -1.0})
    a, b = draw_arms(result.problem, [d])[1], draw_arms(result.problem, [other])[1]
    assert a.scenario_ref == b.scenario_ref and a.description != b.description


def test_validate_reads_the_draws_of_an_uncertainty_folder(tiny):
    from dcsim.validate import run_folder_series

    _, folder = tiny
    series, what = run_folder_series(folder)
    assert len(series) == 3 and "3 draws" in what


def test_a_chain_file_of_other_settings_is_refused_before_any_work(tiny):
    result, folder = tiny
    other = dataclasses.replace(TINY_CHAIN, burn_in=1)
    with pytest.raises(UncertaintyError, match="burn_in"):
        read_history(result.problem, other, folder)
    moved = dataclasses.replace(result.problem, seeds=(8,))
    with pytest.raises(UncertaintyError, match="seeds"):
        read_history(moved, TINY_CHAIN, folder)
    assert read_history(moved, TINY_CHAIN, folder, restart=True) == []


def test_problem_maps_values_to_the_unit_cube_and_back():
    from dcsim.targets import load_targets

    p = Problem.of(load_scenario(), load_targets())
    u = p.to_unit(p.start)
    assert ((u >= 0) & (u <= 1)).all()
    back = p.to_values(u)
    assert all(back[k] == pytest.approx(v) for k, v in p.start.items())


@pytest.mark.parametrize(("args", "needle"), [
    (["--steps", "10", "--burn-in", "10"], "--burn-in"),
    (["--steps", "10", "--burn-in", "5", "--draws", "11"], "--draws"),
    (["--chains", "0"], "--chains"),
    (["--scale", "0"], "--scale"),
    (["--reform", "no_such_reform"], "--reform"),
])
def test_the_command_refuses_bad_arguments_before_any_work(tmp_path, args, needle):
    r = runner.invoke(app, ["uncertainty", *args, "--out", str(tmp_path / "u")])
    assert r.exit_code == 2
    assert needle in r.output and "Traceback" not in r.output
    assert not (tmp_path / "u").exists()


def test_the_command_writes_its_folder_and_prints_within_80_columns(tmp_path, dask_client):
    out = tmp_path / "u"
    r = runner.invoke(app, ["uncertainty", "--steps", "2", "--burn-in", "1", "--chains", "1",
                            "--draws", "1", "--scale", "0.002", "--out", str(out),
                            "--scheduler", dask_client.scheduler.address],
                      env={"COLUMNS": "80"})
    assert r.exit_code == 0, r.output
    assert max(len(line) for line in r.output.splitlines()) <= 80
    assert "\u2026" not in r.output  # Rich cut nothing to an ellipsis
    for name in ("chain.parquet", "posterior.csv", "predictions.csv", "official.csv",
                 "uncertainty.md", "manifest.json", "draws/draw-01.scenario.yaml",
                 "draws/draw-01.yaml", "ensemble/manifest.json"):
        assert (out / name).is_file(), name
    md = (out / "uncertainty.md").read_text()
    assert "--steps 2 --burn-in 1 --chains 1 --draws 1" in md


def test_the_report_points_from_an_uncertainty_folder_to_its_runs(tiny):
    from dcsim.report.source import SourceError, load

    _, folder = tiny
    with pytest.raises(SourceError, match="ensemble"):
        load(folder)
    assert load(folder / "ensemble").kind == "comparison"


def test_split_rhat_is_near_one_for_agreeing_chains_and_large_for_disagreeing_ones():
    from dcsim.uncertainty import split_rhat

    rng = np.random.default_rng(4)
    same = [rng.normal(0, 1, 2000), rng.normal(0, 1, 2000)]
    assert split_rhat(same) == pytest.approx(1.0, abs=0.01)
    apart = [rng.normal(0, 1, 2000), rng.normal(3, 1, 2000)]
    assert split_rhat(apart) > 1.5
    drifting = [np.linspace(0, 10, 2000) + rng.normal(0, 0.1, 2000)]  # one chain, not mixed
    assert split_rhat(drifting) > 1.5
    assert math.isnan(split_rhat([np.ones(100), np.ones(100)]))


def test_the_runs_of_other_draws_are_removed_and_those_of_the_same_kept(tmp_path, tiny):
    from dcsim.uncertainty import forget_other_draws

    result, _ = tiny
    (tmp_path / "ensemble").mkdir()
    (tmp_path / "reform-x").mkdir()
    forget_other_draws(tmp_path, result.draws)  # no list yet: runs of unknown draws go
    assert not (tmp_path / "ensemble").exists()
    (tmp_path / "ensemble").mkdir()
    assert forget_other_draws(tmp_path, result.draws) is False
    assert (tmp_path / "ensemble").exists()
    moved = [dataclasses.replace(result.draws[0], step=result.draws[0].step - 1),
             *result.draws[1:]]
    assert forget_other_draws(tmp_path, moved) is True
    assert not (tmp_path / "ensemble").exists()
