"""Drug use and relapse: the true state, which the system sees only through tests.

A person alternates spells of use and abstinence. A spell of use ends at a rate (cessation);
an abstinent spell ends in relapse with a probability, after a time drawn with the mean seen in
follow-up studies (evidence.md#relapse), or lasts; both by the person's main drug, since the
studies are of heroin users and the registry turned to synthetic drugs (evidence.md#drug-mix).
The studies followed people released from treatment or in it; spells begun otherwise (use
stopped on one's own, short detention) relapse with a factor on that probability, fitted.
Custody interrupts use; the relapse clock starts again on release, as in the follow-up studies.
Each spell takes exactly two draws of the USE stream, so no other procedure can shift them.
"""

from __future__ import annotations

import math

from .catalogue import Par
from .jit import kernel
from .measures import Flow
from .rng import Stream, draw
from .state import NEVER, Changed, Done, Drug, S


@kernel
def start_use(s, t, P, keys, k) -> None:  # noqa: ANN001 - numba kernels take arrays
    u_time = draw(keys, k, Stream.USE)
    draw(keys, k, Stream.USE)  # kept so every spell takes two draws
    s[S.USING] = 1
    s[S.USE_NEXT] = t + int(-P[Par.DRUG_USE__MEAN_USE_SPELL_DAYS] * _log1m(u_time))
    s[S.TRUE_FLIP] = NEVER


@kernel
def start_abstinence(s, t, P, keys, k, hazard_multiplier, after_treatment) -> None:  # noqa: ANN001
    """hazard_multiplier scales the relapse hazard (apps: paper fn 27 says none).
    after_treatment: the spell begins on release from isolation or voluntary treatment, the
    population the follow-up studies followed (evidence.md#relapse); any other spell (use
    stopped on one's own, after short detention, at entry) relapses with the probability
    scaled by drug_use.relapse_factor_other_spells, which no study measures."""
    u_relapse = draw(keys, k, Stream.USE)
    u_time = draw(keys, k, Stream.USE)
    if s[S.USING] == 1:  # after custody the abstinence began when custody did
        s[S.ABST_START] = t
        s[S.TRUE_FLIP] = true_flip_day(t, P)
        s[S.FLIPS_DONE] &= ~Done.TRUE_FLIP
    s[S.USING] = 0
    probability, mean = relapse_law(P, s[S.DRUG])
    if not after_treatment:
        probability = min(1.0, probability * P[Par.DRUG_USE__RELAPSE_FACTOR_OTHER_SPELLS])
    if u_relapse < probability and hazard_multiplier > 0.0:
        s[S.USE_NEXT] = t + 1 + int(-mean / hazard_multiplier * _log1m(u_time))
    else:
        s[S.USE_NEXT] = NEVER


@kernel(inline="always")
def relapse_law(P, drug) -> tuple[float, float]:  # noqa: ANN001
    """(probability, mean days) of relapse after an abstinent spell begins, by main drug: the
    follow-up studies are of heroin users (evidence.md#relapse); no study here follows users
    of synthetic drugs, so theirs is an assumption with a range."""
    if drug == Drug.HEROIN:
        return (P[Par.DRUG_USE__RELAPSE_PROBABILITY__HEROIN],
                P[Par.DRUG_USE__MEAN_DAYS_TO_RELAPSE__HEROIN])
    return (P[Par.DRUG_USE__RELAPSE_PROBABILITY__SYNTHETIC],
            P[Par.DRUG_USE__MEAN_DAYS_TO_RELAPSE__SYNTHETIC])


@kernel
def enter_custody(s, t, P) -> None:  # noqa: ANN001
    """Use stops in custody; the abstinent spell (and its relapse draw) starts on release.
    The bit Done.USING_AT_CUSTODY of FLIPS_DONE remembers whether the person was using when
    custody began."""
    s[S.FLIPS_DONE] &= ~Done.USING_AT_CUSTODY
    if s[S.USING] == 1:
        s[S.ABST_START] = t
        s[S.TRUE_FLIP] = true_flip_day(t, P)
        s[S.FLIPS_DONE] &= ~Done.TRUE_FLIP
        s[S.FLIPS_DONE] |= Done.USING_AT_CUSTODY
    s[S.USING] = 0
    s[S.USE_NEXT] = NEVER


