"""Calibration: the overlay it writes (valid, within the search bounds, references kept, no
sourced value changed), resuming an interrupted study, batches of trials as Dask tasks (the
same study on one or two workers), and the reduced scale it runs at."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import re

import numpy as np
import optuna
import pytest
import yaml

from dcsim import calibration
from dcsim.calibration import (
    OVERLAY_NAME,
    apply,
    base_scenario,
    calibrate,
    changes_for,
    dimensions,
    embedded_overlay_path,
    evaluate_values,
    overlay_problems,
    rule_windows,
)
from dcsim.catalogue import Par
from dcsim.model import prepare, simulate
from dcsim.rules import RuleStack, is_assumption, load_rule_file
from dcsim.scenario import load_scenario
from dcsim.targets import default_targets_path, evaluate_all, load_targets

TINY = 0.002


@pytest.fixture(scope="module")
def base_stack(scenario):
    base = base_scenario(scenario)
    return RuleStack([load_rule_file(base.rule_path(n)) for n in base.rules])


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, scenario, targets, dask_client):
    """Three trials at scale 0.002, one seed: the overlay and the study behind it."""
    d = tmp_path_factory.mktemp("cal")
    out = d / OVERLAY_NAME
    result = calibrate(scenario, targets, d / "journal.log", trials=3, scale=TINY, seeds=[7],
                       out=out, client=dask_client)
    return result, out


# ------------------------------------------------------------------ the overlay


def test_tiny_calibration_writes_a_loadable_overlay(tiny, targets):
    result, out = tiny
    assert result.trials_complete == 3 and result.overlay == out
    overlay = load_rule_file(out)  # the strict loader: file, line, key on any problem
    assert overlay.jurisdiction == "national"
    fitted_names = {w.name for d in result.dimensions for w in d.windows}
    assert set(overlay.parameters) == fitted_names
    assert len(result.dimensions) == len(targets.calibration.fitted)


def test_overlay_values_lie_within_the_search_bounds(tiny):
    result, out = tiny
    overlay = load_rule_file(out)
    for d in result.dimensions:
        x = result.best[d.id]
        assert d.low <= x <= d.high, d.id
        for w in d.windows:
            got = overlay.parameters[w.name]
            (written,) = [v for v in got.windows if v.start == w.start]
            if d.mode == "factor":
                ratio = written.value / w.value
                assert d.low * (1 - 1e-3) <= ratio <= d.high * (1 + 1e-3), w.label
            else:
                assert d.low <= written.value <= d.high, w.label
                assert written.value == pytest.approx(x, rel=1e-3, abs=0.5 if
                                                      w.unit == "day" else 1e-6)


def test_overlay_keeps_references_and_adds_calibrated(tiny, base_stack):
    result, out = tiny
    overlay = load_rule_file(out)
    fitted = {(w.name, w.start) for d in result.dimensions for w in d.windows}
    for name, p in overlay.parameters.items():
        for w in p.windows:
            base, _ = base_stack.window(name, w.start)
            assert w.reference == base.reference, (name, w.start)
            assert w.range == base.range
            if (name, w.start) in fitted:
                assert w.calibrated and "targets.yaml" in w.calibrated
                assert str(dt.date.today()) in w.calibrated
                assert is_assumption(w.reference)
            else:
                assert w.calibrated == base.calibrated and w.value == base.value
    assert overlay_problems(overlay, base_stack) == []


def test_applying_values_matches_the_overlay_file(tiny, scenario):
    """The fast path (model.with_values) and the YAML path give the same rule table."""
    result, out = tiny
    base = base_scenario(scenario).model_copy(update={"scale": TINY})
    fast = apply(prepare(base), changes_for(result.dimensions, result.best, base.end))
    via_file = prepare(base.model_copy(update={"rules": [*base.rules, str(out)]}))
    np.testing.assert_allclose(fast.table, via_file.table, rtol=1e-3, atol=0.5)
    col = Par.DRUG_USE__RELAPSE_PROBABILITY__HEROIN
    assert via_file.table[0, 0, col] == pytest.approx(result.best["relapse_probability"],
                                                      rel=1e-3)


# ------------------------------------------------------------------ no sourced value changes


def test_embedded_overlay_changes_no_value_with_a_source(scenario, base_stack):
    """The overlay the default scenario uses: every changed value is labelled assumption."""
    assert scenario.rules[-1] == "dcsim:" + OVERLAY_NAME  # last base file: localities override
    overlay = load_rule_file(embedded_overlay_path())
    assert overlay_problems(overlay, base_stack) == []
    changed = 0
    for name, p in overlay.parameters.items():
        for w in p.windows:
            base, _ = base_stack.window(name, w.start)
            assert w.reference == base.reference
            if w.value != base.value:
                changed += 1
                assert is_assumption(base.reference), (name, w.start, base.reference)
                assert w.calibrated
    assert changed > 0


def test_overlay_problems_catch_a_changed_paper_value(tmp_path, base_stack):
    text = ("jurisdiction: national\ndescription: bad\nparameters:\n"
            "  alerts.contact_probability:\n    unit: probability\n    values:\n"
            "      - {from: 2006-01-01, value: 0.3, reference: \"paper fn 22 (contact made 26% "
            "of the time, one district)\", calibrated: \"targets.yaml, 2026-01-01\"}\n")
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    problems = overlay_problems(load_rule_file(p), base_stack)
    assert any("has no assumption part" in x for x in problems), problems
    p.write_text(text.replace("paper fn 22 (contact made 26% of the time, one district)",
                              "assumption: anything"))
    assert any("reference changed" in x for x in overlay_problems(load_rule_file(p),
                                                                  base_stack))


def test_a_sourced_value_cannot_be_listed_for_fitting(tmp_path, scenario):
    text = default_targets_path().read_text().replace(
        "windows: [{name: drug_use.mortality_per_year, from: 2006-01-01}]",
        "windows: [{name: alerts.contact_probability, from: 2006-01-01}]")
    p = tmp_path / "targets.yaml"
    p.write_text(text)
    with pytest.raises(ValueError, match="has no 'assumption:' part"):
        dimensions(load_targets(p), scenario)


def test_fitted_windows_are_assumptions_from_base_files(targets, scenario):
    base = base_scenario(scenario)
    base_files = {str(base.rule_path(n)) for n in base.rules}
    for d in dimensions(targets, scenario):
        for w in d.windows:
            assert w.is_assumption and w.file in base_files, w.label
            # in force everywhere: no locality file overrides a fitted value
            assert len(w.in_force) == len(scenario.jurisdictions), w.label


def test_base_scenario_drops_only_the_overlay(scenario):
    base = base_scenario(scenario)
    assert "dcsim:" + OVERLAY_NAME in scenario.rules
    assert base.rules == [n for n in scenario.rules if n != "dcsim:" + OVERLAY_NAME]
    assert base.jurisdictions == scenario.jurisdictions


# ------------------------------------------------------------------ resuming


def _study(storage):
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    store = JournalStorage(JournalFileBackend(str(storage)))
    (name,) = optuna.get_all_study_names(store)
    return optuna.load_study(study_name=name, storage=store)


def test_interrupted_calibration_resumes_from_its_storage(tmp_path, scenario, targets,
                                                         dask_client):
    storage = tmp_path / "journal.log"

    def stop_after_two(study, trial):
        if trial.number == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        calibrate(scenario, targets, storage, trials=4, scale=TINY, seeds=[3],
                  callbacks=[stop_after_two], client=dask_client)
    first = _study(storage)
    assert [t.number for t in first.trials] == [0, 1]
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in first.trials)
    seen = []
    result = calibrate(scenario, targets, storage, trials=4, scale=TINY, seeds=[3],
                       progress=lambda done, total, best: seen.append(done), client=dask_client)
    assert seen[0] == 2  # it found the two trials already done
    assert result.trials_complete == 4
    study = _study(storage)
    assert [t.number for t in study.trials] == [0, 1, 2, 3]  # numbers continue
    # the rule files' own values are tried once, as the first trial, not again on resume
    start = {d.id: d.start for d in result.dimensions}
    assert study.trials[0].params == pytest.approx(start)
    assert study.trials[2].params != pytest.approx(start)
    # a finished study asked for the same number of trials runs none
    again = calibrate(scenario, targets, storage, trials=4, scale=TINY, seeds=[3],
                      client=dask_client)
    assert again.trials_complete == 4 and len(_study(storage).trials) == 4


def test_a_changed_spec_starts_a_new_study(tmp_path, scenario, targets, dask_client):
    storage = tmp_path / "journal.log"
    a = calibrate(scenario, targets, storage, trials=1, scale=TINY, seeds=[3],
                  client=dask_client)
    b = calibrate(scenario, targets, storage, trials=1, scale=TINY, seeds=[4],
                  client=dask_client)
    assert a.study_name != b.study_name and b.trials_complete == 1


def test_values_in_force_are_the_overlays_and_the_base_files_starts(scenario, targets):
    """--warm starts from the calibrated overlay: for each dimension the overlay's value (a
    factor on the base value in factor mode); without the overlay, the rule files' start."""
    dims = calibration.dimensions(targets, scenario)
    warm = calibration.values_in_force(dims, scenario)
    cold = calibration.values_in_force(dims, base_scenario(scenario))
    assert cold == pytest.approx({d.id: d.start for d in dims})
    overlay = RuleStack([load_rule_file(calibration.embedded_overlay_path())])
    for d in dims:
        w = d.windows[0]
        if w.name not in overlay.names():
            assert warm[d.id] == pytest.approx(cold[d.id])
            continue
        value = overlay.window(w.name, w.start)[0].value
        expected = value / w.value if d.mode == "factor" else value
        assert warm[d.id] == pytest.approx(min(max(expected, d.low), d.high), rel=1e-9)
    assert warm != cold


