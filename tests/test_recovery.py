"""Recovery check: the truth it draws, the synthetic targets it writes (the model's own values
at the truth, bit for bit, with the likelihoods kept), the near-best ranges it reports, its
files, the command's refusals, and the same study on one or two Dask workers. One tiny study
(scale 0.002, three trials, on the session's one-worker cluster) serves most."""

from __future__ import annotations

import csv
import dataclasses
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from dcsim import checks
from dcsim.calibration import apply, base_scenario, changes_for, dimensions
from dcsim.cli import app
from dcsim.model import prepare, simulate
from dcsim.recovery import (
    CSV_COLUMNS,
    JOURNAL_NAME,
    MIN_NEAR_BEST,
    SYNTHETIC_NAME,
    UNIDENTIFIED_SHARE,
    RecoveryError,
    Settings,
    _study_trials,
    near_best,
    own_losses,
    recover,
    synthetic_targets_text,
    truth_values,
    write,
)
from dcsim.targets import evaluate_all, load_targets, loss

TINY = Settings(scale=0.002, seeds=(7, 8), trials=3, truth="random", truth_seed=5)
runner = CliRunner()


@pytest.fixture(scope="module")
def dims(targets, scenario):
    return dimensions(targets, scenario)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, scenario, targets, dask_client):
    out = tmp_path_factory.mktemp("recovery")
    return recover(scenario, targets, out, TINY, client=dask_client), out


# ------------------------------------------------------------------ the truth


def test_random_truth_lies_in_each_range_and_is_fixed_by_its_seed(dims, scenario):
    a = truth_values(dims, scenario, "random", 5)
    assert a == truth_values(dims, scenario, "random", 5)
    assert a != truth_values(dims, scenario, "random", 6)
    assert list(a) == [d.id for d in dims]
    for d in dims:
        assert d.low <= a[d.id] <= d.high, d.id


def test_random_truth_of_a_dimension_does_not_depend_on_later_ones(dims, scenario):
    """Adding dimensions to targets.yaml keeps the draws of those before them."""
    full = truth_values(dims, scenario, "random", 5)
    assert truth_values(dims[:3], scenario, "random", 5) == {d.id: full[d.id] for d in dims[:3]}


def test_current_truth_is_the_value_in_force_in_the_scenario(dims, scenario):
    truth = truth_values(dims, scenario, "current")
    stacks = dict(zip([j.id for j in scenario.jurisdictions], scenario.stacks(), strict=True))
    for d in dims:
        assert d.low <= truth[d.id] <= d.high, d.id
        if d.mode == "value":
            w = d.windows[0]
            now = stacks[w.in_force[0][0]].window(w.name, w.start)[0].value
            assert truth[d.id] == min(max(now, d.low), d.high), d.id


def test_unknown_truth_mode_is_refused(dims, scenario):
    with pytest.raises(RecoveryError, match="--truth"):
        truth_values(dims, scenario, "median")


# ------------------------------------------------------------------ the synthetic targets


def test_synthetic_targets_are_the_model_at_the_truth_bit_for_bit(tiny, scenario, targets,
                                                                  dims):
    """Rerun the model at the truth, seed by seed: the file holds exactly its mean."""
    result, out = tiny
    base = base_scenario(scenario).model_copy(update={"scale": TINY.scale})
    p = apply(prepare(base), changes_for(dims, result.truth, base.end))
    per_seed = []
    for s in TINY.seeds:
        sc = p.scenario.model_copy(update={"seed": s})
        per_seed.append(evaluate_all(targets, simulate(dataclasses.replace(p, scenario=sc))))
    synthetic = load_targets(out / SYNTHETIC_NAME)
    for t in synthetic.targets:
        assert t.value == float(np.mean([v[t.id] for v in per_seed])), t.id
        assert t.value == result.values_at_truth[t.id], t.id
    assert any(t.value != targets.get(t.id).value for t in synthetic.targets)


