"""The fit report: columns, the pass/fail logic against each target's tolerance, the saved
table and plots, the command, the same report on one or two Dask workers, and the scale check
behind the calibration scale."""

from __future__ import annotations

import dataclasses
import io
import math

import numpy as np
import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from dcsim.cli import _print_fit, app
from dcsim.fit import TABLE_COLUMNS, compact, fit, fit_table, markdown, scale_check, write
from dcsim.model import prepare, simulate
from dcsim.scenario import load_scenario
from dcsim.targets import evaluate_all, load_targets

SMALL = 0.002


@pytest.fixture(scope="module")
def report(targets, dask_client):
    return fit(load_scenario(scale=SMALL), targets, seeds=[11, 12, 13], client=dask_client)


def test_table_has_one_row_per_target_and_the_columns(report, targets):
    table = report.table
    assert list(table.columns) == TABLE_COLUMNS
    assert list(table["id"]) == [t.id for t in targets.targets]
    assert list(report.values.index) == [11, 12, 13]
    for _, r in table.iterrows():
        x = report.values[r["id"]]
        assert r["model_mean"] == pytest.approx(x.mean())
        eps = 1e-9 * abs(r["model_mean"])  # a value equal in every seed: rounding only
        assert r["model_p05"] - eps <= r["model_mean"] <= r["model_p95"] + eps
        assert r["relative_error"] == pytest.approx((x.mean() - r["published"])
                                                    / r["published"])


def _values(targets, **overrides):
    """Two seeds that both give the published value, except where overridden."""
    row = {t.id: t.value for t in targets.targets}
    row.update(overrides)
    return pd.DataFrame([row, row], index=[1, 2])


def test_pass_fail_follows_each_tolerance(targets):
    cases = {
        "existing_users_2019": (2_200_000 * 1.049, 2_200_000 * 1.051),  # 5%
        "abstinent_2019": (2_500_000 * 0.951, 2_500_000 * 0.949),
        "district_alerts_per_day": (11.97 * 1.04, 11.97 * 0.94),
        "district_contact_share": (0.279, 0.2815),  # 2 points
        "district_drug_related_share": (0.0189, 0.0086),  # 0.5 points
        "relapse_6_months": (0.70, 0.40),  # inside [46.3%, 75.8%]
    }
    for tid, (good, bad) in cases.items():
        ok = fit_table(targets, _values(targets, **{tid: good})).set_index("id")
        ko = fit_table(targets, _values(targets, **{tid: bad})).set_index("id")
        assert ok.loc[tid, "passes"], tid
        assert not ko.loc[tid, "passes"], tid
    nan = fit_table(targets, _values(targets, existing_users_2019=math.nan)).set_index("id")
    assert not nan.loc["existing_users_2019", "passes"]


def test_mean_not_a_single_seed_is_judged(targets):
    v = _values(targets)
    v.loc[1, "existing_users_2019"] = 2_200_000 * 1.08
    v.loc[2, "existing_users_2019"] = 2_200_000 * 0.94
    row = fit_table(targets, v).set_index("id").loc["existing_users_2019"]
    assert row["model_mean"] == pytest.approx(2_200_000 * 1.01) and row["passes"]


def test_markdown_marks_hard_failures_and_soft_misses(targets):
    v = _values(targets, existing_users_2019=3e6, survey_travel=0.2)
    md = markdown(fit_table(targets, v))
    lines = {ln.split(" | ")[0].strip("| "): ln for ln in md.splitlines()[2:]}
    assert lines["existing (current) users, end of 2019"].rstrip(" |").endswith("FAIL")
    assert lines["felt the DCS when travelling (2011 survey)"].rstrip(" |").endswith("miss")
    assert "| 90% interval |" in md.splitlines()[0]


