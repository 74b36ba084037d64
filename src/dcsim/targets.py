"""Targets: the published figures the model is held to, as data with their sources.

A target says what was published (value, source), which model output it is compared with
(a measure: a stock at the end of a month, entries up to a month, a share of flows over a
period, ...), how a miss is scored in calibration (a likelihood with a stated spread, and a
weight) and when the model passes (a tolerance). Like Starsim's calibration components, the
comparison is part of the target, not of the code that fits it, so a reader can check every
interpretation in one file (`data/targets.yaml`) and `dcsim fit` reports them all.

The file also lists which rule values calibration may move (`calibration:`), so the choice of
fitted assumptions is data that can be read, cited and changed.

Every measure reads aggregate outputs of a run (monthly flows and stocks, or counts over the
modelled registry); no target takes data about real persons (scope rule).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from .calendar import month_index
from .catalogue import CATALOGUE, VENUES, Par
from .measures import Flow, Stock
from .model import Run
from .official_series import MAPPING, Mapping, monthly
from .rules import RuleError, parse_yaml, reference_problem
from .state import Drug

__all__ = [
    "CalibrationSpec",
    "FittedValue",
    "Target",
    "TargetsError",
    "TargetsFile",
    "default_targets_path",
    "evaluate",
    "evaluate_all",
    "load_targets",
    "loss",
    "nll",
    "outside_period",
]

DEFAULT_TARGETS = "data/targets.yaml"
_ID = r"^[a-z0-9_]+$"
_ENTRY_FLOWS = (Flow.ENTRIES_DETAINED_POSITIVE, Flow.ENTRIES_STOPPED_NOT_DETAINED,
                Flow.ENTRIES_VOLUNTARY, Flow.ENTRIES_DATA_ERROR, Flow.ENTRIES_PRE_LAUNCH)
_STOCKS = {s.name.lower(): s for s in Stock}
_FLOWS = {f.name.lower(): f for f in Flow}


class TargetsError(RuleError):
    """A targets file is malformed; names file, line and key, as rule-file errors do."""


class _M(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, populate_by_name=True)


def _month(run: Run, day: dt.date) -> int | None:
    m = month_index(run.scenario.start, day)
    return m if 0 <= m < len(run.prepared.months) else None


def _names(names: list[str], known: dict[str, Any], what: str) -> list[str]:
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown {what} {unknown} (known: {', '.join(known)})")
    if not names:
        raise ValueError(f"at least one {what} is needed")
    return names


# --------------------------------------------------------------------------- measures


class AtMeasure(_M):
    """A measure read at the end of the month containing `at`; it has a monthly series."""

    at: dt.date

    def series(self, run: Run) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def value(self, run: Run) -> float:
        m = _month(run, self.at)
        return float("nan") if m is None else float(self.series(run)[m])


class CumulativeEntries(AtMeasure):
    """Every entry into the registry from the start of the run to the end of `at`'s month."""

    output: Literal["cumulative_entries"]

    def series(self, run: Run) -> np.ndarray:
        flows = run.flows.sum(axis=0)[:, list(_ENTRY_FLOWS)].sum(axis=1)
        return np.cumsum(flows) / run.scenario.scale


class StockAt(AtMeasure):
    """Persons in the named stock columns (summed) at the end of the month."""

    output: Literal["stock"]
    metrics: list[str]

    @field_validator("metrics")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        return _names(v, _STOCKS, "stock")

    def series(self, run: Run) -> np.ndarray:
        idx = [_STOCKS[n] for n in self.metrics]
        return run.stocks.sum(axis=0)[:, idx].sum(axis=1) / run.scenario.scale


class StockShare(AtMeasure):
    """Stock `metrics` as a share of stock `of`, at the end of the month."""

    output: Literal["stock_share"]
    metrics: list[str]
    of: list[str]

    @field_validator("metrics", "of")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        return _names(v, _STOCKS, "stock")

    def series(self, run: Run) -> np.ndarray:
        st = run.stocks.sum(axis=0)
        num = st[:, [_STOCKS[n] for n in self.metrics]].sum(axis=1).astype(float)
        den = st[:, [_STOCKS[n] for n in self.of]].sum(axis=1).astype(float)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(den > 0, num / np.maximum(den, 1), np.nan)


