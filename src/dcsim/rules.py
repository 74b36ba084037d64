"""Rule files: load, validate and look up every rule value the engine reads, with its provenance.

A rule file (YAML) sets catalogue parameters in dated windows, each with the reference that
justifies it. Files are checked strictly on load, and every error names file, line and key,
because a silently misread value would look like a finding of the model. A `RuleStack` layers
the files that apply to one jurisdiction (national base, locality, reform overlays) and
`resolve_table` turns stacks into the dense [jurisdiction, month, parameter] table the engine
indexes; a value nobody wrote is an error, never a zero.
"""

from __future__ import annotations

import bisect
import datetime as dt
import difflib
import functools
import hashlib
import math
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from dcsim.calendar import month_starts
from dcsim.catalogue import CATALOGUE, N_PARAMS, PARAM_NAMES, UNITS

__all__ = [
    "OutOfWindowError",
    "Parameter",
    "RuleError",
    "RuleFile",
    "RuleStack",
    "UnknownParameterError",
    "Window",
    "is_assumption",
    "listing",
    "load_rule_file",
    "resolve_table",
    "rules_hash",
]

NATIONAL = "national"
_ONE_DAY = dt.timedelta(days=1)
_JURISDICTION = re.compile(r"[a-z0-9_]+")
_REF_PAPER = re.compile(r"paper fn (\d+)(?:-(\d+))?((?:, \d+(?:-\d+)?)*)(?: \(.+\))?")
_REF_EVIDENCE = re.compile(r"evidence\.md#[a-z0-9-]+(?: .+)?")
_REF_ASSUMPTION = re.compile(r"assumption: \S.*")
_REF_FORMS = (
    "'paper fn N', 'paper fn N-M' or 'paper fn N, M-K' (optionally followed by ' (text)'), "
    "'evidence.md#anchor' (anchor of a-z, 0-9, '-'; optionally followed by ' text') "
    "or 'assumption: <reason>', several joined by '; ' (an assumption's reason runs to the end)"
)

# Allowed keys of each mapping in a rule file, and whether each is required.
_TOP_KEYS = {"jurisdiction": True, "description": True, "parameters": True}
_PARAM_KEYS = {"unit": True, "description": False, "values": True}
_WINDOW_KEYS = {
    "from": True,
    "to": False,
    "value": True,
    "reference": True,
    "note": False,
    "calibrated": False,
    "range": False,
}

_KeyPath = tuple[str | int, ...]


# --------------------------------------------------------------------------- errors


class RuleError(ValueError):
    """A rule file is malformed; says where (file, 1-based line, key path) so it can be fixed."""

    def __init__(self, path: str | Path, line: int, key: str | None, message: str) -> None:
        self.path = Path(path)
        self.line = line
        self.key = key
        self.message = message
        where = f"{path}:{line}: {key}: " if key else f"{path}:{line}: "
        super().__init__(where + message)


class OutOfWindowError(LookupError):
    """No window covers the date asked for; names parameter, jurisdiction, date and files read."""

    def __init__(
        self,
        name: str,
        jurisdiction: str,
        date: dt.date,
        files: Sequence[Path],
        detail: str,
    ) -> None:
        self.name = name
        self.jurisdiction = jurisdiction
        self.date = date
        self.files = tuple(files)
        consulted = ", ".join(str(f) for f in self.files) or "none"
        super().__init__(
            f"{name} has no value for {jurisdiction} on {date.isoformat()}: {detail} "
            f"(files consulted: {consulted})"
        )


class UnknownParameterError(KeyError):
    """A lookup by a name that is not in the catalogue (a typo in engine or CLI code)."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__(name)

    def __str__(self) -> str:
        return f"unknown parameter {self.name!r}{_suggestion(self.name)}"


def _suggestion(name: str) -> str:
    close = difflib.get_close_matches(name, PARAM_NAMES, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else " (not in dcsim.catalogue.CATALOGUE)"


# ------------------------------------------------------- checks shared by loader and models


def _split_reference(reference: str) -> list[str]:
    """Parts joined by '; '; an assumption's reason runs to the end and may itself hold '; '."""
    parts = reference.split("; ")
    for i, part in enumerate(parts):
        if part.startswith("assumption:"):
            return [*parts[:i], "; ".join(parts[i:])]
    return parts


