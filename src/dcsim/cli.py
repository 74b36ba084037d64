"""The command line: `dcsim run` and `dcsim rules`."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .rules import OutOfWindowError, RuleError, is_assumption, listing
from .scenario import ScenarioError, load_scenario

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="dcsim: an evidence-traced model of China's Dynamic Control System.")
console = Console()
ScenarioArg = Annotated[Path | None, typer.Argument(
    help="scenario file; default: the embedded national baseline")]


def _fail(e: Exception) -> None:
    console.print(f"[bold red]error:[/] {e}")
    raise typer.Exit(2)


@app.command()
def run(
    scenario: ScenarioArg = None,
    scale: Annotated[float | None, typer.Option(
        help="share of the national registry to simulate (0.02 = 2%)")] = None,
    seed: Annotated[int | None, typer.Option(
        help="random seed; fixes the run bit for bit")] = None,
    out: Annotated[Path | None, typer.Option(
        help="output folder; default runs/<name>-<seed>")] = None,
) -> None:
    """Run a scenario, write its tables, and set its outputs beside the paper's figures."""
    from . import figures, results
    from .model import prepare, simulate

    try:
        sc = load_scenario(scenario, scale=scale, seed=seed)
        prepared = prepare(sc)
    except (ScenarioError, RuleError, OutOfWindowError) as e:
        _fail(e)
    out = out or Path("runs") / f"{sc.name}-{sc.seed}"
    console.print(f"[bold]{sc.name}[/] {sc.start} to {sc.end}, scale {sc.scale:g}, "
                  f"seed {sc.seed}, {len(sc.jurisdictions)} jurisdictions")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console, transient=False) as bar:
        task = bar.add_task("simulating persons (first run compiles, ~1 min)", total=None)

        def tick(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        result = simulate(prepared, progress=tick)
    comp = figures.comparison(result)
    paths = results.write(result, out, comparison=comp)
    _print_comparison(comp)
    console.print(f"{len(result.population):,} persons in {result.wall_seconds:.1f} s; "
                  f"tables and manifest in [bold]{out}[/] ({len(paths)} files)")


def _fmt(v: float, unit: str) -> str:
    if v != v:  # NaN
        return "-"
    if unit == "share":
        return f"{100 * v:.2f}%"
    if unit == "persons":
        return f"{v:,.0f}"
    return f"{v:,.1f}"


def _print_comparison(df) -> None:  # noqa: ANN001 - a DataFrame
    t = Table(title="The model beside the paper's figures")
    for col in ("figure", "source", "paper", "model", "error"):
        t.add_column(col, justify="left" if col in ("figure", "source") else "right")
    for r in df.itertuples():
        err = r.relative_error
        t.add_row(r.figure, r.source, _fmt(r.paper, r.unit), _fmt(r.model, r.unit),
                  "-" if err != err else f"{100 * err:+.1f}%")
    console.print(t)


@app.command()
def rules(
    scenario: ScenarioArg = None,
    assumptions: Annotated[bool, typer.Option(
        "--assumptions", help="only the values that are assumptions")] = False,
    jurisdiction: Annotated[str | None, typer.Option(help="only this jurisdiction")] = None,
) -> None:
    """List every rule value in force with its reference; assumptions are flagged."""
    try:
        sc = load_scenario(scenario)
        stacks = dict(zip([j.id for j in sc.jurisdictions], sc.stacks(), strict=True))
    except (ScenarioError, RuleError) as e:
        _fail(e)
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
    t = Table(title=f"rule values in force ({len(rows)})", show_lines=False, expand=True)
    t.add_column("name [jurisdiction]", no_wrap=True)
    t.add_column("in force", no_wrap=True)
    t.add_column("value", justify="right", no_wrap=True)
    t.add_column("reference (file:line)", ratio=1, overflow="fold")
    n_assume = 0
    for r in rows:
        flag = is_assumption(r["reference"])
        n_assume += flag
        where = "" if r["jurisdiction"] == "national" else f" [{r['jurisdiction']}]"
        t.add_row(r["name"] + where, f"{r['from']}..{r['to'] or ''}",
                  f"{r['value']:g} {r['unit']}",
                  ("[yellow]ASSUMPTION[/] " if flag else "") + r["reference"]
                  + f" ({os.path.basename(r['file'])}:{r['line']})")
    console.print(t)
    console.print(f"{len(rows)} values, {n_assume} of them assumptions (flagged).")


def main() -> None:  # pragma: no cover
    app()


# --------------------------------------------------------------------------- calibration

TargetsOpt = Annotated[Path | None, typer.Option(
    help="targets file; default: the embedded data/targets.yaml")]


def _load_targets(path: Path | None):  # noqa: ANN202 - a TargetsFile
    from .targets import TargetsError, load_targets

    try:
        return load_targets(path)
    except (TargetsError, OSError) as e:
        _fail(e)


def _seed_list(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        return [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        _fail(ValueError(f"--seeds takes whole numbers separated by commas, got {text!r}"))
        raise  # unreachable: _fail exits


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
    storage: Annotated[Path, typer.Option(
        help="Optuna journal file; an interrupted study resumes from it")] = Path(
        "runs/calibration/journal.log"),
    out: Annotated[Path | None, typer.Option(
        help="overlay to write; default: the embedded data/rules/calibrated.yaml")] = None,
    restart: Annotated[bool, typer.Option(
        "--restart", help="delete the study in the storage and start again")] = False,
) -> None:
    """Fit the assumptions the targets inform and write them as a cited rule overlay."""
    from .calibration import calibrate as run_calibration
    from .calibration import embedded_overlay_path

    tf = _load_targets(targets)
    try:
        sc = load_scenario(scenario)
    except (ScenarioError, RuleError) as e:
        _fail(e)
    out = out or embedded_overlay_path()
    n = trials or tf.calibration.trials
    console.print(f"[bold]calibrate[/] {sc.name}: {len(tf.calibration.fitted)} values, "
                  f"{n} trials, study in {storage}")
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console) as bar:
            task = bar.add_task("trials", total=n)

            def tick(done: int, total: int, best: float) -> None:
                bar.update(task, completed=done, total=total,
                           description=f"trials (best loss {best:.2f})")

            result = run_calibration(sc, tf, storage, trials=trials, scale=scale,
                                     seeds=_seed_list(seeds), out=out, restart=restart,
                                     progress=tick)
    except KeyboardInterrupt:
        console.print(f"[yellow]interrupted[/]: the trials done are kept in {storage}; "
                      "run the same command again to continue.")
        raise typer.Exit(130) from None
    except (ScenarioError, RuleError, OutOfWindowError, ValueError) as e:
        _fail(e)
    t = Table(title=f"fitted values (study {result.study_name}, best loss "
                    f"{result.best_loss:.3f})")
    for col in ("value", "search bounds", "rule files", "fitted", "informs"):
        t.add_column(col, justify="right" if col in ("rule files", "fitted") else "left")
    for d in result.dimensions:
        what = d.id + (" (factor)" if d.mode == "factor" else "")
        t.add_row(what, f"{d.low:g}..{d.high:g} ({d.bounds_from})", f"{d.start:.4g}",
                  f"{result.best[d.id]:.4g}", ", ".join(d.informs))
    console.print(t)
    t2 = Table(title="targets at the best trial (mean over the trial seeds)")
    for col in ("target", "published", "model", "error"):
        t2.add_column(col, justify="left" if col == "target" else "right")
    for tg in tf.targets:
        v = result.best_values.get(tg.id, float("nan"))
        err = (v - tg.value) / tg.value if tg.value else float("nan")
        t2.add_row(tg.id, _fmt(tg.value, tg.unit), _fmt(v, tg.unit),
                   "-" if err != err else f"{100 * err:+.1f}%")
    console.print(t2)
    console.print(f"{result.trials_complete} trials complete; overlay written to "
                  f"[bold]{result.overlay}[/]")


@app.command()
def fit(
    scenario: ScenarioArg = None,
    targets: TargetsOpt = None,
    seeds: Annotated[int, typer.Option(help="number of seeds (runs)")] = 20,
    scale: Annotated[float | None, typer.Option(
        help="share of the registry to simulate; default: the scenario's (1.0)")] = None,
    first_seed: Annotated[int | None, typer.Option(
        help="first seed; default: the scenario's")] = None,
    out: Annotated[Path | None, typer.Option(
        help="output folder; default runs/fit-<name>")] = None,
    strict: Annotated[bool, typer.Option(
        "--strict", help="exit with status 1 if a hard target fails")] = False,
) -> None:
    """Run the (calibrated) scenario over several seeds and compare it with every target."""
    from . import fit as fitmod
    from .fit import formatted

    tf = _load_targets(targets)
    try:
        sc = load_scenario(scenario, scale=scale)
    except (ScenarioError, RuleError) as e:
        _fail(e)
    first = sc.seed if first_seed is None else first_seed
    seed_list = [first + i for i in range(seeds)]
    out = out or Path("runs") / f"fit-{sc.name}"
    console.print(f"[bold]fit[/] {sc.name}: {seeds} seeds from {first}, scale {sc.scale:g}")
    try:
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), console=console) as bar:
            task = bar.add_task("runs", total=seeds)
            report = fitmod.fit(sc, tf, seed_list,
                                progress=lambda d, n: bar.update(task, completed=d, total=n))
    except (RuleError, OutOfWindowError) as e:
        _fail(e)
    paths = fitmod.write(report, out)
    table = report.table
    t = Table(title=f"fit to the published figures ({seeds} seeds, scale {sc.scale:g})")
    cells = formatted(table)
    for col in cells[0]:
        t.add_column(col, justify="right" if col in ("published", "model mean",
                                                     "90% interval", "error") else "left")
    for c in cells:
        style = {"FAIL": "bold red", "miss": "yellow"}.get(c["result"], "")
        t.add_row(*[c[k] for k in c], style=style)
    console.print(t)
    hard = table[table["kind"] == "hard"]
    failed = hard[~hard["passes"]]
    if failed.empty:
        console.print(f"[green]all {len(hard)} hard targets pass[/]; "
                      f"{int((~table['passes']).sum())} soft targets outside their tolerance")
    else:
        console.print(f"[bold red]{len(failed)} hard targets fail:[/] "
                      + ", ".join(failed["id"]))
    console.print(f"table and plots in [bold]{out}[/] ({len(paths)} files)")
    if strict and not failed.empty:
        raise typer.Exit(1)