class OfficialFigure(AtMeasure):
    """A figure of the official series (evidence.md#official-series), read through its row of
    official_series.MAPPING, the same reading `dcsim validate` uses: a stock at the end of the
    month of `at`, a flow summed over the twelve months ending then, or a count since the
    mapping's date (national-equivalent)."""

    output: Literal["official"]
    quantity: str

    @field_validator("quantity")
    @classmethod
    def _mapped(cls, v: str) -> str:
        if v not in MAPPING:
            raise ValueError(f"no mapping for the official quantity {v!r} "
                             f"(known: {', '.join(MAPPING)})")
        return v

    def series(self, run: Run) -> np.ndarray:
        mp = MAPPING[self.quantity]
        flows, stocks = run.flows.sum(axis=0), run.stocks.sum(axis=0)
        national = {}
        for key in mp.keys:
            group, name = key.split(".", 1)
            arr, col = (flows, _FLOWS[name]) if group == "flow" else (stocks, _STOCKS[name])
            national[key] = arr[:, col] / run.scenario.scale
        since = 0 if mp.since is None else month_index(run.scenario.start, mp.since)
        return monthly(mp, since, len(run.prepared.months), national)


class FlowInYear(AtMeasure):
    """Flow `metrics` summed over the twelve months ending with `at`'s month (national-
    equivalent), read as the official flows are (official_series.monthly). For a published
    part of an official figure that has no row of its own, such as the split of the 2014
    community orders given in the note of their row."""

    output: Literal["flow_in_year"]
    metrics: list[str]

    @field_validator("metrics")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        return _names(v, _FLOWS, "flow")

    def series(self, run: Run) -> np.ndarray:
        keys = tuple(f"flow.{m}" for m in self.metrics)
        mp = Mapping("flow_in_year", "flow", "person-times", keys, "flows in the year")
        flows = run.flows.sum(axis=0)
        national = {f"flow.{m}": flows[:, _FLOWS[m]] / run.scenario.scale for m in self.metrics}
        return monthly(mp, 0, len(run.prepared.months), national)


class StockRatio(AtMeasure):
    """Persons in the stock columns at the end of `at`'s month over the same at `base`'s:
    a trend (paper fn 1: the number held "virtually unchanged" over 2012-2018)."""

    output: Literal["stock_ratio"]
    metrics: list[str]
    base: dt.date

    @field_validator("metrics")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        return _names(v, _STOCKS, "stock")

    def series(self, run: Run) -> np.ndarray:
        st = run.stocks.sum(axis=0)[:, [_STOCKS[n] for n in self.metrics]].sum(axis=1)
        b = _month(run, self.base)
        if b is None or st[b] == 0:
            return np.full(len(st), np.nan)
        return st / float(st[b])


class HeroinShareOfRegistrations(AtMeasure):
    """Heroin (opioid) users among everyone registered so far (cumulative registrations)."""

    output: Literal["heroin_share_of_registrations"]

    def series(self, run: Run) -> np.ndarray:
        pop, n_m = run.population, len(run.prepared.months)
        month = run.prepared.month_of_day[pop.entry_day]
        total = np.cumsum(np.bincount(month, minlength=n_m))
        heroin = np.cumsum(np.bincount(month[pop.drug == Drug.HEROIN], minlength=n_m))
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(total > 0, heroin / np.maximum(total, 1), np.nan)


