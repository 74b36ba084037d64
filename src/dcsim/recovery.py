"""Recovery check: does the calibration find values it was given, and which can it not find?

A calibrated value means something only if the targets pin it down. This check sets known
"true" values for every dimension of `calibration.fitted` in a targets file (drawn uniformly
within each dimension's search range from a fixed seed, or the values the scenario uses now),
runs the model at them, and writes a synthetic copy of the targets file in which every
`value:` is the model's own (the mean over the seeds) and every likelihood keeps its spread
(relative spreads, binomial n and Poisson counts unchanged; an interval moves with the value).
`calibration.calibrate` then fits that file exactly as it fits the real one, in its own
journal. Per dimension the report gives the truth, the best trial, and the range of the
dimension over the trials whose loss is within `threshold` of the best: when that range
covers most of the search range, the targets cannot identify the dimension; when it misses
the truth although the best trial meets the targets the dimension informs, those targets
identify a combination of dimensions, not this one (`DimensionRecovery.verdict`).

The synthetic runs use the calibration's own scale, seeds and code path (each seed a
`calibration.TrialTask` on the same Dask cluster as the trials), so the truth reproduces the
synthetic targets exactly (loss 0): the check has no Monte Carlo noise and tests
identifiability and the search, not noise. As in `dcsim calibrate`, the trials drawn depend on
`Settings.batch`, never on the number of workers. Nothing here knows the dimensions by name; it
works over whatever `targets.yaml` lists.

Files written into the output folder: `synthetic_targets.yaml`, `journal.log` (the study),
`recovery.csv` (columns `CSV_COLUMNS`) and `recovery.md`.
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import math
import os
import platform
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from .calibration import (
    Dimension,
    TrialTask,
    base_scenario,
    calibrate,
    changes_for,
    coerce,
    dimensions,
    mean_values,
    run_trial_task,
)
from .ensemble import ModelSpec, map_tasks, session, targets_json
from .model import prepare
from .rules import parse_yaml
from .scenario import Scenario
from .targets import TargetsFile, load_targets, loss

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "CSV_COLUMNS",
    "DEFAULT_SCALE",
    "DEFAULT_THRESHOLD",
    "DEFAULT_TRIALS",
    "DimensionRecovery",
    "RecoveryError",
    "RecoveryResult",
    "Settings",
    "TRUTH_MODES",
    "MIN_NEAR_BEST",
    "UNIDENTIFIED_SHARE",
    "near_best",
    "own_losses",
    "recover",
    "synthetic_targets_text",
    "truth_values",
    "write",
]

DEFAULT_SCALE = 0.01
DEFAULT_TRIALS = 100
DEFAULT_THRESHOLD = 2.0
DEFAULT_TRUTH_SEED = 1
TRUTH_MODES = ("random", "current")
UNIDENTIFIED_SHARE = 0.5  # near-best range / search range at or above this: not identified
MIN_NEAR_BEST = 10  # fewer trials near the best: a narrow range says nothing yet
SYNTHETIC_NAME = "synthetic_targets.yaml"
JOURNAL_NAME = "journal.log"
CSV_COLUMNS = (
    "dimension", "mode", "low", "high", "bounds_from", "truth", "recovered", "error_share",
    "interval_low", "interval_high", "interval_share", "trials_near_best", "truth_inside",
    "own_loss", "identified", "verdict", "informs",
)


class RecoveryError(ValueError):
    """The check cannot be made as asked (the model gives no value for a target, ...)."""


@dataclass(frozen=True)
class Settings:
    """What one recovery check runs: enough to restate it as a command."""

    scale: float = DEFAULT_SCALE
    seeds: tuple[int, ...] = (101, 102)
    trials: int = DEFAULT_TRIALS
    truth: str = "random"
    truth_seed: int = DEFAULT_TRUTH_SEED
    threshold: float = DEFAULT_THRESHOLD
    batch: int = 1  # trials asked at a time (calibration.calibrate): it decides the trials
    polish: int = 0  # rounds of compass search after the trials (calibration.polish_rounds)

    def command(self, scenario: Path | None = None, targets: Path | None = None,
                out: Path | None = None) -> str:
        """The `dcsim recover` command line that repeats this check."""
        parts = ["dcsim recover"]
        if scenario is not None:
            parts.append(str(scenario))
        if targets is not None:
            parts.append(f"--targets {targets}")
        parts += [f"--scale {self.scale:g}", f"--seeds {','.join(map(str, self.seeds))}",
                  f"--trials {self.trials}", f"--truth {self.truth}"]
        if self.truth == "random":
            parts.append(f"--truth-seed {self.truth_seed}")
        parts.append(f"--threshold {self.threshold:g}")
        if self.batch != 1:
            parts.append(f"--batch {self.batch}")
        if self.polish:
            parts.append(f"--polish {self.polish}")
        if out is not None:
            parts.append(f"--out {out}")
        return " ".join(parts)


# --------------------------------------------------------------------------- the truth


def _whole(d: Dimension, x: float) -> float:
    """A dimension's number as the model uses it: a value of a whole unit is rounded."""
    return coerce(d.windows[0].unit, x) if d.mode == "value" else float(x)


