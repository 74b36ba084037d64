"""Exit: the law (Regulation art. 7, paper fn 35-37) and how it works in practice (fn 38-47).

The law: no dynamic control after three years abstinent without relapse, shown by regular
tests (at least 22 after community detoxification, 12 after community rehabilitation) with no
positive, for people with no record of a drug-related criminal case (fn 37). The practice: no
operational procedure, so release waits for a record update that may never come (fn 45); many
releases are partial (alerts stop, control goes on); areas judged serious release no one; and
exit never deletes the record (fn 47). An eligibility episode takes exactly three EXIT draws,
kept in the state so that a rule change later on reuses them; the criminal case is a reserved
EXIT draw of the person's (has_criminal_case).
"""

from __future__ import annotations

import math

from .catalogue import Par
from .data_errors import rejudge_correction
from .drug_use import abstinent_days, true_flip_day
from .jit import kernel
from .measures import Flow
from .official_statistics import official_flip_day
from .rng import Stream, draw, uniform
from .state import NEVER, Changed, Done, F, Release, S


@kernel
def exit_flip_day(last_detect, P) -> int:  # noqa: ANN001
    """The day a record last detected on `last_detect` meets the law's abstinence period."""
    return last_detect + int(P[Par.EXIT__ABSTINENCE_DAYS_REQUIRED])


@kernel
def min_tests(s, P) -> float:  # noqa: ANN001
    """The minimum depends on the last community order (paper fn 37); without one, the trap
    of fn 46 (no record of regular tests) is scoped as the paper scopes it, to the
    non-dependent, and the dependent have their own rule value."""
    kind = s[S.ORDER_KIND]
    if kind == 1:
        return P[Par.EXIT__MIN_NEGATIVE_TESTS__COMMUNITY_DETOX]
    if kind == 2:
        return P[Par.EXIT__MIN_NEGATIVE_TESTS__COMMUNITY_REHAB]
    if s[S.DEPENDENT] == 1:
        return P[Par.EXIT__MIN_NEGATIVE_TESTS__DEPENDENT_NO_ORDER]
    return P[Par.EXIT__MIN_NEGATIVE_TESTS__OTHER]


@kernel
def abstinent_long_enough(s, t, P) -> bool:  # noqa: ANN001
    return t - s[S.LAST_DETECT] >= P[Par.EXIT__ABSTINENCE_DAYS_REQUIRED]


@kernel
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


# A reserved draw of the person's EXIT stream, far beyond any counter (three draws an
# episode): the same for the person all their life, so it is an attribute, and no other
# EXIT draw moves when the share changes.
CRIMINAL_CASE_DRAW = 1 << 40


@kernel
def has_criminal_case(keys, P) -> bool:  # noqa: ANN001
    """A record of a drug-related criminal case, which bars exit under the law (fn 37)."""
    return uniform(keys[Stream.EXIT], CRIMINAL_CASE_DRAW) < P[Par.EXIT__CRIMINAL_CASE_SHARE]


@kernel(inline="always")
def check_eligibility(s, f, t, P, keys, k, flows_row) -> bool:  # noqa: ANN001
    """Open an eligibility episode when the law's criteria are met; True if newly eligible."""
    if s[S.ELIGIBLE] != NEVER or s[S.IN_REGISTRY] == 0 or s[S.RELEASE] != Release.CONTROL:
        return False
    if not meets_law(s, t, P) or has_criminal_case(keys, P):
        return False
    _open_episode(s, f, t, P, keys, k, flows_row)
    return True


@kernel
def _open_episode(s, f, t, P, keys, k, flows_row) -> None:  # noqa: ANN001
    """The episode's three EXIT draws, kept so a rule change can reuse them; release follows
    (compiled apart: the criteria are checked often and met rarely)."""
    s[S.ELIGIBLE] = t
    f[F.EXIT_U_UPDATE] = draw(keys, k, Stream.EXIT)
    f[F.EXIT_DELAY] = -math.log(1.0 - draw(keys, k, Stream.EXIT))
    f[F.EXIT_U_PARTIAL] = draw(keys, k, Stream.EXIT)
    flows_row[Flow.NEWLY_ELIGIBLE] += 1
    schedule_release(s, f, t, P)


