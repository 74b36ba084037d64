"""Result tables: consistent with the run's arrays, complete, and traceable."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from dcsim import figures, results
from dcsim.measures import Flow, Intrusion, Stock
from dcsim.model import prepare, simulate
from dcsim.scenario import load_scenario


@pytest.fixture(scope="module")
def run():
    return simulate(prepare(load_scenario(scale=0.002, seed=3)))


def test_monthly_table_matches_the_arrays(run):
    df = results.monthly_table(run)
    assert (df["count"] >= 0).all()
    np.testing.assert_allclose(df["value"], df["count"] / run.scenario.scale)
    alerts = df[(df.group == "flow") & (df.metric == "alerts")]["count"].sum()
    assert alerts == run.flows[:, :, Flow.ALERTS].sum()
    last = df[(df.group == "stock") & (df.metric == "records_held")
              & (df.month == df.month.max())]["count"].sum()
    assert last == run.stocks[:, -1, Stock.RECORDS_HELD].sum()
    n_rows = len(run.prepared.jurisdictions) * len(run.prepared.months)
    assert len(df[(df.group == "stock") & (df.metric == "existing_users")]) == n_rows


def test_intrusions_add_schedules_to_events(run):
    df = results.monthly_table(run)
    intr = df[df.group == "intrusion"].groupby("metric")["count"].sum()
    act = df[df.group == "activity"].groupby("metric")["count"].sum()
    insp_home = run.flows[:, :, Flow.INSPECTIONS_HOME].sum()
    assert intr["home_visit"] == pytest.approx(insp_home + act["grid_visits"])
    assert intr["counselling"] == pytest.approx(act["counselling"])
    assert intr["scheduled_test"] == run.flows[:, :, Flow.SCHEDULED_TESTS_DONE].sum()


def test_person_counts_of_schedules_agree_with_monthly_sums(run):
    """Persons count whole sessions, months count person-days / interval: totals agree to
    within one session per person-span (the fractional part dropped at each span's end)."""
    per_person = run.population.intrusions[:, Intrusion.COUNSELLING].sum()
    monthly = run.activity[:, :, 0].sum()
    assert per_person <= monthly + 1
    assert monthly - per_person < 0.05 * monthly + 3 * len(run.population)


def test_intrusion_distribution_counts_every_exposed_person(run):
    df = results.intrusion_distribution(run)
    exposed = int((run.population.out("exposure_days") >= results.MIN_EXPOSURE_DAYS).sum())
    for kind in ("all", "public_interrogation", "counselling"):
        assert df[(df.jurisdiction == "all") & (df.kind == kind)]["count"].sum() == exposed
    by_j = df[(df.jurisdiction != "all") & (df.kind == "all")]["count"].sum()
    assert by_j == exposed


def _intrusion_stats_numpy(run):
    """Plain NumPy twin of results.intrusion_stats: the same tables, built column by column."""
    pop = run.population
    exposure = pop.out("exposure_days")
    keep = np.flatnonzero(exposure >= results.MIN_EXPOSURE_DAYS)
    jur, years, counts = pop.jurisdiction[keep], exposure[keep] / 365.25, pop.intrusions[keep]
    kinds = [("all", counts.sum(axis=1, dtype=np.int64) / years)]
    kinds += [(i.name.lower(), counts[:, i] / years) for i in Intrusion]
    edges = np.array(results.INTRUSION_BINS)
    n_bins, names = len(edges) - 1, run.prepared.jurisdictions
    tables, summary = {}, []
    for kind, x in kinds:
        b = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, n_bins - 1)
        t = np.bincount(jur.astype(np.int64) * n_bins + b, minlength=len(names) * n_bins)
        tables[kind] = t.reshape(len(names), n_bins)
        q = np.quantile(x, [0.5, 0.9, 0.99])
        summary.append((kind, x.size, x.mean(), *q, x.max()))
    rows = []
    for j in range(-1, len(names)):
        for kind, t in tables.items():
            row = t.sum(axis=0) if j < 0 else t[j]
            for k in range(n_bins):
                rows.append(("all" if j < 0 else names[j], kind, edges[k], edges[k + 1],
                             int(row[k]), int(row[k]) / run.scenario.scale))
    cols = ["jurisdiction", "kind", "per_year_from", "per_year_to", "count", "value"]
    return (pd.DataFrame(rows, columns=cols),
            pd.DataFrame(summary, columns=["kind", "persons", "mean", "p50", "p90", "p99", "max"]))


def test_intrusion_stats_equal_their_numpy_twin(run):
    """The compiled one-pass-per-kind statistics are bit for bit the NumPy ones."""
    got_dist, got_summary = results.intrusion_stats(run)
    want_dist, want_summary = _intrusion_stats_numpy(run)
    pd.testing.assert_frame_equal(got_dist, want_dist, check_exact=True)
    pd.testing.assert_frame_equal(got_summary, want_summary, check_exact=True,
                                  check_dtype=False)
    assert len(got_summary) == len(results.KINDS)


def test_quantiles_equal_numpy_bit_for_bit():
    """Selection of order statistics reproduces np.quantile's 'linear' method exactly: ties,
    zeros, tiny and large samples, quantiles landing on and between order statistics."""
    rng = np.random.default_rng(2)
    qs = (0.0, 0.5, 0.9, 0.99, 1.0, 1 / 3)
    samples = [np.array([0.0]), np.array([2.5, 1.0]), np.zeros(1000),
               rng.integers(0, 5, 999) / 7.0, rng.exponential(3.0, 100_001),
               np.concatenate([np.zeros(50_000), rng.lognormal(0, 2, 7)]),
               rng.integers(0, 40, 12_345) / rng.uniform(1, 20, 12_345)]
    for x in samples:
        got = results.quantiles(x, qs)
        want = np.quantile(x, qs)
        assert got == [float(v) for v in want], (x.size, got, want)


def test_exit_table_is_consistent(run):
    df = results.exit_table(run)
    assert df["persons"].sum() == len(run.population)
    assert (df["ever_released"] <= df["persons"]).all()
    trapped = df[[c for c in df.columns if c.startswith("trapped_")]].sum(axis=1)
    assert (trapped + df["ever_released"] <= df["persons"] + df["ever_released"]).all()
    serious = df[df.jurisdiction == "serious_area"]
    assert serious["ever_released"].sum() == 0  # paper fn 45: no one is released there


def test_comparison_reads_the_run(run):
    df = figures.comparison(run)
    row = df.set_index("figure").loc["registered, end of 2019"]
    m = (2019 - 2006) * 12 + 11
    expect = run.stocks[:, m, [Stock.EXISTING_USERS, Stock.ABSTINENT_3Y_RECORDED]].sum()
    assert row["model"] == pytest.approx(expect / run.scenario.scale)
    assert np.isfinite(df["model"]).all()


def test_manifest_hashes_the_tables(run, tmp_path):
    import hashlib
    import json

    paths = results.write(run, tmp_path)
    manifest = json.loads(paths["manifest"].read_text())
    for name, entry in manifest["tables"].items():
        digest = hashlib.sha256((tmp_path / entry["file"]).read_bytes()).hexdigest()
        assert digest == entry["sha256"], name
    assert manifest["rules_hash"] == run.prepared.rules_hash
    assert not list(tmp_path.glob("*.tmp"))
