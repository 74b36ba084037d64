"""Every rule value the model reads, with its unit: the contract between rule files and engine.

A rule file may only set names listed here, in the unit listed here. The engine reads values
from a table indexed [jurisdiction, month, Par.X]; `Par` gives each name its column.
Tiers are ordered extreme (0), high (1), medium (2), low (3) as in Table 1 (paper fn 19).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

UNITS = {
    "day": "a duration in days",
    "year": "a duration or age in years",
    "hours": "officer or worker hours",
    "per_year": "an event rate per person-year",
    "probability": "a probability in [0, 1]",
    "share": "a share in [0, 1]",
    "persons_per_year": "persons per calendar year",
    "persons": "a number of persons",
    "count": "a whole number of events",
    "multiplier": "a non-negative factor",
    "flag": "0 (no) or 1 (yes)",
    "tier": "a risk tier: 0 extreme, 1 high, 2 medium, 3 low",
}

TIERS = ("extreme", "high", "medium", "low")
DRUGS = ("heroin", "synthetic")  # state.Drug, in its order
VENUES = ("hotel", "bank", "government_office", "mobile_phone", "education", "travel", "rental")
APPS = ("zibo", "shanghai", "chengdu")


@dataclass(frozen=True)
class ParamSpec:
    name: str
    unit: str
    procedure: str
    doc: str


def _p(name: str, unit: str, doc: str) -> ParamSpec:
    return ParamSpec(name, unit, name.split(".", 1)[0], doc)


_SPECS: list[ParamSpec] = [
    # registration (paper fn 2, 7, 8, 11-16, 23-25, 76-77)
    _p("registration.newly_found_per_year", "persons_per_year",
       "entries into the registry per year (the 2006 sweep, then newly found users)"),
    _p("registration.initial_registry", "persons",
       "persons already registered on the scenario's first day (0 for the 2006 launch)"),
    _p("registration.share.detained_positive", "share",
       "entries detained after a positive urine test"),
    _p("registration.share.stopped_not_detained", "share",
       "entries stopped by police but not detained"),
    _p("registration.share.voluntary", "share", "entries through voluntary treatment"),
    _p("registration.share.pre_launch", "share",
       "entries registered before the 2006 launch, entered by the sweep with their history"),
    _p("registration.pre_launch_history_days", "day",
       "a pre-launch registrant's last detection lies up to this many days before entry"),
    _p("registration.using_at_entry.pre_launch", "probability",
       "truly using at entry, registered before the launch"),
    _p("registration.error_share", "share",
       "entries that are data-entry errors: people who never used drugs"),
    _p("registration.using_at_entry.detained_positive", "probability",
       "truly using at entry, detained after a positive test"),
    _p("registration.using_at_entry.stopped_not_detained", "probability",
       "truly using at entry, stopped but not detained"),
    _p("registration.using_at_entry.voluntary", "probability",
       "truly using at entry, voluntary treatment"),
    _p("registration.heroin_share", "share", "new entrants whose main drug is heroin/opioids"),
    _p("registration.dependent_share.heroin", "share", "heroin entrants judged dependent"),
    _p("registration.dependent_share.synthetic", "share",
       "synthetic-drug entrants judged dependent"),
    _p("registration.mean_age_at_entry", "year", "mean age at entry"),
    _p("registration.sd_age_at_entry", "year", "spread of age at entry"),
    _p("registration.lost_to_follow_up_share", "share",
       "entrants whose whereabouts become unknown: no scheduled contact"),
    # treatment pathways (Anti-Drug Law 2008, Regulation 2011)
    _p("pathways.dependent_to_isolation", "probability",
       "dependent entrants ordered to compulsory isolation (else community detoxification)"),
    _p("pathways.community_detox_days", "day", "length of a community detoxification order"),
    _p("pathways.community_rehab_days", "day", "length of a community rehabilitation order"),
    _p("pathways.isolation_days", "day", "length of compulsory isolation"),
    _p("pathways.voluntary_days", "day", "stay in voluntary detoxification"),
    _p("pathways.detention_days.minor", "day",
       "administrative detention for drug use (paper fn 75: up to five days)"),
    _p("pathways.detention_days.serious", "day",
       "administrative detention for a more serious offence (paper fn 75: up to 15 days)"),
    _p("pathways.detention_serious_share", "share",
       "detentions for the more serious offence (the longer term)"),
    _p("pathways.entry_to_detention", "probability",
       "a detected entrant the rules would detain is detained (else fined: no custody)"),
    _p("pathways.isolation_to_rehab", "probability",
       "community rehabilitation ordered after compulsory isolation"),
    _p("pathways.order_carried_out.isolation", "probability",
       "an isolation order leads to admission to a centre (otherwise the person stays out)"),
    _p("pathways.order_carried_out.community_detox", "probability",
       "community detoxification orders actually carried out (tests happen)"),
    _p("pathways.order_carried_out.community_rehab", "probability",
       "community rehabilitation orders actually carried out"),
    _p("pathways.positive_in_community_to_isolation", "probability",
       "positive test during a community order leads to compulsory isolation"),
    _p("pathways.relapse_outside_order_to_isolation", "probability",
       "detected relapse outside any order leads to compulsory isolation"),
    _p("pathways.relapse_outside_order_to_detox", "probability",
       "detected relapse outside any order leads to community detoxification"),
    _p("pathways.relapse_outside_order_to_detention", "probability",
       "detected relapse outside any order, and neither of the above, leads to detention "
       "(else a fine, paper fn 75)"),
    _p("pathways.community_orders_in_law", "flag",
       "community detoxification and rehabilitation exist as orders (the Anti-Drug Law of "
       "2008); without them the dependent not isolated are detained and isolation is "
       "followed by nothing"),
    _p("pathways.health_led", "flag",
       "a detected use leads to an offer of voluntary treatment, never to an order "
       "(no detention, no isolation, no community order)"),
    _p("pathways.treatment_offer_accepted", "probability",
       "an offer of voluntary treatment is accepted (only read under pathways.health_led)"),
    # drug use and relapse: the true state
    _p("drug_use.mean_use_spell_days", "day", "mean length of a spell of use"),
    *[_p(f"drug_use.relapse_probability.{d}", "probability",
         f"an abstinent spell of a {d} user ends in relapse (else it lasts)") for d in DRUGS],
    *[_p(f"drug_use.mean_days_to_relapse.{d}", "day",
         f"mean time to relapse of a {d} user, among those who relapse") for d in DRUGS],
    _p("drug_use.relapse_factor_other_spells", "multiplier",
       "factor on the relapse probability of an abstinent spell not begun on release from "
       "isolation or voluntary treatment (the studies' population)"),
    _p("drug_use.mortality_per_year", "per_year", "death or leaving the country"),
    _p("drug_use.custody_ends_use", "probability",
       "isolation or treatment ends the spell of use it interrupted (relapse counted from "
       "release); otherwise use resumes on release"),
    _p("drug_use.detention_ends_use", "probability",
       "administrative detention ends the spell of use it interrupted; otherwise use resumes "
       "on release"),
    # management: risk tiers, schedules, inspections (paper fn 17-21)
    *[_p(f"management.test_interval_days.{t}", "day", f"scheduled urine test interval, {t} risk")
      for t in TIERS],
    *[_p(f"management.counselling_interval_days.{t}", "day",
         f"counselling ('education and persuasion') interval, {t} risk") for t in TIERS],
    *[_p(f"management.inspection_rate_per_year.{t}", "per_year",
         f"unscheduled home or workplace inspections with a test, {t} risk") for t in TIERS],
    _p("management.tier_schedule_without_order", "flag",
       "risk-tier test schedule also applies to persons with no treatment order"),
    _p("management.no_order_test_interval_days", "day",
       "test interval for non-dependent persons with no order, where such a rule exists"),
    _p("management.no_order_regular_tests", "flag",
       "non-dependent persons with no order are tested at no_order_test_interval_days"),
    _p("management.programme_test_interval_days.community_detox", "day",
       "test interval during community detoxification"),
    _p("management.programme_test_interval_days.community_rehab", "day",
       "test interval during community rehabilitation"),
    _p("management.test_done_probability", "probability",
       "a scheduled test is actually done and recorded"),
    _p("management.test_sensitivity", "probability", "a test of a person who is using is positive"),
    _p("management.test_false_positive", "probability",
       "a test of a person who is not using is positive"),
    _p("management.reassessment_interval_days", "day", "risk reassessment interval"),
    _p("management.step_down_after_days", "day",
       "days without detected use after which a reassessment lowers the tier by one"),
    _p("management.step_down_on_true_abstinence", "flag",
       "judge the step down on true abstinence (an oracle) instead of the record"),
    _p("management.bring_test_forward", "flag",
       "a stricter tier brings the next scheduled test forward"),
    _p("management.entry_tier.using", "tier", "tier at entry of a person detected using"),
    _p("management.entry_tier.not_using", "tier", "tier at entry of other entrants"),
    _p("management.tier_after_detected_use", "tier", "tier after a detected relapse"),
    _p("management.workplace_share", "share", "inspections made at the workplace (else home)"),
    _p("management.neighbour_interview_probability", "probability",
       "a home inspection includes interviews with neighbours or committee members"),
    _p("management.encounter_rate_per_year", "per_year",
       "police encounters outside the DCS (street stops, raids) of a person while using"),
    _p("management.officer_hours_per_inspection", "hours", "officer time per inspection"),
    # ID-use alerts and police response (paper fn 4, 22)
    *[_p(f"alerts.id_use_rate_per_year.{v}", "per_year", f"identity-document uses at {v}")
      for v in VENUES],
    _p("alerts.id_use_multiplier_while_using", "multiplier",
       "ID-use rate of a person who is using, relative to one who is not"),
    _p("alerts.response_probability", "probability", "police respond to an alert"),
    _p("alerts.contact_probability", "probability", "a response reaches the person"),
    _p("alerts.test_given_contact", "probability", "a contacted person is drug tested"),
    _p("alerts.officer_hours_per_response", "hours", "officer time per response"),
    _p("alerts.officer_hours_per_contact", "hours", "extra officer time when contact is made"),
    _p("alerts.enabled", "flag", "identity-document uses raise alerts at all"),
    _p("alerts.only_under_community_order", "flag",
       "alerts are raised only for persons under a community order in force"),
    # grid management (paper fn 29-34)
    _p("grid.coverage_share", "share", "share of registrants living in a managed grid"),
    _p("grid.visit_interval_days", "day", "scheduled visits to drug-associated persons"),
    _p("grid.visits_done_share", "share", "scheduled grid visits actually made"),
    _p("grid.released_visit_interval_days", "day",
       "visits to fully released persons, still 'drug-associated'"),
    _p("grid.worker_hours_per_visit", "hours", "grid-worker time per visit"),
    # monitoring apps (paper fn 26-28)
    *[_p(f"apps.enrolment_share.{a}", "share",
         f"persons in community orders enrolled in the {a} app") for a in APPS],
    *[_p(f"apps.alert_rate_per_year.{a}", "per_year",
         f"{a} app alerts per enrolled person-year") for a in APPS],
    _p("apps.checkin_interval_days", "day", "days between compulsory app check-ins"),
    _p("apps.alert_followup_hours", "hours", "staff time per app alert followed up"),
    _p("apps.relapse_hazard_multiplier", "multiplier", "effect of app monitoring on relapse"),
    # exit: the law and its practice (paper fn 35-48)
    _p("exit.abstinence_days_required", "day", "abstinence without relapse required to exit"),
    _p("exit.min_negative_tests.community_detox", "count",
       "negative tests required after community detoxification"),
    _p("exit.min_negative_tests.community_rehab", "count",
       "negative tests required after community rehabilitation"),
    _p("exit.min_negative_tests.other", "count",
       "negative tests required of the non-dependent with no community order (paper fn 46)"),
    _p("exit.min_negative_tests.dependent_no_order", "count",
       "negative tests required of the dependent with no community order (after isolation)"),
    _p("exit.release_allowed", "flag", "the area releases anyone at all"),
    _p("exit.record_update_probability", "probability",
       "an eligible person's record is ever updated to release"),
    _p("exit.mean_update_delay_days", "day", "mean delay from eligibility to the update"),
    _p("exit.partial_release_share", "share",
       "releases that are partial: alerts stop, community control goes on"),
    _p("exit.record_deleted_on_exit", "flag", "the record is deleted on exit"),
    _p("exit.criminal_case_share", "share",
       "registrants with a record of a drug-related criminal case, which bars exit"),
    _p("exit.unscheduled_tests_count", "flag",
       "negative tests at alerts and inspections count towards the exit minimum"),
    _p("exit.judged_on_true_abstinence", "flag",
       "judge exit on true abstinence (an oracle) instead of the record"),
    # official statistics (evidence.md#official-definitions)
    _p("statistics.abstinent_days", "day",
       "days without a detected relapse after which a registrant stops counting as an "
       "'existing user' in official statistics"),
    _p("statistics.update_lag_days", "day",
       "days after those three years before the record is updated and the registrant counts "
       "as abstinent in official statistics (the mean, where it differs by record)"),
    _p("statistics.update_lag_varies", "flag",
       "the update lag differs by record (exponential with the mean above), else every "
       "record waits exactly the mean"),
    # data errors and their correction (paper fn 23-25, 40-41)
    _p("data_errors.complaint_probability", "probability",
       "a person registered in error files a complaint or lawsuit"),
    _p("data_errors.mean_correction_days", "day",
       "mean time for a correction through the provincial level"),
    _p("data_errors.local_correction", "flag",
       "local offices correct records in error themselves: mean_correction_days is their time, "
       "and complaints pending when the rule changes are judged again"),
]

CATALOGUE: dict[str, ParamSpec] = {s.name: s for s in _SPECS}
PARAM_NAMES: list[str] = [s.name for s in _SPECS]


def _ident(name: str) -> str:
    return name.upper().replace(".", "__")


Par = enum.IntEnum("Par", [_ident(n) for n in PARAM_NAMES], start=0)
Par.__doc__ = "Column of each rule value in the resolved table (compile-time constants)."
N_PARAMS = len(PARAM_NAMES)

assert len(CATALOGUE) == N_PARAMS, "duplicate parameter names in the catalogue"
assert set(s.unit for s in _SPECS) <= set(UNITS)
