"""The layout of a person's state while the engine walks their life course.

Persons are rows: the population arrays (population.py) hold what registration drew; while a
person's events are processed, their changing state lives in one small int64 vector `s` and
one float64 vector `f` of event clocks, indexed by the constants below (LASER-style structure of
arrays, compiled by Numba). Nothing here can hold a real person's data: only modelled codes,
days and counters.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

import numpy as np

NEVER = 2**31 - 1  # a day that never comes
FNEVER = 1.0e18  # the same for float clocks


class Path(enum.IntEnum):
    """How a person entered the registry (paper fn 2, 11, 23-25, 76-77)."""

    DETAINED_POSITIVE = 0
    STOPPED_NOT_DETAINED = 1
    VOLUNTARY = 2
    DATA_ERROR = 3
    PRE_LAUNCH = 4  # registered before 2006, entered by the launch sweep with their history


class Drug(enum.IntEnum):
    HEROIN = 0
    SYNTHETIC = 1


class Pathway(enum.IntEnum):
    """Treatment pathway in force (Anti-Drug Law 2008; paper conclusion, fn 75-77)."""

    NONE = 0
    COMMUNITY_DETOX = 1
    COMMUNITY_REHAB = 2
    ISOLATION = 3
    VOLUNTARY = 4
    DETENTION = 5


CUSTODIAL = (Pathway.ISOLATION, Pathway.VOLUNTARY, Pathway.DETENTION)


class Release(enum.IntEnum):
    CONTROL = 0  # under dynamic control, alerts on
    PARTIAL = 1  # alerts off, community control and assessment go on (paper fn 45)
    FULL = 2  # released; the record stays (paper fn 47)
    DELETED = 3  # released and the record deleted (only under a reform)


class Tier(enum.IntEnum):
    EXTREME = 0
    HIGH = 1
    MEDIUM = 2
    LOW = 3


class Done(enum.IntEnum):
    """Bits of s[S.FLIPS_DONE]."""

    OFFICIAL_FLIP = 1  # the record counts as abstinent three years (official statistics)
    EXIT_FLIP = 2  # the abstinence part of the exit rule is met
    TRUE_FLIP = 4  # true abstinence has reached the law's three years
    USING_AT_CUSTODY = 8  # was using when the custody in force began (drug_use.leave_custody)


class S(enum.IntEnum):
    """Integer state of the person being simulated."""

    J = 0  # jurisdiction index
    T = 1  # current day
    USING = 2  # true state: using now (1) or not (0)
    USE_NEXT = 3  # day the true state next changes
    ABST_START = 4  # day the current abstinence began
    PATHWAY = 5
    ORDER_END = 6  # day the current order or custody ends
    ORDER_ACTIVE = 7  # the community order is actually carried out (tests happen)
    ORDER_KIND = 8  # last community order: 0 none, 1 detox, 2 rehab (for the exit minimum)
    TIER = 9
    NEXT_ASSESS = 10
    LAST_DETECT = 11  # last detected use (entry counts): what the system knows
    NEG_TESTS = 12  # negative tests since the last detection
    NEXT_TEST = 13
    RELEASE = 14
    ELIGIBLE = 15  # day the exit criteria were met in this episode, else NEVER
    RELEASE_DUE = 16
    DEATH = 17
    CORRECT = 18  # day a data error is corrected (record removed), else NEVER
    IN_REGISTRY = 19  # 0 once dead, corrected or deleted
    LOST = 20  # whereabouts unknown: no scheduled contact
    NEVER_USED = 21
    DEPENDENT = 22
    BIRTH = 23  # day of birth (negative: before the period)
    APP = 24  # monitoring app enrolled in, -1 none
    GRID_ON = 25
    OFFICIAL_FLIP = 26  # day the person stops counting as an existing user
    EXIT_FLIP = 27  # day the abstinence part of the exit rule is met
    TRUE_FLIP = 28  # day the true abstinence reaches the law's three years
    NEXT_RULE = 29  # index into the jurisdiction's rule-change days
    AGE_FLIP = 30  # next age-band boundary
    EXPOSURE = 31  # days with a counted record so far (closed spans)
    CTRL_BAND = 32  # age band of the open span under control (not fully released), or -1
    REG_START = 33  # open span in the registry, for exposure
    SPAN_START_0 = 34  # open periodic spans: counselling, grid visits, app check-ins
    SPAN_START_1 = 35
    SPAN_START_2 = 36
    DETECTIONS = 37
    ALIVE = 38
    CORRECTED = 39  # a data error corrected: the record is removed (paper fn 40-41)
    FIRST_RELEASE = 40  # day of the first release (partial or full), else NEVER
    FLIPS_DONE = 41  # bits of Done: which derived days are taken, and a custody memo
    INSPECT_TIER = 42  # tier whose inspection clock is running, -1 none
    ENTRY = 43  # entry day (reassessments are counted from it)
    ALERT_BAND = 44  # open span raising alerts: -1 none, else using (alerts.alert_band)
    DRUG = 45  # main drug (Drug), drawn at registration: the relapse law is by drug
    N = 46


class F(enum.IntEnum):
    """Float state: thinning clocks of the Poisson processes, and periodic intervals."""

    ID_USE = 0
    INSPECT = 1
    ENCOUNTER = 2
    APP_ALERT = 3
    SPAN_IV_0 = 4
    SPAN_IV_1 = 5
    SPAN_IV_2 = 6
    EXIT_U_UPDATE = 7  # this eligibility episode's draws, kept so a rule change can reuse them
    EXIT_DELAY = 8
    EXIT_U_PARTIAL = 9
    GRID_RANK = 10  # place in the locality's grid roll-out, in [0, 1) (population.grid_rank)
    APP_RANK = 11  # place in the app roll-out, in [0, 1)
    N = 12


class K(enum.IntEnum):
    """Draw counters, one per random stream (see rng.Stream)."""

    N = 12


class Bound(enum.IntEnum):
    """Columns of a locality's thinning bounds: the highest rate a year of each Poisson process
    over the whole period (candidates are drawn at the bound and accepted at the actual rate)."""

    ALERT_CONTACT = 0  # ID use x response x contact (alerts.py)
    ENCOUNTER = 1  # police encounters while using (management.py)
    APP_ALERT = 2  # monitoring-app alerts (apps.py)
    INSPECT_EXTREME = 3  # unscheduled inspections, one bound per tier (management.py)
    INSPECT_HIGH = 4
    INSPECT_MEDIUM = 5
    INSPECT_LOW = 6
    N = 7


class Changed(enum.IntEnum):
    """What an event handler changed, so the engine knows what must follow."""

    NOTHING = 0  # no state that clocks, schedules or stocks read
    STOCKS = 1  # only the stock codes (a day count crossed a threshold)
    STATE = 2  # clocks, schedules, spans and stocks must follow
    LEFT = 3  # the person left the registry for good (death, corrected error)


class Life(NamedTuple):
    """One person's working state while the engine walks their life course: the arrays every
    event handler reads and writes. Views into the chunk's scratch and accumulators."""

    s: np.ndarray  # int64 [S.N]
    f: np.ndarray  # float64 [F.N]
    keys: np.ndarray  # uint64 [K.N]: the person's key of each random stream
    k: np.ndarray  # int64 [K.N]: draws taken so far from each stream
    intrusions: np.ndarray  # int32 [N_INTRUSIONS]: this person's counts (output)
    outcome: np.ndarray  # int32 [Outcome]: written when the life course ends (output)
    codes: np.ndarray  # int64 [N_DIMS]: the stock column held in each group, or -1
    codes_new: np.ndarray  # int64 [N_DIMS]: scratch for the next codes
    intervals: np.ndarray  # float64 [N_PERIODIC]: scratch for schedule intervals
    rates: np.ndarray  # int64 [day, Rate]: the chunk's daily rates of this locality
    bounds: np.ndarray  # float64 [Bound.N]: this locality's thinning bounds
