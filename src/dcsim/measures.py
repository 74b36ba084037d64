"""What the model counts: monthly flows, end-of-month stocks, periodic activity and intrusions.

The engine adds into integer arrays indexed by these constants, so totals are exact and the same
whatever the number of workers. Column names (lower case) are the `metric` values of the tables.
"""

from __future__ import annotations

import enum

from .catalogue import VENUES

FIXED_POINT = 1 << 24  # periodic schedules add 1/interval a day in this fixed-point unit


class Intrusion(enum.IntEnum):
    """Intrusions into private life, by kind (paper fn 21, 26-28, 33, 50-51)."""

    PUBLIC_INTERROGATION = 0  # alert response that reaches the person at a venue
    PUBLIC_TEST = 1  # drug test at the venue
    HOME_VISIT = 2  # grid visit or police inspection at home
    HOME_TEST = 3
    WORKPLACE_TEST = 4
    NEIGHBOUR_INTERVIEW = 5
    SCHEDULED_TEST = 6
    COUNSELLING = 7  # obligatory 'education and persuasion' meeting
    APP_CHECKIN = 8
    APP_ALERT_FOLLOWUP = 9


N_INTRUSIONS = len(Intrusion)

_flow_names = [
    "entries_detained_positive", "entries_stopped_not_detained", "entries_voluntary",
    "entries_data_error", "entries_pre_launch", "reentries", "deaths", "error_corrections",
    "record_deletions",
    *[f"alerts_{v}" for v in VENUES],
    *[f"interrogations_{v}" for v in VENUES],
    "alerts", "alert_responses", "alert_contacts", "alert_tests", "alert_positives",
    "scheduled_tests_due", "scheduled_tests_done", "scheduled_test_positives",
    # heroin users' scheduled tests under a community order carried out, about 12 and 24
    # months into it (the follow-up points of the community-treatment study, which tested
    # for morphine, evidence.md#relapse)
    "community_tests_12m", "community_positives_12m",
    "community_tests_24m", "community_positives_24m",
    "inspections_home", "inspections_workplace", "inspection_positives",
    "encounter_detections", "detected_relapses", "false_positive_detections",
    "orders_community_detox", "orders_community_rehab", "orders_isolation", "isolation_admissions",
    "detentions", "fines",
    "newly_eligible", "releases_full", "releases_partial", "releases_revoked",
    "true_relapses", "true_cessations", "app_alerts", "whereabouts_found",
    "officer_minutes_alerts", "officer_minutes_inspections", "staff_minutes_app",
    *[f"intrusions_{i.name.lower()}" for i in Intrusion],
    "engine_events",  # events the engine processed (cost accounting, not a DCS quantity)
]
Flow = enum.IntEnum("Flow", [n.upper() for n in _flow_names], start=0)
Flow.__doc__ = "Events counted in the month they happen."
N_FLOWS = len(Flow)
FLOW_INTRUSION0 = int(Flow.INTRUSIONS_PUBLIC_INTERROGATION)
FLOW_ALERT_VENUE0 = int(Flow.ALERTS_HOTEL)
FLOW_INTERROGATION_VENUE0 = int(Flow.INTERROGATIONS_HOTEL)


class Stock(enum.IntEnum):
    """Persons in a state at the end of the month. Groups (Dim) partition the registry."""

    # official statistics (paper fn 8, 48; evidence.md#official-definitions)
    EXISTING_USERS = 0
    ABSTINENT_3Y_RECORDED = 1
    # control status
    UNDER_CONTROL = 2
    PARTIALLY_RELEASED = 3
    RELEASED = 4
    # pathway in force
    PATHWAY_NONE = 5
    PATHWAY_COMMUNITY_DETOX = 6
    PATHWAY_COMMUNITY_REHAB = 7
    PATHWAY_ISOLATION = 8
    PATHWAY_VOLUNTARY = 9
    PATHWAY_DETENTION = 10
    # the true state, which the system does not see
    TRUE_USING = 11
    TRUE_ABSTINENT_UNDER_3Y = 12
    TRUE_ABSTINENT_3Y = 13
    TRUE_NEVER_USED = 14
    # persons abstinent three years by record and not fully released: why
    TRAPPED_NO_RELEASE_AREA = 15
    TRAPPED_INSUFFICIENT_TESTS = 16
    TRAPPED_AWAITING_UPDATE = 17
    TRAPPED_PARTIAL_RELEASE = 18
    # meets the law's exit criteria (released or not)
    ELIGIBLE_BY_LAW = 19
    WHEREABOUTS_UNKNOWN = 20
    # records alive in the system, whatever their status (never deleted in the baseline)
    RECORDS_HELD = 21
    # persons under a community order that is carried out, by the true state (the follow-up
    # of community treatment measures drug use at 12 and 24 months: evidence.md#relapse)
    COMMUNITY_ORDER_USING = 22
    COMMUNITY_ORDER_NOT_USING = 23
    # abstinent three years by record with the tests the law asks, kept under control by the
    # law itself: a record of a drug-related criminal case (paper fn 37); not a trap of
    # practice, so apart from the four above (group TRAP all the same: one reason each)
    HELD_CRIMINAL_CASE = 24


N_STOCKS = len(Stock)


class Dim(enum.IntEnum):
    """Groups of Stock: a person holds at most one column of each (the codes of ledger.py)."""

    OFFICIAL = 0
    CONTROL = 1
    PATHWAY = 2
    TRUTH = 3
    TRAP = 4
    ELIGIBLE = 5
    LOST = 6
    RECORDS = 7
    COMMUNITY = 8


N_DIMS = len(Dim)


class Rate(enum.IntEnum):
    """Person-day and schedule sums, added as daily rates and summed by month."""

    COUNSELLING = 0  # fixed point: meetings
    GRID_VISITS = 1  # fixed point: visits
    APP_CHECKINS = 2  # fixed point: check-ins
    CONTROL_DAYS_UNDER_25 = 3  # person-days under control (not fully released), by age
    CONTROL_DAYS_25_59 = 4
    CONTROL_DAYS_60_PLUS = 5
    REGISTRY_DAYS = 6  # person-days with a record in the registry
    ALERT_DAYS_NOT_USING = 7  # person-days raising ID-use alerts (alerts.alert_band), not using
    ALERT_DAYS_USING = 8  # the same while using


N_RATES = len(Rate)
N_PERIODIC = 3  # the first three rates are schedules
AGE_BANDS_YEARS = (25, 60)  # student/early working age, working age, older (paper fn 64-67)
