"""Management by risk tier (paper fn 17-21): schedules of tests, counselling and inspections.

The tier sets how often a person is tested, counselled and inspected; a locality's table (e.g.
Huizhou's Table 1, fn 19) is just other values for the same rules. Tiers are reassessed every
six months of control (fn 20): a detected relapse makes a person extreme risk, a long record
without one lowers the tier a step.
"""

from __future__ import annotations

import numpy as np

from .catalogue import Par
from .drug_use import abstinent_days
from .jit import kernel
from .pathways import is_custodial
from .rng import Stream, next_candidate
from .state import FNEVER, NEVER, Bound, Changed, Drug, F, Pathway, Release, S

_TEST_IV0 = int(Par.MANAGEMENT__TEST_INTERVAL_DAYS__EXTREME)
_COUNSEL_IV0 = int(Par.MANAGEMENT__COUNSELLING_INTERVAL_DAYS__EXTREME)
_INSPECT0 = int(Par.MANAGEMENT__INSPECTION_RATE_PER_YEAR__EXTREME)


@kernel
def reachable(s) -> bool:  # noqa: ANN001
    """Scheduled contact needs a record, control, known whereabouts and freedom."""
    return (
        s[S.IN_REGISTRY] == 1
        and s[S.RELEASE] <= Release.PARTIAL
        and s[S.LOST] == 0
        and not is_custodial(s[S.PATHWAY])
    )


@kernel
def in_community_order(s) -> bool:  # noqa: ANN001
    pw = s[S.PATHWAY]
    return (pw == Pathway.COMMUNITY_DETOX or pw == Pathway.COMMUNITY_REHAB) and (
        s[S.ORDER_ACTIVE] == 1
    )


# Follow-up points of the community-treatment study (evidence.md#relapse): a scheduled test
# counts at "12 months" when it falls within 45 days of the order's first anniversary, at "24
# months" within 45 days of the second (a window as wide as the longest programme interval
# in the calibration's range, so that nearly everyone still under the order has a test in it).
FOLLOWUP_HALF_WINDOW_DAYS = 45


@kernel
def community_followup(s, t, P) -> int:  # noqa: ANN001
    """0 near 12 months into a community order carried out, 1 near 24 months, else -1; for
    heroin users only, since the study these points mirror tested for morphine
    (evidence.md#relapse, targets community_positive_12_months and _24_months)."""
    if not in_community_order(s) or s[S.DRUG] != Drug.HEROIN:
        return -1
    if s[S.PATHWAY] == Pathway.COMMUNITY_DETOX:
        length = int(P[Par.PATHWAYS__COMMUNITY_DETOX_DAYS])
    else:
        length = int(P[Par.PATHWAYS__COMMUNITY_REHAB_DAYS])
    into = t - (s[S.ORDER_END] - length)
    for point in range(2):
        if abs(into - 365 * (point + 1)) < FOLLOWUP_HALF_WINDOW_DAYS:
            return point
    return -1


@kernel
def test_interval(s, P) -> float:  # noqa: ANN001
    """Days between scheduled tests now; 0 when none are scheduled (paper fn 19, 37, 46, 75)."""
    if not reachable(s):
        return 0.0
    tier_iv = P[_TEST_IV0 + s[S.TIER]]
    if in_community_order(s):
        if s[S.PATHWAY] == Pathway.COMMUNITY_DETOX:
            prog = P[Par.MANAGEMENT__PROGRAMME_TEST_INTERVAL_DAYS__COMMUNITY_DETOX]
        else:
            prog = P[Par.MANAGEMENT__PROGRAMME_TEST_INTERVAL_DAYS__COMMUNITY_REHAB]
        return min(prog, tier_iv)
    if P[Par.MANAGEMENT__TIER_SCHEDULE_WITHOUT_ORDER] > 0.5:
        return tier_iv
    if P[Par.MANAGEMENT__NO_ORDER_REGULAR_TESTS] > 0.5 and s[S.DEPENDENT] == 0:
        return P[Par.MANAGEMENT__NO_ORDER_TEST_INTERVAL_DAYS]
    return 0.0


@kernel
def counselling_interval(s, P) -> float:  # noqa: ANN001
    if not reachable(s):
        return 0.0
    return P[_COUNSEL_IV0 + s[S.TIER]]


