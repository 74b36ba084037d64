"""Calibration: fit the assumptions the targets inform, and write them as a cited overlay.

`dcsim calibrate` searches the rule values listed under `calibration.fitted` in the targets
file (only windows labelled `assumption:`) with Optuna, scoring each trial by the targets'
weighted negative log-likelihood over a few seeds at a reduced scale. The seeds are the same in
every trial (common random numbers), so two trials differ by their values, not by luck. The
study lives in an Optuna journal file: an interrupted calibration continues where it stopped.

Trials are asked from Optuna in batches (`batch`, default 1) and each (trial, seed) of a batch
is a Dask task (`TrialTask`, plain data; `ensemble.dask_client`: a local cluster by default,
or an existing scheduler); the trials are told in trial order once the whole batch is back.
With a batch of 1 each trial is drawn from every trial before it (the sequential search).
With a batch of B, the trials of a batch are drawn from the trials complete before it, each
seeing the batch's earlier ones as running with a poor score (TPE's constant liar), which
spreads them apart: B trials run side by side, at the price of a less informed draw per trial
(a study may need more trials for the same loss). The trials drawn depend on the batch and
the sampler seed only, never on the number of workers, so a study gives the same trials, best
loss and overlay on any cluster; to reproduce one, or resume it as it would have run, keep its
batch. A kill while a batch is evaluated resumes exactly; one in the milliseconds while its
results are being told leaves a valid study whose later trials differ from an uninterrupted
one's.

`only` (`--only`) fits some dimensions and holds the others at their values in force, so a new
assumption can be fitted beside a finished fit without moving it (`hold_others`); the overlay
restates the held windows with their own `calibrated:`.

The overlay is written from the lowest-loss trial among those that meet every hard target's
tolerance (`chosen_trial`; the lowest of all if none does): the hard targets are conditions,
which the loss alone would trade for the soft figures where a hard score is nearly flat.

The result is a rule overlay (`data/rules/calibrated.yaml`): every fitted window keeps its
reference and gains `calibrated: <targets, date>`; a value with a paper or evidence reference
and no assumption part is never changed (`overlay_problems` checks it). The default scenario
lists the overlay last among its base rules, so locality files still override what they set.

This module also holds what calibration and the sensitivity analysis share: the rule windows
in force in a scenario, their stated or default ranges, and applying new values to a prepared
run without a round trip through YAML (`apply`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
import os
import re
import textwrap
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .catalogue import CATALOGUE
from .ensemble import ModelSpec, map_tasks, session, targets_json, worker_targets
from .model import Prepared, prepare, simulate, with_values
from .rules import RuleFile, RuleStack, Window, listing, load_rule_file
from .scenario import PACKAGE_PREFIX, Scenario
from .targets import TargetsFile, evaluate_all, loss

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "OVERLAY_NAME",
    "Assignment",
    "CalibrationResult",
    "CalibrationStorageError",
    "Dimension",
    "RuleWindow",
    "TrialTask",
    "apply",
    "base_scenario",
    "calibrate",
    "coerce",
    "default_range",
    "dimensions",
    "embedded_overlay_path",
    "evaluate_values",
    "evaluator",
    "hard_shortfall",
    "overlay_header",
    "values_in_force",
    "write_overlay",
    "mean_values",
    "overlay_problems",
    "rule_windows",
    "run_trial_task",
    "study_name",
    "WorseCalibrationError",
]

OVERLAY_NAME = "calibrated.yaml"
WHOLE_UNITS = ("count", "persons", "tier")


# --------------------------------------------------------------------------- rule windows


def default_range(unit: str, value: float) -> tuple[float, float]:
    """The range assumed for a value whose rule file states none: value x [0.5, 1.5], clipped
    to the unit's bounds; a flag is either setting, a tier one step either way."""
    if unit == "flag":
        return (0.0, 1.0)
    if unit == "tier":
        return (max(0.0, value - 1), min(3.0, value + 1))
    lo, hi = 0.5 * value, 1.5 * value
    if unit in ("probability", "share"):
        hi = min(hi, 1.0)
    if unit in ("count", "persons"):
        lo, hi = float(math.floor(lo)), float(math.ceil(hi))
    return (lo, hi)


DEFAULT_RANGE_RULE = (
    "value x [0.5, 1.5], clipped to [0, 1] for probabilities and shares, whole numbers for "
    "counts; flags 0 or 1; tiers one step either way"
)


def coerce(unit: str, x: float) -> float:
    """A searched or sampled number as a valid value of the unit (flags and tiers are whole)."""
    if unit == "flag":
        return 1.0 if x >= 0.5 else 0.0
    if unit in WHOLE_UNITS:
        return float(round(x))
    return float(x)


@dataclass(frozen=True)
class RuleWindow:
    """One window of a rule file as it is in force in a scenario, and where."""

    name: str
    unit: str
    value: float
    reference: str
    is_assumption: bool
    file: str
    line: int
    window: Window
    in_force: tuple[tuple[str, dt.date, dt.date | None], ...]  # (jurisdiction, from, to)

    @property
    def key(self) -> tuple[str, int]:
        return (self.file, self.line)

    @property
    def start(self) -> dt.date:
        return min(s for _, s, _ in self.in_force)

    @property
    def label(self) -> str:
        ends = {e for _, _, e in self.in_force}
        end = ends.pop() if len(ends) == 1 else None
        return f"{self.name} [{self.start:%Y-%m}..{'' if end is None else f'{end:%Y-%m}'}]"

    @property
    def where(self) -> str:
        return f"{Path(self.file).name}:{self.line}"

    def bounds(self) -> tuple[tuple[float, float], str]:
        """(low, high) and where they come from: the file's `range`, or the default rule."""
        if self.window.range is not None:
            return (self.window.range[0], self.window.range[1]), "stated"
        return default_range(self.unit, self.value), "default"