@kernel
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


@kernel
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


@kernel(inline="always")
def end_episode(s, flows_row) -> None:  # noqa: ANN001
    """A detected relapse ends eligibility and any release: back under full control."""
    s[S.ELIGIBLE] = NEVER
    s[S.RELEASE_DUE] = NEVER
    if s[S.RELEASE] == Release.PARTIAL or s[S.RELEASE] == Release.FULL:
        flows_row[Flow.RELEASES_REVOKED] += 1
    elif s[S.RELEASE] == Release.DELETED:
        flows_row[Flow.REENTRIES] += 1
    s[S.RELEASE] = Release.CONTROL


# --- event handlers (the engine calls them; each returns what changed, state.Changed) -------


@kernel(inline="always")
def on_exit_flip(life, t, P, fl) -> int:  # noqa: ANN001
    """Event EXIT_FLIP: three years since the last detected use; the law may now be met.

    Reads the record and test count; writes s[FLIPS_DONE] (Done.EXIT_FLIP) and, if newly
    eligible, the episode (s[ELIGIBLE, RELEASE_DUE], f[EXIT_*]); counts NEWLY_ELIGIBLE; owns
    three EXIT draws per episode. Nothing a clock or schedule reads changes: only stocks follow."""
    life.s[S.FLIPS_DONE] |= Done.EXIT_FLIP
    check_eligibility(life.s, life.f, t, P, life.keys, life.k, fl)
    return Changed.STOCKS


@kernel(inline="always")
def on_true_flip(life, t, P, fl) -> int:  # noqa: ANN001
    """Event TRUE_FLIP: true abstinence reaches the law's three years (a stock of the truth,
    and the criterion when exit.judged_on_true_abstinence). As on_exit_flip, bit 4."""
    life.s[S.FLIPS_DONE] |= Done.TRUE_FLIP
    check_eligibility(life.s, life.f, t, P, life.keys, life.k, fl)
    return Changed.STOCKS


@kernel(inline="always")
def on_release(life, t, P, fl) -> int:  # noqa: ANN001
    """Event RELEASE: the record update comes. Writes s[RELEASE, RELEASE_DUE, FIRST_RELEASE];
    counts RELEASES_FULL or RELEASES_PARTIAL and RECORD_DELETIONS; no draws (the episode's)."""
    s = life.s
    release(s, life.f, P, fl)
    if s[S.FIRST_RELEASE] == NEVER:
        s[S.FIRST_RELEASE] = t
    return Changed.STATE


@kernel
def on_rule_change(life, t, P, fl) -> int:  # noqa: ANN001
    """Event RULE_CHANGE: new rule values from today. The days derived from them move and the
    exit criteria are judged again, so a reform reaches everyone on the day it takes effect.

    Writes s[OFFICIAL_FLIP, EXIT_FLIP, TRUE_FLIP, FLIPS_DONE] and the exit episode; counts
    NEWLY_ELIGIBLE; reuses the episode's EXIT draws (f[EXIT_*]) or takes three new ones."""
    s = life.s
    s[S.OFFICIAL_FLIP] = official_flip_day(s[S.LAST_DETECT], P, life.keys)
    s[S.EXIT_FLIP] = exit_flip_day(s[S.LAST_DETECT], P)
    done = s[S.FLIPS_DONE]
    done = (done | Done.OFFICIAL_FLIP) if s[S.OFFICIAL_FLIP] <= t else (done & ~Done.OFFICIAL_FLIP)
    done = (done | Done.EXIT_FLIP) if s[S.EXIT_FLIP] <= t else (done & ~Done.EXIT_FLIP)
    if s[S.NEVER_USED] == 0 and s[S.USING] == 0:
        s[S.TRUE_FLIP] = true_flip_day(s[S.ABST_START], P)
        done = (done | Done.TRUE_FLIP) if s[S.TRUE_FLIP] <= t else (done & ~Done.TRUE_FLIP)
    s[S.FLIPS_DONE] = done
    check_eligibility(s, life.f, t, P, life.keys, life.k, fl)
    schedule_release(s, life.f, t, P)
    rejudge_correction(s, t, P, life.keys)  # data_errors.local_correction (a reform switch)
    return Changed.STATE