def test_synthetic_targets_keep_likelihoods_and_score_zero_at_the_truth(tiny, targets):
    result, out = tiny
    synthetic = load_targets(out / SYNTHETIC_NAME)
    assert synthetic.calibration == targets.calibration
    assert [t.id for t in synthetic.targets] == [t.id for t in targets.targets]
    for s in synthetic.targets:
        t = targets.get(s.id)
        assert (s.measure, s.weight, s.kind, s.unit) == (t.measure, t.weight, t.kind, t.unit)
        a, b = s.likelihood, t.likelihood
        assert a.type == b.type
        if b.type == "interval":  # moved with the value, same width
            assert a.low - s.value == pytest.approx(b.low - t.value, abs=1e-12)
            assert a.high - a.low == pytest.approx(b.high - b.low, abs=1e-12)
            assert a.sd == b.sd
        elif b.type == "normal" and b.sd_relative is not None and s.value == 0.0:
            # a spread relative to a synthetic zero keeps the published figure's spread
            assert a.sd == pytest.approx(b.sd_relative * abs(t.value)) and a.sd_relative is None
        else:  # spreads, binomial n and Poisson counts unchanged
            assert a == b
    assert loss(synthetic, result.values_at_truth) == pytest.approx(0.0, abs=1e-6)


def test_a_target_the_model_cannot_measure_is_refused(targets):
    values = {t.id: 1.0 for t in targets.targets}
    values[targets.targets[0].id] = float("nan")
    with pytest.raises(RecoveryError, match=targets.targets[0].id):
        synthetic_targets_text(targets, values)


# ------------------------------------------------------------------ what came back


def test_near_best_range_is_over_trials_within_the_threshold(dims):
    d0, d1 = dims[0], dims[1]
    mid0, mid1 = (d0.low + d0.high) / 2, (d1.low + d1.high) / 2
    span0 = d0.high - d0.low
    n = MIN_NEAR_BEST
    trials = [({d0.id: mid0, d1.id: d1.low}, 1.0)]  # the best
    trials += [({d0.id: mid0 + 0.1 * span0 * i / (n - 1), d1.id: d1.high}, 2.5)
               for i in range(1, n)]  # within 2 of the best
    trials += [({d0.id: d0.high, d1.id: mid1}, 3.5),  # not within 2
               ({d0.id: d0.low, d1.id: mid1}, float("nan"))]  # failed: ignored
    truth = {d0.id: mid0 + 0.05 * span0, d1.id: mid1}
    r0, r1 = near_best(trials, [d0, d1], truth, threshold=2.0)
    assert (r0.recovered, r0.interval_low) == (mid0, mid0)
    assert r0.interval_high == pytest.approx(mid0 + 0.1 * span0)
    assert r0.trials_near_best == n and r0.truth_inside and r0.verdict == "recovered"
    assert r0.interval_share == pytest.approx(0.1)
    assert r0.error_share == pytest.approx(0.05)  # the best trial, half a width from the truth
    assert r1.error_share == pytest.approx(0.5)
    assert (r1.interval_low, r1.interval_high) == (d1.low, d1.high) and r1.truth_inside
    assert r1.interval_share == pytest.approx(1.0) and UNIDENTIFIED_SHARE < 1.0
    assert r1.verdict == "not identified"
    (r,) = near_best(trials, [d0], {d0.id: d0.high}, threshold=2.0)
    assert r.verdict == "missed"  # outside, and its own targets' loss not given
    (r,) = near_best(trials, [d0], {d0.id: d0.high}, threshold=2.0, own_loss={d0.id: 0.5})
    assert r.verdict == "traded off"  # its targets met at another value
    (r,) = near_best(trials, [d0], {d0.id: d0.high}, threshold=2.0, own_loss={d0.id: 2.5})
    assert r.verdict == "search short"  # its targets still missed
    (r,) = near_best(trials[:n - 1], [d0], truth, threshold=2.0)
    assert r.verdict == "too few trials"  # a narrow range from few trials says nothing yet
    (r,) = near_best(trials[:2], [d1], truth, threshold=2.0)
    assert r.verdict == "not identified"  # a wide range from few trials does


