"""Exit: the law (Regulation art. 7, paper fn 35-37) and how it works in practice (fn 38-47).

The law: no dynamic control after three years abstinent without relapse, shown by regular
tests (at least 22 after community detoxification, 12 after community rehabilitation) with no
positive. The practice: no operational procedure, so release waits for a record update that
may never come (fn 45); many releases are partial (alerts stop, control goes on); areas judged
serious release no one; and exit never deletes the record (fn 47). An eligibility episode takes
exactly three EXIT draws, kept in the state so that a rule change later on reuses them.
"""

from __future__ import annotations

import math

from numba import njit

from .catalogue import Par
from .drug_use import abstinent_days
from .jit import KERNEL
from .measures import Flow
from .rng import Stream, draw
from .state import NEVER, F, Release, S


@njit(inline="always", **KERNEL)
def min_tests(s, P) -> float:  # noqa: ANN001
    """The minimum depends on the last community order (paper fn 37)."""
    kind = s[S.ORDER_KIND]
    if kind == 1:
        return P[Par.EXIT__MIN_NEGATIVE_TESTS__COMMUNITY_DETOX]
    if kind == 2:
        return P[Par.EXIT__MIN_NEGATIVE_TESTS__COMMUNITY_REHAB]
    return P[Par.EXIT__MIN_NEGATIVE_TESTS__OTHER]


@njit(inline="always", **KERNEL)
def abstinent_long_enough(s, t, P) -> bool:  # noqa: ANN001
    return t - s[S.LAST_DETECT] >= P[Par.EXIT__ABSTINENCE_DAYS_REQUIRED]


@njit(inline="always", **KERNEL)
def meets_law(s, t, P) -> bool:  # noqa: ANN001
    """Three years since the last detected use, and enough negative tests to show it.

    With exit.judged_on_true_abstinence (an oracle, for counterfactuals and benchmarks) the
    three years are of true abstinence instead of the record.
    """
    if P[Par.EXIT__JUDGED_ON_TRUE_ABSTINENCE] > 0.5:
        long_enough = abstinent_days(s, t) >= P[Par.EXIT__ABSTINENCE_DAYS_REQUIRED]
    else:
        long_enough = abstinent_long_enough(s, t, P)
    return long_enough and s[S.NEG_TESTS] >= min_tests(s, P)


@njit(inline="always", **KERNEL)
def check_eligibility(s, f, t, P, keys, k, flows_row) -> bool:  # noqa: ANN001
    """Open an eligibility episode when the law's criteria are met; True if newly eligible."""
    if s[S.ELIGIBLE] != NEVER or s[S.IN_REGISTRY] == 0 or s[S.RELEASE] != Release.CONTROL:
        return False
    if not meets_law(s, t, P):
        return False
    s[S.ELIGIBLE] = t
    f[F.EXIT_U_UPDATE] = draw(keys, k, Stream.EXIT)
    f[F.EXIT_DELAY] = -math.log(1.0 - draw(keys, k, Stream.EXIT))
    f[F.EXIT_U_PARTIAL] = draw(keys, k, Stream.EXIT)
    flows_row[Flow.NEWLY_ELIGIBLE] += 1
    schedule_release(s, f, t, P)
    return True


@njit(**KERNEL)
def schedule_release(s, f, t, P) -> None:  # noqa: ANN001
    """Release waits for a record update, if the area releases at all and the update comes.

    Called again when the rules change: a partial release the new rules no longer make
    (its draw is now above exit.partial_release_share) becomes full, and under
    exit.record_deleted_on_exit a full release that kept its record loses it, both that day."""
    if s[S.RELEASE] == Release.PARTIAL and f[F.EXIT_U_PARTIAL] >= P[
            Par.EXIT__PARTIAL_RELEASE_SHARE]:
        s[S.RELEASE_DUE] = t
        return
    if s[S.RELEASE] == Release.FULL and P[Par.EXIT__RECORD_DELETED_ON_EXIT] > 0.5:
        s[S.RELEASE_DUE] = t
        return
    if s[S.RELEASE] != Release.CONTROL or s[S.ELIGIBLE] == NEVER:
        return
    if (
        P[Par.EXIT__RELEASE_ALLOWED] < 0.5
        or f[F.EXIT_U_UPDATE] >= P[Par.EXIT__RECORD_UPDATE_PROBABILITY]
    ):
        s[S.RELEASE_DUE] = NEVER
        return
    due = s[S.ELIGIBLE] + int(f[F.EXIT_DELAY] * P[Par.EXIT__MEAN_UPDATE_DELAY_DAYS])
    s[S.RELEASE_DUE] = max(t, due)


@njit(**KERNEL)
def release(s, f, P, flows_row) -> None:  # noqa: ANN001
    """Release (partial or full) on the due day; a full release already made only loses its
    record (see schedule_release)."""
    s[S.RELEASE_DUE] = NEVER
    if s[S.RELEASE] == Release.FULL:
        s[S.RELEASE] = Release.DELETED
        flows_row[Flow.RECORD_DELETIONS] += 1
    elif s[S.RELEASE] == Release.CONTROL and f[F.EXIT_U_PARTIAL] < P[
            Par.EXIT__PARTIAL_RELEASE_SHARE]:
        s[S.RELEASE] = Release.PARTIAL
        flows_row[Flow.RELEASES_PARTIAL] += 1
    elif P[Par.EXIT__RECORD_DELETED_ON_EXIT] > 0.5:
        s[S.RELEASE] = Release.DELETED
        flows_row[Flow.RELEASES_FULL] += 1
        flows_row[Flow.RECORD_DELETIONS] += 1
    else:
        s[S.RELEASE] = Release.FULL
        flows_row[Flow.RELEASES_FULL] += 1


@njit(inline="always", **KERNEL)
def end_episode(s, flows_row) -> None:  # noqa: ANN001
    """A detected relapse ends eligibility and any release: back under full control."""
    s[S.ELIGIBLE] = NEVER
    s[S.RELEASE_DUE] = NEVER
    if s[S.RELEASE] == Release.PARTIAL or s[S.RELEASE] == Release.FULL:
        flows_row[Flow.RELEASES_REVOKED] += 1
    elif s[S.RELEASE] == Release.DELETED:
        flows_row[Flow.REENTRIES] += 1
    s[S.RELEASE] = Release.CONTROL
