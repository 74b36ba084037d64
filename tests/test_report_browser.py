"""The report and the explorer in a real browser (headless Chromium through Playwright): what a
reader sees. No console errors; every chart has its data drawn; a control changes the numbers
shown to those of the underlying tables; the CSV download is the table; the page draws with
the network blocked. Each page's screenshot goes to the artefacts folder (DCSIM_ARTIFACTS,
default artifacts/ at the repository root).

Debian's chromium is used (`playwright install` cannot download browsers here). Without it
the tests skip and say how to install it; under CI (CI=true) a missing browser fails.
One test runs in the default suite; the others (about 35 s) are marked slow and run in CI.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from report_fixtures import comparison_folder, report_file, run_folder

from dcsim.report.charts import rounded
from dcsim.report.labels import load_labels

CHROMIUM = os.environ.get("DCSIM_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
HOW = ("headless Chromium is needed: apt-get install -y chromium && pip install playwright "
       "(or set DCSIM_CHROMIUM to a Chromium executable)")
ARTIFACTS = Path(os.environ.get("DCSIM_ARTIFACTS",
                                Path(__file__).resolve().parent.parent / "artifacts"))


def _browser_or_skip():  # noqa: ANN202 - a playwright Browser
    missing = None
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing = "the playwright package is not installed"
    if missing is None and not (shutil.which(CHROMIUM) or Path(CHROMIUM).is_file()):
        missing = f"no Chromium at {CHROMIUM}"
    if missing is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{missing}; {HOW}")
        pytest.skip(f"{missing}; {HOW}")
    pw = sync_playwright().start()
    return pw, pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)


@pytest.fixture(scope="module")
def browser():
    pw, b = _browser_or_skip()
    yield b
    b.close()
    pw.stop()


@pytest.fixture(scope="module")
def run_dir(baseline, tmp_path_factory):
    return run_folder(baseline, tmp_path_factory)


@pytest.fixture(scope="module")
def comp_dir(tmp_path_factory):
    return comparison_folder(tmp_path_factory)


@pytest.fixture(scope="module")
def run_html(run_dir, tmp_path_factory):
    return report_file("run", run_dir, tmp_path_factory)


@pytest.fixture(scope="module")
def comp_html(comp_dir, tmp_path_factory):
    return report_file("comparison", comp_dir, tmp_path_factory)


class Page:
    """A page opened offline, with its console errors and blocked requests recorded."""

    def __init__(self, browser, html: Path) -> None:  # noqa: ANN001
        self.context = browser.new_context(viewport={"width": 1200, "height": 900},
                                           accept_downloads=True)
        self.context.set_offline(True)
        self.requests: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error"
                     else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(html.as_uri())
        self.page.wait_for_selector("body[data-drawn=true]", timeout=60_000)

    def _route(self, route) -> None:  # noqa: ANN001
        url = route.request.url
        if url.startswith(("file:", "blob:", "data:")):
            route.continue_()
        else:
            self.requests.append(url)
            route.abort()

    def close(self) -> None:
        self.context.close()


@pytest.fixture()
def open_page(browser):
    pages = []

    def opener(html: Path) -> Page:
        p = Page(browser, html)
        pages.append(p)
        return p

    yield opener
    for p in pages:
        p.close()


DRAWN = """() => [...document.querySelectorAll('.plot')].map(el => ({
  id: el.id,
  traces: (el.data || []).length,
  points: (el.data || []).reduce(
    (n, t) => n + ((t.y || t.x || []).filter(v => v !== null).length), 0),
  marks: el.querySelectorAll('g.trace path, g.trace .point, g.points path').length,
}))"""


def _check_drawn(p: Page, name: str) -> list[dict]:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    p.page.screenshot(path=str(ARTIFACTS / f"report-{name}.png"), full_page=True)
    drawn = p.page.evaluate(DRAWN)
    assert not p.errors, p.errors
    assert not p.requests, f"the page asked the network for {p.requests}"
    assert drawn
    for d in drawn:
        assert d["traces"] > 0 and d["points"] > 0 and d["marks"] > 0, d
    return drawn


def test_run_report_draws_every_chart_offline_without_errors(open_page, run_html):
    p = open_page(run_html)
    drawn = _check_drawn(p, "run")
    n_charts = p.page.evaluate("window.dcsimReport.data.charts.length")
    assert len(drawn) == n_charts >= 15


@pytest.mark.slow
def test_comparison_report_and_explorer_draw_offline_without_errors(open_page, comp_html):
    p = open_page(comp_html)
    drawn = _check_drawn(p, "comparison")
    ids = {d["id"] for d in drawn}
    assert {"plot-explorer", "plot-reform_differences", "plot-registry_stock"} <= ids


def _table(p: Page, chart_id: str) -> list[list[str]]:
    """The numbers of a chart's table (opening it if closed), as their raw values."""
    if not p.page.eval_on_selector(f'details[data-chart="{chart_id}"]', "d => d.open"):
        p.page.click(f'details[data-chart="{chart_id}"] > summary')
    # the table is filled on the details' toggle event, which the page dispatches as a task
    # of its own after the click: wait for its rows rather than read them at once
    p.page.wait_for_function(
        f"document.querySelectorAll('#table-{chart_id} tbody tr').length > 0", timeout=10_000)
    return p.page.eval_on_selector_all(
        f"#table-{chart_id} tbody tr",
        "rows => rows.map(r => [...r.children].map(td => td.dataset.value))")


