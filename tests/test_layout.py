"""The code's layout rules, checked on the source: short functions, compiled functions with few
parameters, an engine that only orders events, and no module reaching into another's private
names."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "dcsim"
MODULES = sorted(SRC.glob("*.py"))


def _functions(path: Path):  # noqa: ANN202
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def _is_compiled(fn: ast.FunctionDef) -> bool:
    for dec in fn.decorator_list:
        target = dec.func if isinstance(dec, ast.Call) else dec
        if isinstance(target, ast.Name) and target.id == "kernel":
            return True
    return False


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_function_is_longer_than_80_lines(path):
    long = [f"{fn.name} ({fn.end_lineno - fn.lineno + 1} lines)" for fn in _functions(path)
            if fn.end_lineno - fn.lineno + 1 > 80]
    assert not long, f"{path.name}: {long}"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_compiled_functions_take_at_most_8_parameters(path):
    wide = [f"{fn.name} ({len(fn.args.args)})" for fn in _functions(path)
            if _is_compiled(fn) and len(fn.args.args) > 8]
    assert not wide, f"{path.name}: {wide}"


def test_the_engine_reads_no_rule_and_counts_only_its_events():
    text = (SRC / "engine.py").read_text()
    tree = ast.parse(text)
    names = {n.attr for n in ast.walk(tree)
             if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
             and n.value.id in ("Par", "Flow")}
    assert names <= {"ENGINE_EVENTS"}, names
    assert "from .catalogue" not in text


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_module_uses_another_modules_private_names(path):
    tree = ast.parse(path.read_text())
    modules = {p.stem for p in MODULES}
    bad = [f"{n.value.id}.{n.attr}" for n in ast.walk(tree)
           if isinstance(n, ast.Attribute) and isinstance(n.value, ast.Name)
           and n.value.id in modules and n.attr.startswith("_") and not n.attr.startswith("__")]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            bad += [f"{node.module}.{a.name}" for a in node.names
                    if a.name.startswith("_") and a.name != "__version__"]
    assert not bad, f"{path.name}: {bad}"
