"""Monitoring apps for people in community orders (paper fn 26-28).

Zibo (GPS, alerts on missed appointments or route deviations), Shanghai Hongkou/Pudong (daily
login, mood survey, positioning fence, voice login), Chengdu Qingyang (mood, location, photo and
voice reports, 'AI' mood warnings) are three monitoring regimes with a check-in schedule and an
alert rate. The model records that these events happen; it never holds what they would collect.
"""

from __future__ import annotations

from numba import njit

from .catalogue import APPS, Par
from .jit import KERNEL
from .management import in_community_order, reachable

_ENROL0 = int(Par.APPS__ENROLMENT_SHARE__ZIBO)
_ALERT0 = int(Par.APPS__ALERT_RATE_PER_YEAR__ZIBO)
N_APPS = len(APPS)


@njit(inline="always", **KERNEL)
def enrolled_app(s, P, app_rank) -> int:  # noqa: ANN001
    """The app a person in a community order is enrolled in now, or -1.

    Apps take consecutive slices of the roll-out rank, so where several run in one place
    each enrols its own share (their sum capped at everyone)."""
    if not (reachable(s) and in_community_order(s)):
        return -1
    upper = 0.0
    for a in range(N_APPS):
        upper += P[_ENROL0 + a]
        if app_rank < upper:
            return a
    return -1


@njit(inline="always", **KERNEL)
def checkin_interval(P, app) -> float:  # noqa: ANN001
    return 0.0 if app < 0 else P[Par.APPS__CHECKIN_INTERVAL_DAYS]


@njit(inline="always", **KERNEL)
def alert_rate(P, app) -> float:  # noqa: ANN001
    return 0.0 if app < 0 else P[_ALERT0 + app]


@njit(inline="always", **KERNEL)
def relapse_multiplier(P, app) -> float:  # noqa: ANN001
    return 1.0 if app < 0 else P[Par.APPS__RELAPSE_HAZARD_MULTIPLIER]