def rule_windows(scenario: Scenario) -> list[RuleWindow]:
    """Every rule window in force somewhere in the scenario, once, with where it applies."""
    stacks = dict(zip([j.id for j in scenario.jurisdictions], scenario.stacks(), strict=True))
    rows = listing(stacks)
    found: dict[tuple[str, int], dict[str, Any]] = {}
    for r in rows:
        key = (r["file"], r["line"])
        entry = found.setdefault(key, {"row": r, "in_force": []})
        entry["in_force"].append((r["jurisdiction"], r["from"], r["to"]))
    out = []
    for (file, line), e in found.items():
        r = e["row"]
        stack = stacks[r["jurisdiction"]]
        window, _ = stack.window(r["name"], r["from"])
        out.append(RuleWindow(
            name=r["name"], unit=r["unit"], value=window.value, reference=r["reference"],
            is_assumption=r["is_assumption"], file=file, line=line, window=window,
            in_force=tuple(e["in_force"]),
        ))
    return out


@dataclass(frozen=True)
class Assignment:
    """Set `name` to `value` from `first` to `last` in these jurisdictions."""

    name: str
    first: dt.date
    last: dt.date
    value: float
    jurisdictions: tuple[str, ...]


def assignments(window: RuleWindow, value: float, end: dt.date) -> list[Assignment]:
    """The table changes that set one rule window to `value` wherever it is in force."""
    groups: dict[tuple[dt.date, dt.date], list[str]] = {}
    for j, start, stop in window.in_force:
        groups.setdefault((start, stop or end), []).append(j)
    v = coerce(window.unit, value)
    return [Assignment(window.name, a, b, v, tuple(js)) for (a, b), js in groups.items()]


def apply(prepared: Prepared, changes: Sequence[Assignment]) -> Prepared:
    """A copy of a prepared run with the changes made (model.with_values, no YAML round trip).

    with_values takes one window per parameter and one list of jurisdictions per call, so the
    changes are applied in as few calls as that allows.
    """
    pending = list(changes)
    while pending:
        key = pending[0].jurisdictions
        batch: dict[str, Assignment] = {}
        rest = []
        for a in pending:
            if a.jurisdictions == key and a.name not in batch:
                batch[a.name] = a
            else:
                rest.append(a)
        prepared = with_values(
            prepared, {n: a.value for n, a in batch.items()},
            windows={n: (a.first, a.last) for n, a in batch.items()},
            jurisdictions=list(key),
        )
        pending = rest
    return prepared


# --------------------------------------------------------------------------- the search space


def base_scenario(scenario: Scenario, overlay_name: str = OVERLAY_NAME) -> Scenario:
    """The scenario without the calibrated overlay: calibration starts from the rule files."""
    def named(n: str) -> bool:
        return Path(n.removeprefix(PACKAGE_PREFIX)).name == overlay_name

    keep = [n for n in scenario.rules if not named(n)]
    over = [n for n in scenario.overlays if not named(n)]
    return scenario.model_copy(update={"rules": keep, "overlays": over})


@dataclass(frozen=True)
class Dimension:
    """One dimension of the search: a value, or a factor on several windows' base values."""

    id: str
    mode: str
    windows: tuple[RuleWindow, ...]
    low: float
    high: float
    bounds_from: str
    informs: tuple[str, ...]
    why: str

    @property
    def start(self) -> float:
        """Where the search starts: the rule files' own value (factor 1)."""
        return self.clip(1.0 if self.mode == "factor" else self.windows[0].value)

    def clip(self, x: float) -> float:
        """x kept within the search bounds."""
        return min(max(float(x), self.low), self.high)

    def values(self, x: float) -> list[tuple[RuleWindow, float]]:
        if self.mode == "factor":
            return [(w, w.value * x) for w in self.windows]
        return [(self.windows[0], x)]


def dimensions(targets: TargetsFile, scenario: Scenario) -> list[Dimension]:
    """Resolve `calibration.fitted` against the scenario's base rule files.

    Every fitted window must be labelled `assumption:` and come from a base file (not a
    locality file): calibration never moves a value backed by a source alone.
    """
    base = base_scenario(scenario)
    by_name: dict[str, list[RuleWindow]] = {}
    base_files = {str(base.rule_path(n)) for n in base.rules}
    for w in rule_windows(base):
        if w.file in base_files:
            by_name.setdefault(w.name, []).append(w)
    dims = []
    for f in targets.calibration.fitted:
        chosen: list[RuleWindow] = []
        for fw in f.windows:
            cands = sorted(by_name.get(fw.name, []), key=lambda w: w.start)
            if fw.from_ is not None:
                cands = [w for w in cands if w.start == fw.from_]
            if not cands:
                raise ValueError(f"calibration.fitted {f.id}: no window of {fw.name}"
                                 f"{'' if fw.from_ is None else f' from {fw.from_}'} "
                                 "in the scenario's base rule files")
            for w in cands:
                if not w.is_assumption:
                    raise ValueError(
                        f"calibration.fitted {f.id}: {w.label} ({w.where}) has no "
                        f"'assumption:' part in its reference ({w.reference!r}); a value "
                        "backed by a source alone is never calibrated")
            chosen.extend(cands)
        if f.bounds is not None:
            (lo, hi), source = (f.bounds[0], f.bounds[1]), "targets file"
        else:
            (lo, hi), source = chosen[0].bounds()
            source = "rule file range" if source == "stated" else "default range"
        dims.append(Dimension(f.id, f.mode, tuple(chosen), lo, hi, source,
                              tuple(f.informs), f.why))
    return dims


