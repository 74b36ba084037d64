"""Assumption uncertainty: sets of values that fit the record about as well as the calibrated one.

The calibration gives one set of values, the lowest loss. The loss is the targets' weighted
negative log-likelihood (`targets.loss`), so exp(-loss) is a likelihood; with a flat prior on
each fitted value's documented range, and the hard targets as conditions (a set that misses
one of its tolerance has probability 0), the calibrated values are near the mode of a
posterior. `dcsim uncertainty` samples that posterior by random-walk Metropolis in
the unit cube of the ranges (a Gaussian step reflected at the bounds, so the step stays
symmetric), at the calibration's scale and seeds, starting from the calibrated values.

During burn-in each chain adapts its step to the chain's own covariance and to an acceptance
rate of 0.234 (Andrieu & Thoms 2008, algorithm 4); after burn-in the step is fixed, so the
kept steps are a Markov chain whose stationary law is the posterior. A few draws, evenly
spaced over the kept steps of every chain, are written as rule overlays beside scenarios that
use them in place of the calibrated overlay, and run with the calibrated scenario as an
ensemble: the spread of a figure over the draws is how much the assumptions the record leaves
open move it. It is not Monte Carlo error (the draws share one seed) and it covers only the
fitted values, within their ranges, and not the structural switches (`dcsim compare`).

Reproducible bit for bit: the step and acceptance draws of step i of chain c come from a
generator keyed (seed, c, i), and an evaluation depends only on the values (common random
numbers, `calibration.evaluate_values`), so a chain does not depend on the number of workers,
and one resumed from its file is the chain that was not interrupted.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Adaptation", "ChainSettings", "Draw", "Problem", "Step", "UncertaintyError",
           "UncertaintyResult", "draw_indices", "fmt", "propose", "reflect", "run_chains",
           "split_rhat",
           "uncertainty", "write"]

TARGET_ACCEPTANCE = 0.234  # the optimum for a random walk in many dimensions (Roberts et al.)
ADAPT_DECAY = 0.6  # step sizes 1/(n+1)^0.6: diminishing adaptation (Andrieu & Thoms 2008)
COV_PRIOR_STEPS = 50  # the first step's covariance counts as this many steps of the chain
COV_JITTER = 1e-8  # keeps the adapted covariance positive definite


@dataclass(frozen=True)
class ChainSettings:
    """What a chain is: its length, its burn-in (adaptive) steps, how many chains run side by
    side, the sampler seed and the first step's size (a share of each range)."""

    steps: int = 1000
    burn_in: int = 500
    chains: int = 2
    seed: int = 1
    initial_step: float = 0.02

    def __post_init__(self) -> None:
        if self.chains < 1 or self.steps < 1:
            raise ValueError("a chain needs at least one step and one chain")
        if not 0 <= self.burn_in < self.steps:
            raise ValueError(f"burn-in must be from 0 to steps - 1 ({self.steps - 1}), "
                             f"got {self.burn_in}")
        if not 0 < self.initial_step <= 1:
            raise ValueError(f"initial_step must be in (0, 1], got {self.initial_step}")


@dataclass(frozen=True)
class Step:
    """One step of one chain: the state after it (unit cube), its log density, whether the
    proposal was accepted, the acceptance probability, and what the evaluations said about
    the state and the proposal (`info`, `proposal`: loss and hard shortfall, for the chain
    file)."""

    chain: int
    step: int
    x: np.ndarray
    log_density: float
    accepted: bool
    alpha: float
    info: dict[str, float]
    proposal: dict[str, float] = field(default_factory=dict)


@dataclass
class Adaptation:
    """The adaptive step of one chain (Andrieu & Thoms 2008, algorithm 4): a global log scale
    tuned to the target acceptance, times a covariance tuned to the chain's states, which
    starts as a diagonal (`initial_step` of each range) worth COV_PRIOR_STEPS steps, so that
    the first few states (often all one, while nothing is accepted) cannot collapse it."""

    start: np.ndarray
    initial_step: float
    n: int = 0
    log_scale: float = 0.0
    mean: np.ndarray = field(init=False)
    cov: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.mean = np.array(self.start, dtype=np.float64)
        self.cov = np.eye(self.dim) * self.initial_step ** 2

    @property
    def dim(self) -> int:
        return int(self.start.shape[0])

    def update(self, x: np.ndarray, alpha: float) -> None:
        self.log_scale += (alpha - TARGET_ACCEPTANCE) / (self.n + 1) ** ADAPT_DECAY
        gamma = 1.0 / (self.n + 1 + COV_PRIOR_STEPS) ** ADAPT_DECAY
        d = x - self.mean
        self.mean = self.mean + gamma * d
        self.cov = self.cov + gamma * (np.outer(d, d) - self.cov)
        self.n += 1

    def chol(self) -> np.ndarray:
        """Cholesky factor of the step's covariance, exp(log_scale) * cov."""
        c = math.exp(self.log_scale) * (self.cov + COV_JITTER * np.eye(self.dim))
        return np.linalg.cholesky(c)


def reflect(z: np.ndarray) -> np.ndarray:
    """z folded into [0, 1] by reflection at the bounds (any number of times)."""
    z = np.mod(z, 2.0)
    return np.where(z > 1.0, 2.0 - z, z)


