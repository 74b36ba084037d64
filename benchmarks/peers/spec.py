"""The "registry-core" reference model: every constant and rule shared by the peer implementations.

All implementations (NumPy, Mesa, Starsim, the Numba floor and, later, dcsim) import their numbers
from here, so a disagreement between them is a difference of implementation, never of parameters.

Semantics (one daily step, days 0 .. T-1; each present, unreleased person, in this order):

0. Entry. ``n`` persons enter on day 0. Newcomers arrive at ``n / 10`` per 365 days, evenly
   spread in continuous time: the k-th newcomer (k = 1, 2, ...) arrives at time
   ``k * 3650 / n`` days and so enters on day ``floor(k * 3650 / n)`` (see :func:`entry_days`).
   On entry: using ~ Bernoulli(0.6); risk = 0 (extreme) if using else 2 (medium); days abstinent
   = 0; negative tests = 0; next test = entry day + ``TEST_INTERVAL_DAYS[risk]``; last assessment
   = entry day. A person is processed from its entry day on (steps 1-5 run on the entry day).
1. Use. A user stops with probability ``P_STOP``; a non-user relapses with ``P_RELAPSE`` (one
   draw each, exclusive groups). Stopping or relapsing sets days abstinent to 0; then every
   person not using adds one day of abstinence. So days abstinent = consecutive days, ending
   today, on which the person was not using at the end of the day (the entry day counts).
2. Scheduled test, when ``today >= next test``: a user tests positive (risk = 0, negative count
   = 0); a non-user tests negative (negative count + 1). Next test = today + interval[risk].
3. Alerts. The ID is used ``Poisson(ALERT_RATE_PER_DAY)`` times today; each use is an alert;
   each alert reaches the person with probability ``P_ALERT_REACHES``. A person reached by at
   least one alert is tested once: positive if using (risk = 0, negative count = 0). A negative
   alert test changes nothing (only scheduled tests count towards release) and an alert test
   never moves the next scheduled test. Output ``contacts`` counts persons reached today.
4. Assessment, when ``today - last assessment >= ASSESSMENT_INTERVAL_DAYS``: if days abstinent
   >= ``UPGRADE_ABSTINENT_DAYS`` and risk < 3, risk + 1; last assessment = today.
5. Release when not using, days abstinent >= ``RELEASE_ABSTINENT_DAYS`` and negative tests >=
   ``RELEASE_MIN_NEGATIVE_TESTS``. A released person is never processed again. Because the entry
   day counts as a day of abstinence, the earliest release is on day ``entry + 1094``, the
   1,095th day in the registry.

Daily outputs (end of day): ``present`` (present and unreleased), ``using`` (of those),
``alerts``, ``contacts``, ``positives`` (scheduled and alert tests) and ``releases``.
"""

from __future__ import annotations

from typing import Final

import numpy as np

# --- Entry ---------------------------------------------------------------------------------------
P_USING_AT_ENTRY: Final = 0.6
RISK_EXTREME: Final = 0
RISK_HIGH: Final = 1
RISK_MEDIUM: Final = 2
RISK_LOW: Final = 3
RISK_AT_ENTRY_USING: Final = RISK_EXTREME
RISK_AT_ENTRY_NOT_USING: Final = RISK_MEDIUM
DAYS_PER_YEAR: Final = 365
ARRIVALS_PER_YEAR_PER_INITIAL: Final = 10  # n / 10 newcomers per 365 days

# --- Daily dynamics ------------------------------------------------------------------------------
P_STOP: Final = 0.002
P_RELAPSE: Final = 0.0008
TEST_INTERVAL_DAYS: Final = (14, 30, 91, 182)  # indexed by risk 0 (extreme) .. 3 (low)
ALERT_RATE_PER_DAY: Final = 0.05
P_ALERT_REACHES: Final = 0.26
ASSESSMENT_INTERVAL_DAYS: Final = 182
UPGRADE_ABSTINENT_DAYS: Final = 365
RELEASE_ABSTINENT_DAYS: Final = 1095
RELEASE_MIN_NEGATIVE_TESTS: Final = 12

