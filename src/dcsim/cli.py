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