def is_assumption(reference: str) -> bool:
    """True if any part of the reference is an 'assumption: ...' part (not backed by a source)."""
    return any(_REF_ASSUMPTION.fullmatch(p) for p in _split_reference(reference))


def reference_problem(reference: str) -> str | None:
    for part in _split_reference(reference):
        m = _REF_PAPER.fullmatch(part)
        if m:
            if m.group(2) is not None and int(m.group(2)) < int(m.group(1)):
                return f"bad reference part {part!r}: footnote range runs backwards"
            continue
        if _REF_EVIDENCE.fullmatch(part) or _REF_ASSUMPTION.fullmatch(part):
            continue
        return f"bad reference part {part!r} in {reference!r}; accepted forms: {_REF_FORMS}"
    return None


def _is_whole(v: float) -> bool:
    return float(v).is_integer()


# The largest value of each unit a run can use: the kernels count days and persons in int64
# and take 2**31 - 1 as "never", and a rate or inflow far past any documented one would make
# a run endless without meaning more (the largest shipped values are in brackets).
UNIT_MAX = {
    "day": 1_000_000.0,  # 2,700 years: past any period, still far from 2**31 (1,095)
    "year": 150.0,  # ages and their spread (32)
    "hours": 10_000.0,  # per event (2)
    "per_year": 10_000.0,  # events per person-year, ~27 a day (8)
    "persons_per_year": 10_000_000.0,  # inflow to the registry (628,720)
    "persons": 100_000_000.0,  # registry on the first day (0)
    "count": 10_000.0,  # negative tests required (22)
    "multiplier": 1_000.0,  # (1.5)
}
# Day values the kernels divide by or step with: an interval of 1e-300 days would schedule
# events without end. 0 means "none scheduled" where the parameter allows it.
_STEP_DAYS = ("interval_days", "mean_use_spell_days", "mean_days_to_relapse")
_NEVER_ZERO = ("management.reassessment_interval_days", "drug_use.mean_use_spell_days",
               "drug_use.mean_days_to_relapse")


def _limit_problem(name: str | None, unit: str, v: float) -> str | None:
    """Why a valid number of `unit` is still too large or small for a run, or None."""
    high = UNIT_MAX.get(unit)
    if high is not None and v > high:
        return f"{unit} {v!r} is above the limit of {high:,g} (see rules.UNIT_MAX)"
    if name is not None and unit == "day" and any(k in name for k in _STEP_DAYS):
        if any(name == z or name.startswith(f"{z}.") for z in _NEVER_ZERO) and v < 1:
            return f"{name} must be at least 1 day (it divides time into steps), got {v!r}"
        if v != 0 and v < 1:
            return f"{name} must be 0 (none) or at least 1 day, got {v!r}"
    return None


def _value_problem(unit: str, v: Any, name: str | None = None) -> str | None:
    """Why `v` is not a valid value in `unit`, or None. Bools are only numbers for flags."""
    if unit == "flag":
        if isinstance(v, bool) or (isinstance(v, int | float) and v in (0, 1)):
            return None
        return f"flag must be 0 or 1 (or true/false), got {_short(v)}"
    if isinstance(v, bool) or not isinstance(v, int | float):
        hint = ""
        if isinstance(v, str):
            try:
                float(v)
                hint = " (YAML read it as text; write e.g. 1.0e-3 rather than 1e-3)"
            except ValueError:
                pass
        return f"{unit} value must be a number, got {type(v).__name__} {_short(v)}{hint}"
    if isinstance(v, int) and abs(v) > 2**63:
        return f"{unit} value {_short(v)} is too large"
    if not math.isfinite(v):
        return f"{unit} value must be finite, got {v!r}"
    if unit in ("probability", "share"):
        return None if 0 <= v <= 1 else f"{unit} {v!r} is outside [0, 1]"
    if unit in ("count", "persons"):
        if not (v >= 0 and _is_whole(v)):
            return f"{unit} must be a whole number >= 0, got {v!r}"
    elif unit == "tier":
        if _is_whole(v) and 0 <= v <= 3:
            return None
        return f"tier must be a whole number 0..3 (0 extreme, 1 high, 2 medium, 3 low), got {v!r}"
    elif v < 0:
        return f"{unit} {v!r} must be >= 0"
    return _limit_problem(name, unit, v)


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 60 else text[:40] + f"... ({len(text)} characters)"