@kernel
def inspection_rate(s, P) -> float:  # noqa: ANN001
    """Unscheduled inspections a year (fn 21); none without control or whereabouts."""
    if not reachable(s):
        return 0.0
    return P[_INSPECT0 + s[S.TIER]]


@kernel(inline="always")
def reschedule_test(s, t, P) -> None:  # noqa: ANN001
    """Start a schedule that was off, bring the next test forward if the schedule tightened
    (where that is the rule), and drop it if none is due."""
    iv = test_interval(s, P)
    if iv <= 0.0:
        s[S.NEXT_TEST] = NEVER
        return
    due = t + int(iv)
    if s[S.NEXT_TEST] == NEVER or (
        due < s[S.NEXT_TEST] and P[Par.MANAGEMENT__BRING_TEST_FORWARD] > 0.5
    ):
        s[S.NEXT_TEST] = due


@kernel
def reassess(s, t, P) -> bool:  # noqa: ANN001
    """Six-monthly reassessment (fn 20): a step down after long enough without detection.

    Returns whether the tier changed. Once at the lowest tier, or out of control, no further
    assessment can change anything until a detection, which restarts the cycle.
    """
    changed = False
    if P[Par.MANAGEMENT__STEP_DOWN_ON_TRUE_ABSTINENCE] > 0.5:
        clean = abstinent_days(s, t) >= P[Par.MANAGEMENT__STEP_DOWN_AFTER_DAYS]
    else:
        clean = t - s[S.LAST_DETECT] >= P[Par.MANAGEMENT__STEP_DOWN_AFTER_DAYS]
    if clean and s[S.TIER] < 3:
        s[S.TIER] += 1
        changed = True
    if s[S.TIER] < 3 and s[S.IN_REGISTRY] == 1 and s[S.RELEASE] <= Release.PARTIAL:
        s[S.NEXT_ASSESS] = next_assessment(s, t, P)
    else:
        s[S.NEXT_ASSESS] = NEVER
    return changed


@kernel
def next_assessment(s, t, P) -> int:  # noqa: ANN001
    """The next six-monthly date after day t, counted from entry (fn 20)."""
    iv = int(P[Par.MANAGEMENT__REASSESSMENT_INTERVAL_DAYS])
    return s[S.ENTRY] + iv * ((t - s[S.ENTRY]) // iv + 1)


def max_rates(P_all: np.ndarray) -> tuple[np.ndarray, float]:
    """Thinning bounds of one locality ([month, Par] rule rows): the highest inspection rate of
    each tier, and the highest encounter rate, over all months."""
    return (P_all[:, _INSPECT0 : _INSPECT0 + 4].max(0),
            float(P_all[:, Par.MANAGEMENT__ENCOUNTER_RATE_PER_YEAR].max()))


@kernel(inline="always")
def follow(life, t, P) -> None:  # noqa: ANN001
    """After a change of state: the test schedule, the inspection clock of the person's tier
    and the clock of police encounters while using start, move or stop.

    A clock whose process cannot fire is parked (FNEVER) and restarted from day t when it can
    again; Poisson processes are memoryless, so this is exact. Writes s[NEXT_TEST,
    INSPECT_TIER], f[INSPECT, ENCOUNTER]; one INSPECT or ENCOUNTER draw per clock started."""
    s, f = life.s, life.f
    reschedule_test(s, t, P)
    tier = s[S.TIER] if reachable(s) else -1
    if tier != s[S.INSPECT_TIER]:
        s[S.INSPECT_TIER] = tier
        f[F.INSPECT] = FNEVER
        if tier >= 0:
            f[F.INSPECT] = next_candidate(t, life.bounds[Bound.INSPECT_EXTREME + tier],
                                          life.keys, life.k, Stream.INSPECT)
    if s[S.USING] == 1 and s[S.ALIVE] == 1 and not is_custodial(s[S.PATHWAY]):
        if f[F.ENCOUNTER] >= FNEVER:
            f[F.ENCOUNTER] = next_candidate(t, life.bounds[Bound.ENCOUNTER], life.keys,
                                            life.k, Stream.ENCOUNTER)
    else:
        f[F.ENCOUNTER] = FNEVER


@kernel(inline="always")
def on_reassessment(life, t, P, fl) -> int:  # noqa: ANN001
    """Event REASSESSMENT (fn 20). Reads the record; writes s[TIER, NEXT_ASSESS]; counts no
    flow; no draws."""
    return Changed.STATE if reassess(life.s, t, P) else Changed.NOTHING
