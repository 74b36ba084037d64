"""Checks of command-line arguments and settings, made before any long work starts.

A bad argument found after an hour of simulation costs the user the hour; found by a traceback
it costs them the trust. Each check here raises `ArgumentError` naming the argument and what is
allowed, which the command line prints as one line with exit code 2. The module imports nothing
heavy (no NumPy, no Numba) so that `dcsim/__init__` can check the thread setting before Numba
reads it.
"""

from __future__ import annotations

import math
import os
import stat
import tempfile
from collections.abc import Mapping
from pathlib import Path

__all__ = [
    "ArgumentError",
    "environment_problem",
    "float_in",
    "int_in",
    "input_file",
    "output_file",
    "output_folder",
    "package_folder",
    "scheduler_endpoint",
    "seed_list",
]

SEED_MAX = 2**63 - 1  # seeds are drawn into a uint64 key; the scenario schema has the same limit
MAX_THREADS = 1024
_SYSTEM_TREES = (Path("/dev"), Path("/proc"), Path("/sys"))


class ArgumentError(ValueError):
    """A command-line argument or setting is not usable; the text names it and what is allowed."""

    def __init__(self, argument: str, message: str) -> None:
        self.argument = argument
        self.message = message
        super().__init__(f"{argument}: {message}")


def package_folder() -> Path:
    """The folder of the installed dcsim package (its own rule files live under it)."""
    return Path(__file__).resolve().parent


# --------------------------------------------------------------------------- numbers


def scheduler_endpoint(argument: str, text: str) -> str:
    """A Dask scheduler's address: [tcp://]HOST:PORT with a port from 1 to 65535."""
    rest = text.split("://", 1)[1] if "://" in text else text
    host, _, port = rest.rpartition(":")
    if not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ArgumentError(argument, f"expected a scheduler address such as "
                            f"tcp://127.0.0.1:8786, got {text!r}")
    return text


def int_in(argument: str, value: int, low: int, high: int | None = None) -> int:
    """`value` if low <= value <= high (high None: no upper bound), else ArgumentError."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise ArgumentError(argument, f"must be a whole number, got {value!r}")
    if value < low or (high is not None and value > high):
        allowed = f">= {low}" if high is None else f"from {low} to {high}"
        raise ArgumentError(argument, f"must be a whole number {allowed}, got {value}")
    return value


def float_in(argument: str, value: float, low: float, high: float,
             low_open: bool = False) -> float:
    """`value` if finite and in [low, high] ((low, high] if low_open), else ArgumentError."""
    bad = (isinstance(value, bool) or not isinstance(value, int | float)
           or not math.isfinite(value) or value > high
           or (value <= low if low_open else value < low))
    if bad:
        left = "(" if low_open else "["
        raise ArgumentError(argument, f"must be a number in {left}{low:g}, {high:g}], "
                                      f"got {value!r}")
    return float(value)


def seed_list(argument: str, text: str) -> list[int]:
    """Seeds written as whole numbers separated by commas: at least one, each 0..2**63-1,
    none twice (a repeated seed would count one run twice in a mean)."""
    parts = [s.strip() for s in text.split(",")]
    if not text.strip() or any(not s for s in parts):
        raise ArgumentError(argument, f"takes whole numbers separated by commas, e.g. 101,102; "
                                      f"got {text!r}")
    seeds = []
    for s in parts:
        try:
            seeds.append(int(s))
        except ValueError:
            raise ArgumentError(argument, f"{s!r} is not a whole number (seeds are whole "
                                          f"numbers separated by commas)") from None
    for s in seeds:
        int_in(argument, s, 0, SEED_MAX)
    if len(set(seeds)) != len(seeds):
        raise ArgumentError(argument, f"names a seed twice: {text!r}")
    return seeds


# --------------------------------------------------------------------------- paths


def _in_system_tree(p: Path) -> bool:
    return any(p == t or t in p.parents for t in _SYSTEM_TREES)


def _nearest_existing(p: Path) -> Path:
    while not os.path.lexists(p) and p != p.parent:
        p = p.parent
    return p


def _probe_writable(argument: str, folder: Path) -> None:
    """Create and remove a file in `folder`: the only test that also sees read-only mounts
    and a root user's permissions honestly."""
    try:
        fd, name = tempfile.mkstemp(prefix=".dcsim-probe-", dir=folder)
    except OSError as e:
        raise ArgumentError(argument, f"cannot write in {folder}: {e.strerror or e}") from None
    os.close(fd)
    os.unlink(name)


