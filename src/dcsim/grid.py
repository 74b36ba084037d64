"""Grid management (paper fn 29-34): weekly visits to drug-associated persons in managed grids.

Coverage grows from the September 2015 pilots to the nationwide goal of 2018. A person's place
in their locality's roll-out is fixed at entry (a rank in [0, 1)), so coverage of 70% reaches
the same 70% of persons in the baseline and in any reform. Visits follow a fixed schedule, so
they are counted, not drawn.
"""

from __future__ import annotations

from .catalogue import Par
from .jit import kernel
from .pathways import is_custodial
from .state import Release, S


@kernel
def covered(grid_rank, P) -> bool:  # noqa: ANN001
    return grid_rank < P[Par.GRID__COVERAGE_SHARE]


@kernel
def visit_interval(s, P, grid_rank) -> float:  # noqa: ANN001
    """Days between visits made; 0 when none. Released persons stay 'drug-associated' (fn 47)."""
    if s[S.IN_REGISTRY] == 0 or s[S.LOST] == 1 or is_custodial(s[S.PATHWAY]):
        return 0.0
    if not covered(grid_rank, P):
        return 0.0
    if s[S.RELEASE] <= Release.PARTIAL:
        done = P[Par.GRID__VISITS_DONE_SHARE]
        return P[Par.GRID__VISIT_INTERVAL_DAYS] / done if done > 0.0 else 0.0
    if s[S.RELEASE] == Release.FULL:
        return P[Par.GRID__RELEASED_VISIT_INTERVAL_DAYS]
    return 0.0
