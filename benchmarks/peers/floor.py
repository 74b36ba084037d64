"""The cost floor: the least work any implementation of registry-core must do.

A Numba-compiled loop visits each present, unreleased person once per day and reads and writes
the same seven state arrays as the model (using, risk, days abstinent, negative tests, next test,
last assessment, released), with the model's deterministic rules (tests on schedule, assessment,
release) but no random draws: nobody starts or stops using, no alerts. Every update feeds the
returned daily counts, so the compiler cannot drop the work. The seconds it takes are the floor
against which the other implementations' ns per person-day are read.

Entry use is deterministic too (the first 60 % of each block of ten persons), so the state mix,
and hence the branches taken, resembles the model's.
"""

from __future__ import annotations

import numba as nb
import numpy as np

from benchmarks.peers import spec


@nb.njit(cache=True)
def _floor_loop(
    n_entered: np.ndarray,
    entry_day: np.ndarray,
    intervals: np.ndarray,
    present: np.ndarray,
    using_out: np.ndarray,
    positives: np.ndarray,
    releases: np.ndarray,
) -> None:
    total = len(entry_day)
    using = np.empty(total, dtype=np.bool_)
    risk = np.empty(total, dtype=np.int8)
    abstinent = np.zeros(total, dtype=np.int32)
    negatives = np.zeros(total, dtype=np.int32)
    next_test = np.empty(total, dtype=np.int32)
    last_assessment = np.empty(total, dtype=np.int32)
    released = np.zeros(total, dtype=np.bool_)
    entered = 0
    n_active = 0
    for today in range(len(n_entered)):
        for i in range(entered, n_entered[today]):
            u = (i % 10) < 6
            using[i] = u
            risk[i] = spec.RISK_AT_ENTRY_USING if u else spec.RISK_AT_ENTRY_NOT_USING
            next_test[i] = today + intervals[risk[i]]
            last_assessment[i] = today
            n_active += 1
        entered = n_entered[today]
        n_using = 0
        n_pos = 0
        n_rel = 0
        for i in range(entered):
            if released[i]:
                continue
            u = using[i]
            if u:
                abstinent[i] = 0
                n_using += 1
            else:
                abstinent[i] += 1
            if today >= next_test[i]:
                if u:
                    risk[i] = spec.RISK_EXTREME
                    negatives[i] = 0
                    n_pos += 1
                else:
                    negatives[i] += 1
                next_test[i] = today + intervals[risk[i]]
            if today - last_assessment[i] >= spec.ASSESSMENT_INTERVAL_DAYS:
                if abstinent[i] >= spec.UPGRADE_ABSTINENT_DAYS and risk[i] < spec.RISK_LOW:
                    risk[i] += 1
                last_assessment[i] = today
            if (
                not u
                and abstinent[i] >= spec.RELEASE_ABSTINENT_DAYS
                and negatives[i] >= spec.RELEASE_MIN_NEGATIVE_TESTS
            ):
                released[i] = True
                n_rel += 1
        n_active -= n_rel
        present[today] = n_active
        using_out[today] = n_using
        positives[today] = n_pos
        releases[today] = n_rel


def run_floor(n: int, t: int, seed: int = 0) -> spec.Result:
    """Run the floor loop; ``seed`` is accepted (and ignored) so it fits the common runner."""
    del seed
    result = spec.new_result(t)
    n_entered = np.cumsum(spec.arrivals_per_day(n, t))
    _floor_loop(
        n_entered,
        spec.entry_days(n, t),
        spec.TEST_INTERVALS,
        result["present"],
        result["using"],
        result["positives"],
        result["releases"],
    )
    return result


def warm_up() -> None:
    """Compile (or load the cached compilation) outside any timed region."""
    run_floor(10, 5)
