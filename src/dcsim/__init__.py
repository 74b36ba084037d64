"""dcsim: an evidence-traced simulation model of the DCS.

jit is imported first so that every compiled kernel caches under a folder keyed by the package
source (see jit.py). Before it, the thread setting Numba reads on import is checked: Numba
itself fails on 0 with a traceback and quietly replaces text by a default.
"""

from .checks import environment_problem as _environment_problem

if (_problem := _environment_problem()) is not None:
    import sys as _sys

    _sys.stderr.write(f"error: {_problem}\n")
    raise SystemExit(2)

from . import jit as _jit  # noqa: E402, F401  (sets the kernel cache folder before any kernel)

# isort: split
# the submodule dcsim.ensemble is loaded before the name is bound to the API function: loaded
# later (by fit, calibration, sensitivity or a comparison), it would rebind dcsim.ensemble to
# itself. It imports Dask only when a cluster is opened, so this costs next to nothing.
from . import ensemble as _ensemble_module  # noqa: E402, F401
from .api import RunResult, compare, ensemble, run, trace_person  # noqa: E402

__all__ = ["RunResult", "compare", "ensemble", "run", "trace_person"]
