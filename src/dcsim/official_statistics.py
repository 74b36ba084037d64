"""Official statistics (paper fn 8, 48; evidence.md#official-definitions): what the registry
reports. A registrant counts as an "existing user" until three years pass without a detected
use and the record is updated to say so (statistics.update_lag_days: exit needed high-level
authorisation at first, fn 38, and records are not updated in a timely manner, fn 45: a delay
that differs by record, statistics.update_lag_varies), then as "abstinent three years or
more". The statistics see the record, not the truth.
"""

from __future__ import annotations

import math

from .catalogue import Par
from .jit import kernel
from .rng import Stream, uniform
from .state import Changed, Done, S

# The update delay's draw is keyed by the detection day, far beyond any draw counter of the
# EXIT stream (exit practice: record updates), so it takes no counter and is the same draw
# whenever the same record's lag is computed again (at a rule change).
_UPDATE_DRAW0 = 1 << 40


@kernel
def official_flip_day(last_detect, P, keys) -> int:  # noqa: ANN001
    """The day a record last detected on `last_detect` stops counting as an existing user:
    three years without a detection, plus the lag of the update in force (recomputed at
    every rule change, so a shorter lag reaches every waiting record on the day it starts).

    With statistics.update_lag_varies the lag differs by record: exponential with the mean
    in force (each month a waiting record is updated with the same chance: assumption, no
    source gives the spread), its uniform keyed by the person and the detection day; else
    every record waits exactly the mean."""
    lag = P[Par.STATISTICS__UPDATE_LAG_DAYS]
    if P[Par.STATISTICS__UPDATE_LAG_VARIES] > 0.5:
        u = uniform(keys[Stream.EXIT], _UPDATE_DRAW0 + last_detect)
        lag = -lag * math.log(1.0 - u)
    return last_detect + int(P[Par.STATISTICS__ABSTINENT_DAYS]) + int(lag)


@kernel(inline="always")
def on_official_flip(life, t, P, fl) -> int:  # noqa: ANN001
    """Event OFFICIAL_FLIP: the person moves from existing user to abstinent three years.

    Writes s[FLIPS_DONE] (Done.OFFICIAL_FLIP); counts no flow; owns no draws. Only stocks follow."""
    life.s[S.FLIPS_DONE] |= Done.OFFICIAL_FLIP
    return Changed.STOCKS
