"""The Python API: tidy tables with typed months, and a labelled trace whose "why trapped"
agrees with the trap the engine records for the person at the end of the run."""

from __future__ import annotations

import numpy as np
import pytest

import dcsim
from dcsim.measures import Stock

WHY = {Stock.TRAPPED_NO_RELEASE_AREA: "no-release area", Stock.TRAPPED_INSUFFICIENT_TESTS:
       "too few negative tests", Stock.TRAPPED_AWAITING_UPDATE: "waiting for the record",
       Stock.TRAPPED_PARTIAL_RELEASE: "partial release", Stock.HELD_CRIMINAL_CASE:
       "criminal case"}


@pytest.fixture(scope="module")
def result() -> dcsim.RunResult:
    return dcsim.run(scale=0.002, seed=1)


def test_to_df_months_are_typed_first_days(result):
    df = result.to_df()
    assert str(df["month"].dtype).startswith("datetime64")
    assert (df["month"].dt.day == 1).all()
    assert {"records_deleted", "records_held"} <= set(df[df.group == "stock"].metric)
    head = result.to_df("headline")
    assert head.set_index("key").loc["releases_full", "value"] > 0


def test_trace_names_events_and_says_why_trapped(result):
    pop = result.raw.population
    trap = pop.out("trap_code")
    checked = 0
    for code, words in WHY.items():
        for i in np.flatnonzero(trap == code)[:5]:
            t = result.trace_person(int(i))
            assert words in t["why_trapped"].iloc[-1], (code, t.tail(3).to_string())
            assert set(t["release"]) <= {"control", "partial", "full", "deleted"}
            checked += 1
    free = np.flatnonzero((trap < 0) & (pop.out("control_code") == Stock.RELEASED))[:5]
    for i in free:
        assert result.trace_person(int(i))["why_trapped"].iloc[-1] == ""
    assert checked >= 12 and len(free) > 0


def test_run_rejects_an_unknown_overlay():
    from dcsim.compare import CompareError

    with pytest.raises(CompareError, match="no such file or package reform"):
        dcsim.run(overlays=["nowhere_2011"], scale=0.002)