def values_in_force(dims: Sequence[Dimension], scenario: Scenario) -> dict[str, float]:
    """Each dimension's value in the scenario as it stands (its calibrated overlay included):
    the value in force at the start of its first window, as a factor on the base value in
    factor mode, kept within the bounds. A refit can start from there (--warm) instead of
    from the rule files' values."""
    stacks = dict(zip([j.id for j in scenario.jurisdictions], scenario.stacks(), strict=True))
    out = {}
    for d in dims:
        w = d.windows[0]
        jurisdiction, start, _ = w.in_force[0]
        value = stacks[jurisdiction].window(w.name, start)[0].value
        if d.mode == "factor":
            value = value / w.value if w.value else 1.0
        out[d.id] = d.clip(value)
    return out


HELD = "held at the value in force"  # bounds_from of a dimension --only leaves out


def hold_others(dims: Sequence[Dimension], only: Sequence[str],
                in_force: dict[str, float]) -> list[Dimension]:
    """Fit only the dimensions named in `only`: every other one is held at its value in force
    (bounds low = high), so a new assumption can be fitted beside the fitted ones without
    moving them. Its windows are then restated with their earlier `calibrated:` (write_overlay).
    """
    ids = [d.id for d in dims]
    unknown = [i for i in only if i not in ids]
    if unknown:
        raise ValueError(f"--only: {', '.join(unknown)} is not a fitted dimension of the "
                         f"targets file (calibration.fitted: {', '.join(ids)})")
    return [d if d.id in only else dataclasses.replace(
        d, low=in_force[d.id], high=in_force[d.id], bounds_from=HELD) for d in dims]


def changes_for(dims: Sequence[Dimension], x: dict[str, float],
                end: dt.date) -> list[Assignment]:
    out: list[Assignment] = []
    for d in dims:
        for w, v in d.values(x[d.id]):
            out.extend(assignments(w, v, end))
    return out


def evaluate_values(prepared: Prepared, targets: TargetsFile, seeds: Sequence[int],
                    changes: Sequence[Assignment] = ()) -> tuple[dict[str, float], list[dict]]:
    """Mean target values over seeds (and each seed's) for a prepared run with changes made."""
    p = apply(prepared, changes)
    per_seed = []
    for s in seeds:
        sc = p.scenario.model_copy(update={"seed": int(s)})
        run = simulate(dataclasses.replace(p, scenario=sc), rounds=1)  # one batch: fastest
        per_seed.append(evaluate_all(targets, run))
    return mean_values(per_seed), per_seed


def mean_values(per_seed: Sequence[dict[str, float]]) -> dict[str, float]:
    """Every target's mean over the seeds, summed in seed order (whoever ran them)."""
    return {k: float(np.mean([v[k] for v in per_seed])) for k in per_seed[0]}


@dataclass(frozen=True)
class TrialTask:
    """One seed of one trial, as plain data: the model (the worker prepares it again), the
    targets file as JSON, the rule values the trial sets and the seed."""

    model: ModelSpec
    targets: str
    changes: tuple[Assignment, ...]
    seed: int


def run_trial_task(task: TrialTask) -> dict[str, float]:
    """One seed of a trial, on a worker: every target's value (what evaluate_values computes
    for that seed), nothing else of the run."""
    p = apply(task.model.prepare(), task.changes)
    sc = p.scenario.model_copy(update={"seed": int(task.seed)})
    run = simulate(dataclasses.replace(p, scenario=sc), rounds=1)  # one batch: fastest
    return evaluate_all(worker_targets(task.targets), run)


# --------------------------------------------------------------------------- the study


def study_name(scenario: Scenario, targets: TargetsFile, prepared: Prepared,
               dims: Sequence[Dimension], scale: float, seeds: Sequence[int],
               first: dict[str, float] | None = None) -> str:
    """Name of the Optuna study: changes whenever what a trial means changes, so a resumed
    study never mixes trials of different targets, rules, scale, seeds or search space (or
    first trial, when it is not the rule files' values)."""
    spec = {
        "targets": targets.digest(), "rules": prepared.rules_hash, "scale": scale,
        "seeds": list(seeds), "dims": [(d.id, d.mode, d.low, d.high,
                                        [w.key for w in d.windows]) for d in dims],
    }
    if first is not None:
        spec["first"] = first
    h = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()
    return f"{scenario.name}-{h[:12]}"


@dataclass
class CalibrationResult:
    study_name: str
    storage: Path
    trials_complete: int
    best_loss: float
    best: dict[str, float]  # dimension id -> fitted value (or factor)
    best_values: dict[str, float]  # target id -> mean model value at the chosen trial
    overlay: Path | None
    dimensions: list[Dimension]
    trials_meeting_hard: int = 0  # complete trials whose values meet every hard target
    lowest_loss: float = math.nan  # the lowest loss of any trial (best_loss: the chosen one's)
    held: tuple[str, ...] = ()  # dimensions --only held at their values in force

    @property
    def meets_hard(self) -> bool:
        """Whether the chosen trial meets every hard target (it does whenever any trial does)."""
        return self.trials_meeting_hard > 0


class CalibrationStorageError(ValueError):
    """The study's journal cannot be read; names the file and line."""


class WorseCalibrationError(ValueError):
    """The new overlay would replace one with a lower loss; --force replaces it anyway."""


