"""A seeded fuzz suite: mutated rule files, scenarios and command lines, each case classed.

Each case takes a shipped file (or a command line) and makes one mutation whose validity is
known by construction: most are invalid (a negative probability, a misspelt key, a reversed
period, an alias bomb, a FIFO where a file should be), some are valid (Rich markup in a
reference, a value moved inside its range). The case runs through exactly the checks
`dcsim run` makes before simulating (in process) and is classed as

- located: refused, naming the mutated file and the line of the mistake (for a command line:
  the argument);
- unlocated: refused, but the message names another file or line, or none;
- traceback: any other exception;
- silent_accept: an invalid case accepted;
- hung: more than HANG_SECONDS;
- accepted / refused_valid: a valid case accepted, or refused.

The default suite runs a fast sample; CI (CI=true) runs FUZZ_CASES cases. `python
tests/test_fuzz.py [cases] [seed]` prints the statistics of one run.
"""

from __future__ import annotations

import contextlib
import functools
import os
import random
import re
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from dcsim import cli, scenario
from dcsim.checks import ArgumentError
from dcsim.rules import OutOfWindowError, RuleError
from dcsim.scenario import ScenarioError, check_rules, default_scenario_path, load_scenario

CI_CASES = 10_200
SAMPLE_CASES = 240
HANG_SECONDS = 10.0
RULES_DIR = default_scenario_path().parent.parent / "rules"
SCENARIO_TEXT = default_scenario_path().read_text()
# the shipped rule files the default scenario names (others, such as the projection's inflow,
# serve other scenarios)
SHIPPED = sorted(p.name for p in RULES_DIR.glob("*.yaml") if f"dcsim:{p.name}" in SCENARIO_TEXT)
REFUSALS = (ArgumentError, ScenarioError, RuleError, OutOfWindowError)
_WHERE = re.compile(r"^(?P<path>[^\n]+?):(?P<line>\d+): ")


@dataclass
class Case:
    """One mutation: files to write, what to run, and where a refusal should point."""

    kind: str  # rules | scenario | cli
    what: str  # the operator, for the statistics
    files: dict[str, str | bytes] = field(default_factory=dict)
    special: str | None = None  # fifo | folder | loop | device | missing | big: file becomes
    target: str = ""  # the mutated file's name (rules, scenario)
    lines: set[int] = field(default_factory=set)  # lines a located refusal may name
    also: tuple[str, set[int]] | None = None  # another acceptable (file, lines)
    valid: bool = False
    argv: list[str] = field(default_factory=list)
    argument: str = ""  # cli: the argument a refusal must name


# --------------------------------------------------------------------------- rule files

_WINDOW = re.compile(r"^      - \{(?P<body>.*)\}\s*$")
_PARAM = re.compile(r"^  (?P<name>[a-z_][a-z0-9_.]*):\s*$")
BAD_VALUES = ["-1", "-0.5", "2.0e+8", "1.0e+19", "1e400", ".nan", ".inf", "-.inf", "abc", "[1, 2]",
              "{a: 1}", "null", "''", "99999999999999999999999", "'0.5'", "2006-01-01"]
MISSPELT = {"from": ["form", "frm", "From"], "value": ["valeu", "vaule", "values"],
            "reference": ["refrence", "referense", "ref"], "to": ["too", "tO"]}


def _rule_lines(text: str) -> list[tuple[int, str, str | None]]:
    """(line number, line, parameter) for every line, with the parameter it belongs to."""
    out, param = [], None
    for i, line in enumerate(text.splitlines(), 1):
        m = _PARAM.match(line)
        if m:
            param = m.group("name")
        out.append((i, line, param))
    return out


def _sub_field(body: str, key: str, new: str) -> str | None:
    """The window body with `key: value` replaced by `key: new` (None if key absent)."""
    m = re.search(rf"(^|, ){key}: (\"[^\"]*\"|'[^']*'|[^,]*)", body)
    if not m:
        return None
    return body[: m.start(2)] + new + body[m.end(2):]


def _rule_case(rng: random.Random) -> Case:
    name = rng.choice(SHIPPED)
    text = (RULES_DIR / name).read_text()
    lines = text.splitlines()
    info = _rule_lines(text)
    windows = [(i, ln, p) for i, ln, p in info if _WINDOW.match(ln)]
    params = [(i, ln, p) for i, ln, p in info if _PARAM.match(ln)]
    units = [(i, ln, p) for i, ln, p in info if ln.startswith("    unit: ")]
    case = Case("rules", "", target=name)
    op = rng.choice(_RULE_OPS)
    op(rng, case, lines, windows, params, units)
    if case.special is None and name not in case.files:
        case.files[name] = "\n".join(lines) + "\n"
    return case


