"""ID-use alerts and the police response (paper fn 4, 22, 50, 58).

Using an identity document at a hotel, bank, government office, mobile-phone registration,
tertiary-education application, when travelling or renting raises an alert while the person is
under full control. Police must respond and log the result; they often arrive after the person
has left. A response that reaches the person is an interrogation in a public venue, usually with
a drug test.

Only the alerts that reach the person change anything in their life, so only those are
simulated person by person: a Poisson process at the ID-use rate times the chances of a response
and of contact, drawn by thinning from the locality's highest such rate (three ID_USE draws per
candidate, two POLICE draws per contact: tested, result). The other alerts (no response, or a
response that finds no one) are police workload only. Splitting a Poisson process by
independent coin flips gives independent Poisson processes, so their number in a locality-month
is Poisson with mean the person-days raising alerts times the rate that does not reach them:
`unreached_alerts` draws it per venue after the run, the same in law as drawing every alert.
"""

from __future__ import annotations

from .catalogue import VENUES, Par
from .jit import kernel
from .measures import FLOW_ALERT_VENUE0, FLOW_INTERROGATION_VENUE0, Flow, Intrusion, Rate
from .pathways import is_custodial
from .rng import Stream, chance, next_candidate, peek, person_key, poisson
from .state import FNEVER, Bound, Changed, F, Pathway, Release, S
from .testing import positive_result, test_result

_VENUE0 = int(Par.ALERTS__ID_USE_RATE_PER_YEAR__HOTEL)
N_VENUES = len(VENUES)


@kernel
def id_use_rate(s, P, total) -> float:  # noqa: ANN001
    """ID uses a year now, given the venues' total: none in custody (paper fn 4)."""
    if is_custodial(s[S.PATHWAY]):
        return 0.0
    if s[S.USING] == 1:
        total *= P[Par.ALERTS__ID_USE_MULTIPLIER_WHILE_USING]
    return total


@kernel
def reach_probability(P) -> float:  # noqa: ANN001
    """Chance that an alert brings police face to face with the person."""
    return P[Par.ALERTS__RESPONSE_PROBABILITY] * P[Par.ALERTS__CONTACT_PROBABILITY]


@kernel
def alert_band(s, P) -> int:  # noqa: ANN001
    """-1: raises no alerts now; else whether using (ID uses are more frequent then)."""
    if not raises_alert(s, P) or is_custodial(s[S.PATHWAY]):
        return -1
    return s[S.USING]


@kernel
def venue_total(P) -> float:  # noqa: ANN001
    total = 0.0
    for v in range(N_VENUES):
        total += P[_VENUE0 + v]
    return total


@kernel
def venue_of(P, u, total) -> int:  # noqa: ANN001
    """The venue of an ID use: venue v with probability rate_v / total."""
    x = u * total
    acc = 0.0
    for v in range(N_VENUES):
        acc += P[_VENUE0 + v]
        if x < acc:
            return v
    return N_VENUES - 1


@kernel
def raises_alert(s, P) -> bool:  # noqa: ANN001
    """Alerts stop on partial or full release (paper fn 45, 47). Two rule switches for
    reforms: alerts.enabled (0: no alerts at all) and alerts.only_under_community_order
    (alerts only while a community detoxification or rehabilitation order is in force)."""
    if s[S.IN_REGISTRY] != 1 or s[S.RELEASE] != Release.CONTROL:
        return False
    if P[Par.ALERTS__ENABLED] < 0.5:
        return False
    if P[Par.ALERTS__ONLY_UNDER_COMMUNITY_ORDER] > 0.5:
        pw = s[S.PATHWAY]
        return pw == Pathway.COMMUNITY_DETOX or pw == Pathway.COMMUNITY_REHAB
    return True


@kernel(python=True)
def max_rate(P_all) -> float:  # noqa: ANN001
    """Upper bound of id_use_rate x reach_probability over all months of one locality: the
    thinning bound of the alerts that reach the person."""
    best = 0.0
    for m in range(P_all.shape[0]):
        total = 0.0
        for v in range(N_VENUES):
            total += P_all[m, _VENUE0 + v]
        mult = max(1.0, P_all[m, Par.ALERTS__ID_USE_MULTIPLIER_WHILE_USING])
        best = max(best, total * mult * reach_probability(P_all[m]))
    return best


