"""Official statistics (paper fn 8, 48; evidence.md#official-definitions): what the registry
reports. A registrant counts as an "existing user" until three years pass without a detected
use, then as "abstinent three years or more". The statistics see the record, not the truth.
"""

from __future__ import annotations

from .catalogue import Par
from .jit import kernel
from .state import Changed, S


@kernel
def official_flip_day(last_detect, P) -> int:  # noqa: ANN001
    """The day a record last detected on `last_detect` stops counting as an existing user."""
    return last_detect + int(P[Par.STATISTICS__ABSTINENT_DAYS])


@kernel(inline="always")
def on_official_flip(life, t, P, fl) -> int:  # noqa: ANN001
    """Event OFFICIAL_FLIP: the person moves from existing user to abstinent three years.

    Writes s[FLIPS_DONE] bit 1; counts no flow; owns no draws. Only stocks follow."""
    life.s[S.FLIPS_DONE] |= 1
    return Changed.STOCKS