def _current(d: Dimension, stacks: dict[str, Any]) -> float:
    """The value (or factor on the rule files' values) the scenario uses now, e.g. with
    its calibrated overlay: read where each window is in force."""
    def now(w: Any) -> float:
        return stacks[w.in_force[0][0]].window(w.name, w.start)[0].value

    if d.mode == "value":
        x = now(d.windows[0])
    else:
        ratios = [now(w) / w.value for w in d.windows if w.value != 0]
        x = float(np.mean(ratios)) if ratios else 1.0
    return min(max(x, d.low), d.high)


def truth_values(dims: Sequence[Dimension], scenario: Scenario, mode: str = "random",
                 seed: int = DEFAULT_TRUTH_SEED) -> dict[str, float]:
    """Known values for every dimension: uniform in [low, high] from `seed` (one draw per
    dimension in file order, so adding a dimension keeps the others' draws), or `current`."""
    if mode not in TRUTH_MODES:
        raise RecoveryError(f"--truth: must be one of {', '.join(TRUTH_MODES)}, got {mode!r}")
    if mode == "current":
        ids = [j.id for j in scenario.jurisdictions]
        stacks = dict(zip(ids, scenario.stacks(), strict=True))
        return {d.id: _whole(d, _current(d, stacks)) for d in dims}
    rng = np.random.default_rng(seed)
    out = {}
    for d in dims:
        x = float(rng.uniform(d.low, d.high))
        out[d.id] = min(max(_whole(d, x), d.low), d.high)
    return out


# --------------------------------------------------------------------------- synthetic targets


def _move_target(raw: dict[str, Any], value: float) -> str | None:
    """Give one target (as read from its file) the model's value, keeping its spread; a note
    when its likelihood is of a kind this check does not know (then left unchanged)."""
    published = float(raw["value"])
    shift = value - published
    raw["value"] = float(value)
    lik = raw.get("likelihood", {})
    kind = lik.get("type")
    if kind == "normal" and "sd_relative" in lik and value == 0.0:
        # a spread relative to zero would be zero: keep the published figure's spread
        lik["sd"] = float(lik.pop("sd_relative")) * abs(published)
    if kind == "interval":  # a published range: moved with the value, its width kept
        lik["low"], lik["high"] = float(lik["low"]) + shift, float(lik["high"]) + shift
    elif kind not in ("normal", "binomial", "poisson"):
        return (f"target {raw.get('id')}: likelihood {kind!r} is kept as it is (the recovery "
                "check does not know how to move it to a synthetic value)")
    tol = raw.get("tolerance", {})
    if "interval" in tol:
        tol["interval"] = [float(tol["interval"][0]) + shift, float(tol["interval"][1]) + shift]
    return None


