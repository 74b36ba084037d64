"""Data errors and their correction (paper fn 23-25, 40-41).

Prompt-entry quotas register some people who never used drugs, more so in heightened-security
periods. Local offices can enter records but not modify or delete them: a correction goes
through the provincial level, and only for those who complain or sue. Two ERRORS draws.
"""

from __future__ import annotations

import math

from numba import njit

from .catalogue import Par
from .jit import KERNEL
from .measures import Flow
from .rng import Stream, draw
from .state import NEVER, Changed, S


@njit(**KERNEL)
def correction_day(t, P, keys, k) -> int:  # noqa: ANN001
    u_complain = draw(keys, k, Stream.ERRORS)
    u_time = draw(keys, k, Stream.ERRORS)
    if u_complain >= P[Par.DATA_ERRORS__COMPLAINT_PROBABILITY]:
        return NEVER
    return t + 1 + int(-P[Par.DATA_ERRORS__MEAN_CORRECTION_DAYS] * math.log(1.0 - u_time))


@njit(inline="always", **KERNEL)
def on_correction(life, t, P, fl) -> int:  # noqa: ANN001
    """Event CORRECTION: the province corrects the error and the record is removed.

    Writes s[CORRECTED, IN_REGISTRY]; counts ERROR_CORRECTIONS; no draws (both were taken at
    entry by correction_day)."""
    fl[Flow.ERROR_CORRECTIONS] += 1
    life.s[S.CORRECTED] = 1
    life.s[S.IN_REGISTRY] = 0
    return Changed.LEFT
