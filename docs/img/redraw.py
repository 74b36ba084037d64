"""Redraw docs/img/sensitivity.png from the ranking table in docs/calibration.md (its appendix:
the numbers of the last full `dcsim sensitivity` run), so the figure and the page show the same
numbers without rerunning the screening.

    PYTHONPATH=src python docs/img/redraw.py
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from dcsim.sensitivity import OUTPUTS, plot_ranking

DOCS = Path(__file__).resolve().parent.parent


def appendix_ranking(text: str) -> tuple[pd.DataFrame, int, float]:
    """(ranking table, trajectories, scale) from the page's appendix."""
    part = text.split("## Appendix: all", 1)[1]
    rows = []
    for line in part.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 + len(OUTPUTS) and cells[0].isdigit():
            pct = [float(c.rstrip("%")) / 100 for c in cells[4:4 + len(OUTPUTS)]]
            rows.append({"factor": cells[1], "rank": int(cells[0]),
                         **dict(zip(OUTPUTS, pct, strict=True))})
    trajectories = int(re.search(r"(\d+) trajectories", text).group(1))
    scale = float(re.search(r"calibrated default at (\d+)%", text).group(1)) / 100
    return pd.DataFrame(rows).set_index("factor"), trajectories, scale


if __name__ == "__main__":
    ranked, trajectories, scale = appendix_ranking((DOCS / "calibration.md").read_text())
    print(plot_ranking(ranked, DOCS / "img" / "sensitivity.png", len(ranked), trajectories,
                       scale, top=20))