def propose(x: np.ndarray, chol: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, float]:
    """A proposal from x (Gaussian step, reflected) and the uniform that accepts or rejects it;
    both from `rng`, in that order."""
    z = rng.standard_normal(x.shape[0])
    return reflect(x + chol @ z), float(rng.random())


def step_rng(seed: int, chain: int, step: int) -> np.random.Generator:
    """The generator of one step: keyed, so a chain resumed at any step draws as it would have."""
    return np.random.default_rng([int(seed), int(chain), int(step)])


LogDensity = Callable[[list[np.ndarray]], list[tuple[float, dict[str, float]]]]


def _accept(current: float, proposed: float, u: float) -> tuple[bool, float]:
    """Metropolis: accept with probability min(1, exp(proposed - current)); -inf never wins,
    and any finite proposal beats a current -inf."""
    if proposed == -math.inf:
        return False, 0.0
    if current == -math.inf:
        return True, 1.0
    alpha = math.exp(min(0.0, proposed - current))
    return u < alpha, alpha


def run_chains(log_density: LogDensity, start: np.ndarray, start_density: tuple[float, dict],
               settings: ChainSettings, history: Sequence[Step] = (),
               on_steps: Callable[[list[Step]], None] | None = None) -> list[Step]:
    """Run every chain to `settings.steps`, all chains' proposals of a step evaluated as one
    batch (`log_density` takes a list of unit-cube points and gives each (log density, info)).

    `history` is what an earlier call returned (or the chain file read back): its steps are
    replayed into the adaptation, never evaluated again, and the chains go on from there.
    `on_steps(new)` is called after every batch with the steps just taken (to save them).
    """
    steps = list(history)
    adapt = [Adaptation(start, settings.initial_step) for _ in range(settings.chains)]
    current = [(start.copy(), start_density[0], dict(start_density[1]))
               for _ in range(settings.chains)]
    done = 0
    for s in steps:  # replay: the same updates in the same order as when they were made
        if s.step < settings.burn_in:
            adapt[s.chain].update(s.x, s.alpha)
        current[s.chain] = (s.x, s.log_density, s.info)
        done = max(done, s.step + 1)
    for i in range(done, settings.steps):
        props, us = [], []
        for c in range(settings.chains):
            p, u = propose(current[c][0], adapt[c].chol(), step_rng(settings.seed, c, i))
            props.append(p)
            us.append(u)
        new = []
        for c, (lp, info) in enumerate(log_density(props)):
            ok, alpha = _accept(current[c][1], lp, us[c])
            if ok:
                current[c] = (props[c], lp, dict(info))
            if i < settings.burn_in:
                adapt[c].update(current[c][0], alpha)
            new.append(Step(c, i, current[c][0], current[c][1], ok, alpha, current[c][2],
                            dict(info)))
        steps.extend(new)
        if on_steps is not None:
            on_steps(new)
    return steps


def draw_indices(settings: ChainSettings, draws: int) -> list[tuple[int, int]]:
    """(chain, step) of each draw: `draws` spread over the chains in turn, each chain's evenly
    spaced over its kept steps (after burn-in), the last kept step included."""
    if draws < 1:
        raise ValueError(f"draws must be at least 1, got {draws}")
    kept = settings.steps - settings.burn_in
    per = [draws // settings.chains + (1 if c < draws % settings.chains else 0)
           for c in range(settings.chains)]
    if max(per) > kept:
        raise ValueError(f"{draws} draws need {max(per)} kept steps per chain; there are "
                         f"{kept} (steps {settings.steps} - burn-in {settings.burn_in})")
    out = []
    for c, n in enumerate(per):
        if n == 0:
            continue
        at = np.round(np.linspace(settings.steps - 1, settings.burn_in, n)).astype(int)[::-1]
        out.extend((c, int(s)) for s in at)
    return out


def split_rhat(chains: Sequence[np.ndarray]) -> float:
    """Split R-hat (Gelman et al., Bayesian Data Analysis, 3rd ed., 11.4): each chain cut in
    two halves, then the between- against the within-half variance. Near 1 when the chains
    agree; above about 1.1 they have not converged. NaN when no half has any spread."""
    halves = []
    for x in chains:
        x = np.asarray(x, dtype=np.float64)
        h = x.shape[0] // 2
        if h >= 2:
            halves += [x[:h], x[h:2 * h]]
    if len(halves) < 2:
        return math.nan
    n = halves[0].shape[0]
    means = np.array([h.mean() for h in halves])
    within = float(np.mean([h.var(ddof=1) for h in halves]))
    if within == 0.0:
        return math.nan
    between = n * float(means.var(ddof=1))
    return float(math.sqrt(((n - 1) / n * within + between / n) / within))