def _range_problem(unit: str, value: float, rng: Any, name: str | None = None) -> str | None:
    """Why `rng` is not a valid `range: [low, high]` around `value` in `unit`, or None.

    A range states how far an uncertain value could plausibly lie (calibration searches it,
    the sensitivity analysis varies it), so it must hold the value and stay within the unit.
    """
    if (
        not isinstance(rng, list | tuple)
        or len(rng) != 2
        or any(isinstance(x, bool) or not isinstance(x, int | float) for x in rng)
    ):
        return f"range must be a list of two numbers [low, high], got {_kind(rng)}"
    low, high = rng
    for bound, x in (("low", low), ("high", high)):
        if problem := _value_problem(unit, x, name):
            return f"range {bound} bound: {problem}"
    if low > high:
        return f"range [{low}, {high}] runs backwards (low > high)"
    if not low <= value <= high:
        return f"value {value} lies outside its range [{low}, {high}]"
    return None


def _from_problem(start: dt.date) -> str | None:
    if start.day != 1:
        return f"from {start} is not the first day of a month (rules change on the 1st)"
    return None


def _to_problem(start: dt.date, end: dt.date | None) -> str | None:
    if end is None:
        return None
    if (end + _ONE_DAY).day != 1:
        return f"to {end} is not the last day of a month"
    if end < start:
        return f"to {end} is before from {start}"
    return None


def _sequence_problem(prev_start: dt.date, prev_end: dt.date | None, start: dt.date) -> str | None:
    """Why a window starting at `start` cannot follow the previous one, or None."""
    if prev_end is None:
        return (
            f"the previous window (from {prev_start}) is open-ended (no 'to'), so none may follow"
        )
    expected = prev_end + _ONE_DAY
    if start < expected:
        return f"overlapping windows: from {start} is not after the previous window's to {prev_end}"
    if start > expected:
        return (
            f"gap in dates between {prev_end} and {start} "
            f"(nothing covers {expected} to {start - _ONE_DAY})"
        )
    return None


# --------------------------------------------------------------------------- models


