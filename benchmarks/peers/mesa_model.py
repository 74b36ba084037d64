"""registry-core in Mesa 3, written the way Mesa's own examples are.

One ``Person`` agent per person, holding its state in attributes and drawing with the model's
seeded ``random.Random`` (``self.random``, Mesa's per-agent scalar RNG). The model adds the
day's entrants with ``Person.create_agents``, activates every agent through the AgentSet, and a
``DataCollector`` records the day's outputs from model attributes. A released person leaves the
model (``Agent.remove``), as a departing agent does in Mesa.

Activation uses ``AgentSet.do`` (Mesa 3's replacement for ``BaseScheduler``), not
``shuffle_do``: persons never interact, so the order cannot change any outcome and a shuffle
would only add cost to Mesa's side of the benchmark. ``run_mesa(..., shuffle=True)`` gives the
``RandomActivation``-style variant.
"""

from __future__ import annotations

import math

import mesa

from benchmarks.peers import spec
from benchmarks.peers.spec import (
    ALERT_RATE_PER_DAY,
    ASSESSMENT_INTERVAL_DAYS,
    P_ALERT_REACHES,
    P_RELAPSE,
    P_STOP,
    RELEASE_ABSTINENT_DAYS,
    RELEASE_MIN_NEGATIVE_TESTS,
    RISK_EXTREME,
    RISK_LOW,
    UPGRADE_ABSTINENT_DAYS,
)

_P_NO_ALERT = math.exp(-ALERT_RATE_PER_DAY)
_INTERVALS = spec.TEST_INTERVAL_DAYS  # a tuple: indexing it is cheaper than a NumPy array


class Person(mesa.Agent):
    """One person in the registry; ``step`` is steps 1-5 of the reference model for one day."""

    def __init__(self, model: RegistryModel, entry_day: int) -> None:
        super().__init__(model)
        self.using = self.random.random() < spec.P_USING_AT_ENTRY
        self.risk = spec.RISK_AT_ENTRY_USING if self.using else spec.RISK_AT_ENTRY_NOT_USING
        self.abstinent_days = 0
        self.negative_tests = 0
        self.next_test_day = entry_day + _INTERVALS[self.risk]
        self.last_assessment_day = entry_day

    @staticmethod
    def _n_alerts(u: float) -> int:
        """Poisson(ALERT_RATE_PER_DAY) by inversion of one uniform (stdlib ``random`` has none)."""
        k, p = 0, _P_NO_ALERT
        cdf = p
        while u > cdf:
            k += 1
            p *= ALERT_RATE_PER_DAY / k
            cdf += p
        return k

    def _positive(self) -> None:
        """A positive test: extreme risk, and the negatives towards release start again."""
        self.risk = RISK_EXTREME
        self.negative_tests = 0

    def step(self) -> None:
        """Steps 1-5 for today; the model's tallies collect the day's outputs."""
        model: RegistryModel = self.model  # type: ignore[assignment]
        today = model.today
        rand = self.random.random

        # 1. use
        if self.using:
            if rand() < P_STOP:
                self.using = False
                self.abstinent_days = 0
        elif rand() < P_RELAPSE:
            self.using = True
            self.abstinent_days = 0
        if not self.using:
            self.abstinent_days += 1

        # 2. scheduled test
        if today >= self.next_test_day:
            if self.using:
                self._positive()
                model.positives += 1
            else:
                self.negative_tests += 1
            self.next_test_day = today + _INTERVALS[self.risk]

        # 3. alerts
        u = rand()
        if u > _P_NO_ALERT:  # at least one alert (skips the inversion loop on ~95% of days)
            n_alerts = self._n_alerts(u)
            model.alerts += n_alerts
            if any(rand() < P_ALERT_REACHES for _ in range(n_alerts)):
                model.contacts += 1
                if self.using:
                    self._positive()
                    model.positives += 1

        # 4. assessment
        if today - self.last_assessment_day >= ASSESSMENT_INTERVAL_DAYS:
            if self.abstinent_days >= UPGRADE_ABSTINENT_DAYS and self.risk < RISK_LOW:
                self.risk += 1
            self.last_assessment_day = today

        # 5. release
        if (
            not self.using
            and self.abstinent_days >= RELEASE_ABSTINENT_DAYS
            and self.negative_tests >= RELEASE_MIN_NEGATIVE_TESTS
        ):
            model.releases += 1
            self.remove()
        elif self.using:
            model.n_using += 1


class RegistryModel(mesa.Model):
    """The registry: daily entrants, agent activation and data collection."""

    def __init__(self, n: int, t: int, seed: int, shuffle: bool = False) -> None:
        super().__init__(seed=seed)
        self.arrivals = spec.arrivals_per_day(n, t)
        self.shuffle = shuffle
        self.today = -1
        self.n_present = self.n_using = 0
        self.alerts = self.contacts = self.positives = self.releases = 0
        self.datacollector = mesa.DataCollector(
            model_reporters={
                "present": "n_present",
                "using": "n_using",
                "alerts": "alerts",
                "contacts": "contacts",
                "positives": "positives",
                "releases": "releases",
            }
        )

    def step(self) -> None:
        """One day: entrants join, every agent steps, the outputs are collected."""
        self.today += 1
        self.n_using = self.alerts = self.contacts = self.positives = self.releases = 0
        Person.create_agents(self, int(self.arrivals[self.today]), entry_day=self.today)
        if self.shuffle:
            self.agents.shuffle_do("step")
        else:
            self.agents.do("step")
        self.n_present = len(self.agents)
        self.datacollector.collect(self)


def run_mesa(n: int, t: int, seed: int, shuffle: bool = False) -> spec.Result:
    """Run registry-core in Mesa for ``t`` days with ``n`` initial persons."""
    model = RegistryModel(n, t, seed, shuffle=shuffle)
    for _ in range(t):
        model.step()
    return spec.as_result(model.datacollector.model_vars, t)
