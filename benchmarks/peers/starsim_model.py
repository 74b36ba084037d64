"""registry-core in Starsim 3, split into the module kinds Starsim's loop is built around.

* ``Arrivals`` (``ss.Demographics``): adds the day's entrants with ``people.grow`` — the way
  ``ss.Births`` adds people — so the population grows as in the reference rather than being
  preallocated with an "entered" flag that every vectorised operation would have to mask.
* ``DrugUse`` (``ss.Disease``, like ``ss.NCD``): the natural history, step 1, in
  ``step_state``; ``using`` is an ``ss.BoolState`` whose default is the entry draw, so Starsim
  records ``n_using`` by itself.
* ``Registry`` (``ss.Intervention``): scheduled tests, alerts, assessments and release, steps
  2-5, in ``step``. Release is ``people.request_removal``: a released person leaves the
  population, like an emigrant, so ``n_alive`` is the number present and unreleased.

Starsim's loop runs demographics, then ``Disease.step_state``, then interventions, which is the
reference order. All draws are Starsim distributions (``ss.bernoulli``, ``ss.poisson``) with
common random numbers on (Starsim's default); dt is one day, and the sim's ``T`` points are
days 0 .. T-1 (``dur = T - 1`` days, since a Starsim timeline includes both ends).

Entrants are initialised by ``Registry.enrol``, which ``Arrivals`` calls right after growing
the population: the entry risk depends on the entry use draw, and must be set before
``DrugUse.step_state`` can change it on the entry day.
"""

from __future__ import annotations

import numpy as np
import starsim as ss

from benchmarks.peers import spec


class Arrivals(ss.Demographics):
    """Adds the reference model's entrants each day (the n initial persons exist on day 0)."""

    def __init__(self, n: int, t: int, **kwargs: object) -> None:
        super().__init__(**kwargs)
        self.per_day = spec.arrivals_per_day(n, t)
        self.per_day[0] -= n  # the initial persons are the sim's n_agents

    def init_results(self) -> None:
        """Count of entrants per day."""
        super().init_results()
        self.define_results(ss.Result("new", dtype=int, scale=False, label="Entrants"))

    def step(self) -> ss.uids:
        """Grow the population by today's entrants and enrol them (and, on day 0, everyone)."""
        people = self.sim.people
        registry: Registry = self.sim.interventions.registry
        new = people.grow(int(self.per_day[self.ti]))
        if self.ti == 0:
            registry.enrol(people.auids)
        elif len(new):
            registry.enrol(ss.uids(new))
        self.results.new[self.ti] = len(new)
        return new


