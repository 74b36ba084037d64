"""ID-use alerts and the police response (paper fn 4, 22, 50, 58).

Using an identity document at a hotel, bank, government office, mobile-phone registration,
tertiary-education application, when travelling or renting raises an alert while the person is
under full control. Police must respond and log the result; they often arrive after the person
has left. A response that reaches the person is an interrogation in a public venue, usually with
a drug test. ID uses are a Poisson process drawn by thinning from the locality's highest rate,
three ID_USE draws per candidate; each alert takes four POLICE draws.
"""

from __future__ import annotations

from numba import njit

from .catalogue import VENUES, Par
from .jit import KERNEL
from .pathways import is_custodial
from .state import Release, S

_VENUE0 = int(Par.ALERTS__ID_USE_RATE_PER_YEAR__HOTEL)
N_VENUES = len(VENUES)


@njit(inline="always", **KERNEL)
def id_use_rate(s, P, total) -> float:  # noqa: ANN001
    """ID uses a year now, given the venues' total: none in custody (paper fn 4)."""
    if is_custodial(s[S.PATHWAY]):
        return 0.0
    if s[S.USING] == 1:
        total *= P[Par.ALERTS__ID_USE_MULTIPLIER_WHILE_USING]
    return total


@njit(inline="always", **KERNEL)
def venue_total(P) -> float:  # noqa: ANN001
    total = 0.0
    for v in range(N_VENUES):
        total += P[_VENUE0 + v]
    return total


@njit(inline="always", **KERNEL)
def venue_of(P, u, total) -> int:  # noqa: ANN001
    """The venue of an ID use: venue v with probability rate_v / total."""
    x = u * total
    acc = 0.0
    for v in range(N_VENUES):
        acc += P[_VENUE0 + v]
        if x < acc:
            return v
    return N_VENUES - 1


@njit(inline="always", **KERNEL)
def raises_alert(s) -> bool:  # noqa: ANN001
    """Alerts stop on partial or full release (paper fn 45, 47)."""
    return s[S.IN_REGISTRY] == 1 and s[S.RELEASE] == Release.CONTROL


@njit(**KERNEL)
def max_rate(P_all) -> float:  # noqa: ANN001
    """Upper bound of id_use_rate over all months of one locality, for thinning."""
    best = 0.0
    for m in range(P_all.shape[0]):
        total = 0.0
        for v in range(N_VENUES):
            total += P_all[m, _VENUE0 + v]
        mult = max(1.0, P_all[m, Par.ALERTS__ID_USE_MULTIPLIER_WHILE_USING])
        best = max(best, total * mult)
    return best