def _refuse_package(argument: str, p: Path, allow_package: bool) -> None:
    pkg = package_folder()
    if not allow_package and (p == pkg or pkg in p.parents):
        raise ArgumentError(argument, f"{p} is inside the installed dcsim package ({pkg}); "
                                      "write outputs elsewhere, e.g. under runs/")


def output_folder(argument: str, path: str | Path, allow_package: bool = False) -> Path:
    """A folder a command may create or fill: not a file, not under a file, not a device or
    system tree, not inside the package, and writable. Nothing is created here."""
    raw = Path(path)
    if str(path).strip() == "":
        raise ArgumentError(argument, "is empty; give a folder")
    try:
        p = raw.expanduser().resolve(strict=False)
    except (OSError, RuntimeError) as e:  # a symlink loop
        raise ArgumentError(argument, f"cannot resolve {raw}: {e}") from None
    if _in_system_tree(p):
        raise ArgumentError(argument, f"{raw} is a system path ({p}); give a folder")
    longest = max((len(os.fsencode(part)) for part in p.parts), default=0)
    if longest > 255 or len(os.fsencode(str(p))) > 4000:
        raise ArgumentError(argument, f"the path is too long ({longest} bytes in one name, "
                                      "255 allowed; 4,000 in all)")
    _refuse_package(argument, p, allow_package)
    if os.path.lexists(p) and not p.is_dir():
        raise ArgumentError(argument, f"{raw} exists and is not a folder; give a folder")
    base = _nearest_existing(p)
    if not base.is_dir():
        raise ArgumentError(argument, f"{raw} lies under {base}, which is not a folder")
    _probe_writable(argument, base)
    return p


def output_file(argument: str, path: str | Path, allow_package: bool = False) -> Path:
    """A file a command may create or replace: a regular file or nothing yet, in a folder
    output_folder accepts."""
    raw = Path(path)
    if str(path).strip() == "" or str(path).endswith(os.sep):
        raise ArgumentError(argument, f"{str(path)!r} does not name a file")
    try:
        p = raw.expanduser().resolve(strict=False)
    except (OSError, RuntimeError) as e:
        raise ArgumentError(argument, f"cannot resolve {raw}: {e}") from None
    if os.path.lexists(p) and not p.is_file():
        raise ArgumentError(argument, f"{raw} exists and is not a regular file")
    output_folder(argument, p.parent, allow_package=allow_package)
    _refuse_package(argument, p, allow_package)
    return p


def input_file(argument: str, path: str | Path) -> Path:
    """A file a command will read: exists and is a regular file (not a folder, FIFO or device,
    which would fail or block later)."""
    raw = Path(path)
    try:
        st = os.stat(raw)
    except FileNotFoundError:
        raise ArgumentError(argument, f"{raw} does not exist") from None
    except (OSError, RuntimeError) as e:
        raise ArgumentError(argument, f"cannot read {raw}: {e.strerror or e}") from None
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
        raise ArgumentError(argument, f"{raw} is {kind}; give a file")
    return raw


# --------------------------------------------------------------------------- environment


def environment_problem(environ: Mapping[str, str] | None = None) -> str | None:
    """Why a setting the program reads from the environment is unusable, or None.

    NUMBA_NUM_THREADS is read by Numba when it is imported: 0 raises deep inside Numba and
    text is silently replaced by a default, so both are refused first, by name.
    """
    env = os.environ if environ is None else environ
    raw = env.get("NUMBA_NUM_THREADS")
    if raw is None:
        return None
    try:
        n = int(raw.strip())
    except ValueError:
        n = None
    if n is None or not 1 <= n <= MAX_THREADS:
        return (f"NUMBA_NUM_THREADS={raw!r}: must be a whole number from 1 to {MAX_THREADS} "
                "(or unset: one thread per core)")
    return None