@pytest.mark.slow
def test_choosing_a_kind_of_intrusion_shows_that_kind_from_the_run_table(open_page, run_html,
                                                                        run_dir):
    p = open_page(run_html)
    dist = pd.read_parquet(run_dir / "intrusions_per_person_year.parquet")
    dist = dist[dist["jurisdiction"] == "all"]
    before = _table(p, "intrusions_distribution")
    expect_all = dist[dist["kind"] == "all"]["value"].to_numpy()
    assert [float(r[1]) for r in before] == [rounded(v) for v in expect_all]
    p.page.select_option('select[data-chart="intrusions_distribution"]', "home_visit")
    after = _table(p, "intrusions_distribution")
    expect = dist[dist["kind"] == "home_visit"]["value"].to_numpy()
    assert [float(r[1]) for r in after] == [rounded(v) for v in expect]
    assert not np.array_equal(expect, expect_all)  # the control really changed the numbers
    p.page.wait_for_function(
        "name => document.getElementById('plot-intrusions_distribution').data"
        ".map(t => t.name).join() === name", arg=load_labels().kind("home_visit"))


@pytest.mark.slow
def test_csv_download_is_the_table(open_page, run_html, run_dir):
    p = open_page(run_html)
    rows = _table(p, "registry_stock")
    with p.page.expect_download() as info:
        p.page.click('button.csv[data-chart="registry_stock"]')
    text = Path(info.value.path()).read_text()
    got = list(csv.reader(io.StringIO(text)))
    assert info.value.suggested_filename == "registry_stock.csv"
    header, body = got[0], got[1:]
    assert header[0] == "month" and len(body) == len(rows)
    assert [[c for c in r] for r in body] == [[c or "" for c in r] for r in rows]
    m = pd.read_parquet(run_dir / "monthly.parquet")
    m = m[(m["group"] == "stock") & (m["metric"] == "abstinent_3y_recorded")]
    col = header.index(load_labels().label("stock.abstinent_3y_recorded"))
    expect = m.groupby("month")["value"].sum().sort_index().to_numpy()
    assert [float(r[col]) for r in body] == [rounded(v) for v in expect]


def _explorer_values(p: Page) -> dict[tuple[str, str, str], float]:
    cells = p.page.eval_on_selector_all(
        "#explorer_table td[data-field=mean]",
        "tds => tds.map(td => [td.dataset.key, td.dataset.arm, td.dataset.kind, td.dataset.value])")
    return {(k, a, kind): float(v) for k, a, kind, v in cells}


@pytest.mark.slow
def test_explorer_levers_show_the_numbers_of_the_comparison_summary(open_page, comp_html,
                                                                   comp_dir):
    p = open_page(comp_html)
    summary = pd.read_parquet(comp_dir / "summary.parquet")
    exact = {(r.key, r.arm, r.kind): r.mean for r in summary.itertuples()}

    def check(arm: str) -> None:
        got = _explorer_values(p)
        assert {a for _, a, _ in got} == {"baseline", arm}
        assert len(got) == 3 * summary["key"].nunique()
        for key, value in got.items():
            assert value == exact[key], key  # exactly the summary's numbers
        bars = p.page.evaluate("document.getElementById('plot-explorer').data[0].y")
        first = summary["key"].iloc[0]
        assert bars == [exact[(first, "baseline", "level")], exact[(first, arm, "level")]]

    check("no_inspections")  # the first reform is shown on opening
    p.page.check("#lever-prompt_release")
    check("no_inspections+prompt_release")
    p.page.uncheck("#lever-no_inspections")
    check("prompt_release")
    assert p.page.input_value("#arm-select") == "prompt_release"
    p.page.select_option("#explorer-output", "released_2025")
    bars = p.page.evaluate("document.getElementById('plot-explorer').data[0].y")
    assert bars == [exact[("released_2025", "baseline", "level")],
                    exact[("released_2025", "prompt_release", "level")]]
    p.page.uncheck("#lever-prompt_release")
    assert "at least one" in p.page.inner_text("#explorer-message")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    p.page.locator("#explorer").screenshot(path=str(ARTIFACTS / "report-explorer.png"))
    assert not p.errors, p.errors


