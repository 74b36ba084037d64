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
from .rng import Stream, draw
from .state import NEVER


@njit(**KERNEL)
def correction_day(t, P, keys, k) -> int:  # noqa: ANN001
    u_complain = draw(keys, k, Stream.ERRORS)
    u_time = draw(keys, k, Stream.ERRORS)
    if u_complain >= P[Par.DATA_ERRORS__COMPLAINT_PROBABILITY]:
        return NEVER
    return t + 1 + int(-P[Par.DATA_ERRORS__MEAN_CORRECTION_DAYS] * math.log(1.0 - u_time))
