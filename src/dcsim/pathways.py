"""Treatment pathways: the order a detection leads to, and what follows when it ends.

Anti-Drug Law 2008 and Regulation 2011 as the paper describes them: administrative detention
(up to five days, or 15 for a more serious offence) or a fine for the non-dependent (fn 75),
community detoxification (3 years) or compulsory isolation (2 years) for the dependent,
community rehabilitation after isolation, voluntary detoxification (not
punished, but monitored, fn 76-77), and isolation after a positive test during a community
order. Before the Anti-Drug Law (pathways.community_orders_in_law 0) there were no community
orders: the dependent not isolated are detained, a relapse outside an order is isolated or
detained, and isolation is followed by nothing. Every decision takes exactly three PATHWAY
draws. Under the health-led switch a detection brings an offer of voluntary treatment instead
of any order.
"""

from __future__ import annotations

import numpy as np

from .catalogue import Par
from .drug_use import leave_custody
from .jit import kernel
from .measures import Flow
from .rng import Stream, draw, peek
from .state import NEVER, Changed, Path, Pathway, S


@kernel
def is_custodial(pathway: int) -> bool:
    return (
        pathway == Pathway.ISOLATION or pathway == Pathway.VOLUNTARY
        or pathway == Pathway.DETENTION
    )


@kernel
def set_order(s, t, P, pathway, carried_out, flows_row) -> None:  # noqa: ANN001
    """Put the person on `pathway` from day t; flows_row is this month's flow counters.
    (Callers pass np.int64(0), not 0: a literal argument would compile a copy per value.)"""
    s[S.PATHWAY] = pathway
    s[S.ORDER_ACTIVE] = carried_out
    if pathway == Pathway.COMMUNITY_DETOX:
        s[S.ORDER_END] = t + int(P[Par.PATHWAYS__COMMUNITY_DETOX_DAYS])
        s[S.ORDER_KIND] = 1
        flows_row[Flow.ORDERS_COMMUNITY_DETOX] += 1
    elif pathway == Pathway.COMMUNITY_REHAB:
        s[S.ORDER_END] = t + int(P[Par.PATHWAYS__COMMUNITY_REHAB_DAYS])
        s[S.ORDER_KIND] = 2
        flows_row[Flow.ORDERS_COMMUNITY_REHAB] += 1
    elif pathway == Pathway.ISOLATION:
        flows_row[Flow.ORDERS_ISOLATION] += 1
        s[S.ORDER_ACTIVE] = 0
        if carried_out == 1:
            s[S.ORDER_END] = t + int(P[Par.PATHWAYS__ISOLATION_DAYS])
            flows_row[Flow.ISOLATION_ADMISSIONS] += 1
        else:  # ordered but not admitted: the person stays out, on no order
            s[S.PATHWAY] = Pathway.NONE
            s[S.ORDER_END] = NEVER
    elif pathway == Pathway.VOLUNTARY:
        s[S.ORDER_END] = t + int(P[Par.PATHWAYS__VOLUNTARY_DAYS])
    elif pathway == Pathway.DETENTION:  # the shorter term; punish may set the longer
        s[S.ORDER_END] = t + int(P[Par.PATHWAYS__DETENTION_DAYS__MINOR])
        flows_row[Flow.DETENTIONS] += 1
    else:
        s[S.ORDER_END] = NEVER


@kernel
def carried_out(P, pathway, u) -> int:  # noqa: ANN001
    """Whether an order is actually carried out: a community order's tests happen
    (evidence.md#community-orders); an isolation order leads to admission to a centre."""
    if pathway == Pathway.ISOLATION:
        return 1 if u < P[Par.PATHWAYS__ORDER_CARRIED_OUT__ISOLATION] else 0
    if pathway == Pathway.COMMUNITY_DETOX:
        return 1 if u < P[Par.PATHWAYS__ORDER_CARRIED_OUT__COMMUNITY_DETOX] else 0
    if pathway == Pathway.COMMUNITY_REHAB:
        return 1 if u < P[Par.PATHWAYS__ORDER_CARRIED_OUT__COMMUNITY_REHAB] else 0
    return 0


