"""Scenario files: the period, the scale, the seed, the jurisdictions and which rule files apply.

A jurisdiction's rule stack is the scenario's base files, then its own locality files, then the
scenario's reform overlays; later files override earlier ones from their first date on.
"""

from __future__ import annotations

import datetime as dt
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .rules import RuleError, RuleStack, _parse, load_rule_file, resolve_table

PACKAGE_RULES = "data/rules"
DEFAULT_SCENARIO = "national_baseline.yaml"


class ScenarioError(ValueError):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Jurisdiction(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_]+$")
    share: float = Field(ge=0.0, le=1.0)
    rules: list[str] = []
    reference: str


class DistrictStudy(_Strict):
    """The setting in which to compare alerts per day with the district of paper fn 22."""

    start: dt.date
    end: dt.date
    registrants_under_alert: int = Field(gt=0)
    reference: str


class Scenario(_Strict):
    name: str
    description: str = ""
    start: dt.date
    end: dt.date
    scale: float = Field(gt=0.0, le=1.0)
    seed: int = Field(ge=0, lt=2**63)
    rules: list[str]
    overlays: list[str] = []
    jurisdictions: list[Jurisdiction]
    district_study: DistrictStudy
    source: Path | None = None

    @field_validator("start")
    @classmethod
    def _first_of_month(cls, v: dt.date) -> dt.date:
        if v.day != 1:
            raise ValueError("the period must start on the first day of a month")
        return v

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        if self.end <= self.start:
            raise ValueError("end must come after start")
        total = sum(j.share for j in self.jurisdictions)
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"jurisdiction shares sum to {total}, not 1")
        ids = [j.id for j in self.jurisdictions]
        if len(set(ids)) != len(ids):
            raise ValueError("jurisdiction ids must be unique")
        return self

    @property
    def n_days(self) -> int:
        return (self.end - self.start).days + 1

    def rule_path(self, name: str) -> Path:
        """A rule file named in the scenario: beside the scenario file, else the embedded set."""
        p = Path(name)
        if p.is_absolute() and p.exists():
            return p
        if self.source is not None and (self.source.parent / p).exists():
            return self.source.parent / p
        embedded = resources.files("dcsim").joinpath(PACKAGE_RULES, name)
        if embedded.is_file():
            return Path(str(embedded))
        raise ScenarioError(f"{self.source or '<scenario>'}: rule file {name!r} not found")

    def stacks(self) -> list[RuleStack]:
        """One rule stack per jurisdiction, in scenario order."""
        cache: dict[str, object] = {}

        def load(name: str):  # noqa: ANN202 - internal
            if name not in cache:
                cache[name] = load_rule_file(self.rule_path(name))
            return cache[name]

        base = [load(n) for n in self.rules]
        overlays = [load(n) for n in self.overlays]
        return [
            RuleStack([*base, *(load(n) for n in j.rules), *overlays])
            for j in self.jurisdictions
        ]

    def rule_files(self) -> list[Path]:
        names = [*self.rules, *(n for j in self.jurisdictions for n in j.rules), *self.overlays]
        seen: dict[str, Path] = {}
        for n in names:
            seen.setdefault(n, self.rule_path(n))
        return list(seen.values())


def default_scenario_path() -> Path:
    return Path(str(resources.files("dcsim").joinpath("data/scenarios", DEFAULT_SCENARIO)))


def load_scenario(path: str | Path | None = None, **overrides: object) -> Scenario:
    """Load a scenario file (the embedded national baseline when path is None)."""
    p = Path(path) if path is not None else default_scenario_path()
    try:
        data, reader = _parse(p, p.read_bytes())
    except OSError as e:
        raise ScenarioError(f"{p}: {e}") from e
    except RuleError as e:
        raise ScenarioError(str(e)) from e
    if not isinstance(data, dict):
        raise ScenarioError(f"{p}:1: a scenario is a mapping")
    data.update({k: v for k, v in overrides.items() if v is not None})
    data["source"] = p
    try:
        return Scenario.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        loc = tuple(first["loc"])
        key = ".".join(str(x) for x in loc)
        raise ScenarioError(f"{p}:{reader.line(loc)}: {key}: {first['msg']}") from e


def check_rules(scenario: Scenario) -> None:
    """Everything about the rules that `dcsim run` checks before simulating, so that
    `dcsim rules` refuses exactly what `run` refuses: every file loads, every stack is
    consistent, and every parameter has a value on every day of the period."""
    resolve_table(scenario.stacks(), scenario.start, scenario.end)
