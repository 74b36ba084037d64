"""Scenario files: the period, the scale, the seed, the jurisdictions and which rule files apply.

A jurisdiction's rule stack is the scenario's base files, then its own locality files, then the
scenario's reform overlays; later files override earlier ones from their first date on.

A scenario may `extends:` another (a path relative to the extending file, or the name of one of
the package's scenarios): it is that scenario with the keys it sets replaced, except `overlays`,
which are added after the parent's. Reform overlays ship in data/reforms and are found by name.
"""

from __future__ import annotations

import datetime as dt
from importlib import resources
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .rules import RuleError, RuleStack, _parse, load_rule_file

PACKAGE_RULES = "data/rules"
PACKAGE_REFORMS = "data/reforms"
PACKAGE_SCENARIOS = "data/scenarios"
DEFAULT_SCENARIO = "national_baseline.yaml"
_RULE_LISTS = ("rules", "overlays")


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
        for folder in (PACKAGE_RULES, PACKAGE_REFORMS):
            embedded = resources.files("dcsim").joinpath(folder, name)
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
    return Path(str(resources.files("dcsim").joinpath(PACKAGE_SCENARIOS, DEFAULT_SCENARIO)))


def package_scenarios() -> dict[str, Path]:
    """The package's scenarios by name (file stem, '-' or '_' alike)."""
    folder = resources.files("dcsim").joinpath(PACKAGE_SCENARIOS)
    return {Path(f.name).stem: Path(str(f)) for f in folder.iterdir() if f.name.endswith(".yaml")}


def find_scenario(ref: str | Path, relative_to: Path | None = None) -> Path | None:
    """A scenario file: a path (relative to `relative_to`'s folder when given, else to the
    working folder), else one of the package's scenarios by name; None if neither exists."""
    p = Path(ref)
    here = p if relative_to is None or p.is_absolute() else relative_to.parent / p
    if here.is_file():
        return here
    stem = p.name.removesuffix(".yaml").replace("-", "_")
    return package_scenarios().get(stem) if p.parent == Path(".") else None


def _read(p: Path) -> tuple[dict, object]:
    try:
        data, reader = _parse(p, p.read_bytes())
    except OSError as e:
        raise ScenarioError(f"{p}: {e}") from e
    except RuleError as e:
        raise ScenarioError(str(e)) from e
    if not isinstance(data, dict):
        raise ScenarioError(f"{p}:1: a scenario is a mapping")
    return data, reader


def _anchored(data: dict, p: Path) -> dict:
    """The parent's rule file names, made absolute where they lie beside the parent's file, so
    they still resolve from the extending file's folder."""
    def fix(names: object) -> object:
        if not isinstance(names, list):
            return names
        return [str((p.parent / n).resolve()) if isinstance(n, str) and not Path(n).is_absolute()
                and (p.parent / n).is_file() else n for n in names]

    out = {k: fix(v) if k in _RULE_LISTS else v for k, v in data.items()}
    if isinstance(out.get("jurisdictions"), list):
        out["jurisdictions"] = [{**j, "rules": fix(j.get("rules", []))} if isinstance(j, dict)
                                else j for j in out["jurisdictions"]]
    return out


def _load_data(p: Path, chain: tuple[Path, ...] = ()) -> tuple[dict, dict[str, tuple]]:
    """The scenario's keys with extends resolved, and for each key the (file, reader) it came
    from, so an error names the file and line that set the key."""
    data, reader = _read(p)
    origin = {k: (p, reader) for k in data}
    if "extends" not in data:
        return data, origin
    ref = data.pop("extends")
    line = reader.line(("extends",))
    if not isinstance(ref, str) or not ref.strip():
        raise ScenarioError(f"{p}:{line}: extends: expected a scenario file or name, got {ref!r}")
    parent = find_scenario(ref, relative_to=p)
    if parent is None:
        known = ", ".join(sorted(package_scenarios()))
        raise ScenarioError(f"{p}:{line}: extends: no scenario {ref!r} beside {p.name} nor in the "
                            f"package (package scenarios: {known})")
    if parent.resolve() in chain or parent.resolve() == p.resolve():
        raise ScenarioError(f"{p}:{line}: extends: {ref!r} extends this file again (a cycle)")
    pdata, porigin = _load_data(parent, (*chain, p.resolve()))
    pdata = _anchored(pdata, parent)
    overlays = data.get("overlays", [])
    if not isinstance(overlays, list):
        raise ScenarioError(f"{p}:{reader.line(('overlays',))}: overlays: expected a list of "
                            f"rule files, got {overlays!r}")
    merged = {**pdata, **data, "overlays": [*pdata.get("overlays", []), *overlays]}
    origin = {**porigin, **{k: v for k, v in origin.items() if k != "extends"}}
    return merged, origin


def load_scenario(path: str | Path | None = None, overlays: list[str | Path] | None = None,
                  **overrides: object) -> Scenario:
    """Load a scenario file (the embedded national baseline when path is None; a name such as
    'national-projection' finds the package's scenario); `overlays` are added last."""
    if path is None:
        p = default_scenario_path()
    else:
        p = find_scenario(path) or Path(path)
    data, origin = _load_data(p)
    data.update({k: v for k, v in overrides.items() if v is not None})
    if overlays:
        data["overlays"] = [*data.get("overlays", []), *(str(Path(o).resolve())
                                                         for o in overlays)]
    data["source"] = p
    try:
        return Scenario.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        loc = tuple(first["loc"])
        key = ".".join(str(x) for x in loc)
        where, reader = origin.get(str(loc[0]) if loc else "", (p, None))
        line = reader.line(loc) if reader is not None else 1
        raise ScenarioError(f"{where}:{line}: {key}: {first['msg']}") from e