def test_own_losses_are_the_informed_targets_above_the_truth(tiny, dims):
    result, _ = tiny
    own = own_losses(result.targets, dims, result.best_values, result.values_at_truth)
    assert own == {r.id: r.own_loss for r in result.rows}
    by_target = {t: x for t, _, _, x in result.target_losses()}
    for d in dims:  # the truth scores 0 on every target, so the excess is the best's loss
        assert own[d.id] == pytest.approx(sum(by_target.get(t, 0.0) for t in d.informs),
                                          abs=1e-6), d.id


def test_study_results_are_within_the_ranges(tiny, dims):
    result, _ = tiny
    assert result.trials_complete == TINY.trials
    assert [r.id for r in result.rows] == [d.id for d in dims]
    for r in result.rows:
        assert r.low <= r.interval_low <= r.recovered <= r.interval_high <= r.high, r.id
        assert r.low <= r.truth <= r.high
        assert 1 <= r.trials_near_best <= TINY.trials


def test_outputs_have_the_documented_columns(tiny, tmp_path):
    result, _ = tiny
    paths = write(result, tmp_path, "dcsim recover --scale 0.002")
    with open(paths["recovery.csv"], newline="") as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [r["dimension"] for r in rows] == [r.id for r in result.rows]
    assert float(rows[0]["truth"]) == result.rows[0].truth  # written by repr: exact
    md = paths["recovery.md"].read_text()
    assert md.startswith("# Recovery check") and "`dcsim recover --scale 0.002`" in md
    assert "within 2 of the best" in md and "Targets at the best trial" in md
    losses = result.target_losses()
    assert {t for t, *_ in losses} == {t.id for t in result.targets.targets if t.weight > 0}
    assert [x for *_, x in losses] == sorted((x for *_, x in losses), reverse=True)
    assert sum(x for *_, x in losses) == pytest.approx(result.best_loss)
    for r in result.rows:
        assert f"| {r.id}" in md


def test_a_polished_check_adds_a_compass_round_and_says_so(tmp_path, scenario, targets,
                                                           dask_client, dims):
    """--polish 1: after the sampler's trials, one round of compass points around the chosen
    trial (two a dimension, fewer where a bound cancels a move), and the command restates it."""
    import dataclasses

    settings = dataclasses.replace(TINY, trials=2, polish=1)
    result = recover(scenario, targets, tmp_path, settings, client=dask_client)
    assert 2 < result.trials_complete <= 2 + 2 * len(dims)
    assert "--polish 1" in settings.command()
    assert "--polish" not in TINY.command()


# ------------------------------------------------------------------ the command