def test_write_saves_table_values_and_one_plot_per_series(report, tmp_path):
    paths = write(report, tmp_path)
    saved = pd.read_parquet(paths["fit"])
    assert list(saved.columns) == TABLE_COLUMNS and len(saved) == len(report.table)
    assert pd.read_parquet(paths["values"]).shape[0] == 3
    groups = {t.series for t in report.targets.targets if t.series}
    assert {"registry", "official_statistics", "drug_mix", "official_stocks",
            "official_orders"} <= groups
    for g in groups:
        png = paths[f"plot_{g}"]
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    assert paths["fit_md"].read_text().count("\n") == len(report.table) + 2


def test_series_cover_every_month_and_hit_the_target_values(report, targets):
    n_m = len(report.months)
    for group, lines in report.series.items():
        for arr in lines.values():
            assert arr.shape == (3, n_m), group
    # the drug-mix line passes through the model's values at the target dates
    (line,) = report.series["drug_mix"].values()
    m = (2011 - 2006) * 12 + 11
    assert line[:, m] == pytest.approx(report.values["heroin_share_2011"].to_numpy())


def _table_bytes(table: pd.DataFrame) -> bytes:
    buf = io.BytesIO()
    table.to_parquet(buf, index=False)
    return buf.getvalue()


def test_one_and_two_workers_give_the_same_report(report, targets, dask_client_2):
    """Four seeds on two workers finish in any order: the values, the series and the table
    are those of one worker, and each seed's values are those of a run in this process."""
    sc = load_scenario(scale=SMALL)
    two = fit(sc, targets, seeds=[11, 12, 13], client=dask_client_2)
    pd.testing.assert_frame_equal(two.values, report.values, check_exact=True)
    assert _table_bytes(two.table) == _table_bytes(report.table)
    assert list(two.series) == list(report.series)
    for g, lines in report.series.items():
        assert list(two.series[g]) == list(lines)
        for k, arr in lines.items():
            np.testing.assert_array_equal(two.series[g][k], arr)
    p = prepare(sc)
    here = evaluate_all(targets, simulate(dataclasses.replace(
        p, scenario=sc.model_copy(update={"seed": 12})), rounds=1))
    pd.testing.assert_series_equal(report.values.loc[12], pd.Series(here, name=12),
                                   check_exact=True)


def test_cli_fit_prints_and_saves(tmp_path):
    """The command on its default, a local cluster of one worker."""
    res = CliRunner().invoke(app, ["fit", "--seeds", "2", "--scale", str(SMALL), "--out",
                                   str(tmp_path)], env={"COLUMNS": "220"})
    assert res.exit_code == 0, res.output
    assert "(local Dask cluster, 1 worker)" in res.output
    assert "785,900" in res.output and "90% interval" in res.output
    assert "hard targets" in res.output
    assert (tmp_path / "fit.csv").exists() and (tmp_path / "fit_registry.png").exists()
    saved = pd.read_csv(tmp_path / "fit.csv").set_index("id")
    assert saved.loc["registered_2007_03", "role"] == "input"
    assert saved.loc["survey_travel", "role"] == "predicted"


def test_cli_fit_table_fits_80_columns_and_marks_roles(tmp_path, dask_client):
    address = dask_client.scheduler.address
    res = CliRunner().invoke(app, ["fit", "--seeds", "2", "--scale", str(SMALL), "--out",
                                   str(tmp_path), "--scheduler", address],
                             env={"COLUMNS": "80"})
    assert res.exit_code == 0, res.output
    assert f"scheduler {address}" in res.output.replace("\n", "")
    assert max(len(ln) for ln in res.output.splitlines()) <= 80
    assert "\u2026" not in res.output  # Rich cut nothing to an ellipsis
    rows = [ln.split() for ln in res.output.splitlines()
            if ln.split()[:1] in (["pass"], ["FAIL"], ["miss"])]
    roles = [r[1] for r in rows]
    # predicted: the 2011 survey in its two readings, the 460,000 of March 2007 that
    # conflicts with the paper's 785,900, the 2012 cross-section of community treatment and
    # the number held read over every month of 2012-2018 (fn 1, weight 0)
    assert roles.count("in") == 2 and roles.count("pred") == 11
    assert len(rows) == len(load_targets().targets)
    assert "785,900" in res.output and "role: in = a rule is set" in res.output


