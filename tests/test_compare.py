"""Paired comparisons: the folder of COMPARISON_FORMAT.md, and intervals computed on the paired
per-seed differences (checked against a direct computation from separate runs, and narrower
than the unpaired interval on a metric the reform moves)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from dcsim.compare import (
    HEADLINE_KEYS,
    INTERVAL_METHOD,
    CompareError,
    Comparison,
    _num,
    _signed,
    headline_values,
    make_arms,
    summary_lines,
    summary_table,
    t_interval,
)
from dcsim.ensemble import run_ensemble
from dcsim.model import prepare, simulate

SCALE = 0.002


SUFFIX = {"T": 1e12, "G": 1e9, "M": 1e6, "k": 1e3}


@given(st.floats(-1e14, 1e14, allow_nan=False).filter(lambda v: v == 0 or abs(v) >= 1e-99))
def test_a_figure_fits_its_column_and_reads_back_within_its_rounding(v):
    """The interval column is four figures wide (29 characters), so a signed figure (from 1e-99
    to 1e14) must stay within 8 characters; 3 significant figures err by at most 0.5%, 2
    (below 0.001) by 5%."""
    text = _signed(v)
    assert len(_num(abs(v))) <= 7 and len(text) <= 8, text
    value = float(text[:-1]) * SUFFIX[text[-1]] if text[-1] in SUFFIX else float(text)
    assert value == pytest.approx(v, rel=0.05 if abs(v) < 1e-3 else 0.005, abs=1e-300)


def test_t_interval_is_the_student_interval_of_the_mean():
    x = np.array([3.0, 5.0, 4.0, 8.0, 6.5])
    mean, lo, hi = t_interval(x)
    half = stats.t.ppf(0.95, 4) * x.std(ddof=1) / math.sqrt(5)
    assert (mean, lo, hi) == pytest.approx((x.mean(), x.mean() - half, x.mean() + half))
    m1, lo1, hi1 = t_interval(np.array([2.0]))
    assert m1 == 2.0 and math.isnan(lo1) and math.isnan(hi1)


def test_summary_differences_are_paired_by_seed():
    """Per-seed values with a large shared seed effect: the difference's interval is that of
    the per-seed differences, and it is narrower than the level's."""
    rng = np.random.default_rng(3)
    seeds = list(range(10))
    shared = rng.normal(0, 100, 10)
    rows = []
    for k in HEADLINE_KEYS:
        for s in seeds:
            rows.append((k, "base", s, 1000 + shared[s]))
            rows.append((k, "reform", s, 1000 + shared[s] - 5 + rng.normal(0, 1)))
    per_seed = pd.DataFrame(rows, columns=["key", "arm", "seed", "value"])
    table = summary_table(per_seed, ["base", "reform"])
    assert len(table) == 3 * len(HEADLINE_KEYS)
    key = HEADLINE_KEYS[0]
    d = table[(table.key == key) & (table.kind == "difference")].iloc[0]
    x = per_seed[per_seed.key == key].pivot(index="seed", columns="arm", values="value")
    diff = (x["reform"] - x["base"]).to_numpy()
    assert (d["mean"], d["lo"], d["hi"]) == pytest.approx(t_interval(diff))
    level = table[(table.key == key) & (table.kind == "level") & (table.arm == "reform")].iloc[0]
    assert d["hi"] - d["lo"] < 0.1 * (level["hi"] - level["lo"])
    assert set(table.columns) == {"key", "label", "unit", "arm", "kind", "mean", "lo", "hi",
                                  "n_seeds", "depends_on"}


def test_arms_errors_are_clear():
    with pytest.raises(CompareError, match="no rule overlay, package reform or scenario"):
        make_arms(None, ["no_such_reform"])
    with pytest.raises(CompareError, match="after the period ends.*national-projection"):
        make_arms(None, ["exit_law_2026"])
    with pytest.raises(CompareError, match="two arms would be named"):
        make_arms(None, ["deletion_2011", "deletion_2011"])
    arms = make_arms("national-projection", ["exit_law_2026"])
    assert [a.name for a in arms] == ["national-projection", "exit_law_2026"]
    assert "paper fn 35" in arms[1].sources and arms[1].description


