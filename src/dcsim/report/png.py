"""`dcsim report --png DIR`: the report's charts as static images for print.

Each chart is exported by Plotly's own `toImage` inside headless Chromium (Debian's package,
driven by Playwright), from the written report: the same traces as on screen, with the chart's
title added and fonts sized for a page (1000 x 520 CSS pixels at twice the resolution: about
16 cm wide at 300 dpi). Kaleido, Plotly's Python exporter, was not used: its current version
drives a Chrome it looks for or downloads itself, which these machines cannot do, and the
report's browser tests already need Chromium.
"""

from __future__ import annotations

import base64
import os
import shutil
from pathlib import Path

CHROMIUM = os.environ.get("DCSIM_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
WIDTH, HEIGHT, SCALE = 1000, 520, 2

_EXPORT = """async ([width, height, scale]) => {
  await window.dcsimReport.ready;
  const out = [];
  const titles = Object.fromEntries(window.dcsimReport.data.charts.map(c => [c.id, c.title]));
  titles["explorer"] = document.getElementById("explorer-title")?.textContent || "";
  titles["reform_differences"] = "Each reform minus the baseline (paired 90% interval)";
  for (const el of document.querySelectorAll(".plot")) {
    const id = el.id.replace(/^plot-/, "");
    const layout = Object.assign({}, el.layout, {
      title: {text: titles[id] || "", x: 0.01, xanchor: "left", font: {size: 18}},
      font: {family: "DejaVu Sans, Arial, sans-serif", size: 15},
      margin: Object.assign({}, el.layout.margin, {t: 60}), width: width,
      height: Math.max(height, el.layout.height || 0)});
    const url = await Plotly.toImage({data: el.data, layout: layout},
                                     {format: "png", width: width,
                                      height: layout.height, scale: scale});
    out.push([id, url]);
  }
  return out;
}"""


class PngError(RuntimeError):
    """Chromium or Playwright is missing; the message says how to install them."""


def chart_pngs(html: Path, out: Path, browser=None) -> list[Path]:  # noqa: ANN001
    """Write <chart id>.png for every chart of a written report; returns the paths. A running
    Playwright `browser` may be passed (Playwright allows one sync session per thread)."""
    if browser is not None:
        return _export(browser, html, out)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        raise PngError("--png needs Playwright: pip install 'dcsim[png]'") from None
    if not (shutil.which(CHROMIUM) or Path(CHROMIUM).is_file()):
        raise PngError(f"--png needs Chromium at {CHROMIUM}: apt-get install -y chromium "
                       "(or set DCSIM_CHROMIUM)")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        try:
            return _export(browser, html, out)
        finally:
            browser.close()


def _export(browser, html: Path, out: Path) -> list[Path]:  # noqa: ANN001
    out.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": WIDTH + 80, "height": 900})
    try:
        context.set_offline(True)
        page = context.new_page()
        page.goto(Path(html).resolve().as_uri())
        page.wait_for_selector("body[data-drawn=true]", timeout=120_000)
        paths = []
        for chart_id, url in page.evaluate(_EXPORT, [WIDTH, HEIGHT, SCALE]):
            p = out / f"{chart_id}.png"
            p.write_bytes(base64.b64decode(url.split(",", 1)[1]))
            paths.append(p)
        return paths
    finally:
        context.close()