def test_command_runs_and_writes_its_files(tmp_path):
    out = tmp_path / "rec"
    res = runner.invoke(app, ["recover", "--scale", "0.002", "--seeds", "9", "--trials", "2",
                              "--out", str(out)], env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    for name in (SYNTHETIC_NAME, "journal.log", "recovery.csv", "recovery.md"):
        assert (out / name).stat().st_size > 0, name
    assert "near-best range" in res.output and "not identified: " in res.output
    table = res.output[res.output.index("recovery:"):res.output.index("near-best range:")]
    assert max(len(line) for line in table.splitlines()) <= 80
    assert "\u2026" not in res.output  # Rich cut nothing to an ellipsis


@pytest.mark.parametrize(("args", "message"), [
    (["--scale", "0"], "--scale"),
    (["--scale", "1.5"], "--scale"),
    (["--trials", "0"], "--trials"),
    (["--seeds", "1,1"], "--seeds"),
    (["--seeds", "a"], "--seeds"),
    (["--truth", "median"], "--truth"),
    (["--truth", "current", "--truth-seed", "3"], "--truth-seed"),
    (["--truth-seed", "-1"], "--truth-seed"),
    (["--threshold", "0"], "--threshold"),
    (["--polish", "-1"], "--polish"),
    (["--targets", "no/such/targets.yaml"], "--targets"),
    (["--out", str(checks.package_folder() / "recovery")], "inside the installed dcsim package"),
    (["--batch", "0"], "--batch"),
    (["--workers", "0"], "--workers"),
    (["--scheduler", "nope"], "--scheduler"),
    (["--scheduler", "tcp://127.0.0.1:99999"], "--scheduler"),
])
def test_bad_arguments_are_refused_by_name_before_any_work(args, message, tmp_path):
    if "--out" not in args:
        args = [*args, "--out", str(tmp_path / "rec")]
    res = runner.invoke(app, ["recover", *args], env={"COLUMNS": "200"})
    assert res.exit_code == 2, res.output
    assert message in res.output and "Traceback" not in res.output
    assert not (tmp_path / "rec").exists()
    assert not (checks.package_folder() / "recovery").exists()


def test_a_scheduler_that_cannot_be_reached_is_one_line_before_any_run(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules["dcsim.ensemble"], "CONNECT_TIMEOUT", "1s")
    address = "tcp://127.0.0.1:1"  # nothing listens on port 1
    res = runner.invoke(app, ["recover", "--scale", "0.002", "--scheduler", address, "--out",
                              str(tmp_path / "rec")], env={"COLUMNS": "300"})
    assert res.exit_code == 2, res.output
    assert f"error: cannot connect to scheduler {address}: " in res.output
    assert "Traceback" not in res.output and isinstance(res.exception, SystemExit)
    assert "compiling" not in res.output  # no compile for a remote cluster's workers
    assert not (tmp_path / "rec").exists()  # nothing run, nothing written


# ------------------------------------------------------------------ on Dask


def test_the_same_check_on_one_and_two_workers(tiny, tmp_path, scenario, targets,
                                               dask_client_2):
    """Batch 1 (TINY): the runs at the truth, every trial and every verdict are the same
    whatever the number of workers (the tiny check ran on one)."""
    one, one_out = tiny
    two = recover(scenario, targets, tmp_path, TINY, client=dask_client_2)
    assert two.truth == one.truth and two.values_at_truth == one.values_at_truth
    assert (tmp_path / SYNTHETIC_NAME).read_bytes() == (one_out / SYNTHETIC_NAME).read_bytes()
    trials = _study_trials(tmp_path / JOURNAL_NAME, two.study_name)
    assert len(trials) == TINY.trials
    assert trials == _study_trials(one_out / JOURNAL_NAME, one.study_name)
    assert (two.best_loss, two.best_values) == (one.best_loss, one.best_values)
    assert [repr(r) for r in two.rows] == [repr(r) for r in one.rows]  # repr: NaN == NaN


def test_command_gives_the_same_files_on_two_local_workers_and_on_a_scheduler(tmp_path,
                                                                               dask_client):
    """--workers, --scheduler and --batch reach the study: batches of 2 on a new local
    cluster of two workers and on the session's one-worker cluster give the same bytes."""
    args = ["recover", "--scale", "0.002", "--seeds", "9,10", "--trials", "3", "--batch", "2"]
    address = dask_client.scheduler.address
    two = runner.invoke(app, [*args, "--workers", "2", "--out", str(tmp_path / "two")],
                        env={"COLUMNS": "300"})
    assert two.exit_code == 0, two.output
    assert "3 trials in batches of 2" in two.output
    assert "(local Dask cluster, 2 workers)" in two.output
    one = runner.invoke(app, [*args, "--scheduler", address, "--out", str(tmp_path / "one")],
                        env={"COLUMNS": "300"})
    assert one.exit_code == 0, one.output
    assert f"(scheduler {address})" in one.output
    for name in (SYNTHETIC_NAME, "recovery.csv"):
        assert (tmp_path / "two" / name).read_bytes() == (tmp_path / "one" / name).read_bytes()
    md = (tmp_path / "two" / "recovery.md").read_text()
    assert "--trials 3 " in md and "--batch 2" in md and "3 trials in batches of 2;" in md
