"""Urine tests, whoever orders them, and what a positive one sets in motion.

A test finds a person who is using with the test's sensitivity and, rarely, a person who is
not. The system acts on what it detects, not on the truth: a positive resets the abstinence
record and the count of negative tests, ends any exit episode or release, makes the person
extreme risk and may bring a new order (paper fn 17-18, 35-37, 71, 76-77).
"""

from __future__ import annotations

from .catalogue import Par
from .drug_use import enter_custody
from .exit import check_eligibility, end_episode, exit_flip_day
from .jit import kernel
from .management import community_followup, inspection_rate, next_assessment, test_interval
from .measures import Flow, Intrusion
from .official_statistics import official_flip_day
from .pathways import is_custodial, order_after_detection
from .rng import Stream, chance, draw, next_candidate
from .state import NEVER, Bound, Changed, Done, F, S


@kernel
def is_positive(s, P, u) -> bool:  # noqa: ANN001
    if s[S.USING] == 1:
        return u < P[Par.MANAGEMENT__TEST_SENSITIVITY]
    return u < P[Par.MANAGEMENT__TEST_FALSE_POSITIVE]


@kernel(inline="always")
def positive_result(s, P, keys, k, stream, offset) -> bool:  # noqa: ANN001
    """is_positive on draw `offset` of the testing event's block, computed only if needed."""
    p = P[Par.MANAGEMENT__TEST_SENSITIVITY] if s[S.USING] == 1 else P[
        Par.MANAGEMENT__TEST_FALSE_POSITIVE]
    return chance(p, keys, k, stream, offset)


@kernel(inline="always")
def record_detection(s, t, P, keys, k, flows_row) -> None:  # noqa: ANN001
    """The system learns of use (a positive test or a police encounter) on day t."""
    flows_row[Flow.DETECTED_RELAPSES] += 1
    if s[S.USING] == 0:
        flows_row[Flow.FALSE_POSITIVE_DETECTIONS] += 1
    s[S.DETECTIONS] += 1
    s[S.LAST_DETECT] = t
    s[S.NEG_TESTS] = 0
    s[S.OFFICIAL_FLIP] = official_flip_day(t, P, keys)
    s[S.EXIT_FLIP] = exit_flip_day(t, P)
    s[S.FLIPS_DONE] &= ~(Done.OFFICIAL_FLIP | Done.EXIT_FLIP)
    end_episode(s, flows_row)
    s[S.TIER] = int(P[Par.MANAGEMENT__TIER_AFTER_DETECTED_USE])
    if s[S.NEXT_ASSESS] == NEVER:
        s[S.NEXT_ASSESS] = next_assessment(s, t, P)
    order_after_detection(s, t, P, keys, k, flows_row)


@kernel(inline="always")
def record_negative(s, P, scheduled) -> None:  # noqa: ANN001
    """A negative test; only regular tests count towards exit unless the rules say otherwise."""
    if scheduled or P[Par.EXIT__UNSCHEDULED_TESTS_COUNT] > 0.5:
        s[S.NEG_TESTS] += 1


@kernel(inline="always")
def _what_follow_reads(s, t):  # noqa: ANN001, ANN202
    """The state that clocks, schedules and stocks depend on and a detection can change."""
    return (s[S.TIER], s[S.NEG_TESTS], s[S.ELIGIBLE], s[S.RELEASE_DUE], s[S.RELEASE],
            s[S.PATHWAY], s[S.ORDER_END], s[S.NEXT_ASSESS], s[S.USING], s[S.ORDER_ACTIVE],
            s[S.ORDER_KIND], int(t >= s[S.OFFICIAL_FLIP]) + 2 * int(t >= s[S.EXIT_FLIP]))


@kernel
def detect(life, t, P, fl) -> bool:  # noqa: ANN001
    """A detected use on day t: the record, the order that follows, custody. True if anything
    that clocks, schedules or stocks read changed (a repeat detection of someone already at
    extreme risk with no new order changes only the record's flip days)."""
    s = life.s
    before = _what_follow_reads(s, t)
    record_detection(s, t, P, life.keys, life.k, fl)
    if is_custodial(s[S.PATHWAY]):
        enter_custody(s, t, P)
    return _what_follow_reads(s, t) != before


@kernel(inline="always")
def negative(life, t, P, fl, scheduled) -> bool:  # noqa: ANN001
    """A negative test may count towards exit; True if it made the person eligible."""
    record_negative(life.s, P, scheduled)
    return check_eligibility(life.s, life.f, t, P, life.keys, life.k, fl)


@kernel(inline="always")
def test_result(life, t, P, fl, positive) -> bool:  # noqa: ANN001
    """What an unscheduled test (by police or inspectors) sets in motion; True if the state
    changed."""
    if positive:
        return detect(life, t, P, fl)
    return negative(life, t, P, fl, False)


# --- event handlers (the engine calls them; each returns what changed, state.Changed) -------


