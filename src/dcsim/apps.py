"""Monitoring apps for people in community orders (paper fn 26-28).

Zibo (GPS, alerts on missed appointments or route deviations), Shanghai Hongkou/Pudong (daily
login, mood survey, positioning fence, voice login), Chengdu Qingyang (mood, location, photo and
voice reports, 'AI' mood warnings) are three monitoring regimes with a check-in schedule and an
alert rate. The model records that these events happen; it never holds what they would collect.
"""

from __future__ import annotations

import numpy as np

from .catalogue import APPS, Par
from .drug_use import relapse_multiplier  # noqa: F401 - the apps' effect on use (fn 27)
from .jit import kernel
from .management import in_community_order, reachable
from .measures import Flow, Intrusion
from .rng import Stream, draw, next_candidate
from .state import FNEVER, Bound, Changed, F, S

_ENROL0 = int(Par.APPS__ENROLMENT_SHARE__ZIBO)
_ALERT0 = int(Par.APPS__ALERT_RATE_PER_YEAR__ZIBO)
N_APPS = len(APPS)


@kernel
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


@kernel
def checkin_interval(P, app) -> float:  # noqa: ANN001
    return 0.0 if app < 0 else P[Par.APPS__CHECKIN_INTERVAL_DAYS]


@kernel
def alert_rate(P, app) -> float:  # noqa: ANN001
    return 0.0 if app < 0 else P[_ALERT0 + app]


def max_alert_rate(P_all: np.ndarray) -> float:
    """Thinning bound of app alerts in one locality: the highest alert rate of an app that
    enrols anyone, over all months ([month, Par] rule rows)."""
    enrol = P_all[:, _ENROL0 : _ENROL0 + N_APPS]
    rate = P_all[:, _ALERT0 : _ALERT0 + N_APPS]
    return float(np.max(np.where(enrol > 0, rate, 0.0)))


@kernel(inline="always")
def follow(life, t, P) -> None:  # noqa: ANN001
    """After a change of state: enrol in or leave an app; its alert clock starts or stops.

    Reads s[...reachable, PATHWAY, ORDER_ACTIVE], f[APP_RANK]; writes s[APP], f[APP_ALERT];
    one APP draw when the clock starts."""
    s, f = life.s, life.f
    app = enrolled_app(s, P, f[F.APP_RANK])
    if app != s[S.APP]:
        s[S.APP] = app
        f[F.APP_ALERT] = FNEVER
        if app >= 0:
            f[F.APP_ALERT] = next_candidate(t, life.bounds[Bound.APP_ALERT], life.keys, life.k,
                                            Stream.APP)


@kernel(inline="always")
def on_app_alert(life, t, P, fl) -> int:  # noqa: ANN001
    """Event APP_ALERT (a candidate of the thinned process): an alert a worker follows up.

    Reads s[APP]; writes f[APP_ALERT]; counts APP_ALERTS, the follow-up intrusion and staff
    minutes; owns two APP draws per candidate (accept, next candidate). Changes no state."""
    s, f = life.s, life.f
    bound = life.bounds[Bound.APP_ALERT]
    u_accept = draw(life.keys, life.k, Stream.APP)
    f[F.APP_ALERT] = next_candidate(f[F.APP_ALERT], bound, life.keys, life.k, Stream.APP)
    if u_accept * bound < alert_rate(P, s[S.APP]):
        fl[Flow.APP_ALERTS] += 1
        fl[Flow.INTRUSIONS_APP_ALERT_FOLLOWUP] += 1
        life.intrusions[Intrusion.APP_ALERT_FOLLOWUP] += 1
        fl[Flow.STAFF_MINUTES_APP] += int(round(60.0 * P[Par.APPS__ALERT_FOLLOWUP_HOURS]))
    return Changed.NOTHING
