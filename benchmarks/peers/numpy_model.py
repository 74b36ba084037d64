"""Vectorised plain-NumPy registry-core: the plainest statement of the semantics in ``spec``.

It is the cross-check for the framework peers: one ``np.random.Generator``, one daily step that
works on the index array of present, unreleased persons, with steps 1-5 of ``spec`` applied to
all of them at once. Persons never interact, so "all persons, step by step" equals "each person,
steps 1-5" of the reference.
"""

from __future__ import annotations

import numpy as np

from benchmarks.peers import spec


class NumpyRegistry:
    """State arrays over every person who will ever enter, and the daily step.

    Exposed as a class (not only ``run_numpy``) so tests can check invariants between days.
    """

    def __init__(self, n: int, t: int, seed: int) -> None:
        self.n, self.t = n, t
        self.rng = np.random.default_rng(seed)
        self.entry_day = spec.entry_days(n, t)
        self.entered_by = np.cumsum(spec.arrivals_per_day(n, t))  # persons entered by end of day
        total = len(self.entry_day)
        self.using = np.zeros(total, dtype=bool)
        self.risk = np.zeros(total, dtype=np.int8)
        self.abstinent = np.zeros(total, dtype=np.int32)
        self.negatives = np.zeros(total, dtype=np.int32)
        self.next_test = np.zeros(total, dtype=np.int32)
        self.last_assessment = np.zeros(total, dtype=np.int32)
        self.released = np.zeros(total, dtype=bool)
        self.release_day = np.full(total, -1, dtype=np.int32)
        self.active = np.empty(0, dtype=np.int64)  # present and unreleased, in person order
        self.n_entered = 0
        self.day = 0
        self.result = spec.new_result(t)

    def _enter(self, today: int) -> None:
        """Initialise today's entrants (step 0) and append them to the active set."""
        new = np.arange(self.n_entered, self.entered_by[today])
        self.n_entered = int(self.entered_by[today])
        using = self.rng.random(len(new)) < spec.P_USING_AT_ENTRY
        self.using[new] = using
        risk = np.where(using, spec.RISK_AT_ENTRY_USING, spec.RISK_AT_ENTRY_NOT_USING)
        self.risk[new] = risk
        self.next_test[new] = today + spec.TEST_INTERVALS[risk]
        self.last_assessment[new] = today
        self.active = np.concatenate([self.active, new])

    def step(self) -> None:
        """Advance one day and fill that day's outputs."""
        today, out = self.day, self.result
        self._enter(today)
        idx = self.active

        # 1. use: one uniform per person, compared with the probability of its group
        u = self.using[idx]
        draw = self.rng.random(len(idx))
        switch = np.where(u, draw < spec.P_STOP, draw < spec.P_RELAPSE)
        u ^= switch
        self.using[idx] = u
        # stopping or relapsing restarts the count at 0; then every non-user adds today
        abst = np.where(u, 0, np.where(switch, 0, self.abstinent[idx]) + 1).astype(np.int32)
        self.abstinent[idx] = abst

        # 2. scheduled tests
        due = idx[self.next_test[idx] <= today]
        pos = due[self.using[due]]
        neg = due[~self.using[due]]
        self.risk[pos] = spec.RISK_EXTREME
        self.negatives[pos] = 0
        self.negatives[neg] += 1
        self.next_test[due] = today + spec.TEST_INTERVALS[self.risk[due]]

        # 3. alerts: each alert reaches with P_ALERT_REACHES; a reached person is tested once
        alerts = self.rng.poisson(spec.ALERT_RATE_PER_DAY, len(idx))
        alerted = np.flatnonzero(alerts)
        reached = idx[alerted[self.rng.binomial(alerts[alerted], spec.P_ALERT_REACHES) > 0]]
        alert_pos = reached[self.using[reached]]
        self.risk[alert_pos] = spec.RISK_EXTREME
        self.negatives[alert_pos] = 0

        # 4. assessment
        assess = idx[today - self.last_assessment[idx] >= spec.ASSESSMENT_INTERVAL_DAYS]
        up = assess[
            (self.abstinent[assess] >= spec.UPGRADE_ABSTINENT_DAYS)
            & (self.risk[assess] < spec.RISK_LOW)
        ]
        self.risk[up] += 1
        self.last_assessment[assess] = today

        # 5. release
        rel_mask = (
            ~u
            & (abst >= spec.RELEASE_ABSTINENT_DAYS)
            & (self.negatives[idx] >= spec.RELEASE_MIN_NEGATIVE_TESTS)
        )
        rel = idx[rel_mask]
        self.released[rel] = True
        self.release_day[rel] = today
        self.active = idx[~rel_mask]

        out["present"][today] = len(self.active)
        out["using"][today] = np.count_nonzero(u & ~rel_mask)
        out["alerts"][today] = alerts.sum()
        out["contacts"][today] = len(reached)
        out["positives"][today] = len(pos) + len(alert_pos)
        out["releases"][today] = len(rel)
        self.day += 1

    def run(self) -> spec.Result:
        """Run the remaining days and return the result."""
        while self.day < self.t:
            self.step()
        return self.result


def run_numpy(n: int, t: int, seed: int) -> spec.Result:
    """Run registry-core in plain NumPy for ``t`` days with ``n`` initial persons."""
    return NumpyRegistry(n, t, seed).run()
