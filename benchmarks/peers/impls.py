"""Which implementations exist, and loading them without failing when an optional one is absent.

``dcsim_model`` (``run_dcsim``) is written separately; until it imports, agreement checks and
the benchmark list it as skipped. Mesa and Starsim are the optional extra ``peers``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable

from benchmarks.peers import spec

RunFn = Callable[[int, int, int], spec.Result]

IMPLEMENTATIONS: dict[str, tuple[str, str]] = {
    "dcsim": ("benchmarks.peers.dcsim_model", "run_dcsim"),
    "numpy": ("benchmarks.peers.numpy_model", "run_numpy"),
    "starsim": ("benchmarks.peers.starsim_model", "run_starsim"),
    "mesa": ("benchmarks.peers.mesa_model", "run_mesa"),
    "floor": ("benchmarks.peers.floor", "run_floor"),
}
"""name -> (module, function); every function is ``run(n, t, seed) -> spec.Result``."""

MODELS: tuple[str, ...] = ("dcsim", "numpy", "starsim", "mesa")
"""The implementations of the model itself (the floor is not one: it draws nothing)."""


def load(name: str) -> RunFn:
    """Import one implementation; raises ImportError when it (or its framework) is absent."""
    module_name, func_name = IMPLEMENTATIONS[name]
    module = importlib.import_module(module_name)
    return getattr(module, func_name)


def available(names: Iterable[str]) -> tuple[dict[str, RunFn], dict[str, str]]:
    """The importable implementations among ``names``, and why each other one was skipped."""
    found: dict[str, RunFn] = {}
    skipped: dict[str, str] = {}
    for name in names:
        if name not in IMPLEMENTATIONS:
            raise KeyError(f"unknown implementation {name!r}; known: {sorted(IMPLEMENTATIONS)}")
        try:
            found[name] = load(name)
        except ImportError as exc:
            skipped[name] = f"{type(exc).__name__}: {exc}"
    return found, skipped
