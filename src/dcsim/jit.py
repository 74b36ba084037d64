"""Compilation settings shared by every compiled kernel, and where compiled code is cached.

Kernels allocate nothing: every array is made in Python and passed in. That lets them run
without Numba's reference counting (`_nrt=False`), whose atomic counter updates on every array
view otherwise cost a third of the run time and make two threads fight over the same counters.

Kernels (`@kernel`) are compiled by this package's own pipeline (`_Compiler`, in `KERNEL`):
Numba's, with `inline="always"` left to LLVM, so an inlined kernel is compiled once instead of
once per caller (about 35 s of compiling became about 25 s on the project machine, same
results); no kernel gets the C-function wrapper, which none of them needs (2 s less); and only
those Python calls get the CPython wrapper (`Kernel`: about a quarter less again).

Numba's on-disk cache only notices changes to the file a kernel is written in, not to the
constants it imports (the column of each rule value, the state layout). A stale kernel would
silently read the wrong rule, so the cache lives in a folder named by a hash of the source of
every module that holds a kernel and of every module those import, transitively (imports
guarded by `if TYPE_CHECKING:` are types only and not followed). Editing any of them compiles
everything afresh; editing the command line, the rule loader or the reports does not.

A first compile is shared by two processes (`Helper`, used by `model.compile_kernels`): this
one and a helper fill the same cache, and each takes from it what the other has compiled. Saves
to the cache take a lock (`_locked_save`), since Numba's own save could let two processes give
one data file to two signatures.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

import numba
from numba.core import types as nbtypes
from numba.core.caching import IndexDataCacheFile
from numba.core.compiler import CompilerBase, DefaultPassBuilder
from numba.core.registry import CPUDispatcher
from numba.core.untyped_passes import InlineInlinables

try:
    import fcntl
except ImportError:  # not on Windows: there a first compile runs in one process
    fcntl = None


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


class Kernel(CPUDispatcher):
    """A kernel that only kernels call: compiled without Numba's CPython wrapper, the code that
    lets Python call it (it unboxes every argument, and it is copied into every caller's
    module before LLVM drops it: about a quarter of the compile time). A call from Python
    (a test) goes to `python_entry`, a twin compiled with the wrapper on its first call."""

    def add_overload(self, cres) -> None:  # noqa: ANN001
        # kept out of the table Python calls are dispatched from: this code has no entry for
        # them, so they miss it and come to _compile_for_args
        self.overloads[tuple(cres.signature.args)] = cres

    def _compile_for_args(self, *args, **kws):  # noqa: ANN002, ANN003, ANN202
        return self.python_entry  # Numba calls what this returns with the arguments

    def get_call_template(self, args, kws):  # noqa: ANN001, ANN201
        """A call from a kernel, typed by the plain type of each argument: a constant argument
        (a stream number, a column) would otherwise be typed by its value and compile the
        kernel once per value (rng.uniform was compiled 13 times). LLVM still sees the
        constant where the kernel is inlined, so the code is the same."""
        args = tuple(nbtypes.unliteral(a) for a in args)
        kws = {k: nbtypes.unliteral(v) for k, v in kws.items()}
        return super().get_call_template(args, kws)

    @functools.cached_property
    def python_entry(self) -> CPUDispatcher:
        """The same function compiled with the CPython wrapper, cached apart (its own name)."""
        f = self.py_func
        twin = types.FunctionType(f.__code__, f.__globals__, f.__name__, f.__defaults__,
                                  f.__closure__)
        twin.__qualname__ = f"{f.__qualname__}_python"
        options = {k: v for k, v in self.targetoptions.items() if k != "nopython"}
        options["no_cpython_wrapper"] = False
        return numba.njit(cache=True, pipeline_class=_Compiler, **options)(twin)


def kernel(fn=None, /, *, python: bool = False, **options):  # noqa: ANN001, ANN201
    """The decorator of every compiled function: `@kernel`, `@kernel(inline="always")`,
    `@kernel(nogil=True, python=True)`. A kernel Python calls (python=True: the engine's
    chunk loop, registration, the tables) is Numba's own dispatcher with the CPython wrapper;
    the rest are Kernels, without it."""
    def make(f):  # noqa: ANN001, ANN202
        d = numba.njit(**KERNEL, no_cpython_wrapper=not python, **options)(f)
        if not python:
            d.__class__ = Kernel
        return d

    return make if fn is None else make(fn)
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
    todo = [name for name, src in sources.items() if "@kernel" in src]
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
_numba_save = IndexDataCacheFile.save


def _locked_save(self: IndexDataCacheFile, key: object, data: object) -> None:
    """Numba's save (read the index, pick the first free data file name, write the index, then
    the data), holding a lock on this package's cache while it does: two processes saving two
    signatures of one kernel at once could otherwise both pick the same data file."""
    if fcntl is None or not str(self._cache_path).startswith(str(CACHE_DIR)):
        _numba_save(self, key, data)
        return
    with open(CACHE_DIR / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            _numba_save(self, key, data)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


IndexDataCacheFile.save = _locked_save


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


class Helper:
    """A second Python process that shares a first compile with this one (model.compile_kernels):
    it runs `target` ("module:function" of this package, called with a `claim` function) and
    compiles into the same cache, and each process takes from the cache what the other has
    compiled. Work both can do is split by `claim(item)`: True for the first process to ask,
    which then does the item and marks it done.

    It starts only where it can help: with a core to spare (1.5 cores idle over a quarter of a
    second, from /proc/stat, or else the load average below the core count minus one: on a
    busy machine two processes of one session share the time one would get) and file locks
    (not on Windows). DCSIM_COMPILE_HELPER=1 starts it always, 0 never.
    Without it, `claim` is always True and this process does everything."""

    def __init__(self, target: str) -> None:
        self.proc: subprocess.Popen | None = None
        self.folder: Path | None = None
        if not _helper_wanted():
            return
        self.folder = Path(tempfile.mkdtemp(prefix="dcsim-compile-"))
        code = ("import sys; sys.path.insert(0, sys.argv[1]); from dcsim import jit; "
                "jit._run_helper(*sys.argv[2:])")
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", code, str(_PACKAGE.parent), target, str(CACHE_DIR),
                 str(self.folder)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        except OSError:
            self.proc = None  # no second process: this one compiles everything

    def claim(self, item: str) -> bool:
        return self.proc is None or _claim(self.folder, item)

    def done(self, item: str) -> None:
        if self.proc is not None:
            _done(self.folder, item)

    def wait_for(self, items: list[str], timeout: float = 120.0) -> None:
        """Wait until the helper has done what it claimed of `items` (or has ended)."""
        end = time.monotonic() + timeout
        while self.proc is not None and self.proc.poll() is None and time.monotonic() < end:
            if all(not (self.folder / i).exists() or (self.folder / f"{i}.done").exists()
                   for i in items):
                return
            time.sleep(0.02)

    def __enter__(self) -> Helper:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()  # a save it was making is lost, never half written
            self.proc.wait()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)


def _helper_wanted() -> bool:
    setting = os.environ.get("DCSIM_COMPILE_HELPER", "")
    if fcntl is None or setting == "0":
        return False
    if setting == "1":
        return True
    idle = idle_cores()
    if idle is None:  # no /proc/stat: the load average, which lags a minute behind
        return os.getloadavg()[0] < (os.cpu_count() or 1) - 1
    return idle >= 1.5  # this process takes one core; the helper needs most of another


def _cpu_times() -> tuple[int, int] | None:
    """(idle, total) jiffies of all cores since boot, from /proc/stat (Linux)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    return fields[3] + (fields[4] if len(fields) > 4 else 0), sum(fields[:8])


def idle_cores(window: float = 0.25) -> float | None:
    """Cores idle now, measured over `window` seconds: the load average would still count a
    run that ended a minute ago and keep the helper from starting when it would help."""
    first = _cpu_times()
    if first is None:
        return None
    time.sleep(window)
    second = _cpu_times()
    if second is None or second[1] <= first[1]:
        return None
    share = (second[0] - first[0]) / (second[1] - first[1])
    return share * (os.cpu_count() or 1)


def _claim(folder: Path, item: str) -> bool:
    try:
        os.close(os.open(folder / item, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def _done(folder: Path, item: str) -> None:
    (folder / f"{item}.done").touch()


def _run_helper(target: str, cache_dir: str, folder: str) -> None:
    """The helper's body: only for the same source (the same cache folder)."""
    if str(CACHE_DIR) != cache_dir:
        return
    module, function = target.split(":")
    here = Path(folder)
    getattr(importlib.import_module(f"dcsim.{module}"), function)(
        lambda item: _claim(here, item), lambda item: _done(here, item))
