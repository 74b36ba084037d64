"""The command line: `dcsim run` and `dcsim rules`."""

from __future__ import annotations

import contextlib
import math
import os
import re
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from . import checks
from .checks import ArgumentError
from .outputs import publish
from .progress import bars
from .rules import OutOfWindowError, RuleError, listing
from .scenario import ScenarioError, check_rules, load_scenario

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="dcsim: an evidence-traced model of China's Dynamic Control System.")
console = Console()
ScenarioArg = Annotated[Path | None, typer.Argument(
    help="scenario file; default: the embedded national baseline")]


OverlayOpt = Annotated[list[Path] | None, typer.Option(
    help="rule overlay added after the scenario's (repeatable): a file, or a reform of the "
         "package by name, e.g. exit_law_2011")]


def _overlays(paths: list[Path] | None) -> list[Path]:
    """--overlay values as files: a path, else a reform of the package by name."""
    from .compare import find_reform

    out = []
    for p in paths or []:
        found = find_reform(p)
        if found is None:
            _fail(ValueError(f"--overlay: no rule file {str(p)!r} (nor a package reform of "
                             "that name; see `dcsim reforms`)"))
        out.append(found)
    return out


def _fail(e: Exception, code: int = 2) -> NoReturn:
    """One line, printed as text (a value may hold '[', which Rich would read as markup);
    exit code 2 (a mistake in the arguments or the files) unless told."""
    console.print(Text("error: ", style="bold red") + Text(str(e)), soft_wrap=True)
    raise typer.Exit(code)


def _scenario(path: Path | None, **overrides: object):  # noqa: ANN202 - a Scenario
    """The scenario file checked as an argument, loaded, and its rules checked as `run` would."""
    try:
        if path is not None:
            checks.input_file("SCENARIO", path)
        sc = load_scenario(path, **overrides)
        check_rules(sc)
    except (ArgumentError, ScenarioError, RuleError, OutOfWindowError) as e:
        _fail(e)
    return sc


def _fits_in_period(tf, sc) -> None:  # noqa: ANN001 - a TargetsFile and a Scenario
    """A fitting command refuses a scenario whose period misses targets it would score."""
    from .targets import outside_period

    ds = sc.district_study
    missed = outside_period(tf, sc.start, sc.end, (ds.start, ds.end))
    if missed:
        shown = ", ".join(missed[:4]) + (f" and {len(missed) - 4} more" if len(missed) > 4
                                          else "")
        _fail(ArgumentError("SCENARIO", f"its period ({sc.start} to {sc.end}) misses "
                                        f"{len(missed)} of the targets the fit scores ({shown}); "
                                        "give a scenario that covers them, or --targets "
                                        "without them"))


