"""Compilation settings shared by every compiled kernel, and where compiled code is cached.

Kernels allocate nothing: every array is made in Python and passed in. That lets them run
without Numba's reference counting (`_nrt=False`), whose atomic counter updates on every array
view otherwise cost a third of the run time and make two threads fight over the same counters.

Kernels are compiled by this package's own pipeline (`_Compiler`, in `KERNEL`): Numba's, with
`inline="always"` left to LLVM, so an inlined kernel is compiled once instead of once per
caller (about 35 s of compiling became about 25 s on the project machine, same results);
and no kernel gets the C-function wrapper, which none of them needs (2 s less).

Numba's on-disk cache only notices changes to the file a kernel is written in, not to the
constants it imports (the column of each rule value, the state layout). A stale kernel would
silently read the wrong rule, so the cache lives in a folder named by a hash of the source of
every module that holds a kernel and of every module those import, transitively (imports
guarded by `if TYPE_CHECKING:` are types only and not followed). Editing any of them compiles
everything afresh; editing the command line, the rule loader or the reports does not.
"""

from __future__ import annotations

import ast
import hashlib
import os
from pathlib import Path

import numba
from numba.core.compiler import CompilerBase, DefaultPassBuilder
from numba.core.untyped_passes import InlineInlinables


class _Compiler(CompilerBase):
    """Numba's nopython pipeline, with `inline="always"` done by LLVM instead of Numba.

    Numba inlines such a function by copying its IR into every caller and typing, lowering
    and optimising each copy again (and its own inlined callees with it, at each level), which
    made most of the compile time. Here a kernel marked `inline="always"` is compiled once,
    like any other, and its LLVM function is marked `alwaysinline`, so LLVM puts it into every
    caller when it links the modules: the same code runs, compiled once. The pipeline is this
    package's own (`KERNEL`), so Numba code elsewhere in the process is not affected."""

    def define_pipelines(self):  # noqa: ANN201
        flags = self.state.flags
        flags.forceinline = flags.inline.is_always_inline  # explicit: never inherited
        flags.no_cfunc_wrapper = True  # kernels are never taken as C function pointers
        pm = DefaultPassBuilder.define_nopython_pipeline(self.state)
        pm.passes = [p for p in pm.passes if p[0] is not InlineInlinables]
        pm.finalize()
        return [pm]


KERNEL = {"cache": True, "_nrt": False, "pipeline_class": _Compiler}
_PACKAGE = Path(__file__).parent


def _relative_imports(tree: ast.Module) -> set[str]:
    """Names of the package's modules a module imports at run time."""
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0])
            else:
                found.update(alias.name for alias in node.names)
    return found


def kernel_modules(package: Path = _PACKAGE) -> list[Path]:
    """The modules compiled code can depend on: those with a kernel, and what they import."""
    sources = {p.stem: p.read_text() for p in package.glob("*.py")}
    imports = {name: _relative_imports(ast.parse(src)) for name, src in sources.items()}
    todo = [name for name, src in sources.items() if "@njit" in src]
    seen: set[str] = set()
    while todo:
        name = todo.pop()
        if name in seen or name not in sources:
            continue
        seen.add(name)
        todo.extend(imports[name])
    return sorted(package / f"{name}.py" for name in seen)


def source_hash() -> str:
    """Hash of the kernels' sources: names the cache folder (and a calibration's code)."""
    h = hashlib.sha256()
    for p in kernel_modules():
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def _cache_dir() -> Path:
    base = os.environ.get("NUMBA_CACHE_DIR") or os.environ.get("XDG_CACHE_HOME")
    root = Path(base) if base else Path.home() / ".cache"
    return root / "dcsim-numba" / source_hash()


CACHE_DIR = _cache_dir()
numba.config.CACHE_DIR = str(CACHE_DIR)
_COMPILE_LOG = "compile_seconds.txt"


def compiled() -> bool:
    """Whether the engine's kernels for this source are in the on-disk cache."""
    return any(CACHE_DIR.glob("**/engine.run_chunk-*.nbc"))


def record_compile_seconds(seconds: float) -> None:
    """Keep how long compiling took on this machine, for the next compile's label."""
    try:
        CACHE_DIR.mkdir(parents=True, exist_ok=True)
        (CACHE_DIR / _COMPILE_LOG).write_text(f"{seconds:.1f}\n")
    except OSError:
        pass  # a read-only cache only loses the figure for the label


def last_compile_seconds() -> float | None:
    """Seconds the latest compile of any dcsim version took on this machine, if recorded."""
    logs = sorted(CACHE_DIR.parent.glob(f"*/{_COMPILE_LOG}"), key=lambda p: p.stat().st_mtime)
    for path in reversed(logs):
        try:
            return float(path.read_text())
        except (OSError, ValueError):
            continue
    return None
