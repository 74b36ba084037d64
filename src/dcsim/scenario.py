"""Scenario files: the period, the scale, the seed, the jurisdictions and which rule files apply.

A jurisdiction's rule stack is the scenario's base files, then its own locality files, then the
scenario's reform overlays; later files override earlier ones from their first date on.

A rule file is named as a path relative to the scenario's folder (or absolute), or as
`dcsim:NAME` for a file shipped in the package's data/rules. A name is that file or an error:
a missing file beside the scenario never falls back to a shipped file of the same name. Every
error names the scenario file, the line and the key.

A scenario may `extends:` another (a path relative to the extending file, or the name of one of
the package's scenarios): it is that scenario with the keys it sets replaced, except `overlays`,
which are added after the parent's. Reform overlays ship in data/reforms; `dcsim:NAME` finds
them too.
"""

from __future__ import annotations

import datetime as dt
import difflib
import os
from importlib import resources
from pathlib import Path

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from .rules import (
    OutOfWindowError,
    RuleError,
    RuleStack,
    load_rule_file,
    parse_yaml,
    read_limited,
    resolve_table,
)

PACKAGE_RULES = "data/rules"
PACKAGE_PREFIX = "dcsim:"  # names a rule file shipped in the package
DEFAULT_SCENARIO = "national_baseline.yaml"
FIRST_DAY = dt.date(2006, 1, 1)  # the DCS was launched in 2006 (paper fn 2, 7)
LAST_DAY = dt.date(2100, 12, 31)  # assumption: a bound on the period (day counts stay small)
_REGISTRATION_SHARES = ("registration.share.detained_positive",
                        "registration.share.stopped_not_detained", "registration.share.voluntary")
PACKAGE_REFORMS = "data/reforms"
PACKAGE_SCENARIOS = "data/scenarios"
_RULE_LISTS = ("rules", "overlays")


class ScenarioError(ValueError):
    pass


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


RuleName = Field(min_length=1, max_length=4096)


class Jurisdiction(_Strict):
    id: str = Field(pattern=r"^[a-z0-9_]+$", max_length=100)
    share: float = Field(ge=0.0, le=1.0)
    rules: list[str] = []
    reference: str = Field(min_length=1)

    @field_validator("rules")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        return _rule_names(v)


def _rule_names(names: list[str]) -> list[str]:
    for n in names:
        if not n.strip() or "\x00" in n:
            raise ValueError(f"a rule file name must be a path or dcsim:NAME, got {n!r}")
    return names


class DistrictStudy(_Strict):
    """The setting in which to compare alerts per day with the district of paper fn 22."""

    start: dt.date
    end: dt.date
    registrants_under_alert: int = Field(gt=0, le=100_000_000, strict=True)
    reference: str

    @field_validator("end")
    @classmethod
    def _after_start(cls, v: dt.date, info) -> dt.date:  # noqa: ANN001
        start = info.data.get("start")
        if start is not None and v < start:
            raise ValueError(f"end {v} is before start {start}")
        return v