def _check_contract(folder: Path, arms: list[str], seeds: list[int]) -> Comparison:
    c = Comparison.read(folder)
    m = c.manifest
    assert m["kind"] == ("comparison" if len(arms) > 1 else "ensemble")
    assert (m["arms"], m["baseline"], m["seeds"], m["interval"]) == (arms, arms[0], seeds, 0.9)
    assert m["interval_method"] == INTERVAL_METHOD and m["scale"] == SCALE
    for name, digest in m["tables"].items():
        import hashlib

        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest
    for a in arms:
        for s in seeds:
            run = folder / m["runs"][a][str(s)]
            for t in ("monthly", "exit", "intrusion_summary", "intrusions_per_person_year",
                      "paper_figures"):
                assert (run / f"{t}.parquet").is_file()
            assert json.loads((run / "manifest.json").read_text())["seed"] == s
    ms = c.to_df("monthly")
    assert str(ms["month"].dtype).startswith("datetime64")
    assert set(ms.kind) == ({"level", "difference"} if len(arms) > 1 else {"level"})
    assert "records_deleted" in set(ms.metric)
    assert all(len(line) <= 80 for line in summary_lines(c))
    return c


def test_a_small_comparison_writes_the_contract(tmp_path):
    arms = make_arms(None, ["deletion_2011"])
    c = run_ensemble(arms, [5, 6], tmp_path / "cmp", scale=SCALE, workers=1)
    _check_contract(tmp_path / "cmp", ["national-baseline", "deletion_2011"], [5, 6])
    mean, lo, hi = c.difference("records_deleted_at_end", "deletion_2011")
    assert mean > 0
    assert c.difference("person_years_under_control", "deletion_2011") == (0.0, 0.0, 0.0)


@pytest.mark.slow
def test_ten_seed_paired_intervals_match_a_direct_computation(tmp_path):
    """The comparison's intervals equal those computed here from separate runs of each seed,
    and on a metric the reform moves the paired interval is narrower than the unpaired one
    (Welch's interval of the difference of the two arms' means)."""
    seeds = list(range(200, 210))
    arms = make_arms(None, ["exit_law_2011"])
    c = run_ensemble(arms, seeds, tmp_path / "cmp", scale=SCALE, workers=2)
    _check_contract(tmp_path / "cmp", [a.name for a in arms], seeds)
    direct = {a.name: [headline_values(simulate(prepare(a.load(scale=SCALE, seed=s))))
                       for s in seeds] for a in arms}
    base, reform = (np.array([[v[k] for k in HEADLINE_KEYS] for v in direct[a.name]]).T
                    for a in arms)
    for i, key in enumerate(HEADLINE_KEYS):
        mean, lo, hi = t_interval(reform[i] - base[i])
        got = c.difference(key, "exit_law_2011")
        assert got == pytest.approx((mean, lo, hi), rel=1e-12, abs=1e-9, nan_ok=True), key
    assert c.difference("person_years_under_control", "exit_law_2011")[2] < 0  # fewer
    narrower = []
    for i, key in enumerate(HEADLINE_KEYS):
        mean, lo, hi = c.difference(key, "exit_law_2011")
        if not (lo > 0 or hi < 0):
            continue  # only metrics the reform moves
        va, vb = base[i].var(ddof=1) / 10, reform[i].var(ddof=1) / 10
        if va + vb == 0:
            continue
        dof = (va + vb) ** 2 / (va**2 / 9 + vb**2 / 9)
        unpaired = 2 * stats.t.ppf(0.95, dof) * math.sqrt(va + vb)
        if hi - lo < unpaired:
            narrower.append(key)
    assert narrower, "pairing narrowed no interval of a metric the reform moves"


@pytest.mark.parametrize("args,message", [
    (["compare", "national-baseline", "exit_law_2026", "--scale", "0.002"], "after the period"),
    (["compare", "national-baseline", "exit_law_2011", "--seeds", "0"], "--seeds"),
    (["compare", "national-baseline", "nowhere"], "no rule overlay"),
    (["compare", "national-baseline", "exit_law_2011", "--scheduler", "nowhere"],
     "--scheduler"),
    (["ensemble", "--seeds", "2", "--scheduler", "tcp://127.0.0.1:99999"], "--scheduler"),
    (["run", "--overlay", "nowhere.yaml", "--scale", "0.002"], "--overlay"),
])
def test_cli_errors_exit_2_before_any_run(args, message):
    from typer.testing import CliRunner

    from dcsim.cli import app

    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
