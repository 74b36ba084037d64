"""Data errors and their correction (paper fn 23-25, 40-41).

Prompt-entry quotas register some people who never used drugs, more so in heightened-security
periods. Local offices can enter records but not modify or delete them: a correction goes
through the provincial level, and only for those who complain or sue. Two ERRORS draws, the
stream's first two (nothing else draws from it), so a rule change can judge them again.
"""

from __future__ import annotations

import math

from .catalogue import Par
from .jit import kernel
from .measures import Flow
from .rng import Stream, draw, uniform
from .state import NEVER, Changed, S


@kernel
def correction_day(t, P, keys, k) -> int:  # noqa: ANN001
    u_complain = draw(keys, k, Stream.ERRORS)
    u_time = draw(keys, k, Stream.ERRORS)
    if u_complain >= P[Par.DATA_ERRORS__COMPLAINT_PROBABILITY]:
        return NEVER
    return t + 1 + int(-P[Par.DATA_ERRORS__MEAN_CORRECTION_DAYS] * math.log(1.0 - u_time))


@kernel
def rejudge_correction(s, t, P, keys) -> None:  # noqa: ANN001
    """Under data_errors.local_correction, a record still in error when the rules change is
    judged again with the same two draws: a complainant's record is corrected locally from
    today (or sooner if the pending correction comes first)."""
    if P[Par.DATA_ERRORS__LOCAL_CORRECTION] < 0.5 or s[S.NEVER_USED] == 0 or s[S.CORRECTED]:
        return
    key = keys[Stream.ERRORS]
    if uniform(key, 0) >= P[Par.DATA_ERRORS__COMPLAINT_PROBABILITY]:
        return
    day = t + 1 + int(-P[Par.DATA_ERRORS__MEAN_CORRECTION_DAYS] * math.log(1.0 - uniform(key, 1)))
    s[S.CORRECT] = min(s[S.CORRECT], day)


@kernel(inline="always")
def on_correction(life, t, P, fl) -> int:  # noqa: ANN001
    """Event CORRECTION: the province corrects the error and the record is removed.

    Writes s[CORRECTED, IN_REGISTRY]; counts ERROR_CORRECTIONS; no draws (both were taken at
    entry by correction_day)."""
    fl[Flow.ERROR_CORRECTIONS] += 1
    life.s[S.CORRECTED] = 1
    life.s[S.IN_REGISTRY] = 0
    return Changed.LEFT