def _replace_line(case: Case, lines: list[str], i: int, new: str, what: str,
                  near: int = 0) -> None:
    lines[i - 1] = new
    case.what = what
    case.lines = set(range(i, i + near + 1))


def _op_bad_value(rng, case, lines, windows, *_):
    i, ln, p = rng.choice(windows)
    body = _WINDOW.match(ln).group("body")
    bad = rng.choice(BAD_VALUES)
    _replace_line(case, lines, i, "      - {" + _sub_field(body, "value", bad) + "}",
                  "value: " + bad)


def _op_misspelt_window_key(rng, case, lines, windows, *_):
    i, ln, _p = rng.choice(windows)
    body = _WINDOW.match(ln).group("body")
    keys = [k for k in MISSPELT if re.search(rf"(^|, ){k}: ", body)]
    k = rng.choice(keys)
    new = re.sub(rf"(^|, ){k}: ", lambda m: m.group(1) + rng.choice(MISSPELT[k]) + ": ", body,
                 count=1)
    _replace_line(case, lines, i, "      - {" + new + "}", "misspelt window key")


def _op_extra_or_missing_key(rng, case, lines, windows, *_):
    i, ln, _p = rng.choice(windows)
    body = _WINDOW.match(ln).group("body")
    if rng.random() < 0.5:
        new, what = body + ", colour: red", "extra window key"
    else:
        new = re.sub(r"(^|, )reference: (\"[^\"]*\"|'[^']*'|[^,]*)", "", body, count=1)
        what = "missing reference"
    _replace_line(case, lines, i, "      - {" + new.lstrip(", ") + "}", what)


def _op_bad_date(rng, case, lines, windows, *_):
    i, ln, _p = rng.choice(windows)
    body = _WINDOW.match(ln).group("body")
    start = re.search(r"from: (\d{4})-(\d\d)-01", body)
    y = int(start.group(1))
    choices = [("from", f"{y}-{start.group(2)}-02"), ("from", f"{y}-13-01"), ("from", "soon"),
               ("from", f"{y}-02-30")]
    if "to: " in body:
        choices += [("to", f"{y}-01-15"), ("to", f"{y - 1}-12-31")]
    key, new = rng.choice(choices)
    _replace_line(case, lines, i, "      - {" + _sub_field(body, key, new) + "}",
                  f"bad {key} date")


def _op_bad_reference(rng, case, lines, windows, *_):
    i, ln, _p = rng.choice(windows)
    body = _WINDOW.match(ln).group("body")
    bad = rng.choice(['"see the paper"', '""', '"paper fn 9-3"', '"evidence.md#Bad Anchor"',
                      '"assumption:"', "[1]", '"paper fn x"'])
    _replace_line(case, lines, i, "      - {" + _sub_field(body, "reference", bad) + "}",
                  "bad reference")


def _op_markup_reference(rng, case, lines, windows, *_):
    """Valid: Rich markup and brackets in a reference are text like any other."""
    i, ln, _p = rng.choice(windows)
    body = _WINDOW.match(ln).group("body")
    junk = rng.choice(["[/]", "[bold red]x[/bold red]", "[/bold] [link=x]", "[[]]"])
    _replace_line(case, lines, i, "      - {" + _sub_field(
        body, "reference", f'"assumption: markup {junk} in text"') + "}", "markup (valid)")
    case.valid = True


def _op_duplicate_window(rng, case, lines, windows, *_):
    i, ln, _p = rng.choice(windows)
    lines.insert(i, ln)
    case.what, case.lines = "duplicated window", {i + 1}


def _op_misspelt_parameter(rng, case, lines, _w, params, _u):
    i, ln, p = rng.choice(params)
    cut = rng.randrange(len(p) - 1)
    bad = p[:cut] + p[cut + 1:] if rng.random() < 0.5 else p[:cut] + "x" + p[cut:]
    _replace_line(case, lines, i, f"  {bad}:", "misspelt parameter")


def _op_wrong_unit(rng, case, lines, _w, _p, units):
    i, ln, _p2 = rng.choice(units)
    unit = ln.split(":", 1)[1].strip()
    other = rng.choice([u for u in ("day", "share", "persons", "furlong", "flag") if u != unit])
    _replace_line(case, lines, i, f"    unit: {other}", "wrong unit")


