"""The registry-core reference model run by dcsim's own engine, configured through rules only.

The overlay `registry_core.yaml` sets dcsim's rule values to the reference semantics; the two
values that depend on the size n (persons on day 0, newcomers a year) are set with
`model.with_values`. Nothing here simulates: dcsim's engine does, event by event.

dcsim reports by calendar month, not by day, so the result arrays are monthly: `present` holds
person-days under control in the month (so that `spec.person_days` counts the same thing as for
the daily implementations), `alerts`, `contacts`, `positives` and `releases` the month's totals,
and `using` the persons using among the unreleased at each month's end, exact for the last one
(read from the persons themselves).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np

from benchmarks.peers import spec
from dcsim import model
from dcsim.measures import Flow, Rate, Stock
from dcsim.scenario import Jurisdiction, Scenario, load_scenario
from dcsim.state import Release

OVERLAY = Path(__file__).with_name("registry_core.yaml")
BASE_RULES = ["national.yaml", "exit_practice.yaml", "grid.yaml", "apps.yaml"]  # uncalibrated
START = dt.date(2006, 1, 1)


def scenario(n: int, t: int, seed: int) -> Scenario:
    """One jurisdiction, the national rule files, then the registry-core overlay."""
    base = load_scenario()
    end = START + dt.timedelta(days=t - 1)
    return Scenario(
        name="registry-core", description="benchmark reference model", start=START, end=end,
        scale=1.0, seed=seed, rules=BASE_RULES, overlays=[str(OVERLAY)],
        jurisdictions=[Jurisdiction(id="registry_core", share=1.0, rules=[],
                                    reference="assumption: one jurisdiction (spec.py)")],
        district_study=base.district_study.model_copy(update={"start": START, "end": end}),
        source=base.source,
    )


_STACKS: dict[str, list] = {}  # rule files parsed once per process, as a long session would


def prepare(n: int, t: int, seed: int) -> model.Prepared:
    sc = scenario(n, t, seed)
    if "stacks" not in _STACKS:
        _STACKS["stacks"] = sc.stacks()
    p = model.prepare(sc, stacks=_STACKS["stacks"])
    return model.with_values(p, {
        "registration.initial_registry": n,
        "registration.newly_found_per_year": n / spec.ARRIVALS_PER_YEAR_PER_INITIAL
        * 365.25 / spec.DAYS_PER_YEAR,
    })


def run_dcsim(n: int, t: int, seed: int) -> spec.Result:
    run = model.simulate(prepare(n, t, seed))
    flows = run.flows.sum(axis=0)
    stocks = run.stocks.sum(axis=0)
    act = run.activity.sum(axis=0)
    pop = run.population
    using = stocks[:, Stock.TRUE_USING].astype(np.int64)
    unreleased = pop.out("control_code") == Stock.UNDER_CONTROL + Release.CONTROL
    using[-1] = int((pop.out("using_at_end")[unreleased] == 1).sum())
    return {
        "present": act[:, Rate.CONTROL_DAYS_UNDER_25:Rate.CONTROL_DAYS_60_PLUS + 1].sum(axis=1)
        .round().astype(np.int64),
        "using": using,
        "alerts": flows[:, Flow.ALERTS].astype(np.int64),
        "contacts": flows[:, Flow.ALERT_CONTACTS].astype(np.int64),
        "positives": (flows[:, Flow.SCHEDULED_TEST_POSITIVES]
                      + flows[:, Flow.ALERT_POSITIVES]).astype(np.int64),
        "releases": (flows[:, Flow.RELEASES_FULL] + flows[:, Flow.RELEASES_PARTIAL])
        .astype(np.int64),
    }
