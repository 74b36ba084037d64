"""Urine tests, whoever orders them, and what a positive one sets in motion.

A test finds a person who is using with the test's sensitivity and, rarely, a person who is
not. The system acts on what it detects, not on the truth: a positive resets the abstinence
record and the count of negative tests, ends any exit episode or release, makes the person
extreme risk and may bring a new order (paper fn 17-18, 35-37, 71, 76-77).
"""

from __future__ import annotations

from numba import njit

from .catalogue import Par
from .exit import end_episode
from .jit import KERNEL
from .management import next_assessment
from .measures import Flow
from .pathways import order_after_detection
from .rng import chance
from .state import NEVER, S


@njit(inline="always", **KERNEL)
def is_positive(s, P, u) -> bool:  # noqa: ANN001
    if s[S.USING] == 1:
        return u < P[Par.MANAGEMENT__TEST_SENSITIVITY]
    return u < P[Par.MANAGEMENT__TEST_FALSE_POSITIVE]


@njit(inline="always", **KERNEL)
def positive_result(s, P, keys, k, stream, offset) -> bool:  # noqa: ANN001
    """is_positive on draw `offset` of the testing event's block, computed only if needed."""
    p = P[Par.MANAGEMENT__TEST_SENSITIVITY] if s[S.USING] == 1 else P[
        Par.MANAGEMENT__TEST_FALSE_POSITIVE]
    return chance(p, keys, k, stream, offset)


@njit(inline="always", **KERNEL)
def record_detection(s, t, P, keys, k, flows_row) -> None:  # noqa: ANN001
    """The system learns of use (a positive test or a police encounter) on day t."""
    flows_row[Flow.DETECTED_RELAPSES] += 1
    if s[S.USING] == 0:
        flows_row[Flow.FALSE_POSITIVE_DETECTIONS] += 1
    s[S.DETECTIONS] += 1
    s[S.LAST_DETECT] = t
    s[S.NEG_TESTS] = 0
    s[S.OFFICIAL_FLIP] = t + int(P[Par.STATISTICS__ABSTINENT_DAYS])
    s[S.EXIT_FLIP] = t + int(P[Par.EXIT__ABSTINENCE_DAYS_REQUIRED])
    s[S.FLIPS_DONE] &= ~3
    end_episode(s, flows_row)
    s[S.TIER] = int(P[Par.MANAGEMENT__TIER_AFTER_DETECTED_USE])
    if s[S.NEXT_ASSESS] == NEVER:
        s[S.NEXT_ASSESS] = next_assessment(s, t, P)
    order_after_detection(s, t, P, keys, k, flows_row)


@njit(inline="always", **KERNEL)
def record_negative(s, P, scheduled) -> None:  # noqa: ANN001
    """A negative test; only regular tests count towards exit unless the rules say otherwise."""
    if scheduled or P[Par.EXIT__UNSCHEDULED_TESTS_COUNT] > 0.5:
        s[S.NEG_TESTS] += 1
