"""The paper's figures (the hard targets of targets.yaml: paper fn 7, 8, 22, 48) set beside the
model's own, as `dcsim run` prints them and writes paper_figures.parquet.

The published values, how the model's value is read and the role of each figure come from
targets.yaml (through targets.Target and fit.role), not from copies here, so the run's table,
`dcsim fit` and the report cannot disagree on a value or on whether it is a result: the
785,900 of March 2007 is forced by the sweep's inflow rule and the 26% contact share is a rule
value, so both are marked `input`, not presented as findings.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .fit import role
from .model import Run
from .targets import TargetsFile, load_targets

COLUMNS = ["figure", "id", "source", "role", "published", "model", "unit", "relative_error",
           "tolerance", "within_tolerance", "how_measured", "role_why"]


def comparison(run: Run, targets: TargetsFile | None = None) -> pd.DataFrame:
    """One row per hard target (default: the package's targets.yaml): the published value,
    the model's (national-equivalent, NaN where the run does not cover the date), its role,
    the relative error, the tolerance the target holds the model to (judged here on this one
    run; `dcsim fit` judges the mean over seeds) and how the model's value is read."""
    tf = targets if targets is not None else load_targets()
    rows = []
    for t in tf.hard:
        used, why = role(tf, t)
        model = t.evaluate(run)
        rows.append({"figure": t.label, "id": t.id, "source": t.source, "role": used,
                     "published": t.value, "model": float(model), "unit": t.unit,
                     "relative_error": (model - t.value) / t.value if t.value else np.nan,
                     "tolerance": t.tolerance.describe(t.unit),
                     "within_tolerance": bool(t.tolerance.passes(float(model), t.value)),
                     "how_measured": " ".join(t.interpretation.split()), "role_why": why})
    return pd.DataFrame(rows, columns=COLUMNS)