def _op_huge_day(rng, case, lines, windows, *_):
    day_windows = [(i, ln, p) for i, ln, p in windows if p and p.endswith("_days")]
    if not day_windows:
        return _op_bad_value(rng, case, lines, windows)
    i, ln, p = rng.choice(day_windows)
    body = _WINDOW.match(ln).group("body")
    bad = rng.choice(["1.0e+19", "3.0e+9", "1.0e-300", "2147483647", "0.5"])
    if bad in ("0.5", "1.0e-300") and not re.search(
            r"interval_days|mean_use_spell|mean_days_to_relapse", p):
        bad = "1.0e+7"  # a fraction of a day is valid for a duration; past the limit is not
    _replace_line(case, lines, i, "      - {" + _sub_field(body, "value", bad) + "}",
                  "extreme day count")


def _op_entry_share(rng, case, lines, windows, *_):
    shares = [(i, ln, p) for i, ln, p in windows if p and p.startswith("registration.share.")
              and p != "registration.share.pre_launch"]  # not one of the shares summing to 1
    if not shares:
        return _op_bad_value(rng, case, lines, windows)
    i, ln, _p = rng.choice(shares)
    body = _WINDOW.match(ln).group("body")
    _replace_line(case, lines, i, "      - {" + _sub_field(body, "value", rng.choice(
        ["0.5", "0.0", "1.0", "0.2"])) + "}", "entry shares not summing to 1")


def _op_top_key(rng, case, lines, *_):
    i = next(k for k, ln in enumerate(lines, 1) if ln.startswith("jurisdiction:"))
    choice = rng.choice(["jurisdiction: National!", "jurisdicton: national",
                         "jurisdiction: [a]", "jurisdiction: ''"])
    _replace_line(case, lines, i, choice, "bad top key")


def _op_yaml_syntax(rng, case, lines, windows, *_):
    i, ln, _p = rng.choice(windows)
    kind = rng.choice(["unclosed", "tab", "colon", "control", "linesep", "badutf8"])
    if kind == "unclosed":
        _replace_line(case, lines, i, ln.rstrip().rstrip("}"), "unclosed brace", near=1)
    elif kind == "tab":
        _replace_line(case, lines, i, "\t" + ln.lstrip(), "tab indentation", near=1)
    elif kind == "colon":
        _replace_line(case, lines, i, ln.replace("{", "{: ", 1), "stray colon", near=1)
    elif kind == "control":
        _replace_line(case, lines, i, ln.replace("reference", "refe\x07rence", 1),
                      "control character")
    elif kind == "linesep":
        _replace_line(case, lines, i, ln.replace(", ", ",\u2028 ", 1), "unicode line break")
    else:
        text = "\n".join(lines) + "\n"
        at = len("\n".join(lines[: i - 1])) + 1
        case.files[case.target] = text.encode()[:at] + b"\xff\xfe" + text.encode()[at:]
        case.what, case.lines = "not UTF-8", {i}


def _op_hostile_yaml(rng, case, lines, *_):
    n = len(lines)
    kind = rng.choice(["bomb", "deep", "tag", "tag_value", "merge"])
    if kind == "bomb":
        bomb = ["x_bomb: &a0 [lol, lol]"] + [f"x_bomb{k}: &a{k} [*a{k - 1}, *a{k - 1}, *a{k - 1}]"
                                            for k in range(1, 40)]
        lines[:0] = bomb
        case.what, case.lines = "alias bomb", set(range(1, len(bomb) + 1))
    elif kind == "deep":
        lines.append("x_deep: " + "[" * 5000 + "]" * 5000)
        case.what, case.lines = "deep nesting", {n + 1}
    elif kind == "tag":
        lines.append("x_tag: !!python/object/apply:os.system ['true']")
        case.what, case.lines = "python tag", {n + 1}
    elif kind == "tag_value":
        i = next(k for k, ln in enumerate(lines, 1) if ln.startswith("description:"))
        _replace_line(case, lines, i, "description: !custom >-", "custom tag")
    else:
        lines.append("x_merge: {<<: {a: 1}}")
        case.what, case.lines = "merge key", {n + 1}


def _op_special_file(rng, case, *_):
    case.special = rng.choice(["fifo", "folder", "loop", "device", "big", "empty"])
    case.what, case.lines = f"special file: {case.special}", {1}
    if case.special == "empty":
        case.special = None
        case.files[case.target] = ""
    elif case.special == "big":
        case.special = None
        case.files[case.target] = "# padding\n" * 200_000


def _op_missing_file(rng, case, *_):
    case.special = "missing"
    case.what = "missing rule file"  # located in the scenario, at the line naming it


_RULE_OPS: list[Callable] = [
    _op_bad_value, _op_bad_value, _op_misspelt_window_key, _op_extra_or_missing_key,
    _op_bad_date, _op_bad_reference, _op_markup_reference, _op_duplicate_window,
    _op_misspelt_parameter, _op_wrong_unit, _op_huge_day, _op_entry_share, _op_top_key,
    _op_yaml_syntax, _op_hostile_yaml, _op_special_file, _op_missing_file,
]


