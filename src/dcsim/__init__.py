"""dcsim: an evidence-traced simulation model of the DCS.

jit is imported first so that every compiled kernel caches under a folder keyed by the package
source (see jit.py).
"""

from . import jit as _jit  # noqa: F401  (sets the kernel cache folder before any kernel exists)
from .api import RunResult, compare, ensemble, run, trace_person

__all__ = ["RunResult", "compare", "ensemble", "run", "trace_person"]