class _NoAliases(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def synthetic_targets_text(targets: TargetsFile, values: dict[str, float],
                           header: Sequence[str] = ()) -> tuple[str, list[str]]:
    """The targets file with every `value:` replaced by the model's (and notes on targets
    left as they were). Floats are written by repr, so they read back bit for bit."""
    data, _ = parse_yaml(targets.path or "targets.yaml", targets.content)
    data = copy.deepcopy(data)
    notes = []
    for raw in data["targets"]:
        v = values[raw["id"]]
        if not math.isfinite(v):
            raise RecoveryError(f"target {raw['id']}: the model gives no value at the truth "
                                "(NaN); a larger --scale may measure it")
        note = _move_target(raw, v)
        if note:
            notes.append(note)
    data["description"] = ("Synthetic targets of a recovery check (dcsim recover): the model's "
                           "own values at known rule values. " + str(data["description"]))
    body = yaml.dump(data, Dumper=_NoAliases, sort_keys=False, allow_unicode=True, width=100)
    head = "".join(f"# {line}\n" for line in header)
    return head + body, notes


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------- what came back


@dataclass(frozen=True)
class DimensionRecovery:
    """One dimension: its truth, what the calibration found, and how firmly."""

    id: str
    mode: str
    low: float
    high: float
    bounds_from: str
    truth: float
    recovered: float
    interval_low: float
    interval_high: float
    trials_near_best: int
    own_loss: float  # the best trial's loss on the targets this dimension informs, above
    # the truth's (NaN: not known)
    threshold: float
    informs: tuple[str, ...]

    @property
    def interval_share(self) -> float:
        """Width of the near-best range as a share of the search range."""
        return (self.interval_high - self.interval_low) / (self.high - self.low)

    @property
    def error_share(self) -> float:
        """Distance of the best trial from the truth as a share of the search range: the
        reading that holds after a compass finish, whose steps set the near-best widths."""
        return abs(self.recovered - self.truth) / (self.high - self.low)

    @property
    def truth_inside(self) -> bool:
        return self.interval_low <= self.truth <= self.interval_high

    @property
    def identified(self) -> bool:
        return self.interval_share < UNIDENTIFIED_SHARE

    @property
    def verdict(self) -> str:
        """not identified (a range only widens with more trials, so this holds however few
        there are); too few trials; recovered (the truth inside); traded off (outside, yet the
        best trial meets the targets this dimension informs as well as the truth, within the
        threshold: other dimensions make up for it); search short (outside, and those targets
        still missed: the search had not got there); missed (outside, own loss not known)."""
        if not self.identified:
            return "not identified"
        if self.trials_near_best < MIN_NEAR_BEST:
            return "too few trials"
        if self.truth_inside:
            return "recovered"
        if not math.isfinite(self.own_loss):
            return "missed"
        return "traded off" if self.own_loss <= self.threshold else "search short"

    def row(self) -> dict[str, Any]:
        return {"dimension": self.id, "mode": self.mode, "low": self.low, "high": self.high,
                "bounds_from": self.bounds_from, "truth": self.truth,
                "recovered": self.recovered, "error_share": self.error_share,
                "interval_low": self.interval_low,
                "interval_high": self.interval_high, "interval_share": self.interval_share,
                "trials_near_best": self.trials_near_best, "truth_inside": self.truth_inside,
                "own_loss": self.own_loss, "identified": self.identified,
                "verdict": self.verdict,
                "informs": " ".join(self.informs)}


def near_best(trials: Sequence[tuple[dict[str, float], float]], dims: Sequence[Dimension],
              truth: dict[str, float], threshold: float,
              own_loss: dict[str, float] | None = None) -> list[DimensionRecovery]:
    """Per dimension: the best trial's value and the range over trials whose loss is within
    `threshold` of the best (a rough profile from the trials the search chose to run).
    `own_loss` (dimension -> the best trial's loss on the targets it informs, above the
    truth's) tells a trade-off from a search that stopped short."""
    own_loss = own_loss or {}
    done = [(p, v) for p, v in trials if math.isfinite(v)]
    if not done:
        raise RecoveryError("no trial of the study has a finite loss")
    best_params, best = min(done, key=lambda t: t[1])
    close = [p for p, v in done if v <= best + threshold]
    out = []
    for d in dims:
        xs = [_whole(d, p[d.id]) for p in close]
        out.append(DimensionRecovery(
            id=d.id, mode=d.mode, low=d.low, high=d.high, bounds_from=d.bounds_from,
            truth=truth[d.id], recovered=_whole(d, best_params[d.id]),
            interval_low=min(xs), interval_high=max(xs), trials_near_best=len(close),
            own_loss=own_loss.get(d.id, math.nan), threshold=threshold, informs=d.informs))
    return out


def own_losses(targets: TargetsFile, dims: Sequence[Dimension], at_best: dict[str, float],
               at_truth: dict[str, float]) -> dict[str, float]:
    """Per dimension: the weighted loss of the targets it informs (`informs`) at the best
    trial, above their loss at the truth; NaN where the best trial has no value."""
    out = {}
    for d in dims:
        ts = [targets.get(i) for i in d.informs]
        out[d.id] = float(sum(t.weight * (t.nll(at_best.get(t.id, math.nan))
                                          - t.nll(at_truth[t.id])) for t in ts))
    return out


def _study_trials(storage: Path, name: str) -> list[tuple[dict[str, float], float]]:
    """Every completed trial of the study: (values, loss). Only read, after the calibration
    has closed it, so it takes no lock."""
    import optuna
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend
    from optuna.trial import TrialState

    store = JournalStorage(JournalFileBackend(str(storage)))
    study = optuna.load_study(study_name=name, storage=store)
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return [(dict(t.params), float(t.value)) for t in done]


@dataclass
class RecoveryResult:
    settings: Settings
    truth: dict[str, float]
    values_at_truth: dict[str, float]
    synthetic: Path
    storage: Path
    study_name: str
    trials_complete: int
    best_loss: float
    truth_loss: float
    rows: list[DimensionRecovery]
    targets: TargetsFile  # the synthetic targets
    best_values: dict[str, float]  # target id -> mean model value at the best trial
    notes: list[str] = field(default_factory=list)
    date: str = field(default_factory=lambda: dt.date.today().isoformat())

    @property
    def not_identified(self) -> list[str]:
        """Dimensions whose near-best range covers most of the search range."""
        return [r.id for r in self.rows if not r.identified]

    @property
    def traded_off(self) -> list[str]:
        """Dimensions whose targets are met at another value: identified only jointly."""
        return [r.id for r in self.rows if r.verdict == "traded off"]

    def target_losses(self) -> list[tuple[str, float, float, float]]:
        """(target, synthetic value, value at the best trial, weighted loss) for every target
        that counts, largest loss first: what the best trial still misses."""
        rows = [(t.id, t.value, self.best_values.get(t.id, math.nan),
                 t.weight * t.nll(self.best_values.get(t.id, math.nan)))
                for t in self.targets.targets if t.weight > 0]
        return sorted(rows, key=lambda r: -r[3] if math.isfinite(r[3]) else -math.inf)


# --------------------------------------------------------------------------- the check


def _synthetic_file(client: Client, scenario: Scenario, targets: TargetsFile,
                    dims: Sequence[Dimension], truth: dict[str, float], settings: Settings,
                    out: Path, progress: Callable[[int, int], None] | None,
                    ) -> tuple[Path, dict, list]:
    """Run the model at the truth (each seed a calibration trial's task, on `client`), write
    the synthetic targets file, and read it back through the strict loader."""
    base = base_scenario(scenario).model_copy(update={"scale": settings.scale})
    changes = tuple(changes_for(dims, truth, base.end))
    model, tj = ModelSpec.of(prepare(base)), targets_json(targets)
    tasks = [TrialTask(model, tj, changes, int(s)) for s in settings.seeds]
    if progress is not None:
        progress(0, len(tasks))
    mean = mean_values(map_tasks(client, run_trial_task, tasks, progress, name="dcsim-truth"))
    header = [
        "Synthetic targets written by `dcsim recover`: do not edit, do not cite.",
        f"Each value is the model's own at known rule values (truth {settings.truth}"
        + (f", seed {settings.truth_seed}" if settings.truth == "random" else "") + "):",
        *(f"  {d.id} = {truth[d.id]!r}" for d in dims),
        f"mean over seeds {list(settings.seeds)} at scale {settings.scale:g}; "
        f"from {targets.path.name if targets.path else 'targets.yaml'} "
        f"(sha256 {targets.digest()[:12]}).",
    ]
    text, notes = synthetic_targets_text(targets, mean, header)
    path = out / SYNTHETIC_NAME
    _write_atomic(path, text)
    load_targets(path)  # the file calibration reads must pass the strict loader
    return path, mean, notes


def recover(scenario: Scenario, targets: TargetsFile, out: str | Path,
            settings: Settings | None = None, *, restart: bool = False,
            runs_progress: Callable[[int, int], None] | None = None,
            trials_progress: Callable[[int, int, float], None] | None = None,
            workers: int | None = None, scheduler: str | None = None,
            client: Client | None = None) -> RecoveryResult:
    """Make synthetic targets at known values, calibrate to them in `out`, and say what came
    back. A repeated call with the same settings resumes the same study (`restart`: the
    study is deleted from the journal first).

    The runs at the truth and the trials are Dask tasks on one cluster, as in
    `calibration.calibrate`: `client` if given, else a local cluster of `workers` processes
    (default 1) or the cluster of `scheduler`, opened before `out` is made."""
    settings = Settings() if settings is None else settings
    out = Path(out)
    dims = dimensions(targets, scenario)
    truth = truth_values(dims, scenario, settings.truth, settings.truth_seed)
    storage = out / JOURNAL_NAME
    with session(client, workers, scheduler) as c:
        out.mkdir(parents=True, exist_ok=True)
        path, mean, notes = _synthetic_file(c, scenario, targets, dims, truth, settings, out,
                                            runs_progress)
        synthetic = load_targets(path)
        cal = calibrate(scenario, synthetic, storage, trials=settings.trials,
                        scale=settings.scale, seeds=list(settings.seeds), restart=restart,
                        progress=trials_progress, batch=settings.batch, client=c,
                        polish=settings.polish)
    own = own_losses(synthetic, cal.dimensions, cal.best_values, mean)
    rows = near_best(_study_trials(storage, cal.study_name), cal.dimensions, truth,
                     settings.threshold, own)
    return RecoveryResult(settings=settings, truth=truth, values_at_truth=mean,
                          synthetic=path, storage=storage, study_name=cal.study_name,
                          trials_complete=cal.trials_complete, best_loss=cal.best_loss,
                          truth_loss=loss(synthetic, mean), rows=rows, targets=synthetic,
                          best_values=cal.best_values, notes=notes)


# --------------------------------------------------------------------------- reporting


def fmt(x: float) -> str:
    """A value as the tables print it: four significant digits."""
    return f"{x:.4g}"


def rich_table(result: RecoveryResult):  # noqa: ANN201 - a rich Table
    """The per-dimension table, readable at 80 columns."""
    from rich import box
    from rich.table import Table

    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True,
              title=f"recovery: {result.trials_complete} trials, best loss "
                    f"{result.best_loss:.3g} (at the truth {result.truth_loss:.3g})")
    t.add_column("dimension\n(search range)", overflow="fold")
    for col in ("truth", "best", "near-best\nrange"):
        t.add_column(col, justify="right", no_wrap=True)
    t.add_column("width", justify="right", no_wrap=True)
    t.add_column("truth\ninside", no_wrap=True)
    t.add_column("verdict", no_wrap=True)
    for r in result.rows:
        style = {"missed": "yellow", "search short": "yellow", "traded off": "red",
                 "not identified": "red",
                 "too few trials": "dim"}.get(r.verdict, "")
        t.add_row(f"{r.id}{' (x)' if r.mode == 'factor' else ''}\n"
                  f"({fmt(r.low)}-{fmt(r.high)})", fmt(r.truth), fmt(r.recovered),
                  f"{fmt(r.interval_low)}-\n{fmt(r.interval_high)}",
                  f"{100 * r.interval_share:.0f}%", "yes" if r.truth_inside else "no",
                  r.verdict, style=style)
    return t