@kernel(inline="always")
def on_scheduled_test(life, t, P, fl) -> int:  # noqa: ANN001
    """Event SCHEDULED_TEST: a test of the person's schedule falls due (fn 19, 37, 75).

    Reads s[USING, tier and order]; writes s[NEXT_TEST], the record and the exit episode;
    counts SCHEDULED_TESTS_DUE/DONE/POSITIVES, the community follow-up tests near 12 and 24
    months into an order (COMMUNITY_TESTS/POSITIVES_12M/24M) and the intrusion; owns two TEST
    draws per test
    (done, result), and the draws of what a detection sets in motion."""
    s, keys, k = life.s, life.keys, life.k
    fl[Flow.SCHEDULED_TESTS_DUE] += 1
    done = chance(P[Par.MANAGEMENT__TEST_DONE_PROBABILITY], keys, k, Stream.TEST, 0)
    positive = done and positive_result(s, P, keys, k, Stream.TEST, 1)
    k[Stream.TEST] += 2
    s[S.NEXT_TEST] = NEVER
    changed = False
    if done:
        fl[Flow.SCHEDULED_TESTS_DONE] += 1
        fl[Flow.INTRUSIONS_SCHEDULED_TEST] += 1
        life.intrusions[Intrusion.SCHEDULED_TEST] += 1
        point = community_followup(s, t, P)
        if point >= 0:
            fl[Flow.COMMUNITY_TESTS_12M + 2 * point] += 1
            fl[Flow.COMMUNITY_POSITIVES_12M + 2 * point] += 1 if positive else 0
        if positive:
            fl[Flow.SCHEDULED_TEST_POSITIVES] += 1
            changed = detect(life, t, P, fl)
        else:
            changed = negative(life, t, P, fl, True)
    iv = test_interval(s, P)
    if iv > 0.0 and s[S.NEXT_TEST] == NEVER:
        s[S.NEXT_TEST] = t + int(iv)
    return Changed.STATE if changed else Changed.NOTHING


@kernel(inline="always")
def on_inspection(life, t, P, fl) -> int:  # noqa: ANN001
    """Event INSPECTION (a candidate of the thinned process): an unscheduled inspection with a
    test, at home or at work (paper fn 21, 51).

    Reads s[INSPECT_TIER, USING]; writes f[INSPECT] and what a result sets in motion; counts
    inspections by place, positives, officer minutes and the intrusions; owns four INSPECT
    draws per candidate (accept, workplace, neighbour, result) and one for the next."""
    s, f, keys, k = life.s, life.f, life.keys, life.k
    u_accept = draw(keys, k, Stream.INSPECT)
    u_work = draw(keys, k, Stream.INSPECT)
    u_neighbour = draw(keys, k, Stream.INSPECT)
    u_result = draw(keys, k, Stream.INSPECT)
    bound = life.bounds[Bound.INSPECT_EXTREME + s[S.INSPECT_TIER]]
    f[F.INSPECT] = next_candidate(f[F.INSPECT], bound, keys, k, Stream.INSPECT)
    if u_accept * bound >= inspection_rate(s, P):
        return Changed.NOTHING
    return _inspect(life, t, P, fl, u_work, u_neighbour, u_result)


@kernel
def _inspect(life, t, P, fl, u_work, u_neighbour, u_result) -> int:  # noqa: ANN001
    """An accepted inspection (compiled apart: most candidates are not accepted)."""
    fl[Flow.OFFICER_MINUTES_INSPECTIONS] += int(
        round(60.0 * P[Par.MANAGEMENT__OFFICER_HOURS_PER_INSPECTION]))
    if u_work < P[Par.MANAGEMENT__WORKPLACE_SHARE]:
        fl[Flow.INSPECTIONS_WORKPLACE] += 1
        fl[Flow.INTRUSIONS_WORKPLACE_TEST] += 1
        life.intrusions[Intrusion.WORKPLACE_TEST] += 1
    else:
        fl[Flow.INSPECTIONS_HOME] += 1
        fl[Flow.INTRUSIONS_HOME_VISIT] += 1
        fl[Flow.INTRUSIONS_HOME_TEST] += 1
        life.intrusions[Intrusion.HOME_VISIT] += 1
        life.intrusions[Intrusion.HOME_TEST] += 1
        if u_neighbour < P[Par.MANAGEMENT__NEIGHBOUR_INTERVIEW_PROBABILITY]:
            fl[Flow.INTRUSIONS_NEIGHBOUR_INTERVIEW] += 1
            life.intrusions[Intrusion.NEIGHBOUR_INTERVIEW] += 1
    positive = is_positive(life.s, P, u_result)
    if positive:
        fl[Flow.INSPECTION_POSITIVES] += 1
    return Changed.STATE if test_result(life, t, P, fl, positive) else Changed.NOTHING


@kernel(inline="always")
def on_encounter(life, t, P, fl) -> int:  # noqa: ANN001
    """Event ENCOUNTER (a candidate of the thinned process): police outside the DCS find the
    person using, a detection without a scheduled test.

    Writes f[ENCOUNTER] and what a detection sets in motion; counts ENCOUNTER_DETECTIONS; owns
    one ENCOUNTER draw to accept and one for the next candidate."""
    bound = life.bounds[Bound.ENCOUNTER]
    u_accept = draw(life.keys, life.k, Stream.ENCOUNTER)
    life.f[F.ENCOUNTER] = next_candidate(life.f[F.ENCOUNTER], bound, life.keys, life.k,
                                         Stream.ENCOUNTER)
    if u_accept * bound >= P[Par.MANAGEMENT__ENCOUNTER_RATE_PER_YEAR]:
        return Changed.NOTHING
    fl[Flow.ENCOUNTER_DETECTIONS] += 1
    return Changed.STATE if detect(life, t, P, fl) else Changed.NOTHING
