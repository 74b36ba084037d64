"""Cold start: the first `dcsim run` on an empty Numba cache against a second, cached one.

Both runs are fresh processes running the same command on the same machine, one after the
other, with NUMBA_CACHE_DIR pointing at a new empty folder (the user's own cache is not
touched). The ratio cold / warm is the figure of merit (issue: compiling must not dominate the
first run); the first run's own report gives its compile seconds and whether a helper process
shared them (jit.Helper: only with a core to spare). With --compile, each pair also times
`model.compile_kernels` alone on empty caches, in one process and in two
(DCSIM_COMPILE_HELPER=0 and 1). With --kernels, one more process compiles into another empty
cache in one process and records each kernel's compile time (Numba's compile events), so the
figures say where the time goes. Load averages are taken before every run: on a machine
shared with other work the times are noisy and only the pairs' ratios mean much.

    python benchmarks/bench_cold_start.py --scale 1.0 --repeats 3 --compile --kernels --write
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
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
print(res.output)
"""

COMPILE = r"""
from dcsim import model
print(model.compile_kernels().seconds)
"""

KERNELS = r"""
import json, sys, time
from numba.core import event
rec = event.RecordingListener()
event.register("numba:compile", rec)
import os
os.environ["DCSIM_COMPILE_HELPER"] = "0"  # one process: every compile is recorded here
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


def timed(code: str, args: list[str], cache: str, **env_extra: str) -> tuple[float, str]:
    env = {**os.environ, "NUMBA_CACHE_DIR": cache, **env_extra}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True,
                          text=True, check=True)
    return time.perf_counter() - t0, proc.stdout


def _compiled(output: str) -> str:
    """The first run's own report of its compile: 'X s' or 'X s, 2 processes'."""
    m = re.search(r"compiled the model in (\d+) s(, in two processes)?", output)
    if m is None:
        return "-"
    return f"{m.group(1)} s" + (", 2 processes" if m.group(2) else "")


def _pair(r: int, tmp: Path, args: argparse.Namespace) -> dict:
    cache = str(tmp / f"cache{r}")
    rec = {"load": os.getloadavg()[0]}
    rec["cold"], out = timed(RUN, [str(args.scale), str(tmp / f"a{r}")], cache)
    rec["compiled"] = _compiled(out)
    rec["warm_load"] = os.getloadavg()[0]
    rec["warm"], _ = timed(RUN, [str(args.scale), str(tmp / f"b{r}")], cache)
    if args.compile:
        for helper in ("0", "1"):
            rec[f"load{helper}"] = os.getloadavg()[0]
            _, out = timed(COMPILE, [], str(tmp / f"compile{r}-{helper}"),
                           DCSIM_COMPILE_HELPER=helper)
            rec[f"compile{helper}"] = float(out.strip().splitlines()[-1])
    return rec


def _table(pairs: list[dict], args: argparse.Namespace) -> list[str]:
    head = "| pair | load | first (compiles) s | its compile | load | second (cached) s | ratio |"
    rule = "|---:|---:|---:|---|---:|---:|---:|"
    if args.compile:
        head += " load | compile, 1 process s | load | compile, 2 processes s |"
        rule += "---:|---:|---:|---:|"
    lines = [head, rule]
    for r, p in enumerate(pairs, 1):
        line = (f"| {r} | {p['load']:.2f} | {p['cold']:.1f} | {p['compiled']} | "
                f"{p['warm_load']:.2f} | {p['warm']:.1f} | {p['cold'] / p['warm']:.2f} |")
        if args.compile:
            line += (f" {p['load0']:.2f} | {p['compile0']:.1f} | {p['load1']:.2f} | "
                     f"{p['compile1']:.1f} |")
        lines.append(line)
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--kernels", action="store_true", help="also time each kernel's compile")
    ap.add_argument("--compile", action="store_true",
                    help="also time model.compile_kernels alone, in one process and in two")
    ap.add_argument("--repeats", type=int, default=1,
                    help="pairs of runs (first, second), each pair on a new empty cache; the "
                         "ratio reported is the median of the pairs' ratios")
    ap.add_argument("--write", action="store_true",
                    help="replace the 'cold-start' section of benchmarks/RESULTS.md")
    args = ap.parse_args()
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        pairs = [_pair(r, Path(tmp), args) for r in range(args.repeats)]
        kernels = {}
        if args.kernels:
            _, out = timed(KERNELS, [str(Path(tmp) / "k")], str(Path(tmp) / "kernels-cache"))
            kernels = json.loads(out.strip().splitlines()[-1])
    load1 = os.getloadavg()
    flags = "".join(f" --{f}" for f in ("compile", "kernels") if getattr(args, f))
    lines = [
        f"### Cold start, {dt.date.today()}",
        "",
        f"Machine: {machine()}. Command: `python benchmarks/bench_cold_start.py --scale "
        f"{args.scale:g} --repeats {args.repeats}{flags}` (`dcsim run --scale {args.scale:g}` "
        f"in a fresh process on an empty Numba cache, then again on the cache it filled; each "
        f"pair on a new cache). Load average (1 min) before each run in the table; at the "
        f"start {load0[0]:.2f}/{load0[1]:.2f}/{load0[2]:.2f}, at the end "
        f"{load1[0]:.2f}/{load1[1]:.2f}/{load1[2]:.2f} (1/5/15 min).",
        "",
        *_table(pairs, args),
    ]
    ratio = statistics.median(p["cold"] / p["warm"] for p in pairs)
    lines += ["", f"Ratio first / second (median of the pairs): **{ratio:.2f}**."]
    if args.compile:
        one = statistics.median(p["compile0"] for p in pairs)
        two = statistics.median(p["compile1"] for p in pairs)
        lines += [f"`model.compile_kernels` alone (median): {one:.1f} s in one process, "
                  f"{two:.1f} s in two."]
    if kernels:
        total = sum(kernels.values())
        lines += ["", f"Compile time by kernel (own time, seconds, one process; total "
                  f"{total:.1f} s; the ten largest):", "", "| kernel | s |", "|---|---:|"]
        for name, sec in sorted(kernels.items(), key=lambda kv: -kv[1])[:10]:
            lines.append(f"| `{name}` | {sec:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        replace_section("cold-start", text)


if __name__ == "__main__":
    main()