def test_a_warm_study_tries_the_values_in_force_first(tmp_path, scenario, targets,
                                                      dask_client):
    storage = tmp_path / "journal.log"
    cold = calibrate(scenario, targets, storage, trials=1, scale=TINY, seeds=[3],
                     client=dask_client)
    warm = calibrate(scenario, targets, storage, trials=2, scale=TINY, seeds=[3],
                     client=dask_client, warm=True)
    assert warm.study_name != cold.study_name  # a different first trial, another study
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    store = JournalStorage(JournalFileBackend(str(storage)))
    study = optuna.load_study(study_name=warm.study_name, storage=store)
    first = calibration.values_in_force(warm.dimensions, scenario)
    assert study.trials[0].params == pytest.approx(first)
    assert study.trials[1].params == pytest.approx({d.id: d.start for d in warm.dimensions})


def test_only_fits_the_named_dimension_and_restates_the_others(tmp_path, scenario, targets,
                                                             dask_client):
    """--only: every other dimension is held at its value in force in every trial, and the
    overlay restates its windows as the overlay in force has them (value, calibrated: and
    note); only the named one gains a new calibrated:."""
    out = tmp_path / OVERLAY_NAME
    fit = "isolation_to_rehab_2018"
    result = calibrate(scenario, targets, tmp_path / "j.log", trials=2, scale=TINY, seeds=[3],
                       out=out, client=dask_client, only=[fit])
    in_force = calibration.values_in_force(dimensions(targets, scenario), scenario)
    assert set(result.held) == set(in_force) - {fit}
    assert all(result.best[k] == in_force[k] for k in result.held)
    shipped = RuleStack([load_rule_file(embedded_overlay_path())])
    today = dt.date.today().isoformat()
    for name, p in load_rule_file(out).parameters.items():
        for w in p.windows:
            was, _ = shipped.window(name, w.start)
            if (name, w.start) == ("pathways.isolation_to_rehab", dt.date(2018, 6, 1)):
                assert f"{today}: dcsim calibrate, {fit} = " in w.calibrated
            else:
                assert (w.value, w.calibrated, w.note) == (was.value, was.calibrated, was.note)
    assert f"# Fitted here: {fit}; the other {len(result.held)} values" in out.read_text()