def explanation(result: RecoveryResult) -> str:
    """What the range and the verdicts mean, in one paragraph."""
    s = result.settings
    near = result.rows[0].trials_near_best if result.rows else 0
    text = (f"near-best range: the dimension's range over the {near} of "
            f"{result.trials_complete} trials whose loss is within {s.threshold:g} of the best "
            "(the loss is a weighted negative log-likelihood: within a likelihood ratio of "
            f"e^{s.threshold:g}); width: that range as a share of the search range. Verdicts: "
            f"not identified = width {100 * UNIDENTIFIED_SHARE:.0f}% or more; too few trials "
            f"= narrower, but fewer than {MIN_NEAR_BEST} trials near the best; recovered = "
            "narrower and holding the truth; traded off = not holding it, yet the best trial "
            f"meets the targets the dimension informs within {s.threshold:g} of the truth's "
            "loss (other dimensions make up for it: those targets identify a combination, not "
            "this value); search short = not holding it and those targets still missed (the "
            f"search had not got there). The truth itself scores {result.truth_loss:.3g}")
    if result.best_loss > result.truth_loss + s.threshold:
        text += (f", the best trial {result.best_loss:.3g}: the search stopped short of the "
                 "truth (more --trials would go further)")
    return text + "."


def worst_targets(result: RecoveryResult, n: int = 3) -> str:
    """The targets that make up most of the best trial's loss, as one line."""
    rows = [r for r in result.target_losses() if r[3] > 0][:n]
    return ", ".join(f"{t} {x:.2f}" for t, _, _, x in rows) or "none"