class RelapseWithin(AtMeasure):
    """The model's relapse law: share of an abstinent spell that relapses within `days`.

    drug_use.py starts every abstinent spell (for instance on release from custody) with a
    relapse of probability p after an exponential time of mean m, so the share relapsed by day
    d is p (1 - exp(-d / m)), with p and m those of `drug` (drug_use.relapse_law); the rule
    values in force are averaged over jurisdictions by share.
    """

    output: Literal["relapse_within"]
    days: int = Field(gt=0)
    drug: Literal["heroin", "synthetic"]  # the relapse law is by drug; say whose was followed

    def series(self, run: Run) -> np.ndarray:
        table = run.prepared.table
        p = table[:, :, Par[f"DRUG_USE__RELAPSE_PROBABILITY__{self.drug.upper()}"]]
        mean = table[:, :, Par[f"DRUG_USE__MEAN_DAYS_TO_RELAPSE__{self.drug.upper()}"]]
        share = p * (1.0 - np.exp(-self.days / np.maximum(mean, 1e-9)))
        w = np.array([j.share for j in run.scenario.jurisdictions])
        return (w[:, None] * share).sum(axis=0)


class SurveyFeltShare(AtMeasure):
    """Share of registrants who "felt" the DCS at least once at the named venues by `at`.

    Two readings of the 2011 survey (paper fn 50). `event: contact` (the first reading): an
    alert response reached the person (`interrogations_<venue>`), among everyone registered
    at `at` (existing users plus abstinent). `event: alert`: an alert was raised when they
    used their ID there (`alerts_<venue>`: the check, the questions at the desk), among the
    registrants living in the community (not in custody) at `at`. Events from the start of
    the run to `at` per person, taken as a Poisson mean: share = 1 - exp(-events / persons).
    With unequal exposure the true share is lower (Jensen), so this is the model's upper bound.
    """

    output: Literal["survey_felt_share"]
    venues: list[str]
    event: Literal["contact", "alert"] = "contact"

    @field_validator("venues")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        return _names(v, dict.fromkeys(VENUES), "venue")

    def series(self, run: Run) -> np.ndarray:
        fl = run.flows.sum(axis=0)
        prefix = "interrogations" if self.event == "contact" else "alerts"
        cols = [_FLOWS[f"{prefix}_{v}"] for v in self.venues]
        events = np.cumsum(fl[:, cols].sum(axis=1)).astype(float)
        st = run.stocks.sum(axis=0)
        reg = (st[:, Stock.EXISTING_USERS] + st[:, Stock.ABSTINENT_3Y_RECORDED]).astype(float)
        if self.event == "alert":
            held = st[:, [Stock.PATHWAY_ISOLATION, Stock.PATHWAY_VOLUNTARY,
                          Stock.PATHWAY_DETENTION]].sum(axis=1)
            reg = reg - held
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(reg > 0, 1.0 - np.exp(-events / np.maximum(reg, 1)), np.nan)


class Period(_M):
    from_: dt.date = Field(alias="from")
    to: dt.date

    @model_validator(mode="after")
    def _check(self) -> Period:
        if self.to < self.from_:
            raise ValueError(f"period runs backwards: from {self.from_} to {self.to}")
        return self


def _period(run: Run, period: Literal["district_study"] | Period) -> slice | None:
    if period == "district_study":
        ds = run.scenario.district_study
        first, last = ds.start, ds.end
    else:
        assert isinstance(period, Period)
        first, last = period.from_, period.to
    a, b = _month(run, first), _month(run, last)
    return None if a is None or b is None else slice(a, b + 1)


class FlowShare(_M):
    """Flow `metrics` as a share of flow `of`, summed over a period (e.g. contacts / alerts)."""

    output: Literal["flow_share"]
    metrics: list[str]
    of: list[str]
    period: Literal["district_study"] | Period

    @field_validator("metrics", "of")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        return _names(v, _FLOWS, "flow")

    def value(self, run: Run) -> float:
        sl = _period(run, self.period)
        if sl is None:
            return float("nan")
        fl = run.flows.sum(axis=0)[sl]
        num = fl[:, [_FLOWS[n] for n in self.metrics]].sum()
        den = fl[:, [_FLOWS[n] for n in self.of]].sum()
        return float(num / den) if den else float("nan")