def _render(targets, values, width: int = 80) -> list[str]:
    """The terminal table of `dcsim fit` as printed on a console `width` columns wide."""
    console = Console(width=width, file=io.StringIO(), color_system=None)
    _print_fit(compact(fit_table(targets, values)), "fit (2 seeds, scale 1)", console)
    return console.file.getvalue().splitlines()


def test_terminal_table_is_one_line_a_target_at_80_columns(targets):
    """Every line fits in 80 columns; every id is there once, whole, on the line of its
    result; hard targets come first; numbers of an id too long for its column go on the
    next line, under their heads."""
    v = _values(targets, existing_users_2019=3e6, survey_travel=0.2,
                official_isolation_admitted_justice_centres_2017_06=1e5)
    lines = _render(targets, v)
    assert max(len(ln) for ln in lines) <= 80
    words = [ln.split() for ln in lines]
    verdict = {"existing_users_2019": "FAIL", "survey_travel": "miss",
               "official_isolation_admitted_justice_centres_2017_06": "miss"}
    at = {}
    for t in targets.targets:
        (i,) = [i for i, w in enumerate(words) if t.id in w]  # exactly once, never cut
        assert words[i][0] == verdict.get(t.id, "pass"), t.id
        at[t.id] = i
    hard = [at[t.id] for t in targets.targets if t.kind == "hard"]
    soft = [at[t.id] for t in targets.targets if t.kind == "soft"]
    assert max(hard) < min(soft)
    long = "official_isolation_admitted_justice_centres_2017_06"
    head = next(ln for ln in lines if ln.startswith("result"))
    below = lines[at[long] + 1]
    assert below.split() == ["1,130,000", "100,000", "-91.2%"]
    assert below.index("100,000") + len("100,000") == head.index("mean") + len("mean")
    rows = [w for w in words if w[:1] in (["pass"], ["FAIL"], ["miss"])]
    assert len(rows) == len(targets.targets)
    # a wider console has room for every id on one line with its numbers
    wide = [ln.split() for ln in _render(targets, v, width=120)]
    assert [len(w) for w in wide if w[:1] in (["pass"], ["FAIL"], ["miss"])] == [6] * len(rows)


def test_terminal_table_shows_points_for_shares(targets):
    v = _values(targets, district_contact_share=0.279)
    (line,) = [ln for ln in _render(targets, v) if "district_contact_share" in ln.split()]
    assert line.split()[-3:] == ["26.00%", "27.90%", "+1.90pt"]


def test_scale_check_flags_only_real_differences():
    rng = np.random.default_rng(0)
    small = pd.DataFrame({"a": 100 + rng.normal(0, 5, 20), "b": 100 + rng.normal(0, 5, 20)})
    full = pd.DataFrame({"a": [100.2, 99.9], "b": [130.0, 131.0]})
    check = scale_check(small, full, small_scale=0.02).set_index("id")
    assert check.loc["a", "within"] and not check.loc["b", "within"]
    # with two full-scale seeds their spread comes from the reduced scale: sd x sqrt(0.02)
    sd = small["a"].std(ddof=1)
    assert check.loc["a", "se"] == pytest.approx(math.sqrt(sd**2 / 20 + sd**2 * 0.02 / 2))


def test_plot_labels_say_which_series_and_what_it_counts(targets):
    """Two model lines of one plot (isolation and community orders) are told apart by the
    published series' own words, and orders are counted in person-times, not people."""
    from dcsim.fit import _axis_words, _measure_words

    by_id = {t.id: t for t in targets.targets}
    iso = by_id["official_isolation_orders_2019_12"]
    com = by_id["official_community_orders_2019_12"]
    assert _measure_words(iso) == iso.label.rsplit(", ", 1)[0] != _measure_words(com)
    assert "2019" not in _measure_words(iso)
    assert _axis_words([iso, com]) == "million person-times"
    stock = by_id["official_existing_users_2019_12"]
    assert _axis_words([stock]) == "million people"
    assert _axis_words([stock, iso]).startswith("million (")
    assert _axis_words([by_id["heroin_share_2011"]]) == "per cent"