@kernel(python=True)
def unreached_alerts(seed, table, activity, flows) -> None:  # noqa: ANN001
    """Add the alerts that reach no one to flows[j, m]: per venue, those no police answered and
    those answered in vain, each Poisson with mean (person-days raising alerts x the venue's
    daily rate x the chance of that outcome). Each (locality, month, venue, outcome) has its own
    keyed draws, so a reform changes only the counts whose mean it changes."""
    n_j, n_m = table.shape[0], table.shape[1]
    for j in range(n_j):
        for m in range(n_m):
            P = table[j, m]
            days = (activity[j, m, Rate.ALERT_DAYS_NOT_USING]
                    + activity[j, m, Rate.ALERT_DAYS_USING]
                    * P[Par.ALERTS__ID_USE_MULTIPLIER_WHILE_USING])
            respond = P[Par.ALERTS__RESPONSE_PROBABILITY]
            miss = 1.0 - P[Par.ALERTS__CONTACT_PROBABILITY]
            minutes = int(round(60.0 * P[Par.ALERTS__OFFICER_HOURS_PER_RESPONSE]))
            fl = flows[j, m]
            for v in range(N_VENUES):
                mean = days * P[_VENUE0 + v] / 365.25
                cell = ((j * n_m + m) * N_VENUES + v) * 2
                unanswered = poisson(person_key(seed, Stream.ALERT_TOTALS, cell),
                                     mean * (1.0 - respond))
                answered = poisson(person_key(seed, Stream.ALERT_TOTALS, cell + 1),
                                   mean * respond * miss)
                fl[Flow.ALERTS] += unanswered + answered
                fl[FLOW_ALERT_VENUE0 + v] += unanswered + answered
                fl[Flow.ALERT_RESPONSES] += answered
                fl[Flow.OFFICER_MINUTES_ALERTS] += answered * minutes


@kernel(inline="always")
def follow(life, t, P) -> None:  # noqa: ANN001
    """After a change of state: the clock of alerts that reach the person starts or stops with
    control. Writes f[ID_USE]; one ID_USE draw when it starts."""
    f = life.f
    if raises_alert(life.s, P):
        if f[F.ID_USE] >= FNEVER:
            f[F.ID_USE] = next_candidate(t, life.bounds[Bound.ALERT_CONTACT], life.keys, life.k,
                                         Stream.ID_USE)
    else:
        f[F.ID_USE] = FNEVER


@kernel(inline="always")
def on_alert_contact(life, t, P, fl) -> int:  # noqa: ANN001
    """Event ALERT_CONTACT (a candidate of the thinned process): an ID use whose alert police
    answer and that reaches the person, an interrogation in public, usually with a test.

    Reads s[USING, PATHWAY, LOST]; writes f[ID_USE], s[LOST] and what a result sets in motion;
    counts the alert, its venue, response, contact, test, positive, officer minutes and the
    intrusions; owns three ID_USE draws per candidate (accept, venue, next candidate) and two
    POLICE draws per contact (tested, result)."""
    s, f, keys, k = life.s, life.f, life.keys, life.k
    bound = life.bounds[Bound.ALERT_CONTACT]
    total = venue_total(P)
    rate = id_use_rate(s, P, total) * reach_probability(P)
    accept = rate >= bound or (rate > 0.0 and peek(keys, k, Stream.ID_USE, 0) * bound < rate)
    v = venue_of(P, peek(keys, k, Stream.ID_USE, 1), total) if accept else 0
    k[Stream.ID_USE] += 2
    f[F.ID_USE] = next_candidate(f[F.ID_USE], bound, keys, k, Stream.ID_USE)
    if not accept:
        return Changed.NOTHING
    return Changed.STATE if _contact(life, t, P, fl, v) else Changed.NOTHING


@kernel(inline="always")
def _contact(life, t, P, fl, v) -> bool:  # noqa: ANN001
    """Police reach the person at venue v: True if the state changed."""
    s, keys, k = life.s, life.keys, life.k
    tested = chance(P[Par.ALERTS__TEST_GIVEN_CONTACT], keys, k, Stream.POLICE, 0)
    positive = tested and positive_result(s, P, keys, k, Stream.POLICE, 1)
    k[Stream.POLICE] += 2
    fl[Flow.ALERTS] += 1
    fl[FLOW_ALERT_VENUE0 + v] += 1
    fl[Flow.ALERT_RESPONSES] += 1
    fl[Flow.ALERT_CONTACTS] += 1
    fl[FLOW_INTERROGATION_VENUE0 + v] += 1
    fl[Flow.INTRUSIONS_PUBLIC_INTERROGATION] += 1
    life.intrusions[Intrusion.PUBLIC_INTERROGATION] += 1
    fl[Flow.OFFICER_MINUTES_ALERTS] += int(round(60.0 * P[Par.ALERTS__OFFICER_HOURS_PER_RESPONSE]
                                                 + 60.0 * P[Par.ALERTS__OFFICER_HOURS_PER_CONTACT]))
    changed = False
    if s[S.LOST] == 1:
        s[S.LOST] = 0
        fl[Flow.WHEREABOUTS_FOUND] += 1
        changed = True
    if tested:
        fl[Flow.ALERT_TESTS] += 1
        fl[Flow.INTRUSIONS_PUBLIC_TEST] += 1
        life.intrusions[Intrusion.PUBLIC_TEST] += 1
        if positive:
            fl[Flow.ALERT_POSITIVES] += 1
        changed = test_result(life, t, P, fl, positive) or changed
    return changed