@app.command()
def sensitivity(
    scenario: ScenarioArg = None,
    trajectories: Annotated[int, typer.Option(help="Morris trajectories")] = 10,
    levels: Annotated[int, typer.Option(help="Morris grid levels")] = 4,
    scale: Annotated[float, typer.Option(help="scale of every run")] = 0.02,
    seed: Annotated[int, typer.Option(help="seed of every run (common random numbers)")] = 101,
    out: Annotated[Path | None, typer.Option(
        help="output folder; default runs/sensitivity-<name>")] = None,
) -> None:
    """Rank every assumption by how much it moves the main outputs (Morris, SALib)."""
    from . import sensitivity as sens

    try:
        sc = load_scenario(scenario)
        n_factors = sum(1 for f in sens.factors(sc) if f.varied)
    except (ScenarioError, RuleError) as e:
        _fail(e)
    runs = trajectories * (n_factors + 1) + 1
    console.print(f"[bold]sensitivity[/] {sc.name}: {n_factors} assumptions varied, "
                  f"{trajectories} trajectories, {runs} runs at scale {scale:g}")
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=console) as bar:
        task = bar.add_task("runs", total=runs)
        result = sens.morris(sc, trajectories=trajectories, levels=levels, scale=scale,
                             seed=seed, progress=lambda d, n: bar.update(task, completed=d,
                                                                         total=n))
    out = out or Path("runs") / f"sensitivity-{sc.name}"
    paths = sens.write(result, out)
    ranked = sens.ranking(result.table)
    t = Table(title="assumptions that move the main outputs most (mu* as % of baseline)")
    cols = [c for c in sens.OUTPUTS if c in ranked.columns]
    t.add_column("rank", justify="right")
    t.add_column("assumption", overflow="fold")
    for c in [*cols, "overall"]:
        t.add_column(c.replace("_", " "), justify="right")
    for factor, r in ranked.head(15).iterrows():
        t.add_row(str(r["rank"]), str(factor), *[f"{100 * r[c]:.1f}%" for c in [*cols,
                                                                               "overall"]])
    console.print(t)
    console.print(f"{len(ranked)} assumptions ranked; table and plot in [bold]{out}[/] "
                  f"({len(paths)} files)")


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