def repair_journal(path: Path, restart: bool = False) -> str | None:
    """Make the journal readable before Optuna opens it; returns what was done, or None.

    A process killed while appending leaves a torn last record (no newline, not JSON): it is
    the one operation that never completed, so it is cut off and the study resumes from the
    records before it. A damaged record elsewhere is not guessed at: CalibrationStorageError
    names its line, and `restart` moves the whole file aside (never deletes it).
    """
    if not path.exists():
        return None
    data = path.read_bytes()
    lines = data.split(b"\n")
    tail = lines.pop()  # text after the last newline: empty unless the last write was torn
    bad = next((i for i, line in enumerate(lines) if line.strip() and not _is_json(line)), None)
    if bad is not None:
        if restart:
            aside = path.with_name(f"{path.name}.damaged-{dt.datetime.now():%Y%m%dT%H%M%S}")
            os.replace(path, aside)
            return f"damaged journal moved to {aside}"
        raise CalibrationStorageError(
            f"{path}:{bad + 1}: not a journal record (the file is damaged); "
            "--restart moves it aside and starts a new study")
    if tail and not _is_json(tail):
        with open(path, "r+b") as f:
            f.truncate(len(data) - len(tail))
            f.flush()
            os.fsync(f.fileno())
        return f"torn last record of {path} cut off (an interrupted write)"
    return None