class _Model(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Window(_Model):
    """One dated value with its reference; `start`/`end` are the file's `from`/`to`."""

    start: dt.date
    end: dt.date | None = None
    value: float
    reference: str
    note: str | None = None
    calibrated: str | None = None
    range: tuple[float, float] | None = None  # plausible [low, high]: calibration, sensitivity
    line: int = 0  # line of the window's first key in its file (0 if not from a file)
    value_line: int = 0  # line of `value:` (for calibration to rewrite it)

    @model_validator(mode="after")
    def _check(self) -> Window:
        problem = (
            _from_problem(self.start)
            or _to_problem(self.start, self.end)
            or reference_problem(self.reference)
        )
        if problem:
            raise ValueError(problem)
        return self

    @property
    def is_assumption(self) -> bool:
        """True if the value rests on an 'assumption: ...' rather than a source alone."""
        return is_assumption(self.reference)

    def covers(self, day: dt.date) -> bool:
        return self.start <= day and (self.end is None or day <= self.end)


class Parameter(_Model):
    """A catalogue parameter as one file sets it: contiguous windows in date order."""

    name: str
    unit: str
    description: str | None = None
    windows: tuple[Window, ...]
    line: int = 0  # line of the parameter's name in its file

    @model_validator(mode="after")
    def _check(self) -> Parameter:
        spec = CATALOGUE.get(self.name)
        if spec is None:
            raise ValueError(f"unknown parameter {self.name!r}{_suggestion(self.name)}")
        if self.unit != spec.unit:
            raise ValueError(f"wrong unit: {self.unit}, expected {spec.unit}")
        if not self.windows:
            raise ValueError("a parameter needs at least one window")
        for i, w in enumerate(self.windows):
            problem = _value_problem(self.unit, w.value, self.name)
            if problem is None and w.range is not None:
                problem = _range_problem(self.unit, w.value, w.range, self.name)
            if problem is None and i:
                prev = self.windows[i - 1]
                problem = _sequence_problem(prev.start, prev.end, w.start)
            if problem:
                raise ValueError(f"windows[{i}]: {problem}")
        return self


class RuleFile(_Model):
    """One loaded rule file; keeps its bytes so the run manifest can hash what was used."""

    path: Path
    jurisdiction: str
    description: str
    parameters: dict[str, Parameter]
    content: bytes = Field(default=b"", repr=False)

    @model_validator(mode="after")
    def _check(self) -> RuleFile:
        if not _JURISDICTION.fullmatch(self.jurisdiction):
            raise ValueError(f"jurisdiction {self.jurisdiction!r} must match [a-z0-9_]+")
        for key, p in self.parameters.items():
            if key != p.name:
                raise ValueError(f"parameters[{key!r}] holds parameter {p.name!r}")
        return self

    def where(self, line: int) -> str:
        return f"{self.path}:{line}"


# --------------------------------------------------------------------------- loading


class _Reader:
    """Turns a composed YAML node tree into plain data plus the line of every key path."""

    def __init__(self, path: str | Path) -> None:
        self.path = path
        self.lines: dict[_KeyPath, int] = {}
        self._constructor = yaml.SafeLoader("")
        self._active: set[int] = set()
        self._nodes = 0

    def fail(self, kpath: _KeyPath, message: str, line: int | None = None) -> RuleError:
        if line is None:
            line = self.line(kpath)
        return RuleError(self.path, line, _fmt(kpath) or None, message)

    def line(self, kpath: _KeyPath) -> int:
        while kpath not in self.lines and kpath:
            kpath = kpath[:-1]
        return self.lines.get(kpath, 1)

    def plain(self, node: yaml.Node, kpath: _KeyPath) -> Any:
        line = node.start_mark.line + 1
        self._nodes += 1
        if self._nodes > MAX_NODES:
            raise self.fail(kpath, f"more than {MAX_NODES:,} values (after expanding aliases)",
                            line)
        if isinstance(node, yaml.ScalarNode):
            try:
                return self._constructor.construct_object(node)
            except yaml.YAMLError as e:
                raise self.fail(kpath, f"YAML error: {getattr(e, 'problem', e)}", line) from e
            except ValueError as e:  # e.g. a timestamp with month 13
                raise self.fail(kpath, f"cannot read {node.value!r}: {e}", line) from e
        if id(node) in self._active:
            raise self.fail(kpath, "recursive YAML alias", line)
        self._active.add(id(node))
        try:
            if isinstance(node, yaml.SequenceNode):
                out_list = []
                for i, item in enumerate(node.value):
                    sub = (*kpath, i)
                    self.lines[sub] = item.start_mark.line + 1
                    out_list.append(self.plain(item, sub))
                return out_list
            out: dict[str, Any] = {}
            first_line: dict[str, int] = {}
            for knode, vnode in node.value:
                kline = knode.start_mark.line + 1
                if knode.tag == "tag:yaml.org,2002:merge":
                    raise self.fail(kpath, "merge keys ('<<') are not supported", kline)
                if not isinstance(knode, yaml.ScalarNode):
                    raise self.fail(kpath, "mapping keys must be plain text", kline)
                key = str(knode.value)
                sub = (*kpath, key)
                if key in first_line:
                    raise self.fail(
                        sub, f"duplicate key {key!r} (first at line {first_line[key]})", kline
                    )
                first_line[key] = kline
                self.lines[sub] = kline
                out[key] = self.plain(vnode, sub)
            return out
        finally:
            self._active.discard(id(node))


def _fmt(kpath: _KeyPath) -> str:
    text = ""
    for k in kpath:
        text += f"[{k}]" if isinstance(k, int) else (f".{k}" if text else k)
    return text


MAX_FILE_BYTES = 1_000_000  # the largest shipped rule file is 24 kB; bigger is a mistake
MAX_DEPTH = 32  # rule files nest 5 deep, scenarios 4
MAX_ALIASES = 100  # shipped files use none; a few are fine, a billion-laughs bomb is not
MAX_NODES = 50_000  # values after aliases are expanded (national.yaml: about 2,000)
# libyaml (when PyYAML has it) parses 25 times faster than the pure-Python loader, with the
# same nodes and marks; both are the safe loaders
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PLAIN_TAGS = {f"tag:yaml.org,2002:{t}" for t in
               ("str", "int", "float", "bool", "null", "timestamp", "seq", "map")}
_ODD_BREAKS = re.compile("\r(?!\n)|[\x85\u2028\u2029]")


def read_limited(path: str | Path, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of a regular file of at most `max_bytes`, or RuleError at line 1 saying why
    not; folders, FIFOs and devices are refused before opening (a FIFO would block)."""
    import stat as _stat

    try:
        st = Path(path).stat()
        if not _stat.S_ISREG(st.st_mode):
            kind = "a folder" if _stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise RuleError(path, 1, None, f"is {kind}; a YAML file is expected")
        if st.st_size > max_bytes:
            raise RuleError(path, 1, None, f"is {st.st_size:,} bytes; the limit is "
                                           f"{max_bytes:,}")
        with open(path, "rb") as f:
            content = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise RuleError(path, 1, None, "file not found") from None
    except (OSError, RuntimeError) as e:  # permission, symlink loop, name too long
        raise RuleError(path, 1, None, f"cannot read: {getattr(e, 'strerror', None) or e}"
                        ) from None
    if len(content) > max_bytes:
        raise RuleError(path, 1, None, f"is over the limit of {max_bytes:,} bytes")
    return content


def _check_events(path: str | Path, text: str) -> None:
    """One pass over the YAML events (iterative, so deep nesting cannot overflow the stack)
    refusing what plain YAML data has no need of: tags, many aliases, deep nesting."""
    depth = aliases = 0
    for ev in yaml.parse(text, Loader=_YAML_LOADER):
        line = ev.start_mark.line + 1
        tag = getattr(ev, "tag", None)
        if tag is not None and tag not in _PLAIN_TAGS:
            raise RuleError(path, line, None, f"YAML tag {tag!r} is not allowed (plain YAML "
                                              "only: text, numbers, dates, lists, mappings)")
        if isinstance(ev, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise RuleError(path, line, None, f"nested more than {MAX_DEPTH} levels deep")
        elif isinstance(ev, yaml.CollectionEndEvent):
            depth -= 1
        elif isinstance(ev, yaml.AliasEvent):
            aliases += 1
            if aliases > MAX_ALIASES:
                raise RuleError(path, line, None, f"more than {MAX_ALIASES} YAML aliases (*)")


def parse_yaml(path: str | Path, content: bytes) -> tuple[Any, _Reader]:
    reader = _Reader(path)
    try:
        text = content.decode("utf-8")
    except UnicodeDecodeError as e:
        line = content[: e.start].count(b"\n") + 1
        raise RuleError(path, line, None, f"not UTF-8 text: {e.reason}") from e
    if m := _ODD_BREAKS.search(text):  # YAML counts these as line breaks, editors do not
        line = text[: m.start()].count("\n") + 1
        raise RuleError(path, line, None, f"line break character {m.group()!r} (use \\n)")
    try:
        _check_events(path, text)
        root = yaml.compose(text, Loader=_YAML_LOADER)
    except yaml.reader.ReaderError as e:  # a control character: no mark, but a position
        line = text[: e.position].count("\n") + 1
        raise RuleError(path, line, None, f"character {e.character!r} is not allowed in YAML"
                        ) from e
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line = mark.line + 1 if mark is not None else 1
        problem = e.problem or e.context or str(e)
        context = f" ({e.context})" if e.context and e.problem else ""
        raise RuleError(path, line, None, f"YAML syntax error: {problem}{context}") from e
    except yaml.YAMLError as e:
        raise RuleError(path, 1, None, f"YAML error: {e}") from e
    if root is None:
        raise RuleError(path, 1, None, "empty rule file")
    reader.lines[()] = root.start_mark.line + 1
    return reader.plain(root, ()), reader


def _check_keys(r: _Reader, data: Any, kpath: _KeyPath, allowed: dict[str, bool]) -> dict:
    if not isinstance(data, dict):
        raise r.fail(kpath, f"expected a mapping, got {_kind(data)}")
    for key in data:
        if key not in allowed:
            raise r.fail((*kpath, key), f"unknown key {key!r} (allowed: {', '.join(allowed)})")
    for key, required in allowed.items():
        if required and key not in data:
            raise r.fail((*kpath, key), f"missing required key {key!r}", r.line(kpath))
    return data


def _kind(v: Any) -> str:
    return "nothing (null)" if v is None else f"{type(v).__name__} {_short(v)}"


def _text(r: _Reader, data: dict, kpath: _KeyPath, key: str, required: bool) -> str | None:
    v = data.get(key)
    if v is None and not required:
        return None
    if not isinstance(v, str) or not v.strip():
        raise r.fail((*kpath, key), f"{key} must be non-empty text, got {_kind(v)}")
    return v


def _date(r: _Reader, kpath: _KeyPath, v: Any) -> dt.date:
    if isinstance(v, str):
        try:
            v = dt.date.fromisoformat(v)
        except ValueError:
            pass
    if isinstance(v, dt.datetime) or not isinstance(v, dt.date):
        raise r.fail(kpath, f"expected a date YYYY-MM-DD, got {_kind(v)}")
    return v


def _load_window(r: _Reader, data: Any, kpath: _KeyPath, unit: str,
                 name: str | None = None) -> Window:
    _check_keys(r, data, kpath, _WINDOW_KEYS)
    start = _date(r, (*kpath, "from"), data["from"])
    if problem := _from_problem(start):
        raise r.fail((*kpath, "from"), problem)
    end = None if data.get("to") is None else _date(r, (*kpath, "to"), data["to"])
    if problem := _to_problem(start, end):
        raise r.fail((*kpath, "to"), problem)
    value = data["value"]
    if problem := _value_problem(unit, value, name):
        raise r.fail((*kpath, "value"), problem)
    reference = _text(r, data, kpath, "reference", required=True)
    assert reference is not None
    if problem := reference_problem(reference):
        raise r.fail((*kpath, "reference"), problem)
    rng = data.get("range")
    if rng is not None and (problem := _range_problem(unit, value, rng, name)):
        raise r.fail((*kpath, "range"), problem)
    return Window(
        start=start,
        end=end,
        value=float(value),
        reference=reference,
        note=_text(r, data, kpath, "note", required=False),
        calibrated=_text(r, data, kpath, "calibrated", required=False),
        range=None if rng is None else (float(rng[0]), float(rng[1])),
        line=r.line(kpath),
        value_line=r.line((*kpath, "value")),
    )


def _load_parameter(r: _Reader, name: str, data: Any, kpath: _KeyPath) -> Parameter:
    spec = CATALOGUE.get(name)
    if spec is None:
        raise r.fail(kpath, f"unknown parameter {name!r}{_suggestion(name)}")
    _check_keys(r, data, kpath, _PARAM_KEYS)
    unit = data["unit"]
    if not isinstance(unit, str) or unit not in UNITS:
        raise r.fail((*kpath, "unit"), f"unknown unit {unit!r} (known: {', '.join(UNITS)})")
    if unit != spec.unit:
        raise r.fail((*kpath, "unit"), f"wrong unit: {unit}, expected {spec.unit}")
    values = data["values"]
    vpath = (*kpath, "values")
    if not isinstance(values, list) or not values:
        raise r.fail(vpath, f"values must be a non-empty list of windows, got {_kind(values)}")
    windows: list[Window] = []
    for i, item in enumerate(values):
        w = _load_window(r, item, (*vpath, i), unit, name)
        if windows:
            prev = windows[-1]
            if problem := _sequence_problem(prev.start, prev.end, w.start):
                raise r.fail((*vpath, i, "from"), problem)
        windows.append(w)
    return Parameter(
        name=name,
        unit=unit,
        description=_text(r, data, kpath, "description", required=False),
        windows=tuple(windows),
        line=r.line(kpath),
    )


def load_rule_file(path: str | Path) -> RuleFile:
    """Read and validate one rule file; any problem raises RuleError naming file, line and key."""
    content = read_limited(path)
    data, r = parse_yaml(path, content)
    _check_keys(r, data, (), _TOP_KEYS)
    jurisdiction = data["jurisdiction"]
    if not isinstance(jurisdiction, str) or not _JURISDICTION.fullmatch(jurisdiction):
        raise r.fail(
            ("jurisdiction",),
            f"jurisdiction must be {NATIONAL!r} or a locality id of a-z, 0-9, '_', "
            f"got {_kind(jurisdiction)}",
        )
    description = _text(r, data, (), "description", required=True)
    assert description is not None
    params = data["parameters"]
    if not isinstance(params, dict):
        raise r.fail(("parameters",), f"parameters must be a mapping, got {_kind(params)}")
    parameters = {
        name: _load_parameter(r, name, body, ("parameters", name)) for name, body in params.items()
    }
    return RuleFile(
        path=Path(path),
        jurisdiction=jurisdiction,
        description=description,
        parameters=parameters,
        content=content,
    )


# --------------------------------------------------------------------------- stacks


class _Segment(NamedTuple):
    """A stretch of dates in which one window of one file is in force for a stack."""

    start: dt.date
    end: dt.date | None  # may be earlier than window.end when a later file took over
    window: Window
    file: RuleFile


_FAR_FUTURE = dt.date.max.toordinal()


class _Track:
    """The effective windows of one parameter in one stack, ready for fast lookup."""

    def __init__(self, segments: list[_Segment]) -> None:
        self.segments = segments
        self.starts = [s.start for s in segments]

    # arrays for resolve_table, made on first use: most stacks are only looked up by date
    @functools.cached_property
    def start_ord(self) -> np.ndarray:
        return np.array([s.start.toordinal() for s in self.segments], dtype=np.int64)

    @functools.cached_property
    def end_ord(self) -> np.ndarray:
        return np.array(
            [_FAR_FUTURE if s.end is None else s.end.toordinal() for s in self.segments],
            dtype=np.int64,
        )

    @functools.cached_property
    def values(self) -> np.ndarray:
        return np.array([s.window.value for s in self.segments], dtype=np.float64)

    def find(self, day: dt.date) -> _Segment | None:
        i = bisect.bisect_right(self.starts, day) - 1
        if i < 0:
            return None
        s = self.segments[i]
        return s if s.end is None or day <= s.end else None

    def coverage(self) -> str:
        spans: list[list[dt.date | None]] = []
        for s in self.segments:
            if spans and spans[-1][1] is not None and spans[-1][1] + _ONE_DAY == s.start:
                spans[-1][1] = s.end
            else:
                spans.append([s.start, s.end])
        return ", ".join(f"{a} to {b if b is not None else 'open end'}" for a, b in spans)


class RuleStack:
    """The rule files for one jurisdiction, in order; a later file overrides from its first date.

    For each parameter, a later file that sets it replaces the earlier definition from its
    first window's `from` onward, and dates before that keep the earlier values: a reform
    overlay changes a value "from a date on" without restating its history.
    """

    def __init__(self, files: Sequence[RuleFile], jurisdiction: str | None = None) -> None:
        self.files: tuple[RuleFile, ...] = tuple(files)
        if not self.files:
            raise ValueError("a RuleStack needs at least one rule file")
        local = {f.jurisdiction for f in self.files} - {NATIONAL}
        if jurisdiction is None:
            if len(local) > 1:
                raise ValueError(
                    f"files for several localities in one stack: {', '.join(sorted(local))}"
                )
            jurisdiction = local.pop() if local else NATIONAL
        foreign = [f for f in self.files if f.jurisdiction not in (NATIONAL, jurisdiction)]
        if foreign:
            raise ValueError(
                f"stack for {jurisdiction!r} includes files for another jurisdiction: "
                + ", ".join(f"{f.path} ({f.jurisdiction})" for f in foreign)
            )
        self.jurisdiction: str = jurisdiction
        self._tracks: dict[str, _Track] = {}
        for name in PARAM_NAMES:
            segments: list[_Segment] = []
            for f in self.files:
                p = f.parameters.get(name)
                if p is None:
                    continue
                cut = p.windows[0].start
                kept = []
                for s in segments:
                    if s.start >= cut:
                        break
                    if s.end is None or s.end >= cut:
                        s = s._replace(end=cut - _ONE_DAY)
                    kept.append(s)
                segments = kept + [_Segment(w.start, w.end, w, f) for w in p.windows]
            if segments:
                self._tracks[name] = _Track(segments)

    @classmethod
    def from_paths(cls, paths: Iterable[str | Path], jurisdiction: str | None = None) -> RuleStack:
        """Load the files in order and stack them."""
        return cls([load_rule_file(p) for p in paths], jurisdiction)

    def __repr__(self) -> str:
        names = ", ".join(str(f.path) for f in self.files)
        return f"RuleStack({self.jurisdiction!r}: {names})"

    def names(self) -> set[str]:
        """Parameters set by at least one file of the stack (not necessarily for every date)."""
        return set(self._tracks)

    def _files_setting(self, name: str) -> list[Path]:
        setting = [f.path for f in self.files if name in f.parameters]
        return setting or [f.path for f in self.files]

    def _missing(self, name: str, day: dt.date) -> OutOfWindowError:
        track = self._tracks.get(name)
        if track is None:
            detail = "no file of the stack sets it"
        else:
            detail = f"its windows cover {track.coverage()}"
        return OutOfWindowError(name, self.jurisdiction, day, self._files_setting(name), detail)

    def window(self, name: str, date: dt.date) -> tuple[Window, RuleFile]:
        """The window in force on `date` and the file it comes from (for printing references)."""
        if name not in CATALOGUE:
            raise UnknownParameterError(name)
        day = _as_date(date)
        track = self._tracks.get(name)
        seg = track.find(day) if track is not None else None
        if seg is None:
            raise self._missing(name, day)
        return seg.window, seg.file

    def value(self, name: str, date: dt.date) -> float:
        """The value of `name` in force on `date`; OutOfWindowError if no window covers it."""
        return self.window(name, date)[0].value

    def _effective(self, name: str) -> list[_Segment]:
        track = self._tracks.get(name)
        return list(track.segments) if track is not None else []


def _as_date(day: dt.date) -> dt.date:
    return day.date() if isinstance(day, dt.datetime) else day


# --------------------------------------------------------------------------- outputs


def resolve_table(stacks: Sequence[RuleStack], start: dt.date, end: dt.date) -> np.ndarray:
    """The dense table the engine indexes: [stack, month, Par.X] -> value on the month's first day.

    The first month uses `start` itself. Every catalogue parameter must be set in every month
    of every stack, else OutOfWindowError for the first gap found (stack order, catalogue
    order, then date): a zero filled in would silently switch a procedure off.
    """
    start, end = _as_date(start), _as_date(end)
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    days = month_starts(start, end)
    days[0] = start
    day_ord = np.array([d.toordinal() for d in days], dtype=np.int64)
    table = np.empty((len(stacks), len(days), N_PARAMS), dtype=np.float64)
    for j, stack in enumerate(stacks):
        for p, name in enumerate(PARAM_NAMES):
            track = stack._tracks.get(name)
            if track is None:
                raise stack._missing(name, days[0])
            idx = np.searchsorted(track.start_ord, day_ord, side="right") - 1
            safe = np.maximum(idx, 0)
            ok = (idx >= 0) & (day_ord <= track.end_ord[safe])
            if not ok.all():
                raise stack._missing(name, days[int(np.argmin(ok))])
            table[j, :, p] = track.values[safe]
    return table


def rules_hash(files: Iterable[RuleFile]) -> str:
    """sha256 over (file name, bytes) of each file in order: identifies the rules of a run.

    Names and contents are length-prefixed so no two different file lists hash alike. A
    RuleFile built in memory (no bytes) is hashed by its canonical JSON instead.
    """
    h = hashlib.sha256()
    for f in files:
        name = f.path.name.encode("utf-8")
        content = f.content or f.model_dump_json(exclude={"content"}).encode("utf-8")
        for part in (name, content):
            h.update(len(part).to_bytes(8, "big"))
            h.update(part)
    return h.hexdigest()


def _display_value(unit: str, value: float) -> float | int:
    return int(value) if unit in ("count", "tier", "flag") else value


def listing(stacks: dict[str, RuleStack]) -> list[dict]:
    """One row per (jurisdiction, parameter, window in force) for `dcsim rules`.

    `from`/`to` are the dates the window is in force in that stack (an overlay can cut an
    earlier window short); `source` is "file:line" of the window in its file.
    """
    rows: list[dict] = []
    for jurisdiction, stack in stacks.items():
        for name in PARAM_NAMES:
            for s in stack._effective(name):
                w = s.window
                rows.append(
                    {
                        "jurisdiction": jurisdiction,
                        "name": name,
                        "unit": CATALOGUE[name].unit,
                        "from": s.start,
                        "to": s.end,
                        "value": _display_value(CATALOGUE[name].unit, w.value),
                        "reference": w.reference,
                        "is_assumption": w.is_assumption,
                        "calibrated": w.calibrated,
                        "range": w.range,
                        "note": w.note,
                        "file": str(s.file.path),
                        "line": w.line,
                        "source": s.file.where(w.line),
                    }
                )
    return rows