class StockRange(_M):
    """The largest month-end count of the stock columns over a period divided by the smallest:
    how far a stock moved inside the period, not only between its ends. fn 1 says the number
    held "remained virtually unchanged" between 2012 and 2018, which a ratio of the two ends
    (StockRatio) can meet while the stock rises by half and falls back between them."""

    output: Literal["stock_range"]
    metrics: list[str]
    period: Period

    @field_validator("metrics")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        return _names(v, _STOCKS, "stock")

    def value(self, run: Run) -> float:
        sl = _period(run, self.period)
        if sl is None:
            return float("nan")
        st = run.stocks.sum(axis=0)[sl, [_STOCKS[n] for n in self.metrics]].sum(axis=1)
        low = float(st.min())
        return float(st.max()) / low if low > 0 else float("nan")


class DistrictAlertsPerDay(_M):
    """Alerts a day in the district of paper fn 22, as `dcsim run` reports them.

    National alerts per person under control per day over the scenario's district-study
    period, times the district's assumed number of registrants under alert.
    """

    output: Literal["district_alerts_per_day"]

    def value(self, run: Run) -> float:
        ds = run.scenario.district_study
        sl = _period(run, "district_study")
        if sl is None:
            return float("nan")
        alerts = run.flows.sum(axis=0)[sl, Flow.ALERTS].sum()
        under = run.stocks.sum(axis=0)[sl, Stock.UNDER_CONTROL].mean()
        days = (ds.end - ds.start).days + 1
        return float(alerts / days / under * ds.registrants_under_alert) if under else math.nan


Measure = Annotated[
    CumulativeEntries | StockAt | StockShare | HeroinShareOfRegistrations | RelapseWithin
    | SurveyFeltShare | FlowShare | DistrictAlertsPerDay | OfficialFigure | FlowInYear
    | StockRatio | StockRange,
    Field(discriminator="output"),
]


# --------------------------------------------------------------------------- likelihoods


class Normal(_M):
    """Gaussian error with a stated spread: absolute `sd` or `sd_relative` to the value."""

    type: Literal["normal"]
    sd: float | None = Field(default=None, gt=0)
    sd_relative: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _check(self) -> Normal:
        if (self.sd is None) == (self.sd_relative is None):
            raise ValueError("give exactly one of sd and sd_relative")
        return self

    def spread(self, value: float) -> float:
        return self.sd if self.sd is not None else self.sd_relative * abs(value)

    def nll(self, model: float, value: float) -> float:
        return 0.5 * ((model - value) / self.spread(value)) ** 2

    def describe(self, value: float) -> str:
        if self.sd is not None:
            return f"normal, sd {self.sd:g}"
        return f"normal, sd {100 * self.sd_relative:g}% of the value"


class Binomial(_M):
    """A published share x/n: binomial deviance of the model's share (0 at a perfect fit)."""

    type: Literal["binomial"]
    n: int = Field(gt=0)

    def nll(self, model: float, value: float) -> float:
        x, n = value * self.n, self.n
        p = min(max(model, 1e-12), 1 - 1e-12)
        out = 0.0
        if x > 0:
            out += x * math.log(x / (n * p))
        if n - x > 0:
            out += (n - x) * math.log((n - x) / (n * (1 - p)))
        return out

    def describe(self, value: float) -> str:
        return f"binomial, n {self.n:,}"


class Poisson(_M):
    """A published count: Poisson deviance of the model's expected count (0 at a perfect fit).

    `count` is the published count that `value` stands for (3,640 alerts for 12 a day); the
    model's value is converted to that count in proportion.
    """

    type: Literal["poisson"]
    count: float = Field(gt=0)

    def nll(self, model: float, value: float) -> float:
        c = self.count
        e = max(model / value * c, 1e-12)
        return e - c + c * math.log(c / e)

    def describe(self, value: float) -> str:
        return f"Poisson, count {self.count:,.0f}"


