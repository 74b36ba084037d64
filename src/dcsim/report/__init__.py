"""`dcsim report`: one self-contained HTML file from a run or a comparison folder.

The file inlines Plotly's script once and every number it draws, so it opens offline, from a
disk or an e-mail attachment, and each chart's data can be downloaded as CSV without a server.
A comparison's report also holds the reform explorer: choose reforms and an output, and the
charts and the table follow (precomputed by `dcsim compare`, nothing is run in the page).
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from .charts import all_charts
from .labels import Labels, load_labels
from .provenance import provenance, rule_assumptions
from .source import Source, SourceError, load

__all__ = ["ReportError", "SourceError", "build", "check_out", "check_png_dir", "default_out",
           "load", "render", "write", "write_pngs"]


class ReportError(ValueError):
    """A report cannot be written where asked."""


def _plotly_js() -> str:
    import plotly

    return (Path(plotly.__file__).parent / "package_data" / "plotly.min.js").read_text("utf-8")


def _asset(name: str) -> str:
    return resources.files("dcsim.report").joinpath("templates", name).read_text("utf-8")


def _clean(x: Any) -> Any:
    """JSON-safe: NaN and infinities become null."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    return x


def arm_levers(src: Source) -> dict[str, list[str]]:
    """The reform levers each arm switches on: the manifest's `arm_levers` when given, else the
    arm's name split at '+' (an arm 'a+b' combines reforms a and b); the baseline has none."""
    given = src.manifest.get("arm_levers")
    if isinstance(given, dict):
        return {a: list(given.get(a, [])) for a in src.arms}
    return {a: ([] if a == src.baseline else a.split("+")) for a in src.arms}


def summary_rows(src: Source) -> list[dict[str, Any]]:
    """summary.parquet as records, at full precision (the explorer's numbers)."""
    if src.summary is None:
        return []
    cols = ["key", "label", "unit", "arm", "kind", "mean", "lo", "hi", "n_seeds", "depends_on"]
    df = src.summary[[c for c in cols if c in src.summary.columns]]
    return [{k: (v.item() if hasattr(v, "item") else v) for k, v in r.items()}
            for r in df.to_dict("records")]


def _data(src: Source, labels: Labels) -> dict[str, Any]:
    charts = [c.as_dict() for c in all_charts(src, labels)]
    levers = arm_levers(src)
    lever_words = {}
    for arm, ls in levers.items():
        if len(ls) == 1:
            lever_words[ls[0]] = src.arm_descriptions.get(arm) or ls[0].replace("_", " ")
    return {
        "kind": src.kind, "arms": src.arms, "baseline": src.baseline,
        "default_arm": (src.reforms or [src.baseline])[0],
        "arm_descriptions": src.arm_descriptions, "arm_sources": src.arm_sources,
        "interval": src.interval, "interval_method": src.interval_method,
        "charts": charts, "summary": summary_rows(src), "levers": levers,
        "lever_words": lever_words, "status_words": labels.status,
    }


def render(src: Source, labels: Labels | None = None) -> str:
    """The report's HTML text."""
    labels = labels or load_labels()
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("dcsim.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]), undefined=jinja2.StrictUndefined,
        trim_blocks=True, lstrip_blocks=True)
    data = json.dumps(_clean(_data(src, labels)), separators=(",", ":"), allow_nan=False)
    sections = ["registry", "police", "exit", "intrusions", "age"]
    if src.reforms:
        sections += ["reforms", "explorer"]
    from .charts import published_points

    return env.get_template("report.html.j2").render(
        src=src, labels=labels, sections=sections, prov=provenance(src),
        assumptions=rule_assumptions(src, labels), points=published_points(labels, src, "stock")
        + published_points(labels, src, "cumulative"),
        data_json=data.replace("</", "<\\/"), plotly_js=_plotly_js(), css=_asset("report.css"),
        script=_asset("report.js"))


def default_out(folder: Path) -> Path:
    """report.html inside the run or comparison folder (never inside the package)."""
    return folder / "report.html"


def _inside_package(path: Path) -> bool:
    pkg = Path(str(resources.files("dcsim"))).resolve()
    try:
        path.resolve().relative_to(pkg)
    except ValueError:
        return False
    return True


def check_out(path: Path) -> None:
    """Refuse an --out inside the package or not an .html file, before any work."""
    if path.suffix.lower() not in (".html", ".htm"):
        raise ReportError(f"--out {path}: must be an .html file")
    if _inside_package(path):
        raise ReportError(f"--out {path}: inside the dcsim package; choose another file")
    if path.exists() and path.is_dir():
        raise ReportError(f"--out {path}: is a folder; give a file name")


def check_png_dir(path: Path) -> None:
    """Refuse a --png folder inside the package or that is a file."""
    if _inside_package(path):
        raise ReportError(f"--png {path}: inside the dcsim package; choose another folder")
    if path.exists() and not path.is_dir():
        raise ReportError(f"--png {path}: is a file, not a folder")


def write(src: Source, path: Path) -> Path:
    """Render and write atomically (a failed write never leaves half a report)."""
    html = render(src)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    return path


def build(folder: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of a run or comparison folder; returns the file written."""
    folder = Path(folder)
    src = load(folder)
    path = Path(out) if out is not None else default_out(folder)
    check_out(path)
    return write(src, path)


def write_pngs(html: Path, out: Path, browser: Any = None) -> list[Path]:
    """Every chart of a written report as a PNG (see png.py)."""
    from .png import chart_pngs

    check_png_dir(out)
    return chart_pngs(html, out, browser)