def _check(fn, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003, ANN202 - any check
    """A checks.* call whose ArgumentError ends the command with exit code 2."""
    try:
        return fn(*args, **kwargs)
    except ArgumentError as e:
        _fail(e)


@app.command()
def run(
    scenario: ScenarioArg = None,
    scale: Annotated[float | None, typer.Option(
        help="share of the national registry to simulate (0.02 = 2%)")] = None,
    seed: Annotated[int | None, typer.Option(
        help="random seed; fixes the run bit for bit")] = None,
    out: Annotated[str | None, typer.Option(
        help="output folder; default runs/<name>-<seed>")] = None,
    overlay: OverlayOpt = None,
) -> None:
    """Run a scenario, write its tables, and set its outputs beside the paper's figures."""
    from . import figures, results
    from .model import prepare, simulate

    if scale is not None:
        _check(checks.float_in, "--scale", scale, 0.0, 1.0, low_open=True)
    if seed is not None:
        _check(checks.int_in, "--seed", seed, 0, checks.SEED_MAX)
    if out is not None:
        _check(checks.output_folder, "--out", out)
    sc = _scenario(scenario, overlays=_overlays(overlay), scale=scale, seed=seed)
    out = Path(out) if out is not None else Path("runs") / f"{sc.name}-{sc.seed}"
    _check(checks.output_folder, "--out", out)
    try:
        prepared = prepare(sc)
    except (ScenarioError, RuleError, OutOfWindowError) as e:
        _fail(e)
    console.print(f"[bold]{escape(sc.name)}[/] {sc.start} to {sc.end}, scale {sc.scale:g}, "
                  f"seed {sc.seed}, {len(sc.jurisdictions)} jurisdictions")
    _compile_first()
    with bars(console) as bar:
        task = bar.add_task("simulating persons", total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = simulate(prepared, progress=tick)
    comp = figures.comparison(result)
    try:
        paths = results.write(result, out, comparison=comp)
    except OSError as e:
        _fail(ArgumentError("--out", f"cannot write the tables into {out}: "
                                     f"{e.strerror or e}; nothing was left there"))
    _print_comparison(comp)
    console.print(f"{len(result.population):,} persons in {result.wall_seconds:.1f} s; "
                  f"tables and manifest in [bold]{escape(str(out))}[/] ({len(paths)} files)")


def _compile_first() -> None:
    """The first run after installing or updating dcsim compiles the model; say so, with the
    time it took last on this machine when known (measured, then kept in the cache)."""
    from . import jit
    from .model import compile_kernels

    if jit.compiled():
        return
    last = jit.last_compile_seconds()
    how_long = (f"last time {last:.0f} s on this machine" if last is not None
                else "about 15-25 s on a 2-core machine, see benchmarks/RESULTS.md")
    with console.status(f"compiling the model, once after installing or updating ({how_long})"):
        done = compile_kernels()
    jit.record_compile_seconds(done.seconds)
    shared = ", in two processes" if done.processes == 2 else ""
    console.print(f"compiled the model in {done.seconds:.0f} s{shared} (cached for later runs)")


def _trials_text(what: str, best: float) -> str:
    """'trials (best loss 3.25)', or just 'trials' before any trial is complete."""
    return f"{what} (best loss {best:.2f})" if math.isfinite(best) else what


def _compile_for(scheduler: str | None) -> None:
    """Before local workers start: compile here once, so that each worker loads the kernels
    from the cache instead of compiling its own copy (a cluster's machines have their own)."""
    if scheduler is None:
        _compile_first()


def _fmt(v: float, unit: str) -> str:
    if v != v:  # NaN
        return "-"
    if unit == "share":
        return f"{100 * v:.2f}%"
    if unit == "ratio":
        return f"{v:.3f}"
    if unit in ("persons", "person_times"):
        return f"{v:,.0f}"
    if unit == "per_day":
        return f"{v:,.2f}"
    return f"{v:,.1f}"


def _print_comparison(df) -> None:  # noqa: ANN001 - a DataFrame
    """The paper's figures beside the model, each marked input, calibrated or predicted; the
    source under each figure, so that nothing is cut at 80 columns."""
    from rich import box

    t = Table(title="The model beside the paper's figures (values from targets.yaml)",
              box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    t.add_column("figure\n(source)", min_width=24, overflow="fold")
    for col in ("role", "published", "model", "error"):
        t.add_column(col, justify="left" if col == "role" else "right", no_wrap=True)
    for r in df.itertuples():
        err = r.relative_error
        verdict = "met" if r.within_tolerance else "MISSED"
        t.add_row(Text(f"{r.figure}\n({r.source}; tolerance {r.tolerance}: {verdict})"), r.role,
                  _fmt(r.published, r.unit),
                  _fmt(r.model, r.unit), "-" if err != err else f"{100 * err:+.1f}%")
    console.print(t)
    console.print("role: input = a rule is set from the figure (it checks the bookkeeping, not "
                  "the model); calibrated = the model was fitted to it; predicted = neither. "
                  "Tolerance met or missed: by this run (dcsim fit judges the mean over "
                  "seeds).", soft_wrap=False)


@app.command()
def rules(
    scenario: ScenarioArg = None,
    assumptions: Annotated[bool, typer.Option(
        "--assumptions", help="only the values that are assumptions")] = False,
    jurisdiction: Annotated[str | None, typer.Option(help="only this jurisdiction")] = None,
) -> None:
    """List every rule value in force with its reference; assumptions are flagged."""
    sc = _scenario(scenario)
    ids = [j.id for j in sc.jurisdictions]
    if jurisdiction is not None and jurisdiction not in ids:
        _fail(ArgumentError("--jurisdiction", f"{jurisdiction!r} is not a jurisdiction of "
                                              f"{sc.source}; choose one of {', '.join(ids)}"))
    stacks = dict(zip(ids, sc.stacks(), strict=True))
    rows = listing({k: v for k, v in stacks.items() if jurisdiction in (None, k)})
    if jurisdiction is None:  # a national value appears once, not once per jurisdiction
        seen, unique = set(), []
        for r in rows:
            key = (r["name"], r["from"], r["to"], r["value"], r["source"])
            if key not in seen:
                seen.add(key)
                unique.append({**r, "jurisdiction": r["jurisdiction"] if "national" not in
                               r["source"] else "national"})
        rows = unique
    if assumptions:
        rows = [r for r in rows if r["is_assumption"]]
    _print_rules(rows)


WIDE_RULES = 120  # below this console width, each rule value is a block of lines, not a row


def _rule_cells(r: dict) -> tuple[str, str, str, str]:
    """Name [jurisdiction], window, value with unit, reference (file:line), as Rich markup."""
    where = "" if r["jurisdiction"] == "national" else f" [{r['jurisdiction']}]"
    flag = "[yellow]ASSUMPTION[/] " if r["is_assumption"] else ""
    return (escape(r["name"] + where), f"{r['from']}..{r['to'] or ''}",
            f"{r['value']:g} {r['unit']}",
            flag + escape(r["reference"]) + escape(f" ({os.path.basename(r['file'])}:"
                                                    f"{r['line']})"))


def _print_rules(rows: list[dict]) -> None:
    """One row a value on a wide console; at 80 columns a block a value (name; window and
    value; the reference, indented), so that nothing is cut."""
    title = f"rule values in force ({len(rows)})"
    if console.width >= WIDE_RULES:
        t = Table(title=title, show_lines=False, expand=True)
        t.add_column("name [jurisdiction]", no_wrap=True)
        t.add_column("in force", no_wrap=True)
        t.add_column("value", justify="right", no_wrap=True)
        t.add_column("reference (file:line)", ratio=1, overflow="fold")
        for r in rows:
            t.add_row(*_rule_cells(r))
    else:
        t = Table.grid()
        t.add_column(overflow="fold")
        console.print(Text.assemble((title, "bold"), ": name [jurisdiction] / in force, "
                                    "value / reference (file:line)"))
        for r in rows:
            name, window, value, ref = _rule_cells(r)
            t.add_row(Text.from_markup(name, style="bold"))
            t.add_row(Padding(f"{window}   {value}", (0, 0, 0, 2)))
            t.add_row(Padding(ref, (0, 0, 0, 2)))
    console.print(t)
    n_assume = sum(bool(r["is_assumption"]) for r in rows)
    console.print(f"{len(rows)} values, {n_assume} of them assumptions (flagged).")


def main() -> None:  # pragma: no cover
    app()


# --------------------------------------------------------------------------- Dask

WorkersOpt = Annotated[int | None, typer.Option(
    help="workers of the local Dask cluster (one run each at a time); default: 1")]
SchedulerOpt = Annotated[str | None, typer.Option(
    help="address of an existing Dask scheduler, e.g. tcp://127.0.0.1:8786, instead of a "
         "local cluster")]


BatchOpt = Annotated[int, typer.Option(
    help="trials asked at a time and run side by side (each seed of each a task); the "
         "trials drawn depend on it, never on the workers: keep it to reproduce a study")]


def _where(workers: int | None, scheduler: str | None) -> str:
    """--workers and --scheduler checked; where the runs will go, in words."""
    if workers is not None:
        _check(checks.int_in, "--workers", workers, 1, 1024)
    if scheduler is not None:
        _check(checks.scheduler_endpoint, "--scheduler", scheduler)
        return f"scheduler {scheduler}"
    n = workers or 1
    return f"local Dask cluster, {n} worker{'s' if n > 1 else ''}"


def _trials_where(batch: int, workers: int | None, scheduler: str | None) -> str:
    """--batch, --workers and --scheduler of a calibration study (calibrate, recover)
    checked; where its trials will go, in words."""
    _check(checks.int_in, "--batch", batch, 1, 1024)
    return _where(workers, scheduler)


@contextlib.contextmanager
def _worker_failures(kept: str = "") -> Iterator[None]:
    """A worker unfit for the command's tasks, or a task that failed on one for a reason
    outside the model (ensemble's WorkerError): one line saying what to do, then `kept` (what
    the tasks done left on disk) if any task ran; exit code 1."""
    from .ensemble import WorkerError

    try:
        yield
    except WorkerError as e:
        _fail(RuntimeError(f"{e}{'' if e.before_tasks else kept}"), code=1)


# --------------------------------------------------------------------------- calibration

TargetsOpt = Annotated[Path | None, typer.Option(
    help="targets file; default: the embedded data/targets.yaml")]


def _load_targets(path: Path | None):  # noqa: ANN202 - a TargetsFile
    from .targets import TargetsError, load_targets

    try:
        if path is not None:
            checks.input_file("--targets", path)
        return load_targets(path)
    except (ArgumentError, TargetsError, OSError) as e:
        _fail(e)


def _fitted_lines(result, width: int) -> list[str]:  # noqa: ANN001 - a CalibrationResult
    """The fitted values as plain lines of at most `width` characters: each value with its
    bounds, rule-file start and fit on one line (the name alone above them when it is long),
    then where the bounds come from and the targets it informs, wrapped, never cut."""
    numbers = 38  # bounds 16, rule files 11, fitted 11
    name_w = max(width - numbers, 12)
    lines = [f"{'value':<{name_w}}{'search bounds':>16}{'rule files':>11}{'fitted':>11}"]
    for d in result.dimensions:
        what = d.id + (" (factor)" if d.mode == "factor" else "")
        row = f"{d.low:g}..{d.high:g}".rjust(16) + f"{d.start:.4g}".rjust(11) + \
            f"{result.best[d.id]:.4g}".rjust(11)
        if len(what) < name_w:
            lines.append(f"{what:<{name_w}}{row}")
        else:
            lines += [what, " " * name_w + row]
        lines += textwrap.wrap(f"bounds: {d.bounds_from}; informs {', '.join(d.informs)}",
                               width, initial_indent="    ", subsequent_indent="    ",
                               break_on_hyphens=False)
    return lines


def _print_calibration(result, tf) -> None:  # noqa: ANN001 - a CalibrationResult, a TargetsFile
    """The fitted values and the targets at the best trial, readable at 80 columns."""
    from rich import box

    lowest = ("" if not math.isfinite(result.lowest_loss) or result.lowest_loss ==
              result.best_loss else f"; the lowest of any trial {result.lowest_loss:.3f}")
    why = ("the lowest among those meeting the hard targets" if result.meets_hard else
           "no trial meets the hard targets: the one nearest to meeting them")
    console.print(Text.assemble(("fitted values", "bold"), f" (study {result.study_name}): "
                                f"loss {result.best_loss:.3f} at the chosen trial, {why}"
                                f"{lowest}"))
    for line in _fitted_lines(result, console.width):
        console.print(Text(line), soft_wrap=True)
    t2 = Table(title="targets at the best trial (mean over the trial seeds)",
               box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    t2.add_column("target", overflow="fold")
    for col in ("published", "model", "error"):
        t2.add_column(col, justify="right", no_wrap=True)
    for tg in tf.targets:
        v = result.best_values.get(tg.id, float("nan"))
        err = (v - tg.value) / tg.value if tg.value else float("nan")
        t2.add_row(_wrap_name(tg.id, max(console.width - 36, 12)), _fmt(tg.value, tg.unit),
                   _fmt(v, tg.unit), "-" if err != err else f"{100 * err:+.1f}%")
    console.print(t2)


@app.command()
def calibrate(
    scenario: ScenarioArg = None,
    targets: TargetsOpt = None,
    trials: Annotated[int | None, typer.Option(
        help="completed trials wanted in total (a resumed study runs only the missing ones); "
             "default: the targets file's")] = None,
    scale: Annotated[float | None, typer.Option(
        help="scale of the trial runs; default: the targets file's")] = None,
    seeds: Annotated[str | None, typer.Option(
        help="seeds of every trial, e.g. 101,102; default: the targets file's")] = None,
    storage: Annotated[str, typer.Option(
        help="Optuna journal file; an interrupted study resumes from it")] = (
        "runs/calibration/journal.log"),
    out: Annotated[str | None, typer.Option(
        help="overlay to write; default runs/calibration/calibrated.yaml (naming the package's "
             "data/rules/calibrated.yaml here is the only way to replace it)")] = None,
    restart: Annotated[bool, typer.Option(
        "--restart", help="delete the study in the storage and start again")] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="replace an overlay even if its best loss is lower than the new one")
    ] = False,
    batch: BatchOpt = 1,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    warm: Annotated[bool, typer.Option("--warm", help=(
        "first try the values in force (the calibrated overlay), then the rule files'"))] = False,
    polish: Annotated[int, typer.Option(help="rounds of compass search from the chosen "
                                        "trial after the sampler's trials")] = 0,
    only: Annotated[str | None, typer.Option(help=(
        "fit only these dimensions, e.g. isolation_to_rehab_2018; the others are held at "
        "their values in force"))] = None,
) -> None:
    """Fit the assumptions the targets inform and write them as a cited rule overlay."""
    from .calibration import CalibrationStorageError, WorseCalibrationError
    from .calibration import calibrate as run_calibration
    from .ensemble import ClusterError

    where, seed_list, out = _calibrate_args(trials, polish, batch, workers, scheduler, scale,
                                            seeds, storage, out)
    tf = _load_targets(targets)
    only_ids = _only_ids(only, tf)
    sc = _scenario(scenario)
    _fits_in_period(tf, sc)
    n = trials or tf.calibration.trials
    n_fit = len(only_ids) or len(tf.calibration.fitted)
    console.print(f"[bold]calibrate[/] {escape(sc.name)}: {n_fit} values, "
                  f"{n} trials in batches of {batch}, study in {escape(str(storage))} "
                  f"({escape(where)})")
    _compile_for(scheduler)
    kept = f"; the trials done are kept in {storage}: the same command continues the study"
    try:
        with _worker_failures(kept), bars(console) as bar:
            task = bar.add_task("trials", total=n)

            def tick(done: int, total: int, best: float) -> None:
                bar.update(task, completed=done, total=total,
                           description=_trials_text("trials", best))

            result = run_calibration(sc, tf, Path(storage).expanduser(), trials=trials,
                                     scale=scale, seeds=seed_list, out=out, restart=restart,
                                     progress=tick, force=force, batch=batch,
                                     workers=workers, scheduler=scheduler, warm=warm,
                                     polish=polish, only=only_ids)
    except KeyboardInterrupt:
        console.print(Text(f"interrupted: the trials done are kept in {storage}; "
                           "run the same command again to continue."), soft_wrap=True)
        raise typer.Exit(130) from None
    except (CalibrationStorageError, WorseCalibrationError, ClusterError) as e:
        _fail(e)
    except OSError as e:
        _fail(ArgumentError("--out", f"cannot write {out}: {e.strerror or e}"))
    except (ScenarioError, RuleError, OutOfWindowError, ValueError) as e:
        _fail(e)
    _print_calibration(result, tf)
    console.print(f"{result.trials_complete} trials complete; overlay written to "
                  f"[bold]{escape(str(result.overlay))}[/]")


def _calibrate_args(trials: int | None, polish: int, batch: int, workers: int | None,
                    scheduler: str | None, scale: float | None, seeds: str | None,
                    storage: str, out: str | None) -> tuple[str, list[int] | None, Path]:
    """calibrate's arguments checked before any work: where the trials run, the seeds and
    the overlay to write."""
    if trials is not None:
        _check(checks.int_in, "--trials", trials, 1, 100_000)
    _check(checks.int_in, "--polish", polish, 0, 1_000)
    where = _trials_where(batch, workers, scheduler)
    if scale is not None:
        _check(checks.float_in, "--scale", scale, 0.0, 1.0, low_open=True)
    seed_list = None if seeds is None else _check(checks.seed_list, "--seeds", seeds)
    _check(checks.output_file, "--storage", storage)  # used as given: messages name it so
    # an explicit --out is the user's word, even into the package; the default never is
    out_path = (_check(checks.output_file, "--out", out, allow_package=True) if out is not None
                else _check(checks.output_file, "--out", Path("runs/calibration/calibrated.yaml")))
    return where, seed_list, out_path


def _only_ids(only: str | None, tf) -> tuple[str, ...]:  # noqa: ANN001 - a TargetsFile
    """The dimension ids of --only, each one of the targets file's fitted dimensions."""
    if only is None:
        return ()
    ids = tuple(dict.fromkeys(s.strip() for s in only.split(",") if s.strip()))
    known = [f.id for f in tf.calibration.fitted]
    unknown = [i for i in ids if i not in known]
    if not ids or unknown:
        what = (f"{', '.join(unknown)}: not a fitted dimension of the targets file" if unknown
                else "names no dimension")
        _fail(ArgumentError("--only", f"{what} (calibration.fitted: {', '.join(known)})"))
    return ids


def _recover_settings(tf, scale: float, seeds: str | None, trials: int, truth: str,  # noqa: ANN001
                      truth_seed: int | None, threshold: float,
                      batch: int, polish: int = 0):  # noqa: ANN202 - Settings
    """The recovery check's arguments, each checked before any work, as its Settings (--batch
    checked with --workers and --scheduler, by _trials_where)."""
    from .recovery import DEFAULT_TRUTH_SEED, TRUTH_MODES, Settings

    _check(checks.float_in, "--scale", scale, 0.0, 1.0, low_open=True)
    _check(checks.int_in, "--trials", trials, 1, 100_000)
    seed_list = tf.calibration.seeds if seeds is None else _check(checks.seed_list, "--seeds",
                                                                  seeds)
    if truth not in TRUTH_MODES:
        _fail(ArgumentError("--truth", f"must be one of {', '.join(TRUTH_MODES)}, got "
                                       f"{truth!r}"))
    if truth_seed is not None:
        if truth != "random":
            _fail(ArgumentError("--truth-seed", "applies only with --truth random"))
        _check(checks.int_in, "--truth-seed", truth_seed, 0, checks.SEED_MAX)
    _check(checks.float_in, "--threshold", threshold, 0.0, 1e6, low_open=True)
    _check(checks.int_in, "--polish", polish, 0, 1_000)
    return Settings(scale=scale, seeds=tuple(seed_list), trials=trials, truth=truth,
                    truth_seed=DEFAULT_TRUTH_SEED if truth_seed is None else truth_seed,
                    threshold=threshold, batch=batch, polish=polish)


def _recover_with_progress(sc, tf, folder: Path, settings, restart: bool,  # noqa: ANN001, ANN202
                           workers: int | None, scheduler: str | None):
    """recovery.recover under two progress bars: the runs at the truth, then the trials
    (with the time left estimated from this session's trials only)."""
    from .recovery import recover

    with bars(console) as bar:
        runs = bar.add_task("model runs at the truth", total=len(settings.seeds))
        task = bar.add_task("calibration trials", total=settings.trials, start=False)
        started: list[bool] = []  # a resumed study's earlier trials add no speed

        def tick(done: int, total: int, best: float) -> None:
            what = _trials_text("calibration trials", best)
            if not started:
                started.append(True)
                bar.reset(task, total=total, completed=done, description=what)
            bar.update(task, completed=done, total=total, description=what)

        return recover(sc, tf, folder, settings, restart=restart, trials_progress=tick,
                       runs_progress=lambda d, n: bar.update(runs, completed=d, total=n),
                       workers=workers, scheduler=scheduler)


@app.command()
def recover(
    scenario: ScenarioArg = None,
    targets: TargetsOpt = None,
    scale: Annotated[float, typer.Option(help="scale of every run (0.01 = 1%)")] = 0.01,
    seeds: Annotated[str | None, typer.Option(
        help="seeds of the synthetic runs and of every trial, e.g. 101,102; default: the "
             "targets file's")] = None,
    trials: Annotated[int, typer.Option(help="calibration trials to run")] = 100,
    polish: Annotated[int, typer.Option(help="rounds of compass search from the chosen "
                                        "trial after the trials, as in calibrate")] = 0,
    truth: Annotated[str, typer.Option(
        help="random: true values drawn uniformly within each search range; current: the "
             "values the scenario uses now")] = "random",
    truth_seed: Annotated[int | None, typer.Option(
        help="seed of the random true values; default 1")] = None,
    threshold: Annotated[float, typer.Option(
        help="near-best trials: loss within this of the best (negative log-likelihood)")] = 2.0,
    out: Annotated[str | None, typer.Option(
        help="output folder (synthetic targets, journal, recovery.csv, recovery.md); default "
             "runs/recovery/<scenario>-<truth>")] = None,
    restart: Annotated[bool, typer.Option(
        "--restart", help="delete the study in the folder's journal and start again")] = False,
    batch: BatchOpt = 1,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
) -> None:
    """Calibrate to synthetic targets made at known values: which assumptions come back."""
    from . import recovery as rec
    from .calibration import CalibrationStorageError, dimensions
    from .ensemble import ClusterError
    from .targets import TargetsError

    tf = _load_targets(targets)
    settings = _recover_settings(tf, scale, seeds, trials, truth, truth_seed, threshold, batch,
                                 polish)
    where = _trials_where(batch, workers, scheduler)
    if out is not None:
        _check(checks.output_folder, "--out", out)
    sc = _scenario(scenario)
    _fits_in_period(tf, sc)
    label = "current" if truth == "current" else f"random-{settings.truth_seed}"
    out_arg = Path(out) if out is not None else Path("runs/recovery") / f"{sc.name}-{label}"
    folder = _check(checks.output_folder, "--out", out_arg)
    try:
        n_dims = len(dimensions(tf, sc))
    except (ValueError, RuleError) as e:
        _fail(ValueError(f"{tf.path}: calibration: {e}"))
    command = settings.command(scenario, targets, out_arg)
    console.print(f"[bold]recover[/] {escape(sc.name)}: {n_dims} dimensions, truth "
                  f"{settings.truth}, runs at the truth: {len(settings.seeds)}, then "
                  f"{trials} trials in batches of {batch} at scale {scale:g}; in "
                  f"{escape(str(out_arg))} ({escape(where)})")
    _compile_for(scheduler)
    journal = out_arg / rec.JOURNAL_NAME
    try:
        with _worker_failures(f"; the trials done are kept in {journal}: the same command "
                              "continues the study"):
            result = _recover_with_progress(sc, tf, folder, settings, restart, workers,
                                            scheduler)
        paths = publish(folder, lambda f: rec.write(result, f, command))
    except KeyboardInterrupt:
        console.print(Text(f"interrupted: the trials done are kept in {journal}; run the same "
                           "command again to continue."), soft_wrap=True)
        raise typer.Exit(130) from None
    except (CalibrationStorageError, rec.RecoveryError, TargetsError, ClusterError) as e:
        _fail(e)
    except OSError as e:
        _fail(ArgumentError("--out", f"cannot write into {out_arg}: {e.strerror or e}"))
    except (ScenarioError, RuleError, OutOfWindowError, ValueError) as e:
        _fail(e)
    console.print(rec.rich_table(result))
    console.print(Text(rec.explanation(result)), soft_wrap=False)
    console.print(Text("not identified: " + (", ".join(result.not_identified) or "none")
                       + "; traded off: " + (", ".join(result.traded_off) or "none")))
    console.print(Text(f"the best trial's loss is mostly: {rec.worst_targets(result)}"))
    for note in result.notes:
        console.print(Text(f"note: {note}"))
    console.print(f"synthetic targets, journal and {', '.join(paths)} in "
                  f"[bold]{escape(str(out_arg))}[/]")


def _command(name: str, scenario: object, options: dict[str, object],
             repeated: list[tuple[str, str]] = ()) -> str:
    """The command line that gives this result (for the files' provenance)."""
    parts = [f"dcsim {name}", *([str(scenario)] if scenario else [])]
    parts += [f"{k} {v}" for k, v in options.items() if v is not None]
    parts += [f"{k} {v}" for k, v in repeated]
    return " ".join(parts)


def _reform_paths(refs: list[str]) -> list[Path]:
    """--reform names resolved to rule overlay files, or the argument named."""
    from .compare import find_reform

    out = []
    for r in refs:
        p = find_reform(r)
        if p is None:
            _fail(ArgumentError("--reform", f"{r!r}: no such file or package reform "
                                            "(`dcsim reforms` lists them)"))
        out.append(p)
    return out


def _short(v: float) -> str:
    """A number in at most about eight characters: 12.3M, 456k, 7,890, 0.123."""
    a = abs(v)
    if v != v:
        return "-"
    if a >= 1e6:
        return f"{v / 1e6:,.1f}M"
    if a >= 1e5:
        return f"{v / 1e3:,.0f}k"
    if a >= 100:
        return f"{v:,.0f}"
    return f"{v:.3g}"


def _print_effects(effects) -> None:  # noqa: ANN001 - a DataFrame
    """One table per reform: its effect on the main figures, calibrated and over the draws."""
    keys = ("person_years_under_control", "person_years_under_alerts", "releases_full",
            "trapped_insufficient_tests", "person_years_isolation", "person_years_using",
            "officer_hours")
    for name, block in effects.groupby("reform", sort=False):
        t = Table(title=f"{name}: effect on each draw (reform minus the draw without it)")
        for col in ("figure", "calibrated", "5%", "median", "95%", "same sign"):
            t.add_column(col, justify="left" if col == "figure" else "right")
        for r in block[block["key"].isin(keys)].itertuples(index=False):
            same = "-" if r.same_sign != r.same_sign else f"{100 * r.same_sign:.0f}%"
            t.add_row(r.label, _short(r.calibrated), _short(r.p05), _short(r.median),
                      _short(r.p95), same)
        console.print(t)


def _print_uncertainty(result) -> None:  # noqa: ANN001 - an UncertaintyResult
    """The values the record leaves most open, and the spread of the yearly predictions, in
    tables that fit 80 columns."""
    from .uncertainty import fmt

    post = result.posterior.sort_values("width_share", ascending=False).head(10)
    t = Table(title="fitted values the record leaves most open (kept steps)")
    for col in ("value", "calibrated", "5%", "95%", "of range", "ESS", "R-hat"):
        t.add_column(col, justify="left" if col == "value" else "right", overflow="fold")
    for r in post.itertuples(index=False):
        t.add_row(r.dimension, fmt(r.calibrated), fmt(r.p05), fmt(r.p95),
                  f"{100 * r.width_share:.0f}%", f"{r.min_ess:.0f}", f"{r.rhat:.2f}")
    console.print(t)
    t2 = Table(title="official quantities at year end: calibrated run, and 90% of the draws")
    for col in ("quantity", "year", "role", "calibrated", "5%", "95%"):
        t2.add_column(col, justify="left" if col in ("quantity", "role") else "right")
    for r in result.official.itertuples(index=False):
        if int(r.date[:4]) in (2019, 2022, 2025):
            t2.add_row(r.quantity, r.date[:4], r.role, fmt(r.calibrated), fmt(r.p05),
                       fmt(r.p95))
    console.print(t2)


@app.command()
def uncertainty(
    scenario: ScenarioArg = None,
    targets: TargetsOpt = None,
    steps: Annotated[int, typer.Option(help="steps of each chain (a resumed chain runs only "
                                            "the missing ones)")] = 1000,
    burn_in: Annotated[int, typer.Option(help="first steps of each chain, adaptive, not kept")
                       ] = 500,
    chains: Annotated[int, typer.Option(help="chains, run side by side")] = 2,
    draws: Annotated[int, typer.Option(help="draws taken from the kept steps and run")] = 20,
    scale: Annotated[float | None, typer.Option(
        help="scale of the draws' runs; default: the scenario's")] = None,
    seed: Annotated[int | None, typer.Option(
        help="seed of the draws' runs; default: the scenario's")] = None,
    sampler_seed: Annotated[int, typer.Option(help="seed of the chains' steps")] = 1,
    reform: Annotated[list[str] | None, typer.Option(
        help="a reform (package name or rule overlay file) to run on every draw; repeat "
             "for several")] = None,
    out: Annotated[str | None, typer.Option(
        help="output folder; default runs/uncertainty-<name>")] = None,
    restart: Annotated[bool, typer.Option(
        "--restart", help="discard the folder's chain file and start again")] = False,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
) -> None:
    """Sample the fitted values the record allows, and run draws of them (90% ranges)."""
    from . import uncertainty as unc
    from .ensemble import ClusterError

    _check(checks.int_in, "--steps", steps, 2, 1_000_000)
    _check(checks.int_in, "--burn-in", burn_in, 0, steps - 1)
    _check(checks.int_in, "--chains", chains, 1, 64)
    _check(checks.int_in, "--draws", draws, 1, chains * (steps - burn_in))
    if scale is not None:
        _check(checks.float_in, "--scale", scale, 0.0, 1.0, low_open=True)
    if seed is not None:
        _check(checks.int_in, "--seed", seed, 0, checks.SEED_MAX)
    _check(checks.int_in, "--sampler-seed", sampler_seed, 0, checks.SEED_MAX)
    where = _where(workers, scheduler)
    reforms = _reform_paths(reform or [])
    tf = _load_targets(targets)
    sc = _scenario(scenario)
    _fits_in_period(tf, sc)
    folder = _check(checks.output_folder, "--out",
                    Path(out) if out is not None else Path("runs") / f"uncertainty-{sc.name}")
    settings = unc.ChainSettings(steps=steps, burn_in=burn_in, chains=chains, seed=sampler_seed)
    command = _command("uncertainty", scenario, {
        "--steps": steps, "--burn-in": burn_in, "--chains": chains, "--draws": draws,
        "--sampler-seed": sampler_seed, "--scale": scale, "--seed": seed,
        "--targets": targets, "--out": out}, [("--reform", r) for r in reform or []])
    console.print(f"[bold]uncertainty[/] {escape(sc.name)}: {chains} chains of {steps} steps "
                  f"({burn_in} burn-in), then {draws} draws and the calibrated run at scale "
                  f"{sc.scale if scale is None else scale:g}; in {escape(str(folder))} "
                  f"({escape(where)})")
    _compile_for(scheduler)
    kept = f"; the steps done are kept in {folder}: the same command continues the chains"
    try:
        with _worker_failures(kept), bars(console) as bar:
            tasks = {"steps": bar.add_task("chain steps", total=chains * steps),
                     "runs": bar.add_task("draw runs", total=(draws + 1) * (1 + len(reforms)))}
            result = unc.uncertainty(
                sc, tf, folder, settings, draws, scale=scale, seed=seed, reforms=reforms,
                restart=restart,
                workers=workers, scheduler=scheduler,
                progress=lambda st, d, n: bar.update(tasks[st], completed=d, total=n))
        paths = publish(folder, lambda f: unc.write(result, f, command))
    except KeyboardInterrupt:
        console.print(Text(f"interrupted: the steps done are kept in {folder}; run the same "
                           "command again to continue."), soft_wrap=True)
        raise typer.Exit(130) from None
    except (unc.UncertaintyError, ClusterError) as e:
        _fail(e)
    except OSError as e:
        _fail(ArgumentError("--out", f"cannot write into {folder}: {e.strerror or e}"))
    except (ScenarioError, RuleError, OutOfWindowError, ValueError) as e:
        _fail(e)
    _print_uncertainty(result)
    if result.effects is not None:
        _print_effects(result.effects)
    console.print(f"acceptance {100 * result.acceptance:.1f}%; {', '.join(paths)} in "
                  f"[bold]{escape(str(folder))}[/]")


FIT_HEADS = ("result", "role", "target", "published", "model mean", "error")
FIT_KEYS = ("result", "role", "id", "published", "model mean", "error")
FIT_GAPS = (1, 1, 2, 2, 2)  # spaces after each column but the last
FIT_STYLES = {"FAIL": "bold red", "miss": "yellow"}
FIT_LEGEND = ("role: in = a rule is set from the figure, cal = the calibration used it "
              "(weight > 0 or it informs a fitted value), pred = never used (a test of the "
              "model). result: FAIL = a hard target outside its tolerance, miss = a soft one. "
              "error: in percentage points (pt) for a share, else relative. The 90% interval, "
              "source and tolerance of each target are in fit.md and fit.csv.")


def _fit_lines(rows: list[dict[str, str]], width: int) -> list[Text]:
    """The fit table (fit.compact rows) as lines of at most `width` characters: one line a
    target, the result and role first so that an id too long for its column keeps its line
    whole and its numbers go on the next; an id is never cut."""
    w = [max([len(h), *(len(r[k]) for r in rows)]) for h, k in zip(FIT_HEADS, FIT_KEYS,
                                                                      strict=True)]
    w[2] = max(12, min(w[2], width - (sum(w) - w[2] + sum(FIT_GAPS))))

    def line(cells: tuple[str, ...], style: str = "") -> Text:
        parts = [c.ljust(n) if i < 3 else c.rjust(n)
                 for i, (c, n) in enumerate(zip(cells, w, strict=True))]
        text = "".join(p + " " * g for p, g in zip(parts, FIT_GAPS, strict=False)) + parts[-1]
        return Text(text.rstrip(), style=style)

    out = [line(FIT_HEADS, "bold"), Text("─" * (sum(w) + sum(FIT_GAPS)), style="dim")]
    kind = None
    for r in rows:
        if r["kind"] != kind:
            kind = r["kind"]
            out.append(Text(f"{kind} targets", style="bold underline"))
        cells = tuple(r[k] for k in FIT_KEYS)
        style = FIT_STYLES.get(r["result"], "")
        if len(r["id"]) <= w[2]:
            out.append(line(cells, style))
        else:  # the whole id on the line of its result, the numbers under their heads
            out.append(Text("".join(c.ljust(n) + " " * g for c, n, g in zip(
                cells[:2], w, FIT_GAPS, strict=False)) + r["id"], style=style))
            out.append(line(("", "", "", *cells[3:]), style))
    return out


def _print_fit(rows: list[dict[str, str]], title: str, out: Console | None = None) -> None:
    """The fit table at the console's width (readable at 80 columns), with its legend."""
    out = out or console
    out.print(Text(title, style="bold"))
    for ln in _fit_lines(rows, out.width):
        out.print(ln)
    out.print(FIT_LEGEND, style="dim")


@app.command()
def fit(
    scenario: ScenarioArg = None,
    targets: TargetsOpt = None,
    seeds: Annotated[int, typer.Option(help="number of seeds (runs)")] = 20,
    scale: Annotated[float | None, typer.Option(
        help="share of the registry to simulate; default: the scenario's (1.0)")] = None,
    first_seed: Annotated[int | None, typer.Option(
        help="first seed; default: the scenario's")] = None,
    out: Annotated[str | None, typer.Option(
        help="output folder; default runs/fit-<name>")] = None,
    strict: Annotated[bool, typer.Option(
        "--strict", help="exit with status 1 if a hard target fails")] = False,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
) -> None:
    """Run the (calibrated) scenario over several seeds and compare it with every target."""
    from . import fit as fitmod
    from .ensemble import ClusterError
    from .fit import compact

    _check(checks.int_in, "--seeds", seeds, 1, 10_000)
    where = _where(workers, scheduler)
    if scale is not None:
        _check(checks.float_in, "--scale", scale, 0.0, 1.0, low_open=True)
    if first_seed is not None:
        _check(checks.int_in, "--first-seed", first_seed, 0, checks.SEED_MAX - seeds + 1)
    if out is not None:
        _check(checks.output_folder, "--out", out)
    tf = _load_targets(targets)
    sc = _scenario(scenario, scale=scale)
    first = sc.seed if first_seed is None else first_seed
    if first + seeds - 1 > checks.SEED_MAX:
        _fail(ArgumentError("--seeds", f"{seeds} seeds from {first} pass the largest seed "
                                       f"{checks.SEED_MAX}"))
    seed_list = [first + i for i in range(seeds)]
    out = Path(out) if out is not None else Path("runs") / f"fit-{sc.name}"
    _check(checks.output_folder, "--out", out)
    console.print(f"[bold]fit[/] {escape(sc.name)}: {seeds} seeds from {first}, "
                  f"scale {sc.scale:g} ({escape(where)})")
    _compile_for(scheduler)
    try:
        with _worker_failures(), bars(console) as bar:
            task = bar.add_task("runs", total=seeds)
            report = fitmod.fit(sc, tf, seed_list,
                                progress=lambda d, n: bar.update(task, completed=d, total=n),
                                workers=workers, scheduler=scheduler)
    except (RuleError, OutOfWindowError, ClusterError) as e:
        _fail(e)
    try:  # all files or none: written into a staging folder, then moved into place
        paths = publish(out, lambda folder: fitmod.write(report, folder))
    except OSError as e:
        _fail(ArgumentError("--out", f"cannot write into {out}: {e.strerror or e}"))
    table = report.table
    _print_fit(compact(table), f"fit to the published figures ({seeds} seeds, scale "
                               f"{sc.scale:g})")
    hard = table[table["kind"] == "hard"]
    failed = hard[~hard["passes"]]
    if failed.empty:
        console.print(f"[green]all {len(hard)} hard targets pass[/]; "
                      f"{int((~table['passes']).sum())} soft targets outside their tolerance")
    else:
        console.print(f"[bold red]{len(failed)} hard targets fail:[/] "
                      + ", ".join(failed["id"]))
    console.print(f"table and plots in [bold]{escape(str(out))}[/] ({len(paths)} files)")
    if strict and not failed.empty:
        raise typer.Exit(1)


@app.command()
def sensitivity(
    scenario: ScenarioArg = None,
    trajectories: Annotated[int, typer.Option(help="Morris trajectories")] = 10,
    levels: Annotated[int, typer.Option(help="Morris grid levels")] = 4,
    scale: Annotated[float, typer.Option(help="scale of every run")] = 0.02,
    seed: Annotated[int, typer.Option(help="seed of every run (common random numbers)")] = 101,
    out: Annotated[str | None, typer.Option(
        help="output folder; default runs/sensitivity-<name>")] = None,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
) -> None:
    """Rank every assumption by how much it moves the main outputs (Morris, SALib)."""
    from . import sensitivity as sens
    from .ensemble import ClusterError

    _check(checks.int_in, "--trajectories", trajectories, 2, 10_000)
    _check(checks.int_in, "--levels", levels, 2, 100)
    _check(checks.float_in, "--scale", scale, 0.0, 1.0, low_open=True)
    _check(checks.int_in, "--seed", seed, 0, checks.SEED_MAX)
    where = _where(workers, scheduler)
    if out is not None:
        _check(checks.output_folder, "--out", out)
    sc = _scenario(scenario)
    out = Path(out) if out is not None else Path("runs") / f"sensitivity-{sc.name}"
    _check(checks.output_folder, "--out", out)
    try:
        n_factors = sum(1 for f in sens.factors(sc) if f.varied)
    except (ScenarioError, RuleError) as e:
        _fail(e)
    runs = trajectories * (n_factors + 1) + 1
    console.print(f"[bold]sensitivity[/] {escape(sc.name)}: {n_factors} assumptions varied, "
                  f"{trajectories} trajectories, {runs} runs at scale {scale:g} "
                  f"({escape(where)})")
    _compile_for(scheduler)
    try:
        with _worker_failures(), bars(console) as bar:
            task = bar.add_task("runs", total=runs)
            result = sens.morris(sc, trajectories=trajectories, levels=levels, scale=scale,
                                 seed=seed, workers=workers, scheduler=scheduler,
                                 progress=lambda d, n: bar.update(task, completed=d, total=n))
    except (RuleError, OutOfWindowError, ClusterError) as e:
        _fail(e)
    try:
        paths = publish(out, lambda folder: sens.write(result, folder))
    except OSError as e:
        _fail(ArgumentError("--out", f"cannot write into {out}: {e.strerror or e}"))
    ranked = sens.ranking(result.table)
    if result.undefined:
        console.print("not ranked on (no value in the scenario's period): "
                      + "; ".join(sens.OUTPUTS[o] for o in result.undefined), soft_wrap=False)
    console.print("[bold]assumptions that move the main outputs most[/] (mu* as % of baseline)")
    for line in sens.terminal_lines(ranked, width=min(console.width, 100)):
        console.print(Text(line), soft_wrap=True)
    fixed = int((~ranked["varied"].astype(bool)).sum())
    also = (f", {fixed} of them not varied (a range of one point, such as an app's 0 "
            "before its pilot) and ranked at zero" if fixed else "")
    console.print(f"{len(ranked)} assumptions ranked{also}; table and plot in "
                  f"[bold]{escape(str(out))}[/] ({len(paths)} files)")


# --------------------------------------------------------------------------- comparisons

SeedsOpt = Annotated[int, typer.Option(help="number of seeds (runs per arm), from --first-seed")]
CmpScaleOpt = Annotated[float | None, typer.Option(
    help="share of the registry to simulate in every run; default: the scenario's")]
FirstSeedOpt = Annotated[int | None, typer.Option(help="first seed; default: the scenario's")]
CsvOpt = Annotated[bool, typer.Option("--csv", help="also write the tables as CSV")]


def _run_comparison(baseline: str | None, reforms: list[str], seeds: int, scale: float | None,
                    first_seed: int | None, out: Path | None, workers: int | None,
                    scheduler: str | None, csv: bool, title: str) -> None:
    from .compare import CompareError, make_arms, summary_lines
    from .ensemble import ClusterError, run_ensemble

    _check(checks.int_in, "--seeds", seeds, 1, 10_000)
    if scale is not None:
        _check(checks.float_in, "--scale", scale, 0.0, 1.0, low_open=True)
    where = _where(workers, scheduler)
    if first_seed is not None:
        _check(checks.int_in, "--first-seed", first_seed, 0, checks.SEED_MAX - seeds)
    if out is not None:
        _check(checks.output_folder, "--out", out)
    try:
        arms = make_arms(baseline, reforms)
        sc = arms[0].load(scale=scale)
    except (CompareError, ScenarioError, RuleError) as e:
        _fail(e)
    first = sc.seed if first_seed is None else first_seed
    seed_list = [first + i for i in range(seeds)]
    out = out or Path("runs") / f"{title}-{'-'.join(a.name for a in arms)}"
    _check(checks.output_folder, "--out", out)
    n = len(arms) * seeds
    console.print(f"[bold]{title}[/] {', '.join(a.name for a in arms)}: {seeds} seeds from "
                  f"{first}, scale {sc.scale:g}, {n} runs ({escape(where)})")
    _compile_for(scheduler)
    kept = f"; the finished runs are kept in {out}/runs: the same command runs only the others"
    try:
        with _worker_failures(kept), bars(console) as bar:
            task = bar.add_task("runs finished", total=n)
            result = run_ensemble(arms, seed_list, out, scale=scale, workers=workers,
                                  scheduler=scheduler,
                                  progress=lambda d, t: bar.update(task, completed=d, total=t))
    except KeyboardInterrupt:
        console.print(Text(f"interrupted: finished runs are kept in {out}/runs; run the "
                           "same command again to continue."), soft_wrap=True)
        raise typer.Exit(130) from None
    except (CompareError, ClusterError, ScenarioError, RuleError, OutOfWindowError,
            OSError) as e:
        _fail(e)
    if csv:
        for name in ("summary", "per_seed", "monthly"):
            result.to_df(name).to_csv(out / f"{'monthly_summary' if name == 'monthly' else name}"
                                      ".csv", index=False)
    for line in summary_lines(result):
        console.print(line, highlight=False, soft_wrap=True)
    console.print(f"tables and manifest in [bold]{escape(str(out))}[/]")


@app.command()
def compare(
    baseline: Annotated[str, typer.Argument(
        help="baseline scenario: a file or a package scenario name (national-baseline)")],
    reform: Annotated[list[str], typer.Argument(
        help="reforms: rule overlays (files, or package reforms such as exit_law_2011) added "
             "to the baseline, or scenario files")],
    seeds: SeedsOpt = 10,
    scale: CmpScaleOpt = None,
    first_seed: FirstSeedOpt = None,
    out: Annotated[Path | None, typer.Option(
        help="output folder; default runs/compare-<arms>")] = None,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    csv: CsvOpt = False,
) -> None:
    """Run a baseline and reforms on the same seeds; differences with paired 90% intervals."""
    _run_comparison(baseline, reform, seeds, scale, first_seed, out, workers, scheduler, csv,
                    "compare")


@app.command()
def ensemble(
    scenario: ScenarioArg = None,
    seeds: SeedsOpt = 10,
    scale: CmpScaleOpt = None,
    first_seed: FirstSeedOpt = None,
    out: Annotated[Path | None, typer.Option(
        help="output folder; default runs/ensemble-<name>")] = None,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    csv: CsvOpt = False,
) -> None:
    """Run one scenario on several seeds; every figure with a 90% interval over seeds."""
    _run_comparison(str(scenario) if scenario else None, [], seeds, scale, first_seed, out,
                    workers, scheduler, csv, "ensemble")


@app.command()
def reforms() -> None:
    """List the package's reform overlays and structural switches and what each represents."""
    from .compare import package_reforms, package_switches
    from .rules import load_rule_file

    for title, overlays in (
            ("reforms (use with dcsim compare or dcsim run --overlay)", package_reforms()),
            ("structural switches: a contested reading set the other way (use the same way; "
             "docs/calibration.md section 5)", package_switches())):
        t = Table(title=title)
        t.add_column("name", no_wrap=True)
        t.add_column("what it represents", overflow="fold")
        for name, path in overlays.items():
            t.add_row(name, " ".join(load_rule_file(path).description.split()))
        console.print(t)


# --------------------------------------------------------------------------- report


@app.command()
def report(
    folder: Annotated[Path, typer.Argument(
        help="a `dcsim run` output folder, or a comparison/ensemble folder")],
    out: Annotated[Path | None, typer.Option(
        help="HTML file to write; default FOLDER/report.html")] = None,
    png: Annotated[Path | None, typer.Option(
        help="also write every chart as a PNG sized for a report page into this folder")] = None,
) -> None:
    """Write one self-contained HTML report (opens offline; each chart's data as CSV)."""
    from . import report as rep

    try:
        src = rep.load(folder)
    except rep.SourceError as e:
        console.print(f"[bold red]error:[/] FOLDER: {e}", soft_wrap=True)
        raise typer.Exit(2) from None
    path = out if out is not None else rep.default_out(folder)
    try:
        rep.check_out(path)
        if png is not None:
            rep.check_png_dir(png)
    except rep.ReportError as e:
        console.print(f"[bold red]error:[/] {e}", soft_wrap=True)
        raise typer.Exit(2) from None
    path = rep.write(src, path)
    console.print(f"report of {src.kind} [bold]{folder}[/] ({len(src.arms)} arm(s), "
                  f"{len(src.seeds)} seed(s)) written to [bold]{path}[/] "
                  f"({path.stat().st_size / 1e6:.1f} MB)")
    if png is not None:
        from .report.png import PngError

        try:
            with console.status("drawing the charts as PNG in headless Chromium"):
                paths = rep.write_pngs(path, png)
        except PngError as e:
            console.print(f"[bold red]error:[/] {e}", soft_wrap=True)
            raise typer.Exit(2) from None
        console.print(f"{len(paths)} PNG figures in [bold]{png}[/]")


# --------------------------------------------------------------------------- validate


def _validate_runs(run_dir: Path | None, scale: float, seed: int | None):  # noqa: ANN202
    """Per-seed model series: from a run or ensemble/compare folder, or one fresh run of the
    default scenario at `scale`; and a line saying which."""
    from . import validate as val
    from .report.source import SourceError

    if run_dir is not None:
        try:
            return val.run_folder_series(run_dir)
        except (SourceError, OSError, KeyError, ValueError) as e:  # ValueError: bad parquet
            _fail(ArgumentError("--run", str(e)))
    from . import results
    from .model import prepare, simulate

    sc = _scenario(None, scale=scale, seed=seed)
    console.print(f"no --run: running {escape(sc.name)} once at scale {sc.scale:g}, seed "
                  f"{sc.seed} (a single run: no interval)")
    _compile_first()
    with bars(console, transient=True) as bar:
        task = bar.add_task("simulating persons", total=None)
        run = simulate(prepare(sc), progress=lambda d, n: bar.update(task, completed=d,
                                                                     total=n))
    series = val.model_series(results.monthly_table(run))
    return [series], f"one run of {sc.name} (seed {sc.seed}, scale {sc.scale:g}): no interval"


UNIT_SHORT = {"persons": "persons", "person-times": "p-times", "share": "share"}
NAME_WIDTH = 24  # the figure column of the validate table: 80 columns less the other five


def _wrap_name(name: str, width: int = NAME_WIDTH) -> str:
    """A quantity name broken after its underscores into lines of at most `width` characters,
    so that a reader sees whole words (Rich would fold it mid-word)."""
    lines = [""]
    for part in re.findall(r"[^_]+_*|_+", name):
        if lines[-1] and len(lines[-1]) + len(part) > width:
            lines.append("")
        lines[-1] += part
    return "\n".join(lines)


def _print_validation(table, what: str) -> None:  # noqa: ANN001 - a DataFrame
    """Compared figures as a table that fits 80 columns; then the figures not modelled,
    grouped by reason (each with its line numbers)."""
    from rich import box

    compared = table[table["not_modelled"] == ""]
    console.print(Text(f"official figures beside the model: {what}"))
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)
    t.add_column("figure, date", min_width=20, overflow="fold")
    t.add_column("kind, unit,\nstatus", min_width=10)
    for col in ("published", "model", "diff"):
        t.add_column(col, justify="right", no_wrap=True)
    t.add_column("role", no_wrap=True)
    for r in compared.itertuples():
        unit = "share" if r.unit == "share" else "persons"
        model = _fmt(r.model, unit)
        if r.model_p05 == r.model_p05:
            model += f"\n{_fmt(r.model_p05, unit)}-\n{_fmt(r.model_p95, unit)}"
        diff = r.relative_difference
        when = f"{r.period_start} to\n{r.date}" if r.period_start else r.date
        t.add_row(f"{_wrap_name(r.quantity)}\n{when}",
                  f"{r.kind}\n{UNIT_SHORT[r.unit]}\n{r.status}",
                  _fmt(r.published, unit), model, "-" if diff != diff else f"{100 * diff:+.0f}%",
                  r.role)
    console.print(t)
    skipped = table[table["not_modelled"] != ""]
    if not skipped.empty:
        console.print(f"not modelled ({len(skipped)}):")
        for reason, group in skipped.groupby("not_modelled", sort=False):
            lines = ", ".join(str(x) for x in group["line"])
            names = ", ".join(dict.fromkeys(group["quantity"]))
            console.print(Text(f"- {names} (line {lines}): {reason}"))
    console.print(f"{len(compared)} figures compared, {len(skipped)} not modelled. diff: model "
                  "minus published, relative. role: input = a rule is set from it, calibrated "
                  "= fitted to it, predicted = neither.")


@app.command()
def validate(
    figures: Annotated[Path, typer.Argument(
        help="CSV of official figures in the schema of official_series.csv (optional "
             "column period_start: the first day of a flow over part of a year)")],
    run_dir: Annotated[Path | None, typer.Option(
        "--run", help="a `dcsim run` folder, or an ensemble/compare folder (its baseline's "
                      "seeds give a 90% interval); default: one run of the default scenario")
    ] = None,
    scale: Annotated[float | None, typer.Option(
        help="scale of the run made when --run is not given; default 0.02")] = None,
    seed: Annotated[int | None, typer.Option(
        help="seed of the run made when --run is not given; default: the scenario's")] = None,
    csv: Annotated[Path | None, typer.Option("--csv", help="also write the table as CSV")] = None,
) -> None:
    """Set the model beside every figure of an official-figures file (any year)."""
    from . import validate as val

    path = _check(checks.input_file, "FIGURES", figures)
    if run_dir is not None and (scale is not None or seed is not None):
        _fail(ArgumentError("--scale" if scale is not None else "--seed",
                            "applies only without --run (the folder's runs have their own)"))
    scale = 0.02 if scale is None else _check(checks.float_in, "--scale", scale, 0.0, 1.0,
                                              low_open=True)
    if seed is not None:
        _check(checks.int_in, "--seed", seed, 0, checks.SEED_MAX)
    if csv is not None:
        csv = _check(checks.output_file, "--csv", csv)
    if run_dir is not None and not run_dir.is_dir():
        _fail(ArgumentError("--run", f"{run_dir} is not a folder"))
    try:
        rows = val.read_figures(path)
    except val.FiguresError as e:
        _fail(e)
    runs, what = _validate_runs(run_dir, scale, seed)
    table = val.compare(rows, runs)
    _print_validation(table, what)
    if csv is not None:
        try:
            table.to_csv(csv, index=False)
        except OSError as e:
            _fail(ArgumentError("--csv", f"cannot write {csv}: {e.strerror or e}"))
        console.print(f"table written to [bold]{escape(str(csv))}[/]")
