"""Official statistics (paper fn 8, 48; evidence.md#official-definitions): what the registry
reports. A registrant counts as an "existing user" until three years pass without a detected
use and the record is updated to say so (statistics.update_lag_days: exit needed high-level
authorisation at first, fn 38, and records are not updated in a timely manner, fn 45), then as
"abstinent three years or more". The statistics see the record, not the truth.
"""

from __future__ import annotations

from .catalogue import Par
from .jit import kernel
from .state import Changed, Done, S


@kernel
def official_flip_day(last_detect, P) -> int:  # noqa: ANN001
    """The day a record last detected on `last_detect` stops counting as an existing user:
    three years without a detection, plus the lag of the update in force (recomputed at
    every rule change, so a shorter lag reaches every waiting record on the day it starts)."""
    return last_detect + int(P[Par.STATISTICS__ABSTINENT_DAYS]) + int(
        P[Par.STATISTICS__UPDATE_LAG_DAYS])


@kernel(inline="always")
def on_official_flip(life, t, P, fl) -> int:  # noqa: ANN001
    """Event OFFICIAL_FLIP: the person moves from existing user to abstinent three years.

    Writes s[FLIPS_DONE] (Done.OFFICIAL_FLIP); counts no flow; owns no draws. Only stocks follow."""
    life.s[S.FLIPS_DONE] |= Done.OFFICIAL_FLIP
    return Changed.STOCKS
