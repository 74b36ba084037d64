"""Folders the report tests read, made once per session and shared by test_report.py and
test_report_browser.py: the baseline run (conftest's, written by results.write) and a small
comparison (report_comparison_builder, a stand-in for `dcsim compare`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcsim import figures, results
from dcsim.model import Run

COMPARISON_ARMS = {
    "baseline": [],
    "no_inspections": ["no_inspections"],
    "prompt_release": ["prompt_release"],
    "no_inspections+prompt_release": ["no_inspections", "prompt_release"],
}
COMPARISON_SEEDS = [1, 2, 3]
_made: dict[str, Path] = {}


def run_folder(baseline: Run, factory: pytest.TempPathFactory) -> Path:
    """The session's baseline run as a `dcsim run` output folder."""
    if "run" not in _made:
        out = factory.mktemp("run")
        results.write(baseline, out, comparison=figures.comparison(baseline))
        _made["run"] = out
    return _made["run"]


def comparison_folder(factory: pytest.TempPathFactory) -> Path:
    """Four arms (baseline, two reforms and their combination) x 3 seeds at scale 0.001."""
    if "comparison" not in _made:
        from report_comparison_builder import build_comparison

        _made["comparison"] = build_comparison(factory.mktemp("comparison"), COMPARISON_ARMS,
                                               COMPARISON_SEEDS)
    return _made["comparison"]


def report_file(kind: str, folder: Path, factory: pytest.TempPathFactory) -> Path:
    """The report of a folder, written once."""
    from dcsim.report import build

    key = f"html-{kind}"
    if key not in _made:
        _made[key] = build(folder, factory.mktemp("report") / f"{kind}.html")
    return _made[key]