def machine() -> str:
    """This machine as the docs state it: processor model and cores."""
    model = platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            names = [line.split(":", 1)[1].strip() for line in f if line.startswith("model name")]
        model = names[0] if names else model
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def markdown(result: RecoveryResult, command: str) -> str:
    """recovery.md: the command, the settings, the table and what it means."""
    s = result.settings
    lines = [
        "# Recovery check", "",
        f"`{command}`", "",
        f"Date {result.date}; machine {machine()}; truth {s.truth}"
        + (f" (seed {s.truth_seed})" if s.truth == "random" else "")
        + f"; scale {s.scale:g}; seeds {list(s.seeds)}; {result.trials_complete} trials "
        f"in batches of {s.batch}; "
        f"best loss {result.best_loss:.4g} (0 at the truth); study {result.study_name} in "
        f"`{result.storage}`.", "",
        "| dimension | search range | truth | best trial | error / range | near-best range | "
        "width | truth inside | verdict |",
        "|---|---|---:|---:|---:|---|---:|---|---|",
    ]
    for r in result.rows:
        lines.append(
            f"| {r.id}{' (factor)' if r.mode == 'factor' else ''} | {fmt(r.low)}-"
            f"{fmt(r.high)} ({r.bounds_from}) | {fmt(r.truth)} | {fmt(r.recovered)} | "
            f"{100 * r.error_share:.0f}% | "
            f"{fmt(r.interval_low)}-{fmt(r.interval_high)} | {100 * r.interval_share:.0f}% | "
            f"{'yes' if r.truth_inside else 'no'} | {r.verdict} |")
    lines += ["", explanation(result), "",
              "Targets at the best trial (weighted loss, largest first):", "",
              "| target | synthetic value | best trial | loss |", "|---|---:|---:|---:|"]
    lines += [f"| {t} | {fmt(v)} | {fmt(b)} | {x:.3f} |"
              for t, v, b, x in result.target_losses()]
    lines.append("")
    lines.append("Not identified (near-best range covers most of the search range): "
                 + (", ".join(result.not_identified) or "none") + ". Traded off (the targets "
                 "they inform are met at other values): "
                 + (", ".join(result.traded_off) or "none") + ".")
    lines += [f"- {n}" for n in result.notes]
    return "\n".join(lines) + "\n"


def write(result: RecoveryResult, folder: str | Path, command: str) -> dict[str, Path]:
    """Write recovery.csv and recovery.md into `folder`; returns {name: path}."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    csv_path, md_path = folder / "recovery.csv", folder / "recovery.md"
    with open(csv_path, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(CSV_COLUMNS))
        w.writeheader()
        for r in result.rows:
            w.writerow(r.row())
    md_path.write_text(markdown(result, command), encoding="utf-8")
    return {"recovery.csv": csv_path, "recovery.md": md_path}