def _scenario_naming_local(name: str) -> tuple[str, int]:
    """The shipped scenario's text naming `name` as a file beside it; and the line that does."""
    text = SCENARIO_TEXT.replace(f"dcsim:{name}", name)
    line = next(i for i, ln in enumerate(text.splitlines(), 1)
                if re.search(rf"[\[ ,]{re.escape(name)}[\],]", ln))
    return text, line


# --------------------------------------------------------------------------- scenarios

_SC_KEYS = ["name", "description", "start", "end", "scale", "seed", "rules", "overlays",
            "jurisdictions", "district_study"]


def _scenario_case(rng: random.Random) -> Case:
    lines = SCENARIO_TEXT.splitlines()
    case = Case("scenario", "", target="scenario.yaml")
    rng.choice(_SCENARIO_OPS)(rng, case, lines)
    if "scenario.yaml" not in case.files and case.special is None:
        case.files["scenario.yaml"] = "\n".join(lines) + "\n"
    return case


def _line_of(lines: list[str], prefix: str) -> int:
    return next(i for i, ln in enumerate(lines, 1) if ln.startswith(prefix))


def _sc_period(rng, case, lines):
    s, e = _line_of(lines, "start:"), _line_of(lines, "end:")
    key, new, expect = rng.choice([
        ("start", "2005-01-01", {s}), ("start", "1990-06-01", {s}), ("start", "2006-01-15", {s}),
        ("start", "2030-01-01", {s, e}), ("start", "2006-13-01", {s}), ("start", "never", {s}),
        ("end", "2005-12-31", {s, e}), ("end", "2101-01-31", {e}), ("end", "2025-02-30", {e}),
        ("end", "[2025]", {e}), ("start", "2006-01-01 12:00", {s}),
    ])
    lines[(s if key == "start" else e) - 1] = f"{key}: {new}"
    case.what, case.lines = f"period: {key} {new}", expect


def _sc_number(rng, case, lines):
    key = rng.choice(["scale", "seed"])
    i = _line_of(lines, f"{key}:")
    bad = rng.choice({"scale": ["0", "-1", "2", "abc", ".nan", ".inf", "1e-400", "[0.1]", "null"],
                      "seed": ["-1", str(2**64), "x", "1.5", "[1]", "null", "true"]}[key])
    lines[i - 1] = f"{key}: {bad}"
    case.what, case.lines = f"bad {key}", {i}


def _sc_misspelt_key(rng, case, lines):
    key = rng.choice(_SC_KEYS)
    i = _line_of(lines, f"{key}:")
    cut = rng.randrange(len(key))
    bad = key[:cut] + key[cut + 1:] if len(key) > 3 and rng.random() < 0.5 else (
        key[:cut] + rng.choice("aeiouxz") + key[cut:])
    lines[i - 1] = lines[i - 1].replace(f"{key}:", f"{bad}:", 1)
    case.what, case.lines = "misspelt scenario key", {i}


def _jurisdiction_lines(lines: list[str]) -> list[int]:
    return [i for i, ln in enumerate(lines, 1) if ln.startswith("  - {id: ")]


def _sc_jurisdiction(rng, case, lines):
    js = _jurisdiction_lines(lines)
    i = rng.choice(js)
    ln = lines[i - 1]
    head = _line_of(lines, "jurisdictions:")
    kind = rng.choice(["share", "share", "dup", "badid", "remove", "sahre", "noref", "emptyref"])
    if kind == "share":
        m = re.search(r"share: ([0-9.]+)", ln)
        new = f"{float(m.group(1)) + rng.choice([0.1, -0.005, 0.5, 1e-6]):.6g}"
        lines[i - 1] = ln.replace(m.group(0), f"share: {new}")
        case.what, case.lines = "jurisdiction share", {i}
    elif kind == "dup":
        first = re.search(r"id: ([a-z0-9_]+)", lines[js[0] - 1]).group(1)
        j = rng.choice(js[1:])
        lines[j - 1] = re.sub(r"id: [a-z0-9_]+", f"id: {first}", lines[j - 1], count=1)
        case.what, case.lines = "duplicate jurisdiction", {j}
    elif kind == "badid":
        lines[i - 1] = re.sub(r"id: [a-z0-9_]+", f"id: {rng.choice(['Bad-Id', 'x y', '[]'])}",
                              ln, count=1)
        case.what, case.lines = "bad jurisdiction id", {i}
    elif kind == "remove":
        del lines[i - 1]
        case.what, case.lines = "removed jurisdiction", {head}
    elif kind == "sahre":
        lines[i - 1] = ln.replace("share:", rng.choice(["sahre:", "shares:", "Share:"]), 1)
        case.what, case.lines = "misspelt jurisdiction key", {i}
    elif kind == "noref":
        lines[i - 1] = re.sub(r", reference: \"[^\"]*\"", "", ln)
        case.what, case.lines = "jurisdiction without reference", {i}
    else:
        lines[i - 1] = re.sub(r"reference: \"[^\"]*\"", 'reference: ""', ln)
        case.what, case.lines = "empty jurisdiction reference", {i}


