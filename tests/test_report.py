"""dcsim report without a browser: every metric has a plain label, the file is self-contained,
the inlined numbers are the run's and the comparison's, published figures carry their status,
and the command refuses bad arguments with one line naming them."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest
from report_fixtures import comparison_folder, report_file, run_folder
from typer.testing import CliRunner

from dcsim.cli import app
from dcsim.report import ReportError, SourceError, arm_levers, build, load
from dcsim.report.charts import all_charts, published_points, rounded
from dcsim.report.labels import load_labels


@pytest.fixture(scope="module")
def run_dir(baseline, tmp_path_factory):
    return run_folder(baseline, tmp_path_factory)


@pytest.fixture(scope="module")
def comp_dir(tmp_path_factory):
    return comparison_folder(tmp_path_factory)


@pytest.fixture(scope="module")
def run_html(run_dir, tmp_path_factory):
    return report_file("run", run_dir, tmp_path_factory).read_text()


def _inlined(html: str) -> dict:
    m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', html, re.S)
    assert m is not None
    return json.loads(m.group(1).replace("<\\/", "</"))


def test_every_metric_a_run_writes_has_a_plain_label(run_dir):
    labels = load_labels()
    monthly = pd.read_parquet(run_dir / "monthly.parquet")
    keys = set(monthly["group"] + "." + monthly["metric"])
    keys |= {f"exit.{c}" for c in pd.read_parquet(run_dir / "exit.parquet").columns}
    keys |= {f"summary_column.{c}" for c in
             pd.read_parquet(run_dir / "intrusion_summary.parquet").columns}
    missing = sorted(k for k in keys if k not in labels.metrics)
    assert not missing, f"no plain label for {missing}"
    for k in keys:
        text = labels.label(k)
        assert "_" not in text and text.strip() == text and text, k  # words, not code names
        assert labels.unit(k) in labels.units, k
    kinds = pd.read_parquet(run_dir / "intrusions_per_person_year.parquet")["kind"].unique()
    assert all("_" not in labels.kind(k) for k in kinds)
    juris = pd.read_parquet(run_dir / "exit.parquet")["jurisdiction"].unique()
    assert set(juris) <= set(labels.jurisdictions)


def test_the_file_is_self_contained(run_html):
    assert run_html.count("* plotly.js v") == 1  # Plotly's script inlined once
    assert not re.search(r'<(script|link|img|iframe)[^>]+(src|href)="(https?:)?//', run_html)
    data = _inlined(run_html)
    assert len(data["charts"]) >= 15
    for c in data["charts"]:
        assert c["traces"], c["id"]
        assert all(len(col["values"]) == len(c["x"]) for col in c["columns"]), c["id"]


def test_inlined_series_are_the_run_tables(run_dir, run_html):
    """The registry chart's first line is existing users summed over areas, month by month."""
    m = pd.read_parquet(run_dir / "monthly.parquet")
    m = m[(m["group"] == "stock") & (m["metric"] == "existing_users")]
    expect = m.groupby("month")["value"].sum().sort_index().to_numpy()
    chart = next(c for c in _inlined(run_html)["charts"] if c["id"] == "registry_stock")
    label = load_labels().label("stock.existing_users")
    col = next(c for c in chart["columns"] if c["label"] == label)
    assert col["values"] == [rounded(v) for v in expect]
    assert col["values"][-1] == pytest.approx(expect[-1], rel=1e-6)


def test_published_figures_are_marked_input_calibrated_or_predicted(run_dir):
    src, labels = load(run_dir), load_labels()
    stock = published_points(labels, src, "stock")
    cum = published_points(labels, src, "cumulative")
    by = {(p["month"], p["value"]): p["status"] for p in stock + cum}
    assert by[("2007-03-01", 785900.0)] == "input"  # the sweep's inflow rule is set from it
    assert by[("2019-12-01", 2148000.0)] == "calibrated"  # official existing users, 2019
    assert by[("2019-12-01", 4700000.0)] == "calibrated"  # paper fn 8, 48
    assert by[("2016-12-01", 2505000.0)] == "predicted"
    assert by[("2007-06-01", 800000.0)] == "calibrated"  # soft target, weight 0.25
    assert by[("2007-03-01", 460000.0)] == "predicted"  # conflicts with the paper's 785,900