class Interval(_M):
    """A published range: no loss inside [low, high], Gaussian with `sd` outside."""

    type: Literal["interval"]
    low: float
    high: float
    sd: float = Field(gt=0)

    @model_validator(mode="after")
    def _check(self) -> Interval:
        if self.low > self.high:
            raise ValueError(f"interval [{self.low}, {self.high}] runs backwards")
        return self

    def nll(self, model: float, value: float) -> float:
        d = max(self.low - model, 0.0, model - self.high)
        return 0.5 * (d / self.sd) ** 2

    def describe(self, value: float) -> str:
        return f"interval [{self.low:g}, {self.high:g}], sd {self.sd:g} outside"


Likelihood = Annotated[Normal | Binomial | Poisson | Interval, Field(discriminator="type")]


class Tolerance(_M):
    """When the model passes: within a relative or absolute distance, or inside an interval."""

    relative: float | None = Field(default=None, gt=0)
    absolute: float | None = Field(default=None, gt=0)
    interval: list[float] | None = Field(default=None, min_length=2, max_length=2)

    @model_validator(mode="after")
    def _check(self) -> Tolerance:
        given = [x is not None for x in (self.relative, self.absolute, self.interval)]
        if sum(given) != 1:
            raise ValueError("give exactly one of relative, absolute and interval")
        if self.interval is not None and self.interval[0] > self.interval[1]:
            raise ValueError(f"interval {self.interval} runs backwards")
        return self

    def passes(self, model: float, value: float, margin: float = 0.0) -> bool:
        """Inside the tolerance; with `margin` (a share of its half-width, 0-1) inside the
        tolerance shrunk by that share on each side (calibration.hard_margin)."""
        return self.shortfall(model, value, margin) == 0.0

    def shortfall(self, model: float, value: float, margin: float = 0.0) -> float:
        """How far outside the (shrunk) tolerance, in half-widths: 0 inside, inf for NaN."""
        if model != model:
            return math.inf
        if self.interval is not None:
            lo, hi = self.interval
            half = (hi - lo) / 2.0
            gap = max(lo + margin * half - model, model - (hi - margin * half), 0.0)
        else:
            half = (self.relative * abs(value) if self.relative is not None
                    else float(self.absolute))  # type: ignore[arg-type]
            gap = max(abs(model - value) - (1.0 - margin) * half, 0.0)
        return gap / half if half > 0 else (0.0 if gap == 0 else math.inf)

    def describe(self, unit: str) -> str:
        if self.relative is not None:
            return f"within {100 * self.relative:g}%"
        if self.absolute is not None:
            if unit == "share":
                return f"within {100 * self.absolute:g} pts"
            return f"within {self.absolute:g}"
        assert self.interval is not None
        lo, hi = self.interval
        if unit == "share":
            return f"in [{100 * lo:g}%, {100 * hi:g}%]"
        return f"in [{lo:g}, {hi:g}]"


# --------------------------------------------------------------------------- targets


class Target(_M):
    """One published figure, how the model's value is read, scored and judged."""

    id: str = Field(pattern=_ID)
    label: str = Field(min_length=1)
    source: str
    kind: Literal["hard", "soft"]
    value: float
    unit: Literal["persons", "person_times", "share", "per_day", "ratio"]
    measure: Measure
    likelihood: Likelihood
    weight: float = Field(ge=0)
    tolerance: Tolerance
    interpretation: str = Field(min_length=1)
    series: str | None = Field(default=None, pattern=_ID)

    @field_validator("source")
    @classmethod
    def _cited(cls, v: str) -> str:
        if problem := reference_problem(v):
            raise ValueError(problem)
        return v

    def evaluate(self, run: Run) -> float:
        return self.measure.value(run)

    def nll(self, model: float) -> float:
        return self.likelihood.nll(model, self.value)

    def plotted(self) -> bool:
        return self.series is not None and isinstance(self.measure, AtMeasure)


class FittedWindow(_M):
    """A rule value calibration may move: parameter `name`, the window starting `from`
    (every window of the parameter in the base rule files when `from` is left out)."""

    name: str
    from_: dt.date | None = Field(default=None, alias="from")

    @field_validator("name")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in CATALOGUE:
            raise ValueError(f"unknown parameter {v!r}")
        return v