class Scenario(_Strict):
    name: str
    description: str = ""
    start: dt.date
    end: dt.date
    scale: float = Field(gt=0.0, le=1.0)
    seed: int = Field(ge=0, lt=2**63, strict=True)  # strict: `true` is not the seed 1
    rules: list[str] = Field(min_length=1)
    overlays: list[str] = []
    jurisdictions: list[Jurisdiction] = Field(min_length=1, max_length=1000)
    district_study: DistrictStudy
    source: Path | None = None
    _lines: dict = PrivateAttr(default_factory=dict)  # key path -> line in the file that set it
    _files: dict = PrivateAttr(default_factory=dict)  # top-level key -> the file that set it

    @field_validator("start")
    @classmethod
    def _first_of_month(cls, v: dt.date) -> dt.date:
        if v.day != 1:
            raise ValueError("the period must start on the first day of a month")
        if not FIRST_DAY <= v <= LAST_DAY:
            raise ValueError(f"start {v} is outside {FIRST_DAY} to {LAST_DAY} (the DCS began "
                             "in 2006, paper fn 2, 7)")
        return v

    @field_validator("end")
    @classmethod
    def _after_start(cls, v: dt.date, info) -> dt.date:  # noqa: ANN001
        start = info.data.get("start")
        if start is not None and v <= start:
            raise ValueError(f"end {v} must come after start {start}")
        if v > LAST_DAY:
            raise ValueError(f"end {v} is after {LAST_DAY}, the last day a run may reach")
        return v

    @field_validator("rules", "overlays")
    @classmethod
    def _names(cls, v: list[str]) -> list[str]:
        return _rule_names(v)

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        return self  # the checks that need a line of the file: _located_problem

    def line(self, *kpath: str | int) -> int:
        """Line of a key path in the scenario file (its nearest enclosing key; 1 if unknown)."""
        while kpath not in self._lines and kpath:
            kpath = kpath[:-1]
        return self._lines.get(kpath, 1)

    def error(self, message: str, *kpath: str | int) -> ScenarioError:
        """ScenarioError naming this scenario's file, the line of `kpath` and the key."""
        key = _fmt_key(kpath)
        path = self._files.get(str(kpath[0]), self.source) if kpath else self.source
        where = f"{path or '<scenario>'}:{self.line(*kpath)}: "
        return ScenarioError(where + (f"{key}: " if key else "") + message)

    def name_path(self, name: str) -> tuple[str | int, ...]:
        """Key path of the first place the scenario names rule file `name`."""
        for i, n in enumerate(self.rules):
            if n == name:
                return ("rules", i)
        for i, n in enumerate(self.overlays):
            if n == name:
                return ("overlays", i)
        for i, j in enumerate(self.jurisdictions):
            if name in j.rules:
                return ("jurisdictions", i, "rules", j.rules.index(name))
        return ()

    @property
    def n_days(self) -> int:
        return (self.end - self.start).days + 1

    def rule_path(self, name: str) -> Path:
        """The rule file a name in the scenario means: `dcsim:NAME` a shipped file, any other
        name a path from the scenario's folder (from the package's data/rules for a shipped
        scenario or one built in memory). It must be a regular file; nothing else is tried."""
        package = Path(str(resources.files("dcsim").joinpath(PACKAGE_RULES)))
        if name.startswith(PACKAGE_PREFIX):
            short = name[len(PACKAGE_PREFIX):]
            reforms = Path(str(resources.files("dcsim").joinpath(PACKAGE_REFORMS)))
            p = package / short if (package / short).is_file() else reforms / short
            if os.sep in short or short in ("", ".", "..") or not p.is_file():
                shipped = sorted(q.name for q in [*package.glob("*.yaml"),
                                                  *reforms.glob("*.yaml")])
                close = difflib.get_close_matches(short, shipped, n=1)
                hint = f"; did you mean 'dcsim:{close[0]}'?" if close else ""
                raise self.error(f"no shipped rule file {name!r} (shipped: "
                                 f"{', '.join(shipped)}){hint}", *self.name_path(name))
            return p
        p = Path(name)
        if not p.is_absolute():
            shipped = self.source is None or self.source.parent == default_scenario_path().parent
            p = (package if shipped else self.source.parent) / p
        if not p.is_file():
            why = "not found" if not os.path.lexists(p) else "not a regular file"
            hint = ""
            if why == "not found" and (package / Path(name).name).is_file():
                hint = f" (to use the shipped file, write 'dcsim:{Path(name).name}')"
            raise self.error(f"rule file {name!r} {why}: {p}{hint}", *self.name_path(name))
        return p

    def stacks(self) -> list[RuleStack]:
        """One rule stack per jurisdiction, in scenario order."""
        cache: dict[str, object] = {}

        def load(name: str):  # noqa: ANN202 - internal
            if name not in cache:
                cache[name] = load_rule_file(self.rule_path(name))
            return cache[name]

        base = [load(n) for n in self.rules]
        overlays = [load(n) for n in self.overlays]
        for j in self.jurisdictions:  # every file is checked before any stack is built
            for n in j.rules:
                load(n)
        out = []
        for i, j in enumerate(self.jurisdictions):
            files = [*base, *(load(n) for n in j.rules), *overlays]
            try:
                out.append(RuleStack(files))
            except ValueError as e:  # files for several localities, or for another one
                raise self.error(str(e), "jurisdictions", i, "rules") from e
        return out

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
        data, reader = parse_yaml(p, read_limited(p))
    except RuleError as e:
        raise ScenarioError(str(e)) from e
    if not isinstance(data, dict):
        raise ScenarioError(f"{p}:1: a scenario is a mapping, got {type(data).__name__}")
    if "source" in data:
        raise ScenarioError(f"{p}:{reader.line(('source',))}: source: unknown key 'source'")
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
    given = {k: v for k, v in overrides.items() if v is not None}
    data.update(given)
    if overlays:
        data["overlays"] = [*data.get("overlays", []), *(str(Path(o).resolve())
                                                         for o in overlays)]
    data["source"] = p
    try:
        sc = Scenario.model_validate(data)
    except ValidationError as e:
        raise _located(e, origin, p, given) from e
    sc._lines, sc._files = _lines_by_key(origin)
    if problem := _located_problem(sc):
        raise sc.error(problem[1], *problem[0])
    return sc