@pytest.mark.slow
def test_choosing_a_reform_redraws_the_charts_with_its_monthly_summary(open_page, comp_html,
                                                                      comp_dir):
    p = open_page(comp_html)
    p.page.select_option("#arm-select", "prompt_release")
    p.page.wait_for_function("document.getElementById('plot-exit_stock').data"
                             ".some(t => (t.name || '').includes('promptly'))")
    ms = pd.read_parquet(comp_dir / "monthly_summary.parquet")
    sel = ms[(ms["metric"] == "released") & (ms["group"] == "stock")
             & (ms["arm"] == "prompt_release") & (ms["kind"] == "level")].sort_values("month")
    label = load_labels().label("stock.released")
    ys = p.page.evaluate(
        "name => document.getElementById('plot-exit_stock').data"
        ".filter(t => t.name && t.name.startsWith(name) && t.name.includes('promptly')"
        " && !t.name.endsWith('interval'))"
        ".map(t => t.y)", label)
    assert len(ys) == 1 and ys[0] == [rounded(v) for v in sel["mean"]]
    # the paired difference over time, for a result chosen in its own control
    p.page.select_option('select[data-chart="reforms_over_time"]', "stock.released")
    diff = ms[(ms["metric"] == "released") & (ms["group"] == "stock")
              & (ms["arm"] == "prompt_release") & (ms["kind"] == "difference")].sort_values("month")
    rows = _table(p, "reforms_over_time")
    assert [float(r[1]) for r in rows] == [rounded(v) for v in diff["mean"]]
    assert [float(r[3]) for r in rows] == [rounded(v) for v in diff["hi"]]
    assert not p.errors, p.errors


@pytest.mark.slow
def test_png_export_writes_every_chart_at_print_size(browser, run_html, tmp_path):
    import json
    import re
    import struct

    from dcsim.report import write_pngs
    from dcsim.report.png import SCALE, WIDTH

    paths = write_pngs(run_html, tmp_path / "png", browser)
    text = run_html.read_text()
    data = json.loads(re.search(r'id="report-data">(.*?)</script>', text, re.S).group(1)
                      .replace("<\\/", "</"))
    assert sorted(p.stem for p in paths) == sorted(c["id"] for c in data["charts"])
    for p in paths:
        head = p.read_bytes()[:24]
        assert head[:8] == b"\x89PNG\r\n\x1a\n", p.name
        width, height = struct.unpack(">II", head[16:24])  # the IHDR chunk
        assert width == WIDTH * SCALE and height >= 1000, p.name
        assert p.stat().st_size > 40_000, p.name  # lines, labels and legend, not a blank


@pytest.mark.slow
def test_ensemble_report_draws_offline_without_errors(open_page, tmp_path):
    import json

    from report_comparison_builder import build_comparison

    from dcsim.report import build

    folder = build_comparison(tmp_path / "ens", {"baseline": []}, [1, 2])
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "kind": "ensemble"}))
    p = open_page(build(folder, tmp_path / "ensemble.html"))
    drawn = _check_drawn(p, "ensemble")
    assert "plot-explorer" not in {d["id"] for d in drawn}
    bands = p.page.evaluate("document.getElementById('plot-exit_trapped').data"
                            ".filter(t => t.fill === 'toself').length")
    # one 90% band per cause: the four traps of practice and the fn 37 criminal case
    assert bands == 5


@pytest.mark.slow
def test_explorer_shows_the_numbers_of_dcsim_compare(open_page, tmp_path_factory):
    """The explorer of a real `dcsim compare` folder (two shipped reforms, two seeds) shows
    exactly the numbers of that comparison's summary, for each reform chosen."""
    import dcsim
    from dcsim.report import build

    out = tmp_path_factory.mktemp("real-compare") / "cmp"
    dcsim.compare(None, ["exit_law_2011", "deletion_2011"], seeds=2, scale=0.001, out=out,
                  workers=1)
    summary = pd.read_parquet(out / "summary.parquet")
    exact = {(r.key, r.arm, r.kind): r.mean for r in summary.itertuples()}
    p = open_page(build(out, tmp_path_factory.mktemp("real-report") / "cmp.html"))
    for arm, other in (("exit_law_2011", None), ("deletion_2011", "exit_law_2011")):
        if other is not None:
            p.page.check(f"#lever-{arm}")
            p.page.uncheck(f"#lever-{other}")
        got = _explorer_values(p)
        assert {a for _, a, _ in got} == {"national-baseline", arm}
        assert len(got) == 3 * summary["key"].nunique()
        for key, value in got.items():
            assert value == exact[key], key
    assert not p.errors, p.errors