class FittedValue(_M):
    """One dimension of the calibration search.

    mode `value`: the dimension is the value of one window, searched within `bounds` (default:
    the window's stated `range`). mode `factor`: the dimension multiplies the base value of
    every listed window (all ID-use venues together, say), searched within `bounds`.
    """

    id: str = Field(pattern=_ID)
    mode: Literal["value", "factor"]
    windows: list[FittedWindow] = Field(min_length=1)
    bounds: list[float] | None = Field(default=None, min_length=2, max_length=2)
    informs: list[str] = Field(min_length=1)
    why: str = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> FittedValue:
        if self.mode == "value" and (len(self.windows) != 1 or self.windows[0].from_ is None):
            raise ValueError("mode value fits one window: give one window with its 'from'")
        if self.mode == "factor" and self.bounds is None:
            raise ValueError("mode factor needs bounds [low, high] for the factor")
        if self.bounds is not None and not self.bounds[0] < self.bounds[1]:
            raise ValueError(f"bounds {self.bounds} must have low < high")
        return self


class CalibrationSpec(_M):
    """How `dcsim calibrate` runs: scale, seeds per trial, trials, and what it may move."""

    scale: float = Field(gt=0, le=1)
    seeds: list[int] = Field(min_length=1)
    trials: int = Field(gt=0)
    sampler_seed: int = Field(ge=0)
    hard_margin: float = Field(default=0.0, ge=0, lt=1)
    fitted: list[FittedValue] = Field(min_length=1)
    fixed: str = Field(min_length=1)


class TargetsFile(_M):
    description: str
    targets: list[Target] = Field(min_length=1)
    calibration: CalibrationSpec
    path: Path | None = None
    content: bytes = Field(default=b"", repr=False)

    @model_validator(mode="after")
    def _check(self) -> TargetsFile:
        problems = _cross_problems([t.id for t in self.targets],
                                   [(f.id, f.informs) for f in self.calibration.fitted])
        if problems:
            raise ValueError(problems[0][1])
        return self

    def get(self, target_id: str) -> Target:
        for t in self.targets:
            if t.id == target_id:
                return t
        raise KeyError(target_id)

    @property
    def hard(self) -> list[Target]:
        return [t for t in self.targets if t.kind == "hard"]

    def digest(self) -> str:
        """sha256 of the file's bytes (identifies the targets a calibration used)."""
        return hashlib.sha256(self.content).hexdigest()


def _cross_problems(ids: list[str], fitted: list[tuple[str, list[str]]]
                   ) -> list[tuple[tuple[str | int, ...], str]]:
    """Checks across entries, with the key path each problem is at."""
    out: list[tuple[tuple[str | int, ...], str]] = []
    for i, t in enumerate(ids):
        if t in ids[:i]:
            out.append((("targets", i, "id"), f"duplicate target ids [{t!r}]"))
    names = [f for f, _ in fitted]
    for k, (f, informs) in enumerate(fitted):
        if f in names[:k]:
            out.append((("calibration", "fitted", k, "id"), f"duplicate fitted id {f!r}"))
        unknown = [i for i in informs if i not in ids]
        if unknown:
            out.append((("calibration", "fitted", k, "informs"),
                        f"fitted {f}: informs unknown targets {unknown}"))
    return out


def default_targets_path() -> Path:
    return Path(str(resources.files("dcsim").joinpath(DEFAULT_TARGETS)))


def _locate(data: Any, loc: tuple) -> tuple[str | int, ...]:
    """The key path in the file's data that a pydantic error location points at.

    Pydantic adds union tags ('stock', 'normal', ...) that are not keys of the file; they are
    skipped. A missing or unknown key ends the path.
    """
    path: list[str | int] = []
    node = data
    for part in loc:
        part = "from" if part == "from_" else part
        if isinstance(node, dict) and part in node:
            node = node[part]
            path.append(part)
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            path.append(part)
        elif isinstance(node, dict) and isinstance(part, str) and not _is_tag(part):
            path.append(part)
            break
    return tuple(path)