def _sc_rule_names(rng, case, lines):
    js = _jurisdiction_lines(lines)
    r = _line_of(lines, "rules:")
    kind = rng.choice(["local", "typo", "empty", "folder", "device", "two_localities",
                       "absent_abs", "nul"])
    i = rng.choice(js[1:]) if kind in ("two_localities",) else rng.choice([r, *js[1:]])
    ln = lines[i - 1]
    m = re.search(r"dcsim:([a-z_0-9]+)\.yaml", ln)
    bad = {"local": f"{m.group(1)}.yaml", "typo": f"dcsim:{m.group(1)}x.yaml", "empty": "''",
           "folder": ".", "device": "/dev/zero", "absent_abs": "/nonexistent/rules.yaml",
           "nul": '"a\\0b.yaml"', "two_localities": None}[kind]
    if kind == "two_localities":
        other = "dcsim:app_zibo.yaml" if "app_zibo" not in ln else "dcsim:app_chengdu.yaml"
        lines[i - 1] = ln.replace(m.group(0), f"{m.group(0)}, {other}", 1)
    else:
        lines[i - 1] = ln.replace(m.group(0), bad, 1)
    case.what, case.lines = f"rule name: {kind}", {i}


def _sc_district(rng, case, lines):
    d = _line_of(lines, "district_study:")
    e = d + 2
    r = _line_of(lines, "  registrants_under_alert:")
    kind = rng.choice(["reversed", "zero", "negative", "huge", "text"])
    if kind == "reversed":
        lines[e - 1] = "  end: 2012-10-31"
        case.lines = {e}
    else:
        bad = {"zero": "0", "negative": "-5", "huge": "1000000000", "text": "many"}[kind]
        lines[r - 1] = f"  registrants_under_alert: {bad}"
        case.lines = {r}
    case.what = f"district study: {kind}"


def _sc_markup_name(rng, case, lines):
    """Valid: markup in the name and description is text."""
    i = _line_of(lines, "name:")
    lines[i - 1] = f"name: \"{rng.choice(['[/]', '[bold]x', 'a[/b]c', '[link=y]z'])}\""
    case.what, case.valid = "markup name (valid)", True


def _sc_valid_shares(rng, case, lines):
    """Valid: two shares moved by the same amount in opposite directions."""
    js = _jurisdiction_lines(lines)
    a, b = js[0], js[1]
    delta = rng.choice([0.01, 0.05, 0.1])
    for i, sign in ((a, 1), (b, -1)):
        m = re.search(r"share: ([0-9.]+)", lines[i - 1])
        lines[i - 1] = lines[i - 1].replace(m.group(0),
                                            f"share: {float(m.group(1)) + sign * delta:.2f}")
    case.what, case.valid = "shares moved (valid)", True


def _sc_hostile(rng, case, lines):
    n = len(lines)
    kind = rng.choice(["bomb", "deep", "tag", "dupkey", "control", "notmapping", "tab"])
    if kind == "bomb":
        bomb = ["x: &a0 [lol, lol]"] + [f"x{k}: &a{k} [*a{k - 1}, *a{k - 1}, *a{k - 1}]"
                                        for k in range(1, 40)]
        lines[:0] = bomb
        case.lines = set(range(1, len(bomb) + 1))
    elif kind == "deep":
        lines.append("x: " + "{a: " * 3000 + "1" + "}" * 3000)
        case.lines = {n + 1}
    elif kind == "tag":
        i = _line_of(lines, "seed:")
        lines[i - 1] = "seed: !!python/object/apply:os.getpid []"
        case.lines = {i}
    elif kind == "dupkey":
        i = _line_of(lines, "scale:")
        lines.insert(i, lines[i - 1])
        case.lines = {i + 1}
    elif kind == "control":
        i = _line_of(lines, "name:")
        lines[i - 1] = "name: nat\x1bional"
        case.lines = {i}
    elif kind == "tab":
        i = _line_of(lines, "  registrants_under_alert:")
        lines[i - 1] = "\t" + lines[i - 1].lstrip()
        case.lines = {i - 1, i}
    else:
        lines[:] = ["- just", "- a list"]
        case.lines = {1}
    case.what = f"hostile yaml: {kind}"


