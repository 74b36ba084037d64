"""Cold start: the first `dcsim run` on an empty Numba cache against a second, cached one.

Both runs are fresh processes running the same command on the same machine, one after the
other, with NUMBA_CACHE_DIR pointing at a new empty folder (the user's own cache is not
touched). The ratio cold / warm is the figure of merit (issue: compiling must not dominate the
first run). With --kernels, a third process compiles again into another empty cache and
records each kernel's compile time (Numba's compile events), so the figures say where the
time goes.

    python benchmarks/bench_cold_start.py --scale 1.0 --kernels --write
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_national import machine  # noqa: E402
from results_md import replace_section  # noqa: E402

RUN = r"""
import sys
from dcsim.cli import app
from typer.testing import CliRunner
res = CliRunner().invoke(app, ["run", "--scale", sys.argv[1], "--out", sys.argv[2]])
assert res.exit_code == 0, res.output
"""

KERNELS = r"""
import json, sys, time
from numba.core import event
rec = event.RecordingListener()
event.register("numba:compile", rec)
from dcsim import figures, model, results
from dcsim.scenario import load_scenario
run = model.simulate(model.prepare(load_scenario(scale=0.0005, seed=1)))
results.write(run, sys.argv[1], comparison=figures.comparison(run))
totals, stack = {}, []
for ts, e in rec.buffer:
    f = e.data["dispatcher"].py_func
    name = f.__module__.rsplit(".", 1)[-1] + "." + f.__name__
    if e.is_start:
        stack.append([name, ts, 0.0])
        continue
    name, start, children = stack.pop()
    own = ts - start - children
    totals[name] = totals.get(name, 0.0) + own
    if stack:
        stack[-1][2] += ts - start
print(json.dumps(totals))
"""


def timed(code: str, args: list[str], cache: str) -> tuple[float, str]:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                          text=True, check=True)
    return time.perf_counter() - t0, proc.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--kernels", action="store_true", help="also time each kernel's compile")
    ap.add_argument("--repeats", type=int, default=1,
                    help="pairs of runs (first, second), each pair on a new empty cache; the "
                         "ratio reported is the median of the pairs' ratios")
    ap.add_argument("--write", action="store_true",
                    help="replace the 'cold-start' section of benchmarks/RESULTS.md")
    args = ap.parse_args()
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        pairs = []
        for r in range(args.repeats):
            cache = str(Path(tmp) / f"cache{r}")
            cold, _ = timed(RUN, [str(args.scale), str(Path(tmp) / f"a{r}")], cache)
            warm, _ = timed(RUN, [str(args.scale), str(Path(tmp) / f"b{r}")], cache)
            pairs.append((cold, warm))
        kernels = {}
        if args.kernels:
            _, out = timed(KERNELS, [str(Path(tmp) / "k")], str(Path(tmp) / "kernels-cache"))
            kernels = json.loads(out.strip().splitlines()[-1])
    load1 = os.getloadavg()
    lines = [
        f"### Cold start, {dt.date.today()}",
        "",
        f"Machine: {machine()}. Command: `python benchmarks/bench_cold_start.py --scale "
        f"{args.scale:g}{' --kernels' if args.kernels else ''} --repeats {args.repeats}` "
        f"(`dcsim run --scale {args.scale:g}` in a fresh process on an empty Numba cache, then "
        f"again on the cache it filled; each pair on a new cache). Load average at start "
        f"{load0[0]:.2f}, at end {load1[0]:.2f}.",
        "",
        "| pair | first (compiles) s | second (cached) s | ratio first / second |",
        "|---:|---:|---:|---:|",
    ]
    for r, (cold, warm) in enumerate(pairs, 1):
        lines.append(f"| {r} | {cold:.1f} | {warm:.1f} | {cold / warm:.2f} |")
    ratio = statistics.median(c / w for c, w in pairs)
    lines += ["", f"Ratio first / second (median of the pairs): **{ratio:.2f}**."]
    if kernels:
        total = sum(kernels.values())
        lines += ["", f"Compile time by kernel (own time, seconds; total {total:.1f} s; the "
                  "ten largest):", "", "| kernel | s |", "|---|---:|"]
        for name, sec in sorted(kernels.items(), key=lambda kv: -kv[1])[:10]:
            lines.append(f"| `{name}` | {sec:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        replace_section("cold-start", text)


if __name__ == "__main__":
    main()