def effective_sample_size(x: np.ndarray) -> float:
    """Effective sample size of one chain's series (Geyer's initial positive sequence on the
    autocorrelations); len(x) for an independent series, less when the chain mixes slowly.
    A constant series (a value that never moved) has 1."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    d = x - x.mean()
    var = float(d @ d) / n
    if n < 4 or var == 0.0:
        return 1.0
    f = np.fft.rfft(d, 2 * n)
    acf = np.fft.irfft(f * np.conj(f))[:n] / (n * var)
    total = 0.0
    for k in range(0, n - 1, 2):  # pairs rho_k + rho_k+1 while positive
        pair = acf[k] + acf[k + 1]
        if pair <= 0:
            break
        total += pair
    return float(min(n, n / max(2.0 * total - 1.0, 1e-12)))


# =========================================================================== the model's posterior
# Everything below connects the sampler to dcsim: the calibration's dimensions, loss and Dask
# evaluations, the chain file, the draws as rule overlays and their ensemble.

CHAIN_FILE = "chain.parquet"
CHAIN_SETTINGS = "chain.json"
DRAWS_FOLDER = "draws"
ENSEMBLE_FOLDER = "ensemble"
CALIBRATED_ARM = "calibrated"
KIND = "uncertainty"


class UncertaintyError(ValueError):
    """A chain file that does not belong to this problem, or settings it cannot use."""


@dataclass(frozen=True)
class Problem:
    """What the chains sample: the calibration's dimensions and targets, at its scale and
    seeds, from the values the scenario uses (its calibrated overlay)."""

    scenario: Any
    targets: Any
    dims: tuple
    scale: float
    seeds: tuple[int, ...]
    start: dict[str, float]

    @classmethod
    def of(cls, scenario: Any, targets: Any, scale: float | None = None,
           seeds: Sequence[int] | None = None) -> Problem:  # Scenario, TargetsFile
        """The calibration's problem (its scale and seeds unless given)."""
        from .calibration import dimensions, values_in_force

        dims = tuple(dimensions(targets, scenario))
        spec = targets.calibration
        return cls(scenario, targets, dims, float(spec.scale if scale is None else scale),
                   tuple(int(s) for s in (spec.seeds if seeds is None else seeds)),
                   values_in_force(dims, scenario))

    def to_values(self, u: np.ndarray) -> dict[str, float]:
        return {d.id: float(d.low + u[k] * (d.high - d.low)) for k, d in enumerate(self.dims)}

    def to_unit(self, values: dict[str, float]) -> np.ndarray:
        return np.array([(values[d.id] - d.low) / (d.high - d.low) if d.high > d.low else 0.5
                         for d in self.dims])

    def prepared(self) -> Any:  # a model.Prepared
        """The model the chains evaluate: the scenario without its calibrated overlay (every
        fitted value is set by the chain), at the chains' scale."""
        from .calibration import base_scenario
        from .model import prepare

        return prepare(base_scenario(self.scenario).model_copy(update={"scale": self.scale}))

    def identity(self, settings: ChainSettings, rules_hash: str | None = None) -> dict:
        """What a chain file must have been made with to be resumed (all but its length);
        `rules_hash` of self.prepared(), computed when not given."""
        rules = self.prepared().rules_hash if rules_hash is None else rules_hash
        return {"targets_sha256": self.targets.digest(), "rules": rules,
                "scale": self.scale, "seeds": list(self.seeds),
                "dims": [[d.id, d.mode, d.low, d.high] for d in self.dims],
                "start": self.start, "burn_in": settings.burn_in, "chains": settings.chains,
                "seed": settings.seed, "initial_step": settings.initial_step}


def model_log_density(problem: Problem, evaluate: Callable) -> LogDensity:
    """-loss where every hard target lies within its tolerance, else -inf; `evaluate` is
    calibration.evaluator.

    The tolerance is the target's own, without the calibration's margin
    (calibration.hard_margin): the margin keeps the one chosen point safely inside at full
    scale, while the posterior asks which sets the record allows. At the calibrated values
    the margin is within the noise of two seeds (the loss moves by about 1 and the
    margin-shrunk hard targets are missed on half of six other seed pairs)."""
    from .calibration import hard_shortfall

    def log_density(points: list[np.ndarray]) -> list[tuple[float, dict[str, float]]]:
        out = []
        for values, loss in evaluate([problem.to_values(p) for p in points]):
            short = hard_shortfall(problem.targets, values, margin=0.0)
            ok = short == 0 and math.isfinite(loss)
            out.append((-loss if ok else -math.inf, {"loss": float(loss),
                                                     "shortfall": float(short)}))
        return out

    return log_density


def chain_table(problem: Problem, steps: Sequence[Step], burn_in: int) -> pd.DataFrame:
    """The chain file's rows: one per (chain, step), the state's values and unit coordinates."""
    import pandas as pd

    rows = []
    for s in sorted(steps, key=lambda s: (s.step, s.chain)):
        row = {"chain": s.chain, "step": s.step,
               "phase": "burn-in" if s.step < burn_in else "kept",
               "accepted": bool(s.accepted), "alpha": float(s.alpha),
               "log_density": float(s.log_density), "loss": s.info.get("loss", math.nan),
               "hard_shortfall": s.info.get("shortfall", math.nan),
               "proposal_loss": s.proposal.get("loss", math.nan),
               "proposal_shortfall": s.proposal.get("shortfall", math.nan)}
        values = problem.to_values(s.x)
        for k, d in enumerate(problem.dims):
            row[d.id] = values[d.id]
            row[f"unit.{d.id}"] = float(s.x[k])
        rows.append(row)
    return pd.DataFrame(rows)