class DrugUse(ss.Disease):
    """Step 1: stopping, relapse and the count of consecutive abstinent days."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__()
        self.define_pars(
            p_using_at_entry=ss.bernoulli(p=spec.P_USING_AT_ENTRY),
            p_stop=ss.bernoulli(p=ss.probperday(spec.P_STOP)),
            p_relapse=ss.bernoulli(p=ss.probperday(spec.P_RELAPSE)),
        )
        self.update_pars(**kwargs)
        self.define_states(
            ss.BoolState("using", default=self.pars.p_using_at_entry, label="Using"),
            ss.IntArr("days_abstinent", default=0, label="Consecutive days not using"),
        )

    def step_state(self) -> None:
        """Stop or relapse (restarting the count), then every non-user adds today."""
        stop = self.pars.p_stop.filter(self.using.true())
        relapse = self.pars.p_relapse.filter(self.using.false())
        self.using[stop] = False
        self.using[relapse] = True
        self.days_abstinent[stop] = 0
        self.days_abstinent[relapse] = 0
        self.days_abstinent[self.using.false()] += 1


class Registry(ss.Intervention):
    """Steps 2-5: scheduled tests, alerts, risk assessment and release."""

    def __init__(self, **kwargs: object) -> None:
        super().__init__()
        self.define_pars(
            test_interval_days=spec.TEST_INTERVALS,
            n_alerts=ss.poisson(lam=spec.ALERT_RATE_PER_DAY),  # dt = 1 day
            reached=ss.bernoulli(p=lambda self, sim, uids: spec.p_reached(self.alerts_today[uids])),
        )
        self.update_pars(**kwargs)
        self.define_states(
            ss.IntArr("risk", default=spec.RISK_AT_ENTRY_NOT_USING, label="Risk level"),
            ss.IntArr("negative_tests", default=0, label="Negative tests since last positive"),
            ss.FloatArr("ti_next_test", label="Day of the next scheduled test"),
            ss.FloatArr("ti_last_assessment", label="Day of the last risk assessment"),
            ss.IntArr("alerts_today", default=0, label="Alerts today (read by `reached`)"),
        )

    def init_results(self) -> None:
        """Daily flows of the reference outputs."""
        super().init_results()
        self.define_results(
            ss.Result("alerts", dtype=int, scale=False, label="Alerts"),
            ss.Result("contacts", dtype=int, scale=False, label="Persons reached"),
            ss.Result("positives", dtype=int, scale=False, label="Positive tests"),
            ss.Result("releases", dtype=int, scale=False, label="Releases"),
        )

    @property
    def druguse(self) -> DrugUse:
        """The use module, whose states (using, days abstinent) the registry reads."""
        return self.sim.diseases.druguse

    def enrol(self, uids: ss.uids) -> None:
        """Step 0 for new entrants: risk from the entry use draw, first test, first assessment."""
        using = self.druguse.using[uids]
        risk = np.where(using, spec.RISK_AT_ENTRY_USING, spec.RISK_AT_ENTRY_NOT_USING)
        self.risk[uids] = risk
        self.ti_next_test[uids] = self.ti + self.pars.test_interval_days[risk]
        self.ti_last_assessment[uids] = self.ti

    def _positive(self, uids: ss.uids) -> None:
        """A positive test: extreme risk, and the negatives towards release start again."""
        self.risk[uids] = spec.RISK_EXTREME
        self.negative_tests[uids] = 0

    def step(self) -> None:
        """Today's tests, alerts, assessments and releases for everyone present."""
        ti = self.ti
        using = self.druguse.using
        abstinent = self.druguse.days_abstinent
        intervals = self.pars.test_interval_days

        # 2. scheduled tests
        due = (self.ti_next_test <= ti).uids
        pos, neg = using[due], ~using[due]
        self._positive(due[pos])
        self.negative_tests[due[neg]] += 1
        self.ti_next_test[due] = ti + intervals[self.risk[due]]

        # 3. alerts; a person reached by at least one alert is tested once
        present = self.sim.people.auids
        n_alerts = self.pars.n_alerts.rvs(present)
        alerted = present[n_alerts > 0]
        self.alerts_today[alerted] = n_alerts[n_alerts > 0]
        reached = self.pars.reached.filter(alerted)
        alert_pos = reached[using[reached]]
        self._positive(alert_pos)

        # 4. risk assessment
        assess = (ti - self.ti_last_assessment >= spec.ASSESSMENT_INTERVAL_DAYS).uids
        up = assess[
            (abstinent[assess] >= spec.UPGRADE_ABSTINENT_DAYS) & (self.risk[assess] < spec.RISK_LOW)
        ]
        self.risk[up] += 1
        self.ti_last_assessment[assess] = ti

        # 5. release: the person leaves the population
        released = (
            ~using
            & (abstinent >= spec.RELEASE_ABSTINENT_DAYS)
            & (self.negative_tests >= spec.RELEASE_MIN_NEGATIVE_TESTS)
        ).uids
        self.sim.people.request_removal(released)

        res = self.results
        res.alerts[ti] = n_alerts.sum()
        res.contacts[ti] = len(reached)
        res.positives[ti] = pos.sum() + len(alert_pos)
        res.releases[ti] = len(released)


def make_sim(n: int, t: int, seed: int) -> ss.Sim:
    """The registry-core sim: daily steps over days 0 .. t-1, ``n`` initial persons."""
    return ss.Sim(
        n_agents=n,
        start=ss.days(0),
        dur=ss.days(t - 1),
        dt=ss.days(1),
        rand_seed=seed,
        use_aging=False,
        demographics=Arrivals(n, t),
        diseases=DrugUse(),
        interventions=Registry(),
        verbose=0,
    )


def run_starsim(n: int, t: int, seed: int) -> spec.Result:
    """Run registry-core in Starsim for ``t`` days with ``n`` initial persons."""
    sim = make_sim(n, t, seed)
    sim.run()
    res = sim.results
    return spec.as_result(
        {
            "present": res.n_alive,
            "using": res.druguse.n_using,
            "alerts": res.registry.alerts,
            "contacts": res.registry.contacts,
            "positives": res.registry.positives,
            "releases": res.registry.releases,
        },
        t,
    )