_TAGS = {"cumulative_entries", "stock", "stock_share", "heroin_share_of_registrations",
         "relapse_within", "survey_felt_share", "flow_share", "district_alerts_per_day",
         "official", "stock_ratio", "normal", "binomial", "poisson", "interval",
         "literal['district_study']", "Period"}


def _is_tag(part: str) -> bool:
    return part in _TAGS or part.startswith(("function-", "literal[", "union["))


def load_targets(path: str | Path | None = None) -> TargetsFile:
    """Read and validate a targets file (the embedded one when path is None).

    Any problem raises TargetsError naming file, line and key, so a misread target cannot pass
    silently as a finding.
    """
    p = Path(path) if path is not None else default_targets_path()
    content = p.read_bytes()
    try:
        data, reader = parse_yaml(p, content)
    except RuleError as e:
        raise TargetsError(e.path, e.line, e.key, e.message) from e
    if not isinstance(data, dict):
        raise TargetsError(p, 1, None, "a targets file is a mapping")
    try:
        return TargetsFile.model_validate({**data, "path": p, "content": content})
    except ValidationError as e:
        errors = e.errors()
        err = next((x for x in errors if x["type"] == "extra_forbidden"), errors[0])
        kpath = _locate(data, tuple(err["loc"]))
        if not err["loc"]:  # a check across entries: find which entry
            cross = _cross_problems(
                [t["id"] for t in data["targets"]],
                [(f["id"], f["informs"]) for f in data["calibration"]["fitted"]])
            if cross:
                kpath = cross[0][0]
        line = reader.line(kpath)
        key = ".".join(f"[{k}]" if isinstance(k, int) else str(k) for k in kpath)
        key = key.replace(".[", "[")
        msg = err["msg"].removeprefix("Value error, ")
        raise TargetsError(p, line, key or None, msg) from e


# --------------------------------------------------------------------------- scoring


def _dates(value: object) -> list[dt.date]:
    """Every date in a measure's fields, nested periods included."""
    if isinstance(value, dt.date):
        return [value]
    if isinstance(value, dict):
        return [d for v in value.values() for d in _dates(v)]
    if isinstance(value, list | tuple):
        return [d for v in value for d in _dates(v)]
    return []


def outside_period(targets: TargetsFile, start: dt.date, end: dt.date,
                   district_study: tuple[dt.date, dt.date]) -> list[str]:
    """The scored targets (weight above 0) whose measure names a date (or the district study)
    outside the months of start..end, the period of a scenario: a fit to them would only pay
    the loss's `missing` for each, so the fitting commands refuse such a scenario before any
    run."""
    last = month_index(start, end)
    out = []
    for t in (t for t in targets.targets if t.weight > 0):
        fields = t.measure.model_dump()
        dates = _dates(fields) + (list(district_study)
                                  if fields.get("period") == "district_study" else [])
        if any(not 0 <= month_index(start, d) <= last for d in dates):
            out.append(t.id)
    return out


def evaluate(target: Target, run: Run) -> float:
    """The model's value for one target, read from a run as the target's measure says."""
    return target.evaluate(run)


def evaluate_all(targets: TargetsFile, run: Run) -> dict[str, float]:
    """The model's value for every target (NaN where the run does not cover the target)."""
    return {t.id: t.evaluate(run) for t in targets.targets}


def nll(target: Target, model: float) -> float:
    """Negative log-likelihood (up to a constant, 0 at a perfect fit) of one target."""
    return target.nll(model)


def loss(targets: TargetsFile, values: dict[str, float], missing: float = 1e6) -> float:
    """Weighted sum of the targets' negative log-likelihoods: what calibration minimises.

    A target the run cannot measure (NaN) costs `missing`, so a parameter set that breaks a
    measure is never preferred.
    """
    total = 0.0
    for t in targets.targets:
        if t.weight == 0:
            continue
        v = values[t.id]
        total += missing if v != v else t.weight * t.nll(v)
    return total