def _is_json(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def _own_journal(path: Path):  # noqa: ANN202 - an open file holding the lock
    """Hold an exclusive lock on `<journal>.owner` while the study runs (the kernel drops it
    when the process ends, killed or not). Holding it proves that Optuna's own lock file,
    which a killed process leaves behind and which would stall the next run for 30 s or
    more, is stale: it is removed. A second calibration on the same journal is refused."""
    import fcntl

    owner = open(path.with_name(path.name + ".owner"), "a")  # noqa: SIM115 - held open
    try:
        fcntl.flock(owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        owner.close()
        raise CalibrationStorageError(
            f"{path}: another dcsim calibrate is using this journal; wait for it or give "
            "another --storage") from None
    stale = path.with_name(path.name + ".lock")
    if os.path.lexists(stale):
        os.unlink(stale)
    return owner


def _storage(path: Path, restart: bool = False):  # noqa: ANN202 - an optuna storage
    """(the journal storage, the lock to hold while using it)."""
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path.parent.mkdir(parents=True, exist_ok=True)
    owner = _own_journal(path)
    repair_journal(path, restart)
    return JournalStorage(JournalFileBackend(str(path))), owner


def overlay_loss(path: Path) -> float | None:
    """The best loss an overlay written by `dcsim calibrate` states in its header, or None."""
    try:
        head = path.read_bytes()[:4096]
    except OSError:
        return None
    m = re.search(rb"^#.*; best loss (-?[0-9]+(?:\.[0-9]+)?(?:e[-+]?[0-9]+)?)", head, re.M)
    return float(m.group(1)) if m else None


def overlay_meets_hard(path: Path) -> bool | None:
    """Whether an overlay's header says its trial met every hard target (None: not stated,
    as in overlays written before hard targets were conditions of the choice)."""
    try:
        head = path.read_bytes()[:4096]
    except OSError:
        return None
    m = re.search(rb"^#.*; hard targets met: (yes|no)", head, re.M)
    return None if m is None else m.group(1) == b"yes"


def check_replace(out: Path, new_loss: float, force: bool, meets_hard: bool = False) -> None:
    """Refuse to replace a calibration with a worse one unless `force`. Worse: it misses a
    hard target the old one met, or both meet them (or both miss) and its loss is higher. A
    calibration that meets the hard targets replaces one that does not (or does not say)."""
    old = overlay_loss(out) if out.exists() else None
    if force or old is None or not math.isfinite(old):
        return
    old_meets = overlay_meets_hard(out) is True
    if meets_hard and not old_meets:
        return
    if old_meets and not meets_hard:
        raise WorseCalibrationError(
            f"{out}: its calibration meets every hard target, the new one does not (worse); "
            "nothing written. --force replaces it anyway, --out writes elsewhere")
    if not round(new_loss, 3) <= old:  # the header states the loss to 3 decimals
        raise WorseCalibrationError(
            f"{out}: its calibration has best loss {old:.3f}, the new one {new_loss:.3f} "
            "(worse); nothing written. --force replaces it anyway, --out writes elsewhere")


def meets_hard_targets(targets: TargetsFile, values: dict[str, float]) -> bool:
    """Whether mean target values pass every hard target's tolerance, shrunk by the
    calibration's hard_margin (a value not measured fails).

    The margin is for the noise of a trial: its few seeds at a small scale estimate each
    target with an error, and a search that keeps the lowest loss among hundreds of trials
    picks trials whose error lies towards the soft targets' side of a hard edge."""
    return hard_shortfall(targets, values) == 0.0


def hard_shortfall(targets: TargetsFile, values: dict[str, float],
                   margin: float | None = None) -> float:
    """Sum over the hard targets of how far each lies outside its tolerance shrunk by the
    margin (default the targets file's calibration.hard_margin), in half-widths
    (Tolerance.shortfall): 0 when every one is met."""
    margin = targets.calibration.hard_margin if margin is None else margin
    return sum(t.tolerance.shortfall(values.get(t.id, math.nan), t.value, margin)
               for t in targets.targets if t.kind == "hard")


def trial_rank(targets: TargetsFile, trial) -> tuple[float, float]:  # noqa: ANN001
    """How chosen_trial and the compass rank trials: the hard shortfall, then the loss."""
    return hard_shortfall(targets, trial.user_attrs.get("values", {})), trial.value


def _margin_words(targets: TargetsFile) -> str:
    m = targets.calibration.hard_margin
    return f" inside the middle {100 * (1 - m):g}% of their tolerances" if m > 0 else ""


def chosen_trial(study, targets: TargetsFile) -> tuple[Any, int]:  # noqa: ANN001 - optuna
    """The trial the overlay is written from, and how many complete trials meet every hard
    target at the calibration's scale and seeds.

    The lowest loss among the trials that meet them; if none does, the trial nearest to
    meeting them (the smallest hard shortfall, then the lowest loss), so that a compass
    search from it walks towards them. The hard targets are conditions of the evidence, not
    figures to trade: the loss alone would take a point a hair outside a hard interval (whose
    score there is nearly flat) for a small gain on the soft flows. Ties go to the earlier
    trial, as study.best_trial's do.
    """
    from optuna.trial import TrialState

    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.value is not None and math.isfinite(t.value)]
    if not done:
        return study.best_trial, 0
    ranked = [(trial_rank(targets, t), t.number, t) for t in done]
    best = min(ranked, key=lambda r: (r[0], r[1]))[2]
    return best, sum(1 for r in ranked if r[0][0] == 0.0)


def _sampler(seed: int, n_complete: int, trials: int):  # noqa: ANN202 - an optuna sampler
    """The sampler for the next trial, seeded by how many trials are complete: the trials a
    study draws are then the same whether it ran in one go or was killed and resumed."""
    import optuna

    return optuna.samplers.TPESampler(seed=seed + n_complete, multivariate=True,
                                      constant_liar=True,  # no effect without running trials
                                      n_startup_trials=min(20, max(1, trials // 5)))


def _requeue_killed(study) -> None:  # noqa: ANN001 - an optuna study
    """Trials a killed process left running are closed as failed, so that none is counted
    twice or waited for (one process per journal). A queued trial (the rule files' own
    values) is queued again; a sampled one needs not be: the sampler, seeded by the trials
    complete, draws the same values again."""
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        fixed = t.system_attrs.get("fixed_params")
        waiting = [w.system_attrs.get("fixed_params") for w in
                   study.get_trials(deepcopy=False, states=(TrialState.WAITING,))]
        if fixed and fixed not in waiting:  # queued before the close: a kill between is safe
            study.enqueue_trial(dict(fixed))
        study.tell(t.number, state=TrialState.FAIL)


Evaluate = Callable[[list[dict[str, float]]], list[tuple[dict[str, float], float]]]


def _one_batch(study, dims: Sequence[Dimension], evaluate: Evaluate,  # noqa: ANN001
               seed: int, n_complete: int, n_failed: int, trials: int, batch: int,
               callbacks: Sequence[Callable]) -> None:
    """Ask a batch of trials, evaluate them together, tell them in trial order.

    The batch is the trials queued, if any (the rule files' own values, alone), else `batch`
    trials (no more than are still wanted). Its j-th trial is drawn by a sampler seeded by
    n_complete + j, which sees the batch's earlier trials as running (TPE's constant liar).
    A batch interrupted in this process is closed as failed (a queued trial queued again)
    before the interruption goes on. Failed trials move the sampler's seed on, so a value
    that fails is not drawn again.
    """
    from optuna.trial import TrialState

    waiting = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
    asked = []
    try:
        for j in range(min(waiting or batch, trials - n_complete)):
            study.sampler = _sampler(seed + 100_003 * n_failed, n_complete + j, trials)
            trial = study.ask()
            asked.append((trial, {d.id: trial.suggest_float(d.id, d.low, d.high)
                                  for d in dims}))
        scored = evaluate([x for _, x in asked])
        for (trial, _), (mean, value) in zip(asked, scored, strict=True):
            trial.set_user_attr("values", mean)
            if not math.isfinite(value):
                trial.set_user_attr("failed_value", True)
            frozen = study.tell(trial, value)
            for cb in callbacks:
                cb(study, frozen)
    except BaseException:
        _requeue_killed(study)  # the trials not told, now: as if the process had been killed
        raise


def calibrate(
    scenario: Scenario,
    targets: TargetsFile,
    storage: str | Path,
    *,
    trials: int | None = None,
    scale: float | None = None,
    seeds: Sequence[int] | None = None,
    out: str | Path | None = None,
    restart: bool = False,
    progress: Callable[[int, int, float], None] | None = None,
    callbacks: Sequence[Callable] = (),
    force: bool = False,
    batch: int = 1,
    workers: int | None = None,
    scheduler: str | None = None,
    client: Client | None = None,
    warm: bool = False,
    polish: int = 0,
    only: Sequence[str] = (),
) -> CalibrationResult:
    """Run (or resume) the calibration study, then write the overlay to `out` (if given).

    `polish` rounds of compass search follow the sampler's trials (polish_rounds): TPE in
    some thirty dimensions finds the basin and then improves slowly; a local finish from the
    chosen trial moves one value at a time.

    The first trial is the rule files' values, or with `warm` the values in force in
    `scenario` (its calibrated overlay: values_in_force), then the rule files' values.

    `trials` is the total number of completed trials wanted: a resumed study runs only the
    ones missing. `progress(done, total, best_loss)` is called after every trial.
    `restart` deletes the study of the same name first. An overlay already at `out` with a
    lower loss is kept (WorseCalibrationError) unless `force`.

    Every (trial, seed) is a Dask task: on `client` if given, else on a local cluster of
    `workers` processes (default 1) or on the cluster of `scheduler` (ensemble.dask_client).
    `batch` trials are asked at a time and told in trial order when all are back: the trials
    drawn depend on `batch` (how, the module's docstring says), never on the workers.

    `only` names the dimensions to fit; the others are held at their values in force
    (hold_others).
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    spec = targets.calibration
    trials = spec.trials if trials is None else trials
    scale = spec.scale if scale is None else scale
    seeds = list(spec.seeds if seeds is None else seeds)
    base = base_scenario(scenario).model_copy(update={"scale": scale})
    prepared = prepare(base)
    dims = dimensions(targets, scenario)
    in_force = values_in_force(dims, scenario) if (only or warm) else None
    if only:
        dims = hold_others(dims, only, in_force)
    first = in_force if warm else None
    name = study_name(base, targets, prepared, dims, scale, seeds, first)
    storage = Path(storage)
    study, owner = _open_study(name, storage, restart, targets, scale, seeds, dims, first)
    try:
        with session(client, workers, scheduler) as c:
            evaluate = evaluator(c, ModelSpec.of(prepared), targets, dims, seeds, base.end)
            _run_trials(study, dims, evaluate, spec.sampler_seed, trials, batch, progress,
                        callbacks, f"study {name} in {storage}")
            polish_rounds(study, dims, evaluate, targets, polish, spec.sampler_seed,
                          progress, callbacks, f"study {name} in {storage}")
        result = _result(study, targets, name, storage, dims)
    finally:
        owner.close()  # the study is done (or stopped); the overlay is the caller's
    if out is not None:
        check_replace(Path(out), result.best_loss, force, result.meets_hard)
        result.overlay = write_overlay(result, scenario, targets, out, scale, seeds)
    return result


def _result(study, targets: TargetsFile, name: str, storage: Path,  # noqa: ANN001 - a study
            dims: list[Dimension]) -> CalibrationResult:
    """The study's chosen trial as a CalibrationResult (no overlay written yet)."""
    import optuna

    best, n_meet = chosen_trial(study, targets)
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    return CalibrationResult(
        study_name=name, storage=storage, trials_complete=len(complete),
        best_loss=float(best.value), best={d.id: float(best.params[d.id]) for d in dims},
        best_values=dict(best.user_attrs.get("values", {})), overlay=None,
        dimensions=dims, trials_meeting_hard=n_meet, lowest_loss=float(study.best_value),
        held=tuple(d.id for d in dims if d.bounds_from == HELD),
    )


def evaluator(client: Client, model: ModelSpec, targets: TargetsFile,
               dims: Sequence[Dimension], seeds: Sequence[int], end: dt.date) -> Evaluate:
    """Trials' values -> (mean target values, loss) of each: one task per (trial, seed), the
    mean over each trial's seeds taken in seed order."""
    tj = targets_json(targets)

    def evaluate(xs: list[dict[str, float]]) -> list[tuple[dict[str, float], float]]:
        tasks = [TrialTask(model, tj, tuple(changes_for(dims, x, end)), int(s))
                 for x in xs for s in seeds]
        per = map_tasks(client, run_trial_task, tasks, name="dcsim-trial")
        means = [mean_values(per[i * len(seeds):(i + 1) * len(seeds)]) for i in range(len(xs))]
        return [(m, loss(targets, m)) for m in means]

    return evaluate


def _run_trials(study, dims: Sequence[Dimension], evaluate: Evaluate,  # noqa: ANN001
                sampler_seed: int, trials: int, batch: int,
                progress: Callable[[int, int, float], None] | None,
                callbacks: Sequence[Callable], what: str) -> None:
    """Batches until `trials` trials are complete; `progress` at the start and per trial."""
    from optuna.trial import TrialState

    def complete() -> list:
        return study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))

    def report(st: object = None, _trial: object = None) -> None:
        if progress is not None:
            done = complete()
            progress(len(done), max(trials, len(done)),  # a study already past --trials
                     min(t.value for t in done) if done else math.nan)

    report()
    while len(complete()) < trials:
        failed = sum(1 for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
                     if t.user_attrs.get("failed_value"))  # not those a kill interrupted
        if failed > 2 * trials + 10:
            raise ValueError(f"{what}: {failed} trials failed (the loss was not a number); "
                             "--restart starts it again")
        _one_batch(study, dims, evaluate, sampler_seed, len(complete()), failed, trials, batch,
                   [report, *callbacks])


POLISH_STEP = 0.1  # the first compass step, as a share of each dimension's search range


def compass_points(center: dict[str, float], dims: Sequence[Dimension],
                   step: float) -> list[dict[str, float]]:
    """The center with one dimension moved down, then up, by `step` of its search range
    (kept within the bounds; a move the bound cancels is left out), dimension by dimension."""
    out = []
    for d in dims:
        for sign in (-1.0, 1.0):
            v = d.clip(center[d.id] + sign * step * (d.high - d.low))
            if v != center[d.id]:
                out.append({**center, d.id: v})
    return out


def combined_move(study, center, points: Sequence[dict[str, float]],  # noqa: ANN001
                  targets: TargetsFile) -> dict[str, float] | None:
    """The center with every improving move of the round at once (the better of a value's
    two moves), when two or more values improved on their own; else None.

    "Improving" ranks as chosen_trial does: the hard shortfall first, then the loss.
    A round moves the center one value at a time, so values whose gains are small beside
    another's (nearly independent of the rest) would wait many rounds; trying them together
    costs one trial a round, and the chosen trial decides whether the combination is kept."""
    from optuna.trial import TrialState

    base = dict(center.params)
    to_beat = trial_rank(targets, center)
    done = {_params_key(t.params): t
            for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.value is not None and math.isfinite(t.value)}
    best: dict[str, tuple[tuple[float, float], float]] = {}  # value id -> (rank, new value)
    for p in points:
        trial = done.get(_params_key(p))
        moved = [k for k in p if p[k] != base.get(k)]
        if trial is None or len(moved) != 1:
            continue
        rank, k = trial_rank(targets, trial), moved[0]
        if rank < to_beat and (k not in best or rank < best[k][0]):
            best[k] = (rank, p[k])
    if len(best) < 2:
        return None
    return {**base, **{k: v for k, (_, v) in best.items()}}


def _params_key(params: dict[str, float]) -> tuple:
    return tuple(sorted(params.items()))


def polish_rounds(study, dims: Sequence[Dimension], evaluate: Evaluate,  # noqa: ANN001
                  targets: TargetsFile, rounds: int, sampler_seed: int,
                  progress: Callable[[int, int, float], None] | None = None,
                  callbacks: Sequence[Callable] = (), what: str = "study") -> None:
    """`rounds` rounds of compass search from the chosen trial (chosen_trial).

    A round queues the center with each dimension moved down and up by the step and
    evaluates them as one batch, then, if several moves improved, all of them at once
    (combined_move); the chosen trial among all trials becomes the new center, or, if the
    center stays, the step halves. The step is kept in the study (user attribute
    `polish_step`), so a later call goes on where this one stopped; an interrupted round's
    queued points run first in the next call. Deterministic: the points depend only on the
    trials already in the study.
    """
    from optuna.trial import TrialState

    def n_complete() -> int:
        return len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))

    def run(todo: int) -> None:
        _run_trials(study, dims, evaluate, sampler_seed, n_complete() + todo, todo, progress,
                    callbacks, what)

    for _ in range(rounds):
        step = float(study.user_attrs.get("polish_step", POLISH_STEP))
        center, _ = chosen_trial(study, targets)
        waiting = len(study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))
        points = [] if waiting else compass_points(dict(center.params), dims, step)
        for x in points:
            study.enqueue_trial(x)
        todo = waiting or len(points)
        if todo == 0:
            break  # every move is cancelled by the bounds
        run(todo)
        both = combined_move(study, center, points, targets)
        if both is not None:
            study.enqueue_trial(both)
            run(1)
        new, _ = chosen_trial(study, targets)
        if new.number == center.number:
            study.set_user_attr("polish_step", step / 2)