def steps_of(problem: Problem, table: pd.DataFrame) -> list[Step]:
    """The chain file read back as steps (unit coordinates exact: they are stored)."""
    cols = [f"unit.{d.id}" for d in problem.dims]
    x = table[cols].to_numpy(np.float64)
    return [Step(int(r.chain), int(r.step), x[i].copy(), float(r.log_density), bool(r.accepted),
                 float(r.alpha), {"loss": float(r.loss), "shortfall": float(r.hard_shortfall)},
                 {"loss": float(r.proposal_loss), "shortfall": float(r.proposal_shortfall)})
            for i, r in enumerate(table.itertuples(index=False))]


def _write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_history(problem: Problem, settings: ChainSettings, folder: Path,
                 restart: bool = False, identity: dict | None = None) -> list[Step]:
    """The steps already in `folder`'s chain file, if it was made for this problem and these
    settings (`identity`, problem.identity's, computed when not given); [] when there is
    none or `restart`."""
    import pandas as pd

    path, spec = folder / CHAIN_FILE, folder / CHAIN_SETTINGS
    if restart or not path.is_file():
        return []
    ident = problem.identity(settings) if identity is None else identity
    want = json.loads(json.dumps(ident, default=str))
    try:
        have = json.loads(spec.read_text())
    except (OSError, json.JSONDecodeError):
        have = None
    if have != want:
        differ = sorted(k for k in want if have is None or have.get(k) != want[k])
        raise UncertaintyError(
            f"{path}: made for other settings ({', '.join(differ) or 'unreadable ' + spec.name}"
            "); --restart starts it again, or give another --out")
    table = pd.read_parquet(path)
    return [s for s in steps_of(problem, table) if s.step < settings.steps]


def sample(problem: Problem, settings: ChainSettings, folder: str | Path, *,
           restart: bool = False, workers: int | None = None, scheduler: str | None = None,
           client: Any = None, progress: Callable[[int, int], None] | None = None
           ) -> list[Step]:
    """Run (or resume) the chains, saving the chain file after every step; the steps.
    A chain file made for another problem or settings raises UncertaintyError first."""
    import pandas as pd

    from .calibration import evaluator
    from .ensemble import ModelSpec, session

    folder = Path(folder)
    prepared = problem.prepared()
    identity = problem.identity(settings, prepared.rules_hash)
    history = read_history(problem, settings, folder, restart, identity)
    folder.mkdir(parents=True, exist_ok=True)
    steps = list(history)
    rows = chain_table(problem, steps, settings.burn_in).to_dict("records")
    total = settings.chains * settings.steps

    def save(new: list[Step]) -> None:  # only the new steps are turned into rows
        steps.extend(new)
        rows.extend(chain_table(problem, new, settings.burn_in).to_dict("records"))
        table = pd.DataFrame(rows)
        _write_atomic(folder / CHAIN_FILE, lambda p: table.to_parquet(p, index=False))
        if progress is not None:
            progress(len(steps), total)

    ident = json.dumps(identity, default=str, indent=1, sort_keys=True)
    _write_atomic(folder / CHAIN_SETTINGS, lambda p: p.write_text(ident + "\n"))
    if progress is not None:
        progress(len(steps), total)
    with session(client, workers, scheduler) as c:
        evaluate = evaluator(c, ModelSpec.of(prepared), problem.targets, problem.dims,
                             problem.seeds, prepared.scenario.end)
        log_density = model_log_density(problem, evaluate)
        u0 = np.clip(problem.to_unit(problem.start), 0.0, 1.0)
        start_density = log_density([u0])[0]
        run_chains(log_density, u0, start_density, settings, history, on_steps=save)
    return steps


# --------------------------------------------------------------------------- the draws


@dataclass(frozen=True)
class Draw:
    """One set of values taken from a chain: its name, where it came from and its files."""

    name: str
    chain: int
    step: int
    values: dict[str, float]
    loss: float
    overlay: Path
    scenario: Path


def _draw_header(problem: Problem, name: str, step: Step, study: str) -> list[str]:
    return [
        f"# One draw of the assumptions ({name}): written by `dcsim uncertainty`, do not edit.",
        f"# Chain {step.chain}, step {step.step} of {study}: a set of values the calibration's",
        "# likelihood (targets.yaml, its loss) and hard targets allow about as well as the",
        "# calibrated one (docs/calibration.md, section 8); used in place of calibrated.yaml.",
        f"# Loss {step.info.get('loss', math.nan):.3f} at scale {problem.scale:g}, seeds "
        f"{list(problem.seeds)}; targets sha256 {problem.targets.digest()[:12]}.",
    ]


def _scenario_text(problem: Problem, name: str, overlay: Path) -> str:
    """A scenario file: the problem's scenario with the draw's overlay (beside the file) in
    place of the calibrated one, every other rule file by package name or absolute path."""
    import yaml

    from .calibration import OVERLAY_NAME
    from .scenario import PACKAGE_PREFIX

    sc = problem.scenario

    def fixed(n: str) -> str:
        if Path(n.removeprefix(PACKAGE_PREFIX)).name == OVERLAY_NAME:
            return overlay.name
        return n if n.startswith(PACKAGE_PREFIX) else str(sc.rule_path(n))

    data = sc.model_dump(mode="json", exclude={"source"})
    data["rules"] = [fixed(n) for n in sc.rules]
    if overlay.name not in data["rules"]:
        data["rules"].append(overlay.name)
    data["overlays"] = [fixed(n) for n in sc.overlays]
    for j in data["jurisdictions"]:
        j["rules"] = [fixed(n) for n in j["rules"]]
    data["name"] = f"{sc.name}-{name}"
    data["description"] = (f"{' '.join(sc.description.split())} With draw {name} of the "
                           "assumptions (dcsim uncertainty) in place of the calibrated overlay.")
    return ("# Written by `dcsim uncertainty`: the scenario sampled, with one draw of the "
            "assumptions.\n" + yaml.safe_dump(data, sort_keys=False, allow_unicode=True,
                                              width=100))