def _sc_special(rng, case, lines):
    case.special = rng.choice(["fifo", "folder", "loop", "device", "missing"])
    case.what, case.lines = f"special scenario file: {case.special}", {1}


_SCENARIO_OPS: list[Callable] = [
    _sc_period, _sc_period, _sc_number, _sc_misspelt_key, _sc_misspelt_key, _sc_jurisdiction,
    _sc_jurisdiction, _sc_rule_names, _sc_district, _sc_markup_name, _sc_valid_shares,
    _sc_hostile, _sc_special,
]


# --------------------------------------------------------------------------- command lines

_BAD_ARGS = {
    "--scale": ["0", "-0.1", "1.5", "nan", "inf", "abc", "", "1e-400", "[/]"],
    "--seed": ["-1", str(2**63), "x", "1.5", "", "[bold]"],
    "--out": ["@file", "@file/under", "/dev/null", "@package", "/proc/x", ""],
    "--seeds": ["0", "-3", "10001", "x"],
    "--first-seed": ["-1", str(2**63), "q"],
    "--trajectories": ["0", "1", "-5", "x"],
    "--levels": ["0", "1", "101", "x"],
    "--trials": ["0", "-1", "100001", "x"],
    "--storage": ["@folder", "/dev/null", "@file/under", "@package"],
    "--targets": ["@folder", "@fifo", "@missing", "/dev/zero"],
    "--jurisdiction": ["nope", "", "[/]", "National_default"],
}
_CAL_SEEDS = ["", ",", "1,,2", "a", "1,1", "-1", str(2**63), "[/]"]
_COMMANDS = {
    "run": ["--scale", "--seed", "--out"],
    "rules": ["--jurisdiction"],
    "calibrate": ["--scale", "--seeds", "--trials", "--storage", "--out", "--targets"],
    "fit": ["--seeds", "--scale", "--first-seed", "--out", "--targets"],
    "sensitivity": ["--trajectories", "--levels", "--scale", "--seed", "--out"],
}
_VALID = {"--scale": "0.001", "--seed": "7", "--seeds": "2", "--trials": "2", "--levels": "4",
          "--trajectories": "2", "--first-seed": "3", "--jurisdiction": "serious_area"}


def _cli_case(rng: random.Random) -> Case:
    command = rng.choice(list(_COMMANDS))
    arg = rng.choice(_COMMANDS[command])
    if command == "calibrate" and arg == "--seeds":
        bad = rng.choice(_CAL_SEEDS)
    elif command == "calibrate" and arg == "--out":  # a file: an existing one may be replaced
        bad = rng.choice(["@folder", "@file/under", "/dev/null", ""])
    else:
        bad = rng.choice(_BAD_ARGS[arg])
    if rng.random() < 0.08 and arg in _VALID:
        value = "101,102" if (command == "calibrate" and arg == "--seeds") else _VALID[arg]
        return Case("cli", f"{command} {arg} valid", argv=[command, arg, value], valid=True)
    return Case("cli", f"{command} {arg} {bad!r}", argv=[command, arg, bad], argument=arg)


# --------------------------------------------------------------------------- running


class _Hung(Exception):
    pass


class _Started(Exception):
    """Raised where a command would start its long work: its arguments were accepted."""


@contextlib.contextmanager
def _time_limit(seconds: float) -> Iterator[None]:
    def fire(*_a):
        raise _Hung()

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _make_special(path: Path, kind: str) -> None:
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "loop":
        path.symlink_to(path)
    elif kind == "device":
        path.symlink_to("/dev/zero")


def _clear(folder: Path) -> None:
    import shutil

    for p in folder.iterdir():
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p)
        else:
            p.unlink()


def _validate(path: Path) -> None:
    """What `dcsim run` checks before it simulates (cli._scenario)."""
    from dcsim import checks

    checks.input_file("SCENARIO", path)
    check_rules(load_scenario(path))


def _located(message: str, folder: Path, case: Case) -> bool:
    targets = [(str(folder / case.target), case.lines)]
    if case.also:
        targets.append((str(folder / case.also[0]), case.also[1]))
    m = _WHERE.match(message)
    if case.special and case.special != "missing" or (case.special == "missing"
                                                       and case.kind == "scenario"):
        # a FIFO, folder or device has no lines: the refusal must name the file itself
        return str(folder / case.target) in message
    for path, lines in targets:
        if m and m.group("path") == path and int(m.group("line")) in lines:
            return True
        # a sum of shares names the list, then each share with its line
        if m and m.group("path") == path and any(f"(line {n})" in message for n in lines):
            return True
    return False