def test_only_refuses_a_dimension_the_targets_do_not_fit(tmp_path, monkeypatch, targets,
                                                        scenario):
    from typer.testing import CliRunner

    from dcsim.cli import app

    dims = dimensions(targets, scenario)
    with pytest.raises(ValueError, match="--only: nope is not a fitted dimension"):
        calibration.hold_others(dims, ["nope"], {})
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["calibrate", "--only", "relapse_probability,nope"],
                             env={"COLUMNS": "200"})
    assert res.exit_code == 2
    assert res.output.startswith("error: --only: nope: not a fitted dimension")
    assert len(res.output.strip().splitlines()) == 1 and "Traceback" not in res.output
    assert not (tmp_path / "runs").exists()  # refused before any work


# ------------------------------------------------------------------ batches of trials as tasks

BATCH = {"trials": 5, "scale": TINY, "seeds": [3, 4], "batch": 2}


@pytest.fixture(scope="module")
def batched(tmp_path_factory, scenario, targets, dask_client):
    """Five trials in batches of two ([0], [1, 2], [3, 4]), two seeds, on one worker."""
    storage = tmp_path_factory.mktemp("batched") / "journal.log"
    return calibrate(scenario, targets, storage, client=dask_client, **BATCH), storage


def _trials(storage):
    return [(t.number, t.state, t.params, t.value, t.user_attrs.get("values"))
            for t in _study(storage).trials]