TEST_INTERVALS: Final = np.array(TEST_INTERVAL_DAYS, dtype=np.int32)

# --- Results -------------------------------------------------------------------------------------
OUTPUTS: Final = ("present", "using", "alerts", "contacts", "positives", "releases")

Result = dict[str, np.ndarray]
"""One int64 array per name in :data:`OUTPUTS`: daily, of length T, for the peers here.

``dcsim_model`` reports calendar months instead (``present`` then holds the month's
person-days); :func:`summary` and :func:`person_days` read both the same way.
"""


def p_reached(n_alerts: np.ndarray | int) -> np.ndarray | float:
    """Probability that at least one of ``n_alerts`` alerts reaches the person.

    Frameworks without a binomial draw (Starsim) use this with one Bernoulli per alerted person;
    it is exactly the law of "each alert reaches with probability P_ALERT_REACHES".
    """
    return 1.0 - (1.0 - P_ALERT_REACHES) ** np.asarray(n_alerts, dtype=np.float64)


# --- Arrival rule --------------------------------------------------------------------------------
def _check(n: int, t: int) -> None:
    if n < 1 or t < 1:
        raise ValueError(f"need n >= 1 and t >= 1, got n={n}, t={t}")


def n_newcomers_by(n: int, day: int) -> int:
    """Newcomers who have entered by the end of ``day`` (k >= 1 with k * 3650 / n < day + 1)."""
    if day < 0:
        return 0
    span = DAYS_PER_YEAR * ARRIVALS_PER_YEAR_PER_INITIAL
    return ((day + 1) * n - 1) // span


def n_persons(n: int, t: int) -> int:
    """Everyone who enters in days 0 .. t-1: the n initial persons and the newcomers."""
    _check(n, t)
    return n + n_newcomers_by(n, t - 1)


def entry_days(n: int, t: int) -> np.ndarray:
    """Entry day of every person entering before day ``t``, in person order (non-decreasing).

    Persons 0 .. n-1 enter on day 0; person ``n + k - 1`` (the k-th newcomer) on
    ``floor(k * 3650 / n)``. Integer arithmetic, so every implementation gets identical days.
    """
    _check(n, t)
    k = np.arange(1, n_newcomers_by(n, t - 1) + 1, dtype=np.int64)
    newcomers = (k * (DAYS_PER_YEAR * ARRIVALS_PER_YEAR_PER_INITIAL)) // n
    return np.concatenate([np.zeros(n, dtype=np.int64), newcomers])


def arrivals_per_day(n: int, t: int) -> np.ndarray:
    """Persons entering on each day 0 .. t-1 (day 0 includes the n initial persons)."""
    _check(n, t)
    span = DAYS_PER_YEAR * ARRIVALS_PER_YEAR_PER_INITIAL
    cum = ((np.arange(1, t + 1, dtype=np.int64) * n) - 1) // span
    out = np.diff(cum, prepend=0)
    out[0] += n
    return out


# --- Result helpers ------------------------------------------------------------------------------
def new_result(t: int) -> Result:
    """A zeroed result of length ``t`` for implementations that fill it day by day."""
    return {name: np.zeros(t, dtype=np.int64) for name in OUTPUTS}


def as_result(columns: dict[str, object], t: int) -> Result:
    """Coerce framework output (lists, Series, framework arrays) to the common result type."""
    out: Result = {}
    for name in OUTPUTS:
        arr = np.asarray(columns[name]).astype(np.int64).reshape(-1)
        if arr.shape != (t,):
            raise ValueError(f"output {name!r} has shape {arr.shape}, expected ({t},)")
        out[name] = arr
    return out


def summary(result: Result) -> dict[str, float]:
    """The four numbers compared across implementations: final using and three totals."""
    return {
        "final_using": float(result["using"][-1]),
        "total_released": float(result["releases"].sum()),
        "total_alerts": float(result["alerts"].sum()),
        "total_positives": float(result["positives"].sum()),
    }


def person_days(result: Result) -> int:
    """Person-days processed: persons present and unreleased at the start of each day, summed.

    Those are the persons present at the end of the day plus those released during it.
    """
    return int(result["present"].sum() + result["releases"].sum())