def _run_file_case(case: Case, folder: Path) -> tuple[str, str]:
    _clear(folder)
    if case.kind == "rules":
        text, line = _scenario_naming_local(case.target)
        (folder / "scenario.yaml").write_text(text)
        if case.special == "missing":
            case.target, case.lines = "scenario.yaml", {line}
        else:
            case.also = ("scenario.yaml", {line})
    for name, content in case.files.items():
        p = folder / name
        p.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8",
                                                                              "surrogatepass"))
    if case.special and case.special != "missing":
        _make_special(folder / case.target, case.special)
    try:
        _validate(folder / "scenario.yaml")
    except REFUSALS as e:
        return ("refused_valid" if case.valid else
                "located" if _located(str(e), folder, case) else "unlocated"), str(e)
    except _Hung:
        raise
    except Exception as e:  # noqa: BLE001 - the point: anything else is a failure
        return "traceback", f"{type(e).__name__}: {e}"
    return ("accepted" if case.valid else "silent_accept"), ""


def _cli_argv(case: Case, folder: Path) -> list[str]:
    a_file = folder / "a_file"
    if not a_file.exists():
        a_file.write_text("x")
    fifo = folder / "fifo"
    if not fifo.exists():
        os.mkfifo(fifo)
    subs = {"@file": str(a_file), "@file/under": str(a_file / "x"), "@folder": str(folder),
            "@fifo": str(fifo), "@missing": str(folder / "missing.yaml"),
            "@package": str(Path(cli.__file__).parent / "data" / "x")}
    return [subs.get(a, a) for a in case.argv]


@functools.cache
def _command():  # noqa: ANN202 - the click command typer builds (once, not per case)
    import typer

    return typer.main.get_command(cli.app)


def _run_cli_case(case: Case, folder: Path, runner) -> tuple[str, str]:  # noqa: ANN001
    argv = _cli_argv(case, folder)
    if argv[0] in ("run", "fit", "sensitivity") and "--out" not in argv:
        argv += ["--out", str(folder / "out")]
    if argv[0] == "calibrate":
        argv += [a for a in ("--storage", str(folder / "j.log")) if "--storage" not in argv]
        argv += [a for a in ("--out", str(folder / "c.yaml")) if "--out" not in argv]
    import typer.testing

    # typer builds the click command on every invoke (25 ms); build it once instead
    mp = pytest.MonkeyPatch()
    mp.setattr(typer.testing, "_get_command", lambda _app: _command())
    try:
        res = runner.invoke(cli.app, argv, env={"COLUMNS": "100"})
    finally:
        mp.undo()
    out = res.output
    if isinstance(res.exception, _Hung):
        raise res.exception
    if isinstance(res.exception, _Started):
        return ("accepted" if case.valid else "silent_accept"), out
    if res.exception is not None and not isinstance(res.exception, SystemExit):
        return "traceback", f"{type(res.exception).__name__}: {res.exception}"
    if res.exit_code == 0:
        return ("accepted" if case.valid else "silent_accept"), out
    if case.valid:
        return "refused_valid", out
    arg = case.argument
    ok = res.exit_code == 2 and (out.startswith(f"error: {arg}:") or f"'{arg}'" in out)
    return ("located" if ok else "unlocated"), out


@contextlib.contextmanager
def _harness() -> Iterator[None]:
    """Parsed shipped rule files reused across cases (keyed by path and bytes, so a mutated
    file is always parsed afresh), and the long work of every command replaced by _Started."""
    from dcsim import calibration, fit, model, sensitivity

    cache: dict[tuple[str, bytes], object] = {}
    real = scenario.load_rule_file

    def cached(path):  # noqa: ANN001, ANN202
        p = Path(path)
        key = (str(p), p.read_bytes()) if p.is_file() and p.parent == RULES_DIR else None
        if key is None:
            return real(path)
        if key not in cache:
            cache[key] = real(path)
        return cache[key]

    def started(*_a, **_k):
        raise _Started()

    mp = pytest.MonkeyPatch()
    mp.setattr(scenario, "load_rule_file", cached)
    for mod, name in ((model, "prepare"), (calibration, "calibrate"), (fit, "fit"),
                      (sensitivity, "factors")):
        mp.setattr(mod, name, started)
    try:
        yield
    finally:
        mp.undo()