@kernel
def order_at_entry(s, t, P, entry_path, keys, k, flows_row) -> None:  # noqa: ANN001
    u_order = draw(keys, k, Stream.PATHWAY)
    u_done = draw(keys, k, Stream.PATHWAY)
    u_offer = draw(keys, k, Stream.PATHWAY)
    if entry_path == Path.DATA_ERROR or entry_path == Path.PRE_LAUNCH:
        pathway = Pathway.NONE  # an error, or a record entered by the sweep: no detection
    elif entry_path == Path.VOLUNTARY:
        pathway = Pathway.VOLUNTARY
    elif entry_path == Path.STOPPED_NOT_DETAINED:  # no order
        pathway = Pathway.NONE
    elif P[Par.PATHWAYS__HEALTH_LED] > 0.5:
        pathway = treatment_offer(P, u_offer)
    elif s[S.DEPENDENT] == 1:
        if u_order < P[Par.PATHWAYS__DEPENDENT_TO_ISOLATION]:
            pathway = Pathway.ISOLATION
        elif community_orders_exist(P):
            pathway = Pathway.COMMUNITY_DETOX
        else:
            pathway = Pathway.DETENTION
    else:
        pathway = Pathway.DETENTION
    if pathway == Pathway.DETENTION:  # u_offer and u_done are free on this branch
        punish(s, t, P, u_offer < P[Par.PATHWAYS__ENTRY_TO_DETENTION], u_done, flows_row)
    else:
        set_order(s, t, P, pathway, carried_out(P, pathway, u_done), flows_row)


@kernel
def punish(s, t, P, detained, u_term, flows_row) -> None:  # noqa: ANN001
    """Detention or a fine (paper fn 75): up to five days, or up to 15 for a more serious
    offence (u_term, a uniform the caller owns, picks the term); a fine leaves the person
    out, on no order."""
    if not detained:
        set_order(s, t, P, Pathway.NONE, np.int64(0), flows_row)
        flows_row[Flow.FINES] += 1
        return
    set_order(s, t, P, Pathway.DETENTION, np.int64(0), flows_row)
    if u_term < P[Par.PATHWAYS__DETENTION_SERIOUS_SHARE]:
        s[S.ORDER_END] = t + int(P[Par.PATHWAYS__DETENTION_DAYS__SERIOUS])


@kernel(inline="always")
def community_orders_exist(P) -> bool:  # noqa: ANN001
    """Community detoxification and rehabilitation are orders the law provides (from the
    Anti-Drug Law of June 2008: paper fn 70 and the conclusion)."""
    return P[Par.PATHWAYS__COMMUNITY_ORDERS_IN_LAW] > 0.5


@kernel(inline="always")
def treatment_offer(P, u) -> int:  # noqa: ANN001
    """Health-led rules (pathways.health_led): a detected use brings an offer of voluntary
    treatment, taken up with treatment_offer_accepted, and never an order (paper fn 70, 76)."""
    return Pathway.VOLUNTARY if u < P[Par.PATHWAYS__TREATMENT_OFFER_ACCEPTED] else Pathway.NONE


@kernel(inline="always")
def order_after_detection(s, t, P, keys, k, flows_row) -> None:  # noqa: ANN001
    """A detected relapse: isolation from a community order, or a new order outside one.

    The decision owns three PATHWAY draws; only those a branch needs are computed."""
    pw = s[S.PATHWAY]
    if P[Par.PATHWAYS__HEALTH_LED] > 0.5:
        if pw == Pathway.NONE or pw == Pathway.COMMUNITY_DETOX or pw == Pathway.COMMUNITY_REHAB:
            if treatment_offer(P, peek(keys, k, Stream.PATHWAY, 0)) == Pathway.VOLUNTARY:
                set_order(s, t, P, Pathway.VOLUNTARY, 0, flows_row)
    elif pw == Pathway.COMMUNITY_DETOX or pw == Pathway.COMMUNITY_REHAB:
        if _chance(P[Par.PATHWAYS__POSITIVE_IN_COMMUNITY_TO_ISOLATION], keys, k, 0):
            _isolate(s, t, P, keys, k, flows_row)
    elif pw == Pathway.NONE:
        if _chance(P[Par.PATHWAYS__RELAPSE_OUTSIDE_ORDER_TO_ISOLATION], keys, k, 0):
            _isolate(s, t, P, keys, k, flows_row)
        elif community_orders_exist(P) and _chance(
                P[Par.PATHWAYS__RELAPSE_OUTSIDE_ORDER_TO_DETOX], keys, k, 1):
            done = carried_out(P, Pathway.COMMUNITY_DETOX, peek(keys, k, Stream.PATHWAY, 2))
            set_order(s, t, P, Pathway.COMMUNITY_DETOX, done, flows_row)
        else:
            _detain_or_fine(s, t, P, keys, k, flows_row)
    k[Stream.PATHWAY] += 3