def test_batches_give_the_same_study_on_one_and_two_workers(batched, tmp_path, scenario,
                                                            targets, dask_client_2):
    one, one_storage = batched
    two = calibrate(scenario, targets, tmp_path / "journal.log", client=dask_client_2, **BATCH)
    assert _trials(tmp_path / "journal.log") == _trials(one_storage)
    assert (two.best_loss, two.best, two.best_values) == (one.best_loss, one.best,
                                                         one.best_values)
    trials = _study(one_storage).trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 5
    # the chosen trial's loss is reported beside the lowest of any trial, never instead of it
    assert one.lowest_loss == min(t.value for t in trials) <= one.best_loss
    assert one.best_loss in [t.value for t in trials]
    # trials 1 and 2 (then 3 and 4) were asked together: each started before the other ended
    for a, b in ((1, 2), (3, 4)):
        assert trials[b].datetime_start < trials[a].datetime_complete
        assert trials[a].params != trials[b].params
    assert trials[1].datetime_start >= trials[0].datetime_complete  # the queued trial alone


def test_a_sequential_study_starts_as_a_batched_one(batched, tmp_path, scenario, targets,
                                                    dask_client):
    """The first trials (the rule files' values, then one drawn by the sampler seeded by the
    trials complete) are the same one at a time as in batches. Later trials may differ, as
    each batch is drawn without its earlier trials' scores; with few trials TPE often draws
    the same, so that is not asserted (a study is reproduced with its own --batch)."""
    _, storage = batched
    calibrate(scenario, targets, tmp_path / "j.log", client=dask_client,
              **{**BATCH, "batch": 1, "trials": 3})
    seq, bat = _study(tmp_path / "j.log").trials, _study(storage).trials
    assert [t.params for t in seq[:2]] == [t.params for t in bat[:2]]


def test_a_trial_on_the_workers_is_the_model_run_here(batched, scenario, targets):
    """The mean of a trial's runs on the workers is evaluate_values's, bit for bit."""
    result, _ = batched
    base = base_scenario(scenario).model_copy(update={"scale": TINY})
    mean, _ = evaluate_values(prepare(base), targets, BATCH["seeds"],
                              changes_for(result.dimensions, result.best, base.end))
    assert mean == result.best_values