def _lines_by_key(origin: dict[str, tuple]) -> tuple[dict, dict]:
    """Lines of every key path, and the file of every top-level key, each from the file that
    set the key (a scenario that extends another holds keys of both)."""
    lines: dict = {}
    files: dict = {}
    for key, (path, reader) in origin.items():
        files[key] = path
        lines.update({k: v for k, v in reader.lines.items() if k[:1] == (key,)})
    return lines, files


def _located(e: ValidationError, origin: dict[str, tuple], p: Path,
             given: dict) -> ScenarioError:
    """The most useful error of a validation: an unknown key (the likely misspelling) before
    a missing one, named at its own line in the file that set it; a value given on the command
    line named as such."""
    errors = sorted(e.errors(), key=lambda x: {"extra_forbidden": 0, "missing": 2}.get(
        x["type"], 1))
    first = errors[0]
    loc = tuple(first["loc"])
    key = _fmt_key(loc)
    msg = first["msg"].removeprefix("Value error, ")
    if first["type"] == "extra_forbidden":
        model = _model_at(loc[:-1])
        allowed = [f for f in model.model_fields if f != "source"]
        close = difflib.get_close_matches(str(loc[-1]), allowed, n=1, cutoff=0.6)
        msg = f"unknown key {loc[-1]!r}" + (f"; did you mean {close[0]!r}?" if close else
                                            f" (allowed: {', '.join(allowed)})")
    elif first["type"] == "missing":
        msg = f"missing required key {loc[-1]!r}"
    if loc and loc[0] in given:
        return ScenarioError(f"--{loc[0]} (given on the command line): {msg}")
    where, reader = origin.get(str(loc[0]) if loc else "", origin.get("name", (p, None)))
    if reader is None:
        return ScenarioError(f"{where}:1: {key}: {msg}")
    return ScenarioError(f"{where}:{reader.line(loc)}: {key}: {msg}")


def _model_at(loc: tuple) -> type[BaseModel]:
    if loc[:1] == ("jurisdictions",):
        return Jurisdiction
    if loc[:1] == ("district_study",):
        return DistrictStudy
    return Scenario


def _fmt_key(kpath: tuple) -> str:
    text = ""
    for k in kpath:
        text += f"[{k}]" if isinstance(k, int) else (f".{k}" if text else str(k))
    return text


def _located_problem(sc: Scenario) -> tuple[tuple, str] | None:
    """(key path, problem) for a check that needs the line of a particular entry."""
    seen: dict[str, int] = {}
    for i, j in enumerate(sc.jurisdictions):
        if j.id in seen:
            return (("jurisdictions", i, "id"),
                    f"jurisdiction {j.id!r} appears twice (first as jurisdictions[{seen[j.id]}])")
        seen[j.id] = i
    total = sum(j.share for j in sc.jurisdictions)
    if abs(total - 1.0) > 1e-9:
        parts = " + ".join(f"{j.id} {j.share:g} (line {sc.line('jurisdictions', i, 'share')})"
                           for i, j in enumerate(sc.jurisdictions))
        return ("jurisdictions",), f"jurisdiction shares sum to {total:.12g}, not 1: {parts}"
    return None


