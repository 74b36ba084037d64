"""Morris screening: every assumption is a factor with a stated or default range, every one is
ranked for every output, the table and plot are written, and the table is the same on one or
two Dask workers."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from dcsim import sensitivity as sens
from dcsim.calibration import DEFAULT_RANGE_RULE, default_range, rule_windows
from dcsim.rules import listing
from dcsim.scenario import load_scenario


@pytest.fixture(scope="module")
def scenario():
    return load_scenario()


SHORT = dt.date(2019, 12, 31)


@pytest.fixture(scope="module")
def result(dask_client):
    """Two trajectories at scale 0.001 over 2006-2019: about 250 short runs (one worker)."""
    sc = load_scenario(end=SHORT)
    return sens.morris(sc, trajectories=2, scale=0.001, seed=3, client=dask_client)


def test_every_assumption_window_is_a_factor(scenario):
    stacks = dict(zip([j.id for j in scenario.jurisdictions], scenario.stacks(), strict=True))
    assumed = {(r["file"], r["line"]) for r in listing(stacks) if r["is_assumption"]}
    factors = sens.factors(scenario)
    assert {f.window.key for f in factors} == assumed
    assert len(factors) == len(assumed) > 50


def test_ranges_are_stated_or_default(scenario):
    by_name = {}
    for f in sens.factors(scenario):
        by_name.setdefault(f.window.name, []).append(f)
    for f in sens.factors(scenario):
        assert f.low <= f.window.value <= f.high, f.id
        if f.window.window.range is not None:
            assert (f.low, f.high) == f.window.window.range
            assert f.range_source.startswith("stated")
        else:
            assert (f.low, f.high) == default_range(f.window.unit, f.window.value)
            assert DEFAULT_RANGE_RULE in f.range_source
    relapse = [f for f in by_name["drug_use.relapse_probability.heroin"]]
    assert all((f.low, f.high) == (0.43, 0.9) for f in relapse)
    (lost,) = by_name["registration.lost_to_follow_up_share"]
    assert (lost.low, lost.high) == (0.05, 0.3)
    (voluntary,) = by_name["pathways.voluntary_days"]
    assert (voluntary.low, voluntary.high) == (15.0, 45.0)


def test_default_range_rule():
    assert default_range("probability", 0.8) == (0.4, 1.0)
    assert default_range("flag", 1) == (0.0, 1.0)
    assert default_range("tier", 0) == (0.0, 1.0) and default_range("tier", 3) == (2.0, 3.0)
    assert default_range("count", 12) == (6.0, 18.0) and default_range("count", 3) == (1.0, 5.0)
    assert default_range("day", 540) == (270.0, 810.0)


def test_every_factor_is_ranked_for_every_output(result, scenario):
    t = result.table
    factors = {f.id for f in result.factors}
    assert len(factors) == len(sens.factors(scenario))
    for out in sens.OUTPUTS:
        sub = t[t["output"] == out]
        assert set(sub["factor"]) == factors, out
        assert sub["rank"].min() == 1 and (sub["rank"] >= 1).all()
        assert (sub["mu_star"] >= 0).all()
    fixed = t[~t["varied"]]
    assert (fixed["mu_star"] == 0).all()
    ranking = sens.ranking(t)
    assert set(ranking.index) == factors and list(ranking["rank"]) == list(
        range(1, len(factors) + 1))
    assert result.runs == 2 * (sum(f.varied for f in result.factors) + 1) + 1


def test_screening_finds_what_must_matter(result):
    """The ID-use rates move alerts a day; relapse moves the count of existing users; staff
    time for app alerts moves no count at all (the same seed in every run: exactly zero)."""
    t = result.table.set_index(["output", "name"])
    alerts = t.loc["alerts_per_day"].groupby(level=0)["mu_star"].max()
    top = alerts.sort_values(ascending=False).head(5).index
    assert any(n.startswith("alerts.id_use_rate_per_year") for n in top), list(top)
    existing = t.loc["existing_users_2019"].groupby(level=0)["mu_star"].max()
    assert existing["apps.alert_followup_hours"] == 0
    ranks = existing.rank(ascending=False)
    best = min(ranks[f"drug_use.relapse_probability.{d}"] for d in ("heroin", "synthetic"))
    # two trajectories: the relapse law trades places with the other values of drug use and
    # of the statistics' definitions, and only with those
    assert best <= 8
    ahead = ranks[ranks < best].index
    assert {n.split(".")[0] for n in ahead} <= {"drug_use", "statistics", "registration"}, (
        list(ahead))


def test_write_saves_table_ranking_and_plot(result, tmp_path):
    paths = sens.write(result, tmp_path)
    long = pd.read_parquet(paths["table"])
    assert len(long) == len(result.factors) * len(sens.OUTPUTS)
    ranking = pd.read_csv(paths["ranking"])
    assert len(ranking) == len(result.factors)
    md = paths["md"].read_text()
    assert all(f.id in md for f in result.factors)
    assert paths["plot"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_terminal_table_shows_each_assumption_whole_with_its_numbers_under_it(result):
    ranked = sens.ranking(result.table)
    lines = sens.terminal_lines(ranked, top=15, width=80)
    assert max(len(ln) for ln in lines) <= 80
    cols = [c for c in sens.OUTPUTS if c in ranked.columns] + ["overall"]
    rows = [i for i, ln in enumerate(lines) if ln.strip().endswith("%") and "=" not in ln]
    assert len(rows) == 15
    start = 3  # two lines of heads and a rule
    for (factor, r), end in zip(ranked.head(15).iterrows(), rows, strict=True):
        name = " ".join(ln.strip() for ln in lines[start:end])
        assert name == f"{int(r['rank'])}. {factor}"
        shown = [float(x.rstrip("%")) for x in lines[end].split()]
        assert shown == [round(100 * r[c], 1) for c in cols]
        start = end + 1
    legend = " ".join(lines[start:])
    assert all(sens.OUTPUTS[c] in legend for c in cols[:-1])


def test_rule_windows_know_where_each_value_applies(scenario):
    zibo = [w for w in rule_windows(scenario) if w.name == "apps.enrolment_share.zibo"
            and w.value > 0]
    assert [j for j, _, _ in zibo[0].in_force] == ["zibo_app_city"]


def test_figure_names_assumptions_in_words():
    """The heat map's rows read as the catalogue's description, when it applies and its file,
    never the code name (issue 11: figures a non-specialist reads)."""
    w = sens.factor_words("drug_use.relapse_probability.heroin [2006-01..] (calibrated.yaml:35)")
    assert w == ("an abstinent spell of a heroin user ends in relapse (else it lasts) "
                 "(calibrated.yaml)")
    w = sens.factor_words("registration.newly_found_per_year [2013-01..2013-12] (national.yaml:20)")
    assert w.endswith(", in 2013 (national.yaml)") and "registration." not in w
    w = sens.factor_words("grid.coverage_share [2018-01..] (grid.yaml:12)")
    assert w == "share of registrants living in a managed grid, from 2018-01 (grid.yaml)"
    assert all("_" not in sens.OUTPUT_WORDS[o] for o in sens.OUTPUTS)


def test_one_and_two_workers_give_the_same_table(dask_client, dask_client_2, monkeypatch):
    """The same screening on one and on two workers (where runs finish in any order): the
    same baseline and the same tables to the byte. Twelve factors keep it quick: the factors
    are chosen where the screening is set up, the workers only run design rows. A design
    row's outputs are those of the same run in this process."""
    from dcsim.calibration import apply
    from dcsim.model import prepare, simulate

    every = sens.factors
    monkeypatch.setattr(sens, "factors", lambda sc: every(sc)[:12])
    sc = load_scenario(end=SHORT)
    one = sens.morris(sc, trajectories=2, scale=0.001, seed=3, client=dask_client)
    two = sens.morris(sc, trajectories=2, scale=0.001, seed=3, client=dask_client_2)
    assert one.runs == two.runs == 2 * (sum(f.varied for f in one.factors) + 1) + 1 > 20
    assert two.baseline == one.baseline
    assert two.table.to_parquet(index=False) == one.table.to_parquet(index=False)
    assert sens.ranking(two.table).to_csv() == sens.ranking(one.table).to_csv()
    assert one.table["mu_star"].gt(0).any()  # the runs moved the outputs
    here = sc.model_copy(update={"scale": 0.001, "seed": 3})
    varied = [f for f in sens.factors(here) if f.varied]
    changes = sens._row_changes(varied, np.array([f.high for f in varied]), here.end)
    spec = sens.ModelSpec.of(prepare(here))
    assert sens.run_row(sens.RowTask(spec, changes)) == sens.outputs(simulate(
        apply(prepare(here), changes), rounds=1))