def test_a_batch_interrupted_while_it_runs_resumes_exactly(batched, tmp_path, scenario,
                                                           targets, dask_client, monkeypatch):
    """Interrupted while the last batch's tasks run: its trials are closed as failed, and the
    resumed study draws and completes the trials of the uninterrupted one."""
    _, storage = batched
    real, calls = calibration.map_tasks, []

    def interrupt_third(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(calibration, "map_tasks", interrupt_third)
    with pytest.raises(KeyboardInterrupt):
        calibrate(scenario, targets, tmp_path / "j.log", client=dask_client, **BATCH)
    monkeypatch.setattr(calibration, "map_tasks", real)
    first = _study(tmp_path / "j.log").trials
    assert [t.state.name for t in first] == ["COMPLETE"] * 3 + ["FAIL"] * 2
    calibrate(scenario, targets, tmp_path / "j.log", client=dask_client, **BATCH)
    done = [t for t in _study(tmp_path / "j.log").trials
            if t.state == optuna.trial.TrialState.COMPLETE]
    assert [(t.params, t.value) for t in done] == [(t.params, t.value)
                                                  for t in _study(storage).trials]


def test_cli_calibrate_resumes(tmp_path, dask_client):
    from typer.testing import CliRunner

    from dcsim.cli import app

    runner = CliRunner()
    args = ["calibrate", "--trials", "2", "--scale", str(TINY), "--seeds", "5",
            "--storage", str(tmp_path / "j.log"), "--out", str(tmp_path / OVERLAY_NAME),
            "--batch", "2", "--scheduler", dask_client.scheduler.address]
    res = runner.invoke(app, args, env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    assert max(len(ln) for ln in res.output.splitlines()) <= 80
    assert "\u2026" not in res.output  # nothing cut to an ellipsis
    words = set(res.output.replace(",", " ").split())
    for d in load_targets().calibration.fitted:  # each value and what it informs, whole
        assert d.id in words and set(d.informs) <= words, d.id
    text = " ".join(res.output.split())  # the lines joined again
    assert "in batches of 2" in text
    assert f"(scheduler {dask_client.scheduler.address})" in text
    assert "overlay written" in text and (tmp_path / OVERLAY_NAME).exists()
    res2 = runner.invoke(app, [*args[:2], "3", *args[3:]], env={"COLUMNS": "200"})
    assert res2.exit_code == 0, res2.output
    assert len(_study(tmp_path / "j.log").trials) == 3
    assert yaml.safe_load((tmp_path / OVERLAY_NAME).read_text())["jurisdiction"] == "national"


# ------------------------------------------------------------------ the reduced scale


def test_rule_windows_cover_every_value_in_force(scenario):
    windows = rule_windows(scenario)
    keys = [w.key for w in windows]
    assert len(keys) == len(set(keys))
    by_j = {j.id: 0 for j in scenario.jurisdictions}
    for w in windows:
        for j, _, _ in w.in_force:
            by_j[j] += 1
    assert min(by_j.values()) > 100


@pytest.mark.slow
def test_calibration_scale_is_unbiased_against_full_scale(targets):
    """Every target at the calibration scale (10 seeds) matches full scale (2 seeds) within
    Monte Carlo error (4 standard errors, plus 0.1% for rounding entries to whole persons)."""
    import pandas as pd

    from dcsim.fit import scale_check

    sc = load_scenario()
    small_scale = targets.calibration.scale

    def values(scale: float, seeds: list[int]) -> pd.DataFrame:
        p = prepare(sc.model_copy(update={"scale": scale}))
        rows = []
        for s in seeds:
            run = simulate(dataclasses.replace(p, scenario=p.scenario.model_copy(
                update={"seed": s})))
            rows.append(evaluate_all(targets, run))
            del run
        return pd.DataFrame(rows)

    small = values(small_scale, list(range(1000, 1010)))
    full = values(1.0, [2000, 2001])
    check = scale_check(small, full, small_scale)
    bad = check[~check["within"]]
    assert bad.empty, bad.to_string()


def test_a_torn_last_journal_line_is_cut_and_a_damaged_one_named(tmp_path):
    from dcsim.calibration import CalibrationStorageError, repair_journal

    j = tmp_path / "journal.log"
    j.write_bytes(b'{"op_code": 0}\n{"op_code": 1}\n{"op_co')
    assert "torn" in repair_journal(j)
    assert j.read_bytes() == b'{"op_code": 0}\n{"op_code": 1}\n'
    assert repair_journal(j) is None
    j.write_bytes(b'{"op_code": 0}\nnot json\n{"op_code": 1}\n')
    with pytest.raises(CalibrationStorageError, match=r"journal\.log:2: not a journal record"):
        repair_journal(j)
    assert "moved" in repair_journal(j, restart=True) and not j.exists()
    assert len(list(tmp_path.glob("journal.log.damaged-*"))) == 1


def test_a_journal_has_one_owner_and_a_killed_owners_lock_is_cleared(tmp_path):
    from dcsim.calibration import CalibrationStorageError, _own_journal

    j = tmp_path / "journal.log"
    (tmp_path / "journal.log.lock").symlink_to(j)  # what Optuna leaves when killed
    first = _own_journal(j)
    assert not os.path.lexists(tmp_path / "journal.log.lock")
    with pytest.raises(CalibrationStorageError, match="another dcsim calibrate"):
        _own_journal(j)
    first.close()
    _own_journal(j).close()


def test_a_worse_calibration_never_replaces_a_better_one(tmp_path):
    from dcsim.calibration import WorseCalibrationError, check_replace, overlay_loss

    shipped = embedded_overlay_path()
    old = overlay_loss(shipped)
    assert old is not None and old > 0
    target = tmp_path / "calibrated.yaml"
    target.write_bytes(shipped.read_bytes())
    meets = calibration.overlay_meets_hard(shipped) is True
    with pytest.raises(WorseCalibrationError, match="--force"):
        check_replace(target, old + 0.01, force=False, meets_hard=meets)
    check_replace(target, old + 0.01, force=True)
    # the same loss (rounded as written) is no worse
    check_replace(target, old, force=False, meets_hard=meets)
    check_replace(tmp_path / "none.yaml", 99.0, force=False)


def _overlay_head(loss: float, met: str | None) -> str:
    line = f"# 10 trials at scale 0.02, seeds [1]; best loss {loss:.3f}; dcsim source x.\n"
    return line + (f"# Trial 3; hard targets met: {met} (1 of 10 trials meet them).\n"
                   if met else "")


@pytest.mark.parametrize(("old_met", "new_loss", "new_meets", "refused"), [
    ("no", 30.0, True, False),  # meeting the hard targets beats a lower loss that misses one
    (None, 30.0, True, False),  # an overlay that does not say is taken as missing them
    ("yes", 10.0, False, True),  # a lower loss that misses a hard target is worse
    ("yes", 20.5, True, True),  # both meet them: the loss decides
    ("yes", 19.5, True, False),
    ("no", 20.5, False, True),  # both miss: the loss decides
])
def test_a_calibration_that_meets_the_hard_targets_ranks_first(tmp_path, old_met, new_loss,
                                                              new_meets, refused):
    from dcsim.calibration import WorseCalibrationError, check_replace, overlay_meets_hard

    out = tmp_path / "calibrated.yaml"
    out.write_text(_overlay_head(20.0, old_met) + "jurisdiction: national\n")
    assert overlay_meets_hard(out) is (None if old_met is None else old_met == "yes")
    if refused:
        with pytest.raises(WorseCalibrationError, match="nothing written"):
            check_replace(out, new_loss, force=False, meets_hard=new_meets)
    else:
        check_replace(out, new_loss, force=False, meets_hard=new_meets)


def _study_of(trials: list[tuple[float, dict[str, float]]]):  # noqa: ANN202 - a study
    study = optuna.create_study()
    dist = {"x": optuna.distributions.FloatDistribution(0.0, 1.0)}
    for i, (value, values) in enumerate(trials):
        study.add_trial(optuna.trial.create_trial(
            value=value, params={"x": i / 10}, distributions=dist,
            user_attrs={"values": values}))
    return study


def test_the_chosen_trial_is_the_best_that_meets_every_hard_target(targets):
    from dcsim.calibration import chosen_trial, meets_hard_targets

    hard = [t for t in targets.targets if t.kind == "hard"]
    inside = {t.id: _inside(t) for t in targets.targets}
    missed = dict(inside, **{hard[0].id: _outside(hard[0])})
    assert meets_hard_targets(targets, inside) and not meets_hard_targets(targets, missed)
    assert not meets_hard_targets(targets, {k: v for k, v in inside.items()
                                            if k != hard[-1].id})  # not measured: fails
    near = [t for t in hard if t.tolerance.interval is not None][0]
    lo, hi = near.tolerance.interval
    edge = dict(inside, **{near.id: hi - 0.01 * (hi - lo)})  # inside, within the margin
    assert targets.calibration.hard_margin > 0.01 and not meets_hard_targets(targets, edge)
    study = _study_of([(5.0, missed), (7.0, inside), (6.0, inside), (6.0, inside)])
    trial, n = chosen_trial(study, targets)
    assert (trial.number, n) == (2, 3)  # the lowest loss among the three; ties: the earlier
    far = dict(inside, **{hard[0].id: _outside(hard[0]), hard[1].id: _outside(hard[1])})
    trial, n = chosen_trial(_study_of([(3.0, far), (5.0, missed), (4.0, far)]), targets)
    assert (trial.number, n) == (1, 0)  # none meets them: the nearest to meeting them
    trial, n = chosen_trial(_study_of([(5.0, missed), (4.0, missed)]), targets)
    assert (trial.number, n) == (1, 0)  # none meets them: the lowest loss


def _inside(t) -> float:  # noqa: ANN001 - a Target
    tol = t.tolerance
    return sum(tol.interval) / 2 if tol.interval is not None else t.value


def _outside(t) -> float:  # noqa: ANN001 - a Target
    tol = t.tolerance
    if tol.interval is not None:
        return tol.interval[0] - 1.0
    gap = tol.relative * abs(t.value) if tol.relative is not None else tol.absolute
    return t.value + 2 * gap


@pytest.mark.slow
def test_killed_calibrations_resume_to_the_bytes_of_an_uninterrupted_one(tmp_path):
    """12 kills of `dcsim calibrate` at random moments of its trials (SIGKILL, SIGTERM,
    SIGINT): the overlay is never half written, the journal stays readable, no trial is
    lost or counted twice, and the resumed study writes the overlay an uninterrupted one
    writes, byte for byte."""
    import os
    import random
    import re
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    import dcsim

    env = {**os.environ, "COLUMNS": "100", "PYTHONPATH": str(Path(dcsim.__file__).resolve(
        ).parents[1]) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-c", "from dcsim.cli import app; app()", "calibrate", "--trials",
           "4", "--scale", str(TINY), "--seeds", "5", "--storage", "j.log", "--out", "c.yaml"]
    ref, work = tmp_path / "ref", tmp_path / "work"
    ref.mkdir()
    work.mkdir()
    t0 = time.monotonic()
    subprocess.run(cmd, cwd=ref, env=env, check=True, capture_output=True, timeout=900)
    total = time.monotonic() - t0
    rng = random.Random(4)
    sigs = [signal.SIGKILL, signal.SIGTERM, signal.SIGINT]
    for k in range(12):
        journal = work / "j.log"
        size = journal.stat().st_size if journal.exists() else 0
        proc = subprocess.Popen(cmd, cwd=work, env=env, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        if k % 4 == 3:  # any moment
            time.sleep(rng.uniform(0.0, total))
        else:  # during a trial: once this process has logged a trial's parameters
            t1 = time.monotonic()
            while proc.poll() is None and time.monotonic() - t1 < 2 * total:
                if journal.exists() and journal.stat().st_size > size and re.search(
                        r'"op_code":\s*5\b', journal.read_bytes()[size:].decode(errors="replace")):
                    break
                time.sleep(0.005)
            time.sleep(rng.uniform(0.0, 0.3))
        proc.send_signal(sigs[k % 3])
        proc.wait(timeout=120)
        if (work / "c.yaml").exists():  # written only once complete, never half
            assert load_rule_file(work / "c.yaml").parameters
    subprocess.run(cmd, cwd=work, env=env, check=True, capture_output=True, timeout=900)
    assert (work / "c.yaml").read_bytes() == (ref / "c.yaml").read_bytes()
    trials = _study(work / "j.log").trials
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 4
    killed = [t for t in trials if t.state == optuna.trial.TrialState.FAIL]
    assert len(killed) >= 3, len(killed)  # kills that stopped a trial, closed and requeued
    assert [t.params for t in done] == [t.params for t in _study(ref / "j.log").trials]


def test_cli_calibrate_never_writes_into_the_package_by_default(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from dcsim.cli import app

    shipped = embedded_overlay_path()
    before = shipped.read_bytes()
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(app, ["calibrate", "--trials", "1", "--scale", str(TINY),
                                   "--seeds", "5"], env={"COLUMNS": "200"})
    assert res.exit_code == 0, res.output
    assert shipped.read_bytes() == before
    written = tmp_path / "runs" / "calibration" / OVERLAY_NAME
    assert load_rule_file(written).parameters


def test_cli_calibrate_refuses_to_replace_a_better_overlay_unless_forced(tmp_path,
                                                                       dask_client):
    from typer.testing import CliRunner

    from dcsim.cli import app

    out = tmp_path / OVERLAY_NAME
    better = re.sub(r"best loss [0-9.]+", "best loss 0.001", embedded_overlay_path().read_text(),
                    count=1)
    # both miss a hard target (one trial at a tiny scale does), so the loss decides
    better = re.sub(r"hard targets met: yes", "hard targets met: no", better, count=1)
    assert better != embedded_overlay_path().read_text()
    out.write_text(better)
    args = ["calibrate", "--trials", "1", "--scale", str(TINY), "--seeds", "5", "--storage",
            str(tmp_path / "j.log"), "--out", str(out), "--scheduler",
            dask_client.scheduler.address]
    res = CliRunner().invoke(app, args, env={"COLUMNS": "300"})
    assert res.exit_code == 2 and "best loss 0.001" in res.output and "--force" in res.output
    assert out.read_text() == better
    res = CliRunner().invoke(app, [*args, "--force"], env={"COLUMNS": "300"})
    assert res.exit_code == 0, res.output
    assert out.read_text() != better and load_rule_file(out).parameters


def test_compass_points_move_one_value_at_a_time_within_the_bounds(targets, scenario):
    from dcsim.calibration import compass_points

    dims = dimensions(targets, scenario)
    center = {d.id: d.clip(d.low + 0.05 * (d.high - d.low)) for d in dims}
    points = compass_points(center, dims, 0.1)
    for p in points:
        moved = [d for d in dims if p[d.id] != center[d.id]]
        assert len(moved) == 1
        d = moved[0]
        assert d.low <= p[d.id] <= d.high
    # 5% above the bottom, a step of 10% down is cut at the bound, up is a full step
    for d in dims:
        ups = [p[d.id] for p in points if p[d.id] > center[d.id]]
        downs = [p[d.id] for p in points if p[d.id] < center[d.id]]
        assert ups == [pytest.approx(center[d.id] + 0.1 * (d.high - d.low))]
        assert len(downs) == (1 if center[d.id] > d.low else 0)


def test_polish_searches_around_the_chosen_trial(tmp_path, scenario, targets, dask_client):
    """One round of compass search after one trial: every new trial is the first trial with
    one value moved by a tenth of its range; the result is never worse than that trial; the
    same call on a fresh journal gives the same trials (deterministic)."""
    import optuna as _optuna

    from dcsim.calibration import POLISH_STEP, combined_move, compass_points

    def run(path):
        return calibrate(scenario, targets, path, trials=1, scale=TINY, seeds=[5],
                         client=dask_client, polish=1)

    one = run(tmp_path / "a.log")
    dims = one.dimensions
    store, owner = calibration._storage(tmp_path / "a.log")
    try:
        trials = _optuna.load_study(study_name=one.study_name, storage=store).get_trials()
    finally:
        owner.close()
    first = trials[0]
    expected = compass_points(dict(first.params), dims, POLISH_STEP)
    assert [t.params for t in trials[1:1 + len(expected)]] == expected
    both = combined_move(_FakeStudy(trials[:1 + len(expected)]), first, expected, targets)
    assert [t.params for t in trials[1 + len(expected):]] == ([] if both is None else [both])
    assert one.trials_complete == 1 + len(expected) + (both is not None)
    if calibration.meets_hard_targets(targets, first.user_attrs["values"]) or not one.meets_hard:
        assert one.best_loss <= first.value  # the chosen trial is at least the center's equal
    two = run(tmp_path / "b.log")
    assert (two.best, two.best_loss) == (one.best, one.best_loss)


class _FakeStudy:
    """Complete trials only: what combined_move reads of a study."""

    def __init__(self, trials) -> None:  # noqa: ANN001
        self.trials = trials

    def get_trials(self, deepcopy: bool = False, states=()):  # noqa: ANN001, ARG002
        return self.trials


def _trial(number: int, params: dict, value: float):  # noqa: ANN202
    import optuna as _optuna

    dist = {k: _optuna.distributions.FloatDistribution(0.0, 1.0) for k in params}
    t = _optuna.trial.create_trial(params=params, distributions=dist, value=value,
                                   user_attrs={"values": {}})
    t.number = number
    return t


def _round(center, points: list, losses: list) -> list:  # noqa: ANN001
    return [center] + [_trial(k + 1, p, v)
                       for k, (p, v) in enumerate(zip(points, losses, strict=True))]


def test_combined_move_takes_every_improving_move_and_needs_two(targets):
    """The better of each value's two moves, if it beats the center; None with one."""
    from dcsim.calibration import combined_move

    center = _trial(0, {"a": 0.5, "b": 0.5, "c": 0.5}, 10.0)
    points = [{"a": 0.4, "b": 0.5, "c": 0.5}, {"a": 0.6, "b": 0.5, "c": 0.5},
              {"a": 0.5, "b": 0.4, "c": 0.5}, {"a": 0.5, "b": 0.6, "c": 0.5},
              {"a": 0.5, "b": 0.5, "c": 0.4}, {"a": 0.5, "b": 0.5, "c": 0.6}]
    losses = [9.0, 8.0, 11.0, 9.5, 12.0, 10.0]  # a up best, b up improves, c never
    trials = _round(center, points, losses)
    assert combined_move(_FakeStudy(trials), center, points, targets) == {
        "a": 0.6, "b": 0.6, "c": 0.5}
    losses[3] = 10.5  # only a improves: the round's best move already is the combination
    trials = _round(center, points, losses)
    assert combined_move(_FakeStudy(trials), center, points, targets) is None