def _open_study(name: str, storage: Path, restart: bool, targets: TargetsFile, scale: float,
                seeds: list[int], dims: list, first: dict[str, float] | None = None) -> tuple:
    """The study of this name in `storage` (made, or resumed with killed trials requeued),
    and the lock that makes this process its only owner."""
    import optuna

    store, owner = _storage(storage, restart)
    if restart and name in optuna.get_all_study_names(store):
        optuna.delete_study(study_name=name, storage=store)
    created = name not in optuna.get_all_study_names(store)
    study = optuna.create_study(study_name=name, storage=store, direction="minimize",
                                load_if_exists=True)
    if created or not study.trials:
        study.set_user_attr("targets_sha256", targets.digest())
        study.set_user_attr("scale", scale)
        study.set_user_attr("seeds", seeds)
        if first is not None:
            study.enqueue_trial(dict(first))
        study.enqueue_trial({d.id: d.start for d in dims})
    _requeue_killed(study)
    return study, owner


# --------------------------------------------------------------------------- the overlay


def embedded_overlay_path() -> Path:
    from importlib import resources

    return Path(str(resources.files("dcsim").joinpath("data/rules", OVERLAY_NAME)))


def _round(unit: str, v: float, lo: float | None = None, hi: float | None = None) -> float:
    if unit in WHOLE_UNITS or unit in ("persons_per_year", "day", "flag"):
        r = float(round(v))
    else:
        r = float(f"{v:.4g}")
    if lo is not None and hi is not None:
        r = min(max(r, lo), hi)
    return r


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