@kernel
def leave_custody(s, t, P, keys, k, detention) -> None:  # noqa: ANN001
    """Release from custody (three USE draws: one says whether custody ended the spell of use
    it interrupted, two start the next spell). The chance that it did is a rule value:
    drug_use.custody_ends_use for isolation and voluntary treatment (1: the follow-up studies'
    reading, evidence.md#relapse, relapse is counted from release), drug_use.detention_ends_use
    for administrative detention (`detention` true), which no study follows. Where custody
    does not end use, a person using when it began resumes use."""
    u_end = draw(keys, k, Stream.USE)
    ends = P[Par.DRUG_USE__DETENTION_ENDS_USE] if detention else P[Par.DRUG_USE__CUSTODY_ENDS_USE]
    if s[S.FLIPS_DONE] & Done.USING_AT_CUSTODY and u_end >= ends:
        start_use(s, t, P, keys, k)
    else:
        start_abstinence(s, t, P, keys, k, 1.0, not detention)
    s[S.FLIPS_DONE] &= ~Done.USING_AT_CUSTODY


@kernel
def abstinent_days(s, t) -> int:  # noqa: ANN001
    """Days without use up to day t, counting the day abstinence began (0 while using)."""
    return 0 if s[S.USING] == 1 else t - s[S.ABST_START] + 1


@kernel
def true_flip_day(t, P) -> int:  # noqa: ANN001
    """The day an abstinence begun on day t reaches the law's three years."""
    return t + int(P[Par.EXIT__ABSTINENCE_DAYS_REQUIRED]) - 1


@kernel(inline="always")
def _log1m(u: float) -> float:
    return math.log(1.0 - u)


@kernel
def relapse_multiplier(P, app) -> float:  # noqa: ANN001
    """Relapse hazard multiplier while enrolled in monitoring app `app` (-1: none); the
    Shanghai evaluation found no effect on addiction (paper fn 27)."""
    return 1.0 if app < 0 else P[Par.APPS__RELAPSE_HAZARD_MULTIPLIER]


# --- event handlers (the engine calls them; each returns what changed, state.Changed) -------


@kernel(inline="always")
def on_use_change(life, t, P, fl) -> int:  # noqa: ANN001
    """Event USE_CHANGE: a spell of use or abstinence ends (the truth the system does not see).

    Reads s[USING, APP]; writes s[USING, USE_NEXT, ABST_START, TRUE_FLIP, FLIPS_DONE]; counts
    TRUE_CESSATIONS or TRUE_RELAPSES; owns two USE draws per spell."""
    s = life.s
    if s[S.USING] == 1:
        fl[Flow.TRUE_CESSATIONS] += 1
        start_abstinence(s, t, P, life.keys, life.k, relapse_multiplier(P, s[S.APP]), False)
    else:
        fl[Flow.TRUE_RELAPSES] += 1
        start_use(s, t, P, life.keys, life.k)
    return Changed.STATE


@kernel
def death_day(t, P, keys, k) -> int:  # noqa: ANN001
    """Day of death or of leaving for good, drawn at entry (one DEATH draw)."""
    rate = P[Par.DRUG_USE__MORTALITY_PER_YEAR]
    if rate <= 0.0:
        return NEVER
    return t + 1 + int(-365.25 * math.log(1.0 - draw(keys, k, Stream.DEATH)) / rate)


@kernel(inline="always")
def on_death(life, t, P, fl) -> int:  # noqa: ANN001
    """Event DEATH: the person dies (or leaves for good). Writes s[ALIVE, IN_REGISTRY];
    counts DEATHS; no draws."""
    fl[Flow.DEATHS] += 1
    life.s[S.ALIVE] = 0
    life.s[S.IN_REGISTRY] = 0
    return Changed.LEFT