@pytest.mark.slow
def test_the_command_ranks_a_short_scenario_and_writes_its_files_within_80_columns(
        tmp_path, scenario_to_2012):
    """`dcsim sensitivity` end to end on a scenario file (the baseline to 2012, two
    trajectories at scale 0.001): it states the number of runs before it starts, ranks every
    assumption, writes its five files, and prints within 80 columns with nothing cut. The
    outputs the period has no value for (the 2019 stocks, the 2014-15 district study) are
    said to be not ranked, never read from another month."""
    from typer.testing import CliRunner

    from dcsim.cli import app

    out = tmp_path / "sens"
    res = CliRunner().invoke(app, ["sensitivity", str(scenario_to_2012), "--trajectories", "2",
                                   "--scale", "0.001", "--seed", "7", "--out", str(out)],
                             env={"COLUMNS": "80"}, terminal_width=80)
    assert res.exit_code == 0, res.output
    lines = res.output.splitlines()
    assert max(len(line) for line in lines) <= 80 and "…" not in res.output
    factors = sens.factors(load_scenario(scenario_to_2012))
    varied = [f for f in factors if f.varied]
    assert f"{len(varied)} assumptions varied, 2 trajectories, " \
           f"{2 * (len(varied) + 1) + 1} runs at scale 0.001" in " ".join(res.output.split())
    assert sorted(p.name for p in out.iterdir()) == [
        "ranking.csv", "sensitivity.csv", "sensitivity.md", "sensitivity.parquet",
        "sensitivity.png"]
    ranking = pd.read_csv(out / "ranking.csv", index_col=0)
    assert len(ranking) == len(factors)
    undefined = ["existing_users_2019", "abstinent_2019", "alerts_per_day", "contact_share"]
    assert not set(undefined) & set(ranking.columns)
    assert {"released_share_of_eligible", "intrusions_per_person_year"} <= set(ranking.columns)
    flat = " ".join(res.output.split())
    assert "not ranked on (no value in the scenario's period): " + "; ".join(
        sens.OUTPUTS[o] for o in undefined) in flat
    assert ", ".join(undefined) in (out / "sensitivity.md").read_text()
    assert f"{len(ranking)} assumptions ranked" in " ".join(res.output.split())
    top = ranking.index[0]
    assert "1. " + top in " ".join(line.strip() for line in lines)