def write_draws(problem: Problem, steps: Sequence[Step], settings: ChainSettings, draws: int,
                folder: str | Path, study: str) -> list[Draw]:
    """The draws (draw_indices) as rule overlays and scenarios in folder/draws."""
    from .calibration import CalibrationResult, write_overlay

    out = Path(folder) / DRAWS_FOLDER
    out.mkdir(parents=True, exist_ok=True)
    by = {(s.chain, s.step): s for s in steps}
    result = []
    for k, (c, i) in enumerate(draw_indices(settings, draws), start=1):
        name = f"draw-{k:02d}"
        st = by[(c, i)]
        values = problem.to_values(st.x)
        cal = CalibrationResult(study, out, len(steps), st.info.get("loss", math.nan), values,
                                {}, None, list(problem.dims), 1)
        overlay = write_overlay(
            cal, problem.scenario, problem.targets, out / f"{name}.yaml", problem.scale,
            problem.seeds, header=_draw_header(problem, name, st, study),
            made_by=f"dcsim uncertainty, {name} (chain {c}, step {i})",
            description=f"Draw {name} of the assumptions the targets inform (dcsim "
                        "uncertainty, docs/calibration.md section 8), in place of the "
                        "calibrated overlay.")
        scen = out / f"{name}.scenario.yaml"
        text = _scenario_text(problem, name, overlay)
        _write_atomic(scen, lambda p, t=text: p.write_text(t, encoding="utf-8"))
        result.append(Draw(name, c, i, values, st.info.get("loss", math.nan), overlay, scen))
    return result


# --------------------------------------------------------------------------- the ensemble