def _window_line(start: dt.date, end: dt.date | None, value: float, w: Window,
                 calibrated: str | None, note: str | None) -> str:
    parts = [f"from: {start.isoformat()}"]
    if end is not None:
        parts.append(f"to: {end.isoformat()}")
    parts.append(f"value: {_num(value)}")
    parts.append(f"reference: {json.dumps(w.reference, ensure_ascii=False)}")
    if calibrated:
        parts.append(f"calibrated: {json.dumps(calibrated, ensure_ascii=False)}")
    if note:
        parts.append(f"note: {json.dumps(note, ensure_ascii=False)}")
    if w.range is not None:
        parts.append(f"range: [{_num(w.range[0])}, {_num(w.range[1])}]")
    return "      - {" + ", ".join(parts) + "}"


def overlay_header(result: CalibrationResult, targets: TargetsFile, scale: float,
                   seeds: Sequence[int]) -> list[str]:
    """The comment lines that open a calibrated overlay: how it was made and the model's
    value of every target at the chosen trial."""
    from .jit import source_hash

    lines = [
        "# Calibrated values of assumptions: written by `dcsim calibrate`, do not edit by hand.",
        f"# Date {dt.date.today().isoformat()}; targets "
        f"{targets.path.name if targets.path else 'targets.yaml'} "
        f"(sha256 {targets.digest()[:12]}); study {result.study_name} in {result.storage}",
        f"# {result.trials_complete} trials at scale {scale:g}, seeds {list(seeds)}; best loss "
        f"{result.best_loss:.3f}; dcsim source {source_hash()}.",
        f"# Chosen trial: hard targets met: {'yes' if result.meets_hard else 'no'}"
        f" ({result.trials_meeting_hard} of {result.trials_complete} trials meet them"
        f"{_margin_words(targets)}; the lowest loss among those is chosen, "
        "calibration.chosen_trial).",
        "# Every fitted window keeps its reference (the assumption it replaces) and gains",
        "# `calibrated:`; windows restated unchanged carry no `calibrated:`. A value with a",
        "# paper or evidence reference and no assumption part is never changed.",
    ]
    if result.held:
        fitted_here = [d.id for d in result.dimensions if d.id not in result.held]
        lines += textwrap.wrap(
            f"Fitted here: {', '.join(fitted_here)}; the other {len(result.held)} values are "
            "held at those of the overlay in force before (dcsim calibrate --only), each "
            "window with its own `calibrated:`.", 92, initial_indent="# ",
            subsequent_indent="# ")
    lines.append("# Model values at the chosen trial (mean over the seeds):")
    for t in targets.targets:
        v = result.best_values.get(t.id, math.nan)
        lines.append(f"#   {t.id}: {v:.6g} (published {t.value:g})")
    return lines


