"""Side-by-side speed benchmark of the registry-core implementations.

Each (implementation, N) run is its own process (``benchmarks.peers.runner``), so the peak
resident memory reported is that run's alone; the runner warms up first (imports, JIT) and
times only the run. Mesa is run only where it can finish within ``--mesa-timeout``: it is
skipped when the estimate from the previous size says it cannot, and killed (recorded as
"did not finish") when it overruns.

``python benchmarks/peers/bench_peers.py [--sizes 10000,100000,1000000] [--t 1095]
[--mesa-timeout 600] [--repeats 1] [--out benchmarks/RESULTS.md]``
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if __package__ in (None, ""):  # run as a script: make ``benchmarks.peers`` importable
    sys.path.insert(0, str(ROOT))

from benchmarks.peers import impls, spec  # noqa: E402
from benchmarks.results_md import replace_section  # noqa: E402

ORDER = ("dcsim", "numpy", "starsim", "mesa", "floor")
MESA_ESTIMATE_MARGIN = 1.25  # per-person-day cost grows a little with N (caches, allocator)


@dataclass
class Run:
    """One cell of the benchmark: a finished run, or why there is none."""

    impl: str
    n: int
    t: int
    seconds: float | None = None
    cpu_seconds: float | None = None
    person_days: int | None = None
    peak_rss_kib: int | None = None
    baseline_rss_kib: int | None = None
    summary: dict[str, float] = field(default_factory=dict)
    note: str = ""

    @property
    def ns_per_person_day(self) -> float | None:
        """Seconds per unit of work, comparable across N (None when the run did not finish)."""
        if self.seconds is None or not self.person_days:
            return None
        return 1e9 * self.seconds / self.person_days


def expected_person_days(n: int, t: int) -> int:
    """Person-days if nobody were released: an upper bound, and tight for T <= 1095."""
    return int(spec.arrivals_per_day(n, t).cumsum().sum())


def run_one(impl: str, n: int, t: int, seed: int, timeout: float | None) -> Run:
    """Run one implementation in a child process; kill it after ``timeout`` seconds."""
    cmd = [sys.executable, "-m", "benchmarks.peers.runner", impl, str(n), str(t), str(seed)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        proc = subprocess.run(
            cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        return Run(impl, n, t, note=f"did not finish within {timeout:.0f} s (killed)")
    if proc.returncode != 0:
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return Run(impl, n, t, note=f"failed (exit {proc.returncode}): {tail}")
    record = json.loads(proc.stdout.strip().splitlines()[-1])
    return Run(
        impl,
        n,
        t,
        seconds=record["seconds"],
        cpu_seconds=record.get("cpu_seconds"),
        person_days=record["person_days"],
        peak_rss_kib=record["peak_rss_kib"],
        baseline_rss_kib=record["baseline_rss_kib"],
        summary=record["summary"],
    )


def run_repeated(impl: str, n: int, t: int, seed: int, timeout: float | None, repeats: int) -> Run:
    """``repeats`` runs (same seed, fresh processes); the median seconds and the largest peak.

    Timings on a shared 2-core machine vary by tens of percent run to run; the median of a few
    is steadier than any one. A failed or killed repeat makes the cell that failure.
    """
    done: list[Run] = []
    for _ in range(repeats):
        run = run_one(impl, n, t, seed, timeout)
        if run.seconds is None:
            return run
        done.append(run)
    if len(done) == 1:
        return done[0]
    seconds = sorted(r.seconds for r in done if r.seconds is not None)
    best = done[0]
    best.seconds = statistics.median(seconds)
    best.cpu_seconds = statistics.median(r.cpu_seconds or 0.0 for r in done)
    best.peak_rss_kib = max(r.peak_rss_kib or 0 for r in done)
    best.note = f"median of {len(done)} ({seconds[0]:.2f}–{seconds[-1]:.2f} s)"
    return best


def machine() -> dict[str, str]:
    """CPU model, cores, memory, OS, Python and package versions, for the report header."""
    cpu, cores = "unknown", str(os.cpu_count())
    try:
        info = Path("/proc/cpuinfo").read_text()
        models = [
            ln.split(":", 1)[1].strip() for ln in info.splitlines() if ln.startswith("model name")
        ]
        if models:
            cpu = models[0]
    except OSError:
        pass
    mem = "unknown"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f"{int(line.split()[1]) / 2**20:.1f} GiB"
    except OSError:
        pass
    versions = []
    for pkg in ("numpy", "numba", "mesa", "starsim", "dcsim"):
        try:
            versions.append(f"{pkg} {metadata.version(pkg)}")
        except metadata.PackageNotFoundError:
            versions.append(f"{pkg} (not installed)")
    return {
        "CPU": cpu,
        "Cores": cores,
        "Memory": mem,
        "OS": platform.platform(),
        "Python": platform.python_version(),
        "Packages": ", ".join(versions),
    }


def _fmt(x: float | None, spec_: str) -> str:
    return "–" if x is None else format(x, spec_)


def _ratio(run: Run, reference: Run | None) -> str:
    """Seconds relative to the reference run at the same N, or a dash when either is missing."""
    if run.seconds is None or reference is None or not reference.seconds:
        return "–"
    return f"{run.seconds / reference.seconds:.3g}"


def load_average() -> str:
    """1, 5 and 15 minute load averages: other work on the machine inflates the seconds."""
    try:
        return "/".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def report(
    runs: list[Run], args: argparse.Namespace, skipped: dict[str, str], loads: tuple[str, str]
) -> str:
    """The markdown report: header, timing table, summaries (to show the runs did the work)."""
    lines = ["# registry-core: dcsim and its peers, side by side", ""]
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = "python benchmarks/peers/bench_peers.py " + " ".join(
        shlex.quote(a) for a in sys.argv[1:]
    )
    lines += [f"- Date: {now}", f"- Command: `{command.strip()}`"]
    lines += [f"- {k}: {v}" for k, v in machine().items()]
    one_minute = [float(x.split("/")[0]) for x in loads if x != "unknown"]
    busy = any(x > (os.cpu_count() or 1) for x in one_minute)
    lines.append(
        f"- Load average (1/5/15 min) at start {loads[0]}, at end {loads[1]}: "
        + ("above the core count, so other work shared the CPU and the seconds are inflated."
           if busy else "within the core count (the benchmark's own runs use up to two cores).")
    )
    lines += [
        f"- T = {args.t} days, seed {args.seed}, one process per run, {args.repeats} run(s) per "
        "cell (median seconds); seconds exclude imports and "
        "JIT (a warm-up run first). Peak RSS is the run's process; 'model RSS' is the peak minus "
        "the peak after warm-up.",
        "- ns/person-day: seconds / (persons present and unreleased, summed over days). "
        "CPU s (user + system) above seconds means the run used more than one thread.",
        "",
        "| impl | N | person-days | seconds | CPU s | ns/person-day | peak RSS MiB "
        "| model RSS MiB | × dcsim | × floor | note |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    by_key = {(r.impl, r.n): r for r in runs}
    for r in runs:
        ratios = [_ratio(r, by_key.get((k, r.n))) for k in ("dcsim", "floor")]
        peak = None if r.peak_rss_kib is None else r.peak_rss_kib / 1024
        model = (
            None
            if r.peak_rss_kib is None or r.baseline_rss_kib is None
            else (r.peak_rss_kib - r.baseline_rss_kib) / 1024
        )
        lines.append(
            f"| {r.impl} | {r.n:,} | {_fmt(r.person_days, ',')} | {_fmt(r.seconds, '.2f')} "
            f"| {_fmt(r.cpu_seconds, '.2f')} "
            f"| {_fmt(r.ns_per_person_day, '.1f')} | {_fmt(peak, '.0f')} | {_fmt(model, '.0f')} "
            f"| {ratios[0]} | {ratios[1]} | {r.note} |"
        )
    lines += [
        "",
        "Run summaries (one seed each: a sanity check that every run did the model's work, not a "
        "test of agreement; see `agree.py`; the floor draws nothing, so its numbers differ):",
        "",
        "| impl | N | final using | total released | total alerts | total positives |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in runs:
        if r.summary:
            s = r.summary
            lines.append(
                f"| {r.impl} | {r.n:,} | {s['final_using']:,.0f} | {s['total_released']:,.0f} "
                f"| {s['total_alerts']:,.0f} | {s['total_positives']:,.0f} |"
            )
    for name, why in skipped.items():
        lines.append(f"\nNot run: {name} ({why}).")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the grid of implementations and sizes; write and print the report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--t", type=int, default=1095)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mesa-timeout", type=float, default=600.0)
    parser.add_argument("--timeout", type=float, default=3600.0, help="for the other impls")
    parser.add_argument("--impls", default=",".join(ORDER))
    parser.add_argument("--repeats", type=int, default=1, help="runs per cell; median reported")
    parser.add_argument("--out", default="benchmarks/RESULTS.md",
                        help="markdown file; its 'peers' section is replaced")
    args = parser.parse_args(argv)
    sizes = sorted(int(s) for s in args.sizes.split(","))
    found, skipped = impls.available(args.impls.split(","))

    load_start = load_average()
    runs: list[Run] = []
    last_mesa: Run | None = None
    for n in sizes:
        for impl in (name for name in ORDER if name in found):
            timeout = args.mesa_timeout if impl == "mesa" else args.timeout
            if impl == "mesa" and last_mesa is not None:
                ns = last_mesa.ns_per_person_day
                if ns is None:  # the smaller size did not finish: this one cannot either
                    runs.append(Run(impl, n, args.t, note="not run: smaller size did not finish"))
                    continue
                estimate = ns * 1e-9 * expected_person_days(n, args.t) * MESA_ESTIMATE_MARGIN
                if estimate > timeout:
                    note = f"not run: estimated {estimate:.0f} s > timeout {timeout:.0f} s"
                    runs.append(Run(impl, n, args.t, note=note))
                    continue
            print(f"running {impl} n={n:,} t={args.t} ...", file=sys.stderr, flush=True)
            run = run_repeated(impl, n, args.t, args.seed, timeout, args.repeats)
            print(
                f"  {impl}: {_fmt(run.seconds, '.2f')} s "
                f"({_fmt(run.ns_per_person_day, '.1f')} ns/person-day) {run.note}",
                file=sys.stderr,
                flush=True,
            )
            runs.append(run)
            if impl == "mesa":
                last_mesa = run

    text = report(runs, args, skipped, (load_start, load_average()))
    out = Path(args.out)
    if not out.is_absolute():
        out = ROOT / out
    out.parent.mkdir(parents=True, exist_ok=True)
    replace_section("peers", text, out)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
