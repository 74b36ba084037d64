"""Size and drawing time of the report of a comparison with 14 arms (the baseline and 13
reforms, as many as the shipped reforms would give), against a page with one Plotly chart.

The report's size depends on months x metrics x arms, not on the scale, so a tiny-scale
comparison (scale 0.001, 2 seeds, full 2006-2025 monthly series) measures it honestly. Both
pages inline the same Plotly script and are loaded alternately in one headless Chromium
session; a page's drawing time is from the start of navigation to the moment its last chart
is drawn (performance.now() in the page), median over the loads.

    python benchmarks/bench_report.py --write
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT / "tests"))
from results_md import replace_section  # noqa: E402

SINGLES = ["no_inspections", "prompt_release", "release_everywhere", "no_alert_response",
           "no_grid", "records_deleted"]
COMBOS = [["no_inspections", "prompt_release"], ["prompt_release", "release_everywhere"],
          ["no_inspections", "release_everywhere"], ["no_alert_response", "no_grid"],
          ["no_inspections", "no_alert_response"], ["prompt_release", "records_deleted"],
          ["prompt_release", "release_everywhere", "records_deleted"]]
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]

ONE_CHART = """<!DOCTYPE html><html><head><meta charset="utf-8"><title>one chart</title></head>
<body><div id="plot" style="width:100%;height:420px"></div>
<script>{plotly}</script>
<script>
const d = {data};
Plotly.newPlot("plot", d.map(t => ({{x: t.x, y: t.y, type: "scatter", mode: "lines",
                                     name: t.name}})), {{margin: {{t: 10}}}})
  .then(() => {{ window.drawnAt = performance.now(); document.body.dataset.drawn = "true"; }});
</script></body></html>"""


def arms() -> dict[str, list[str]]:
    out: dict[str, list[str]] = {"baseline": []}
    for s in SINGLES:
        out[s] = [s]
    for c in COMBOS:
        out["+".join(c)] = c
    return out


def one_chart_page(report_data: dict, plotly_js: str, path: Path) -> Path:
    """The registry chart's baseline lines alone, with the same Plotly script inlined."""
    chart = next(c for c in report_data["charts"] if c["id"] == "registry_stock")
    traces = [{"x": chart["x"], "y": chart["columns"][t["y"]]["values"], "name": t["name"]}
              for t in chart["traces"] if t["arm"] == report_data["baseline"]]
    path.write_text(ONE_CHART.format(plotly=plotly_js, data=json.dumps(traces)))
    return path


def measure(pages: dict[str, Path], loads: int) -> dict[str, list[float]]:
    from playwright.sync_api import sync_playwright

    times: dict[str, list[float]] = {k: [] for k in pages}
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=os.environ.get(
            "DCSIM_CHROMIUM", "/usr/bin/chromium"), args=ARGS)
        for _ in range(loads):
            for name, path in pages.items():
                ctx = browser.new_context(viewport={"width": 1200, "height": 900})
                ctx.set_offline(True)
                page = ctx.new_page()
                page.goto(path.as_uri())
                page.wait_for_selector("body[data-drawn=true]", timeout=120_000)
                ms = page.evaluate("window.drawnAt" if name == "one chart" else
                                   "window.dcsimReport.drawnAt")
                times[name].append(ms / 1000)
                ctx.close()
        browser.close()
    return times


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--scale", type=float, default=0.001)
    ap.add_argument("--loads", type=int, default=9)
    ap.add_argument("--write", action="store_true", help="replace the section in RESULTS.md")
    a = ap.parse_args()
    from report_comparison_builder import build_comparison

    from dcsim.report import _data as report_data
    from dcsim.report import _plotly_js, build
    from dcsim.report import load as load_source
    from dcsim.report.labels import load_labels

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        comp = build_comparison(Path(tmp) / "comparison", arms(),
                                list(range(1, a.seeds + 1)), scale=a.scale)
        built = time.perf_counter() - t0
        t0 = time.perf_counter()
        html = build(comp, Path(tmp) / "report.html")
        render_s = time.perf_counter() - t0
        src = load_source(comp)
        one = one_chart_page(report_data(src, load_labels()), _plotly_js(),
                             Path(tmp) / "one.html")
        times = measure({"one chart": one, "report": html}, a.loads)
        size, one_size = html.stat().st_size, one.stat().st_size
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["report"] / med["one chart"]
    # each report load against the one-chart load just before it: cancels slow drifts in
    # the load of a shared machine
    paired = statistics.median(r / o for r, o in zip(times["report"], times["one chart"],
                                                     strict=True))
    lines = [
        "## Report size and drawing time (benchmarks/bench_report.py)",
        "",
        f"{dt.date.today()}, {platform.machine()} {os.cpu_count()} cores, "
        f"`python benchmarks/bench_report.py --write` (comparison of {len(src.arms)} arms x "
        f"{a.seeds} seeds at scale {a.scale:g}, {len(src.months)} months, built in "
        f"{built:.0f} s; report written in {render_s:.1f} s).",
        "",
        "| page | size | drawn (median of "
        f"{a.loads} loads, s) | loads (s) |",
        "|---|---:|---:|---|",
        f"| one Plotly chart (same script) | {one_size / 1e6:.1f} MB | {med['one chart']:.2f} | "
        + ", ".join(f"{x:.2f}" for x in times["one chart"]) + " |",
        f"| report of the comparison | {size / 1e6:.1f} MB | {med['report']:.2f} | "
        + ", ".join(f"{x:.2f}" for x in times["report"]) + " |",
        "",
        f"Report / one chart: **{ratio:.2f}x** (ratio of the medians; median of the paired "
        f"load ratios {paired:.2f}x; limit 2x); size **{size / 1e6:.1f} MB** "
        "(limit 15 MB). Drawn = from the start of navigation to the last chart drawn, "
        "network off, one headless Chromium session, pages loaded alternately.",
    ]
    load = os.getloadavg()[0]
    lines.append("")
    lines.append(f"Load average at the end: {load:.1f} on {os.cpu_count()} cores"
                 + (" (above the core count: other work shared the machine, times are noisy)"
                    if load > (os.cpu_count() or 1) else "") + ".")
    text = "\n".join(lines)
    print(text)
    if a.write:
        replace_section("bench_report", text)


if __name__ == "__main__":
    main()