def write_overlay(result: CalibrationResult, scenario: Scenario, targets: TargetsFile,
                  out: str | Path, scale: float, seeds: Sequence[int], *,
                  header: Sequence[str] | None = None, made_by: str = "dcsim calibrate",
                  description: str | None = None) -> Path:
    """Write the calibrated overlay: each fitted parameter restated window by window as the
    base files have it, the fitted windows with their new value, their reference kept, and
    `calibrated:` added. Checked against the base before it replaces any earlier file.

    `header` (comment lines), `made_by` (named in each `calibrated:`) and `description`
    let another command (`dcsim uncertainty`) write a set of values the same way."""
    out = Path(out)
    base = base_scenario(scenario)
    base_stack = RuleStack([load_rule_file(base.rule_path(n)) for n in base.rules])
    today = dt.date.today().isoformat()
    fitted: dict[tuple[str, int], tuple[float, Dimension]] = {}
    held: set[tuple[str, int]] = set()
    for d in result.dimensions:
        for w, v in d.values(result.best[d.id]):
            fitted[w.key] = (v, d)
            if d.id in result.held:
                held.add(w.key)
    in_force = (RuleStack([load_rule_file(scenario.rule_path(n)) for n in scenario.rules])
                if held else None)
    names = []
    for d in result.dimensions:
        for w in d.windows:
            if w.name not in names:
                names.append(w.name)
    lines = list(overlay_header(result, targets, scale, seeds) if header is None else header)
    description = description or (
        "Calibrated overlay: the assumptions that the targets in targets.yaml inform, fitted "
        "with dcsim calibrate (see docs/calibration.md). Listed last among the base rules of "
        "the default scenario, so locality files still override what they set.")
    lines += ["jurisdiction: national", "description: >-",
              *("  " + t for t in textwrap.wrap(description, 88)), "parameters:"]
    rows = [r for r in listing({"national": base_stack}) if r["name"] in names]
    for name in names:
        lines.append(f"  {name}:")
        lines.append(f"    unit: {CATALOGUE[name].unit}")
        lines.append("    values:")
        for r in (r for r in rows if r["name"] == name):
            w, _ = base_stack.window(name, r["from"])
            key = (r["file"], r["line"])
            if key in held:  # restated as the overlay in force has it, fitted earlier
                was, _ = in_force.window(name, r["from"])
                lines.append(_window_line(r["from"], r["to"], was.value, w, was.calibrated,
                                          was.note))
            elif key in fitted:
                v, d = fitted[key]
                lo, hi = w.range if w.range is not None else (None, None)
                v = _round(CATALOGUE[name].unit, v, lo, hi)
                cal = (f"targets.yaml ({', '.join(d.informs)}), {today}: {made_by}, "
                       f"{d.id} = {result.best[d.id]:.4g}")
                was = f"before calibration: {_num(w.value)}"
                note = f"{w.note}; {was}" if w.note else was
                lines.append(_window_line(r["from"], r["to"], v, w, cal, note))
            else:
                lines.append(_window_line(r["from"], r["to"], w.value, w, w.calibrated, w.note))
    text = "\n".join(lines) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        problems = overlay_problems(load_rule_file(tmp), base_stack)
        if problems:
            raise ValueError("calibrated overlay would break the rules: " + "; ".join(problems))
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def overlay_problems(overlay: RuleFile, base: RuleStack) -> list[str]:
    """Why an overlay is not a faithful calibration of `base`, or [] if it is.

    Each parameter must restate the base windows from its first date on, with the same dates
    and references; a value may differ only where the base reference has an `assumption:`
    part, and then the window must say `calibrated:`.
    """
    problems = []
    rows = listing({"national": base})
    for name, p in overlay.parameters.items():
        first = p.windows[0].start
        want = [(r["from"], r["to"]) for r in rows if r["name"] == name and r["from"] >= first]
        got = [(w.start, w.end) for w in p.windows]
        if want != got:
            problems.append(f"{name}: windows {got} do not restate the base windows {want}")
            continue
        for w in p.windows:
            b, _ = base.window(name, w.start)
            if w.reference != b.reference:
                problems.append(f"{name} from {w.start}: reference changed")
            if w.value != b.value:
                if not b.is_assumption:
                    problems.append(f"{name} from {w.start}: value {b.value} has no assumption "
                                    f"part in its reference ({b.reference!r}) but was changed")
                if not w.calibrated:
                    problems.append(f"{name} from {w.start}: changed without 'calibrated:'")
    return problems