def test_comparison_report_holds_every_arm_and_the_summary_in_full(comp_dir, tmp_path):
    html = build(comp_dir, tmp_path / "c.html").read_text()
    data = _inlined(html)
    summary = pd.read_parquet(comp_dir / "summary.parquet")
    got = pd.DataFrame(data["summary"])
    assert len(got) == len(summary)
    for col in ("mean", "lo", "hi"):
        assert np.array_equal(got[col].to_numpy(float), summary[col].to_numpy(float))
    assert data["arms"] == list(json.loads((comp_dir / "manifest.json").read_text())["arms"])
    assert data["levers"]["no_inspections+prompt_release"] == ["no_inspections",
                                                               "prompt_release"]
    src = load(comp_dir)
    chart = next(c for c in all_charts(src) if c.id == "registry_control")
    arms = {t["arm"] for t in chart.traces}
    assert arms == set(src.arms)
    ms = pd.read_parquet(comp_dir / "monthly_summary.parquet")
    sel = ms[(ms["metric"] == "under_control") & (ms["arm"] == "prompt_release")
             & (ms["kind"] == "level")].sort_values("month")
    t = next(t for t in chart.traces if t["arm"] == "prompt_release"
             and t["name"] == load_labels().label("stock.under_control"))
    assert chart.columns[t["hi"]]["values"] == [rounded(v) for v in sel["hi"]]


def test_arm_levers_come_from_the_manifest_when_given(comp_dir):
    src = load(comp_dir)
    src.manifest["arm_levers"] = {"no_inspections": ["fewer visits"]}
    assert arm_levers(src)["no_inspections"] == ["fewer visits"]
    assert arm_levers(src)["baseline"] == []


def test_bad_folders_and_outputs_are_refused(tmp_path, run_dir):
    with pytest.raises(SourceError, match="no manifest.json"):
        load(tmp_path)
    (tmp_path / "manifest.json").write_text("{")
    with pytest.raises(SourceError, match="line 1"):
        load(tmp_path)
    import dcsim

    inside = __import__("pathlib").Path(dcsim.__file__).parent / "report.html"
    with pytest.raises(ReportError, match="inside the dcsim package"):
        build(run_dir, inside)
    assert not inside.exists()


def test_command_writes_beside_the_run_and_names_a_bad_argument(run_dir, tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["report", str(tmp_path / "missing")])
    assert r.exit_code == 2 and r.output.strip().startswith("error: FOLDER:")
    assert len(r.output.strip().splitlines()) == 1 and "Traceback" not in r.output
    r = runner.invoke(app, ["report", str(run_dir), "--out", str(tmp_path / "r.pdf")])
    assert r.exit_code == 2 and "--out" in r.output
    out = tmp_path / "sub" / "r.html"
    r = runner.invoke(app, ["report", str(run_dir), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert out.stat().st_size > 1_000_000 and "<html" in out.read_text()[:200]


def test_an_ensemble_has_intervals_and_no_explorer(tmp_path):
    from report_comparison_builder import build_comparison

    folder = build_comparison(tmp_path / "ens", {"baseline": []}, [1, 2])
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "kind": "ensemble"}))
    src = load(folder)
    assert src.kind == "ensemble" and src.reforms == []
    html = build(folder, tmp_path / "e.html").read_text()
    assert 'id="explorer"' not in html and 'id="arm-select"' not in html
    assert "2 runs of the same rules" in " ".join(html.split())
    chart = next(c for c in _inlined(html)["charts"] if c["id"] == "exit_trapped")
    assert {t["arm"] for t in chart["traces"]} == {"baseline"}
    assert all(t["lo"] is not None for t in chart["traces"])  # bands over the two seeds