def check_rules(scenario: Scenario) -> None:
    """Everything about the rules that `dcsim run` checks before simulating, so that
    `dcsim rules` refuses exactly what `run` refuses: every file loads, every stack is
    consistent, every parameter has a value on every day of the period, and the entry
    shares of every month sum to 1."""
    stacks = scenario.stacks()
    try:
        table = resolve_table(stacks, scenario.start, scenario.end)
    except OutOfWindowError as e:
        first = min((s._tracks[e.name].segments[0].start for s in stacks
                     if e.name in s._tracks), default=None)
        if first is not None and e.date < first:  # the period starts before the rules do
            raise scenario.error(f"start {scenario.start} is before the rules begin: "
                                 f"{e.name} has values from {first} on", "start") from e
        raise
    _check_entry_shares(scenario, stacks, table)
    _check_size(scenario, table)


MAX_PERSONS = 20_000_000  # modelled persons a run may hold (full scale registers ~5.5 million)
MAX_DAILY_BYTES = 2_000_000_000  # the engine's daily sums (the baseline needs 67 MB)


def _check_size(scenario: Scenario, table) -> None:  # noqa: ANN001
    """Refuse a run too large to hold in memory, before registration tries to."""
    from .catalogue import PARAM_NAMES

    shares = [j.share for j in scenario.jurisdictions]
    inflow = table[:, :, PARAM_NAMES.index("registration.newly_found_per_year")].sum(axis=1)
    first = table[:, 0, PARAM_NAMES.index("registration.initial_registry")]
    persons = float(sum((a / 12.0 + b) * w for a, b, w in zip(inflow, first, shares,
                                                              strict=True))) * scenario.scale
    if persons < 1:
        raise scenario.error(
            f"the rules at scale {scenario.scale:g} would register about {persons:.3g} "
            "modelled persons: a run of no one measures nothing (raise the scale)", "scale")
    if persons > MAX_PERSONS:
        raise scenario.error(
            f"the rules at scale {scenario.scale:g} would register about {persons:,.0f} "
            f"modelled persons; the limit is {MAX_PERSONS:,} (lower the scale, or the inflow)",
            "scale")
    # the engine keeps daily sums per jurisdiction in 16 chunks of 9 int64 rates
    cells = len(shares) * (scenario.n_days + 1)
    if cells * 16 * 9 * 8 > MAX_DAILY_BYTES:
        raise scenario.error(
            f"{len(shares)} jurisdictions over {scenario.n_days:,} days need "
            f"{cells * 16 * 9 * 8 / 1e9:.1f} GB of daily sums; the limit is "
            f"{MAX_DAILY_BYTES / 1e9:g} GB (fewer jurisdictions or a shorter period)",
            "jurisdictions")


def _check_entry_shares(scenario: Scenario, stacks: list[RuleStack], table) -> None:  # noqa: ANN001
    from .calendar import month_starts
    from .catalogue import PARAM_NAMES

    cols = [PARAM_NAMES.index(n) for n in _REGISTRATION_SHARES]
    total = table[:, :, cols].sum(axis=2)
    bad = abs(total - 1.0) > 1e-9
    if not bad.any():
        return
    j, m = (int(x[0]) for x in bad.nonzero())
    day = month_starts(scenario.start, scenario.end)[m]
    day = max(day, scenario.start)
    found = [(stacks[j].window(n, day), n) for n in _REGISTRATION_SHARES]
    (w, f), name = max(found, key=lambda x: stacks[j].files.index(x[0][1]))  # the latest file
    parts = ", ".join(
        f"{n.rsplit('.', 1)[1]} {ww.value:g} ("
        + (f"line {ww.value_line}" if ff is f else f"{ff.path}:{ww.value_line}") + ")"
        for (ww, ff), n in found)
    raise RuleError(f.path, w.value_line or w.line, f"parameters.{name}",
                    f"entry shares on {day} ({scenario.jurisdictions[j].id}) sum to "
                    f"{total[j, m]:.12g}, not 1: {parts}")