def generate(n: int, seed: int) -> list[Case]:
    """n cases: 45% rule files, 40% scenarios, 15% command lines, seeded."""
    out = []
    for i in range(n):
        rng = random.Random(seed * 1_000_003 + i)
        u = rng.random()
        make = _rule_case if u < 0.45 else _scenario_case if u < 0.85 else _cli_case
        out.append(make(rng))
    return out


def run_cases(cases: list[Case], folder: Path) -> tuple[Counter, list[tuple[Case, str, str]]]:
    """(count per outcome, the failures: case, outcome, message)."""
    from typer.testing import CliRunner

    runner = CliRunner()
    counts: Counter = Counter()
    bad: list[tuple[Case, str, str]] = []
    work = folder / "case"
    work.mkdir(exist_ok=True)
    with _harness():
        for case in cases:
            t0 = time.perf_counter()
            try:
                with _time_limit(HANG_SECONDS):
                    outcome, msg = (_run_cli_case(case, work, runner) if case.kind == "cli"
                                    else _run_file_case(case, work))
            except _Hung:
                outcome, msg = "hung", f"over {HANG_SECONDS} s"
            if time.perf_counter() - t0 > HANG_SECONDS:
                outcome = "hung"
            counts[outcome] += 1
            if outcome not in ("located", "accepted"):
                bad.append((case, outcome, msg))
    return counts, bad


def _assert_clean(counts: Counter, bad: list) -> None:
    detail = "\n".join(f"{o}: {c.kind} {c.what} -> {m[:300]}" for c, o, m in bad[:15])
    for outcome in ("traceback", "silent_accept", "hung", "refused_valid"):
        assert counts[outcome] == 0, f"{counts}\n{detail}"
    refused = counts["located"] + counts["unlocated"]
    assert counts["located"] >= 0.95 * refused, f"{counts}\n{detail}"


@pytest.mark.skipif(os.environ.get("CI") == "true", reason="CI runs the full suite")
def test_fuzz_sample(tmp_path):
    counts, bad = run_cases(generate(SAMPLE_CASES, seed=1), tmp_path)
    assert sum(counts.values()) == SAMPLE_CASES
    _assert_clean(counts, bad)


@pytest.mark.slow
def test_fuzz_ci(tmp_path):
    counts, bad = run_cases(generate(CI_CASES, seed=2026), tmp_path)
    _assert_clean(counts, bad)


def test_the_classifier_catches_what_it_should(tmp_path, monkeypatch):
    """An unchanged file counts as a silent accept of an 'invalid' case, a refusal at
    another line as unlocated, an unexpected exception as a traceback, a slow case as hung."""
    case = Case("rules", "unchanged", target="apps.yaml",
                files={"apps.yaml": (RULES_DIR / "apps.yaml").read_text()}, lines={1})
    assert _run_file_case(case, tmp_path)[0] == "silent_accept"
    case.files["apps.yaml"] += "oops: [\n"
    case.lines = {999}
    assert _run_file_case(case, tmp_path)[0] == "unlocated"
    n = case.files["apps.yaml"].count("\n")
    case.lines = {n, n + 1}  # an unclosed list is found at the end of the file
    assert _run_file_case(case, tmp_path)[0] == "located"
    monkeypatch.setattr(sys.modules[__name__], "check_rules", lambda _sc: 1 / 0)
    case.files["apps.yaml"] = (RULES_DIR / "apps.yaml").read_text()
    assert _run_file_case(case, tmp_path)[0] == "traceback"
    monkeypatch.setattr(sys.modules[__name__], "check_rules", lambda _sc: time.sleep(5))
    monkeypatch.setattr(sys.modules[__name__], "HANG_SECONDS", 0.2)
    counts, _ = run_cases([case], tmp_path)
    assert counts == Counter(hung=1)


if __name__ == "__main__":  # statistics of one run: python tests/test_fuzz.py [cases] [seed]
    import tempfile

    n = int(sys.argv[1]) if len(sys.argv) > 1 else CI_CASES
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 2026
    t0 = time.perf_counter()
    cases = generate(n, seed)
    with tempfile.TemporaryDirectory() as d:
        counts, bad = run_cases(cases, Path(d))
    print(f"{n} cases in {time.perf_counter() - t0:.1f} s: {dict(counts)}")
    print("cases by kind:", dict(Counter(c.kind for c in cases)), "valid:",
          sum(c.valid for c in cases))
    print("operators:", len({(c.kind, c.what.split(":")[0]) for c in cases}))
    by_kind = Counter((c.kind, o) for c, o, _ in bad)
    print("not located or worse, by kind:", dict(by_kind))
    for c, o, m in bad[:40]:
        print(f"  {o}: {c.kind} {c.what} (lines {sorted(c.lines)[:3]}) -> {m[:240]}")