@kernel
def _detain_or_fine(s, t, P, keys, k, flows_row) -> None:  # noqa: ANN001
    """A detected relapse outside any order that leads to neither isolation nor a community
    order: detention with pathways.relapse_outside_order_to_detention, else a fine (fn 75).
    Draw 2 of the block decides; below p it is uniform on [0, p), so draw 2 / p picks the
    term without a further draw."""
    p = P[Par.PATHWAYS__RELAPSE_OUTSIDE_ORDER_TO_DETENTION]
    u = peek(keys, k, Stream.PATHWAY, 2)
    detained = u < p
    punish(s, t, P, detained, u / p if detained else 0.0, flows_row)


@kernel
def _isolate(s, t, P, keys, k, flows_row) -> None:  # noqa: ANN001
    """An isolation order after a detected relapse; draw 1 of the block says if carried out
    (draw 0 chose isolation, so draw 1 is free in both branches that isolate)."""
    done = carried_out(P, Pathway.ISOLATION, peek(keys, k, Stream.PATHWAY, 1))
    set_order(s, t, P, Pathway.ISOLATION, done, flows_row)


@kernel(inline="always")
def _chance(p, keys, k, offset) -> bool:  # noqa: ANN001
    """Draw `offset` of the decision's block is below p (not computed when p is 0)."""
    return p > 0.0 and peek(keys, k, Stream.PATHWAY, offset) < p


@kernel
def order_ends(s, t, P, keys, k, flows_row) -> None:  # noqa: ANN001
    """Isolation is usually followed by community rehabilitation; other orders just end."""
    u_rehab = draw(keys, k, Stream.PATHWAY)
    u_done = draw(keys, k, Stream.PATHWAY)
    draw(keys, k, Stream.PATHWAY)
    if (s[S.PATHWAY] == Pathway.ISOLATION and P[Par.PATHWAYS__HEALTH_LED] < 0.5
            and community_orders_exist(P) and u_rehab < P[Par.PATHWAYS__ISOLATION_TO_REHAB]):
        done = carried_out(P, Pathway.COMMUNITY_REHAB, u_done)
        set_order(s, t, P, Pathway.COMMUNITY_REHAB, done, flows_row)
    else:
        set_order(s, t, P, Pathway.NONE, np.int64(0), flows_row)


@kernel(inline="always")
def on_order_end(life, t, P, fl) -> int:  # noqa: ANN001
    """Event ORDER_END: an order or custody ends; isolation may be followed by rehabilitation,
    and whoever leaves custody starts an abstinent spell (its relapse clock starts now), or
    resumes use under drug_use.custody_ends_use = 0.

    Writes s[PATHWAY, ORDER_END, ORDER_ACTIVE, ORDER_KIND] and the spell; counts the new
    order; owns three PATHWAY draws, and three USE draws on leaving custody."""
    s = life.s
    was_custodial = is_custodial(s[S.PATHWAY])
    detention = s[S.PATHWAY] == Pathway.DETENTION
    order_ends(s, t, P, life.keys, life.k, fl)
    if was_custodial and s[S.NEVER_USED] == 0:
        leave_custody(s, t, P, life.keys, life.k, detention)
    return Changed.STATE