def _draw_digest(d: Draw) -> str:
    """The draw's identity for the ensemble's plan: its values, so that the runs of another
    chain's draws are never taken for this one's."""
    import hashlib

    text = json.dumps({"chain": d.chain, "step": d.step, "values": d.values}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def draw_arms(problem: Problem, draws: Sequence[Draw], reform: Path | None = None) -> list:
    """The calibrated scenario and every draw's, each with `reform` as an overlay if given."""
    from .compare import Arm

    sc = problem.scenario
    ref = str(sc.source) if sc.source is not None else "national_baseline"
    extra = [] if reform is None else [str(reform)]
    tag = "" if reform is None else f"+{reform.name.removesuffix('.yaml')}"
    arms = [Arm(CALIBRATED_ARM + tag, ref, [*sc.overlays, *extra],
                "the scenario with its calibrated overlay")]
    arms += [Arm(d.name + tag, str(d.scenario.resolve()), extra,
                 f"draw {d.name}: chain {d.chain}, step {d.step}, values {_draw_digest(d)}")
             for d in draws]
    return arms


DRAWS_LIST = "draws.json"


def forget_other_draws(folder: Path, draws: Sequence[Draw]) -> bool:
    """Remove the runs made from other draws (a longer chain, or other --draws, moves them):
    they are derived from the chain file and made again. True if any were removed."""
    import shutil

    want = [{"name": d.name, "values": _draw_digest(d)} for d in draws]
    path = folder / DRAWS_LIST
    try:
        have = json.loads(path.read_text())
    except (OSError, ValueError):
        have = None
    stale = have != want
    if stale:
        for old in [folder / ENSEMBLE_FOLDER, *folder.glob("reform-*")]:
            shutil.rmtree(old, ignore_errors=True)
        _write_atomic(path, lambda p: p.write_text(json.dumps(want, indent=1) + "\n"))
    return stale and have is not None


def reform_folder(folder: Path, reform: Path) -> Path:
    return folder / f"reform-{reform.name.removesuffix('.yaml')}"


def run_draws(problem: Problem, draws: Sequence[Draw], folder: str | Path, *,
              scale: float | None = None, seed: int | None = None,
              reforms: Sequence[Path] = (), workers: int | None = None,
              scheduler: str | None = None, client: Any = None,
              progress: Callable[[int, int], None] | None = None) -> Path:
    """The calibrated scenario and every draw's scenario, on one seed (so the draws differ by
    their values alone), as a comparison folder in folder/ensemble; then each reform on top
    of each of them, in folder/reform-<name>. Returns the ensemble's folder."""
    from .ensemble import run_ensemble, session

    folder = Path(folder)
    seeds = [problem.scenario.seed if seed is None else seed]
    plans = [(folder / ENSEMBLE_FOLDER, draw_arms(problem, draws))]
    plans += [(reform_folder(folder, r), draw_arms(problem, draws, r)) for r in reforms]
    total = sum(len(arms) for _, arms in plans)
    done = 0
    with session(client, workers, scheduler) as c:
        for out, arms in plans:
            run_ensemble(arms, seeds, out, scale=scale, client=c, progress=None if progress
                         is None else (lambda d, _n, base=done: progress(base + d, total)))
            done += len(arms)
    return folder / ENSEMBLE_FOLDER


def effects_table(folder: Path, reforms: Sequence[Path]) -> pd.DataFrame:
    """Per reform and headline figure: its effect (reform minus the same scenario without
    it) on the calibrated scenario and, over the draws, the median, the 5th and 95th
    percentiles, and the share of draws in which it has the calibrated effect's sign."""
    import pandas as pd

    from .compare import HEADLINES

    labels = {h.key: h.label.strip() for h in HEADLINES}
    base = pd.read_parquet(folder / ENSEMBLE_FOLDER / "per_seed.parquet")
    base = base.set_index(["key", "arm"])["value"]
    rows = []
    for r in reforms:
        name = r.name.removesuffix(".yaml")
        per = pd.read_parquet(reform_folder(folder, r) / "per_seed.parquet")
        per["arm"] = per["arm"].str.removesuffix(f"+{name}")
        per = per.set_index(["key", "arm"])["value"]
        effect = (per - base.reindex(per.index)).rename("effect").reset_index()
        for key, block in effect.groupby("key", sort=False):
            cal = float(block.loc[block["arm"] == CALIBRATED_ARM, "effect"].iloc[0])
            x = block.loc[block["arm"] != CALIBRATED_ARM, "effect"].to_numpy(np.float64)
            q = np.quantile(x, [0.05, 0.5, 0.95])
            same = float(np.mean(np.sign(x) == np.sign(cal))) if cal != 0 else math.nan
            rows.append({"reform": name, "key": key, "label": labels.get(key, key),
                         "calibrated": cal, "p05": float(q[0]), "median": float(q[1]),
                         "p95": float(q[2]), "same_sign": same, "draws": int(x.size)})
    return pd.DataFrame(rows)


def posterior_table(problem: Problem, steps: Sequence[Step], settings: ChainSettings
                    ) -> pd.DataFrame:
    """Per fitted value: its range, the calibrated value, and over the kept steps of all
    chains the mean, sd, 5th and 95th percentiles, the 90% width as a share of the range,
    the smallest effective sample size of a chain and the split R-hat."""
    import pandas as pd

    kept = [s for s in steps if s.step >= settings.burn_in]
    rows = []
    for k, d in enumerate(problem.dims):
        x = np.array([d.low + s.x[k] * (d.high - d.low) for s in kept])
        by_chain = [np.array([d.low + s.x[k] * (d.high - d.low) for s in kept
                              if s.chain == c]) for c in range(settings.chains)]
        ess = [effective_sample_size(v) for v in by_chain]
        lo, hi = (np.quantile(x, [0.05, 0.95]) if x.size else (math.nan, math.nan))
        rows.append({"dimension": d.id, "low": d.low, "high": d.high,
                     "calibrated": problem.start[d.id],
                     "mean": float(x.mean()) if x.size else math.nan,
                     "sd": float(x.std()) if x.size else math.nan,
                     "p05": float(lo), "p95": float(hi),
                     "width_share": float((hi - lo) / (d.high - d.low)) if d.high > d.low
                     else 0.0,
                     "min_ess": float(min(ess)) if kept else math.nan,
                     "rhat": split_rhat(by_chain)})
    return pd.DataFrame(rows)


def acceptance(steps: Sequence[Step], settings: ChainSettings) -> float:
    kept = [s for s in steps if s.step >= settings.burn_in]
    return float(np.mean([s.accepted for s in kept])) if kept else math.nan


def predictions_table(ensemble: Path) -> pd.DataFrame:
    """Per headline figure: the calibrated run's value and, over the draws, the median and
    the 5th and 95th percentiles (the spread the assumptions leave open)."""
    import pandas as pd

    from .compare import HEADLINES

    per = pd.read_parquet(ensemble / "per_seed.parquet")
    labels = {h.key: h.label.strip() for h in HEADLINES}
    rows = []
    for key, block in per.groupby("key", sort=False):
        cal = block.loc[block["arm"] == CALIBRATED_ARM, "value"].to_numpy(np.float64)
        x = block.loc[block["arm"] != CALIBRATED_ARM, "value"].to_numpy(np.float64)
        q = np.quantile(x, [0.05, 0.5, 0.95]) if x.size else [math.nan] * 3
        rows.append({"key": key, "label": labels.get(key, key),
                     "calibrated": float(cal[0]) if cal.size else math.nan,
                     "p05": float(q[0]), "median": float(q[1]), "p95": float(q[2]),
                     "draws": int(x.size)})
    return pd.DataFrame(rows)


PREDICTED = (("existing_users", "stock", "persons"), ("abstinent_3y", "stock", "persons"),
             ("caught", "flow", "person-times"), ("isolation_orders", "flow", "person-times"),
             ("community_orders", "flow", "person-times"))
PREDICTED_YEARS = (2019, 2020, 2021, 2022, 2023, 2024, 2025)


def draw_series(ensemble: Path) -> tuple[dict[str, np.ndarray], list[dict[str, np.ndarray]]]:
    """National monthly series of the calibrated run and of every draw's run."""
    import pandas as pd

    from .validate import model_series

    manifest = json.loads((ensemble / "manifest.json").read_text())
    runs = manifest["runs"]

    def series(arm: str) -> dict[str, np.ndarray]:
        (rel,) = runs[arm].values()
        return model_series(pd.read_parquet(ensemble / rel / "monthly.parquet"))

    return series(CALIBRATED_ARM), [series(a) for a in runs if a != CALIBRATED_ARM]


def official_predictions(ensemble: Path, years: Sequence[int] = PREDICTED_YEARS
                         ) -> pd.DataFrame:
    """The official quantities of PREDICTED at the end of each year, as `dcsim validate`
    reads them: the calibrated run, and the median and 5th-95th percentiles over the draws."""
    import datetime as dt

    import pandas as pd

    from .validate import Figure, compare

    calibrated, draws = draw_series(ensemble)
    figs = [Figure(0, dt.date(y, 12, 31), q, math.nan, kind, unit, "", "", "")
            for q, kind, unit in PREDICTED for y in years]
    cal = compare(figs, [calibrated])
    over = compare(figs, draws)
    return pd.DataFrame({"quantity": [f.quantity for f in figs],
                         "date": [f.date.isoformat() for f in figs],
                         "unit": [f.unit for f in figs], "calibrated": cal["model"],
                         "p05": over["model_p05"], "median": over["model_p50"],
                         "p95": over["model_p95"],
                         "role": cal["role"]})



# --------------------------------------------------------------------------- the result


@dataclass
class UncertaintyResult:
    """The chains, the draws and their ensemble, and the tables made from them."""

    problem: Problem
    settings: ChainSettings
    steps: list[Step]
    draws: list[Draw]
    ensemble: Path
    run_scale: float
    run_seed: int
    posterior: pd.DataFrame
    predictions: pd.DataFrame
    official: pd.DataFrame
    effects: pd.DataFrame | None = None  # with reforms: effects_table

    @property
    def acceptance(self) -> float:
        return acceptance(self.steps, self.settings)


def uncertainty(scenario: Any, targets: Any, folder: str | Path, settings: ChainSettings,
                draws: int, *, scale: float | None = None, seed: int | None = None,
                reforms: Sequence[Path] = (), restart: bool = False,
                workers: int | None = None, scheduler: str | None = None, client: Any = None,
                chain_scale: float | None = None, chain_seeds: Sequence[int] | None = None,
                progress: Callable[[str, int, int], None] | None = None) -> UncertaintyResult:
    """Sample the chains (or resume them), write the draws and run them with the calibrated
    scenario, and each reform (a rule overlay) on top of each; `progress(stage, done, total)`
    with stage 'steps' or 'runs'. The chains run at the calibration's scale and seeds unless
    `chain_scale`, `chain_seeds` say otherwise; the draws at `scale` (default the
    scenario's) on `seed`. With `client` every run goes to its cluster. `restart` discards
    the chain file and every run made from its draws."""
    import shutil

    folder = Path(folder)
    problem = Problem.of(scenario, targets, chain_scale, chain_seeds)
    draw_indices(settings, draws)  # the numbers fit together, before any work
    if restart:
        for old in [folder / DRAWS_FOLDER, folder / ENSEMBLE_FOLDER,
                    *folder.glob("reform-*")]:
            shutil.rmtree(old, ignore_errors=True)
    steps = sample(problem, settings, folder, restart=restart, workers=workers,
                   scheduler=scheduler, client=client,
                   progress=None if progress is None else (lambda d, n: progress("steps", d, n)))
    drawn = write_draws(problem, steps, settings, draws, folder,
                        f"chain file {folder / CHAIN_FILE}")
    forget_other_draws(folder, drawn)
    run_seed = scenario.seed if seed is None else seed
    run_scale = scenario.scale if scale is None else scale
    ens = run_draws(problem, drawn, folder, scale=run_scale, seed=run_seed, reforms=reforms,
                    workers=workers, scheduler=scheduler, client=client,
                    progress=None if progress is None else (lambda d, n: progress("runs", d, n)))
    return UncertaintyResult(problem, settings, steps, drawn, ens, run_scale, run_seed,
                             posterior_table(problem, steps, settings), predictions_table(ens),
                             official_predictions(ens),
                             effects_table(folder, reforms) if reforms else None)


def fmt(v: float) -> str:
    """A number as the tables print it: thousands separated, three figures below ten."""
    if not math.isfinite(v):
        return "-"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 10:
        return f"{v:.1f}"
    return f"{v:.3g}"


def markdown(result: UncertaintyResult, command: str) -> str:
    """uncertainty.md: what was sampled, how well the chains mixed, which values the record
    leaves open, and the spread of the predictions."""
    s, p = result.settings, result.problem
    post = result.posterior.sort_values("width_share", ascending=False)
    lines = [
        "# Assumption uncertainty (dcsim uncertainty)", "",
        f"Command: `{command}`", "",
        f"{s.chains} chains of {s.steps} steps ({s.burn_in} of burn-in, adaptive; the rest "
        f"kept, the step fixed), sampler seed {s.seed}, at the calibration's scale "
        f"{p.scale:g} and seeds {list(p.seeds)}, from the calibrated values. Acceptance over "
        f"the kept steps: {100 * result.acceptance:.1f}%. {len(result.draws)} draws, evenly "
        f"spaced over the kept steps, run with the calibrated scenario at scale "
        f"{result.run_scale:g} on seed {result.run_seed}.", "",
        "The spread below is how much the fitted values that the record leaves open move a "
        "figure: the calibration's likelihood (targets.yaml) with a flat prior on each "
        "range, the hard targets as conditions. It is not Monte Carlo error (every draw runs "
        "on the same seed), and it does not cover the structural switches (`dcsim compare`) "
        "or values that are not calibrated. A small effective sample size (ESS, per chain) or "
        "an R-hat above about 1.1 (the chains disagree) means the chains did not explore that "
        "value well: its interval is then a lower bound on its uncertainty.", "",
        f"Over all values: ESS {post['min_ess'].min():.0f} to {post['min_ess'].max():.0f} per "
        f"chain, R-hat {post['rhat'].min():.2f} to {post['rhat'].max():.2f}; "
        f"{int((post['rhat'] > 1.1).sum())} of {len(post)} values above 1.1.", "",
        "## The fitted values (widest first)", "",
        "| value | range | calibrated | 5% | 95% | width of range | min ESS | R-hat |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in post.itertuples(index=False):
        lines.append(f"| {r.dimension} | {fmt(r.low)} to {fmt(r.high)} | "
                     f"{fmt(r.calibrated)} | {fmt(r.p05)} | {fmt(r.p95)} | "
                     f"{100 * r.width_share:.0f}% | {r.min_ess:.0f} | {r.rhat:.2f} |")
    lines += ["", "## Headline figures, 2006 to the end of the run", "",
              "| figure | calibrated | median of draws | 5% | 95% |", "|---|---|---|---|---|"]
    for r in result.predictions.itertuples(index=False):
        lines.append(f"| {r.label} | {fmt(r.calibrated)} | {fmt(r.median)} | "
                     f"{fmt(r.p05)} | {fmt(r.p95)} |")
    lines += ["", "## Official quantities at the end of each year (as `dcsim validate` reads "
              "them)", "", "| quantity | year | role | calibrated | median | 5% | 95% |",
              "|---|---|---|---|---|---|---|"]
    for r in result.official.itertuples(index=False):
        lines.append(f"| {r.quantity} | {r.date[:4]} | {r.role} | {fmt(r.calibrated)} | "
                     f"{fmt(r.median)} | {fmt(r.p05)} | {fmt(r.p95)} |")
    if result.effects is not None:
        lines += ["", "## Reforms: the effect on each draw (reform minus the same draw without "
                  "it)", "", "| reform | figure | calibrated | median | 5% | 95% | same sign |",
                  "|---|---|---|---|---|---|---|"]
        for r in result.effects.itertuples(index=False):
            same = "-" if not math.isfinite(r.same_sign) else f"{100 * r.same_sign:.0f}%"
            lines.append(f"| {r.reform} | {r.label} | {fmt(r.calibrated)} | "
                         f"{fmt(r.median)} | {fmt(r.p05)} | {fmt(r.p95)} | {same} |")
    lines += ["", "Files: `chain.parquet` (every step of every chain), `posterior.csv`, "
              "`predictions.csv`, `official.csv`, `effects.csv` (with reforms), `draws/` "
              "(each draw as a rule overlay and a scenario: `dcsim run "
              "draws/draw-01.scenario.yaml` runs one), `ensemble/` (the runs; `dcsim "
              "validate FIGURES.csv --run` this folder sets any file of figures beside the "
              "draws' 90% range), `reform-<name>/` (each reform on each draw).", ""]
    return "\n".join(lines)


def write(result: UncertaintyResult, folder: str | Path, command: str) -> dict[str, Path]:
    """The tables, the report and the manifest (last) into `folder` (a staging folder of
    outputs.publish)."""
    from .jit import source_hash

    folder = Path(folder)
    out = {}
    tables = [("posterior.csv", result.posterior), ("predictions.csv", result.predictions),
              ("official.csv", result.official)]
    if result.effects is not None:
        tables.append(("effects.csv", result.effects))
    for name, df in tables:
        df.to_csv(folder / name, index=False)
        out[name] = folder / name
    (folder / "uncertainty.md").write_text(markdown(result, command), encoding="utf-8")
    out["uncertainty.md"] = folder / "uncertainty.md"
    s = result.settings
    manifest = {
        "kind": KIND, "command": command, "dcsim_source": source_hash(),
        "settings": {"steps": s.steps, "burn_in": s.burn_in, "chains": s.chains,
                     "seed": s.seed, "initial_step": s.initial_step},
        "calibration_scale": result.problem.scale,
        "calibration_seeds": list(result.problem.seeds),
        "acceptance": result.acceptance, "run_scale": result.run_scale,
        "run_seed": result.run_seed, "ensemble": ENSEMBLE_FOLDER,
        "reforms": [] if result.effects is None else sorted(set(result.effects["reform"])),
        "draws": [{"name": d.name, "chain": d.chain, "step": d.step, "loss": d.loss,
                   "scenario": f"{DRAWS_FOLDER}/{d.scenario.name}"} for d in result.draws],
    }
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    out["manifest.json"] = folder / "manifest.json"
    return out
