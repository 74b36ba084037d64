"""Time the national baseline (embedded default scenario) at several scales.

Each scale runs in a fresh process (so peak memory is that run's own), after one warm-up run
that fills Numba's on-disk cache. Reports wall seconds of the whole `dcsim run` command, the
simulation alone, engine events, ns per event and peak resident memory, and appends a section
to benchmarks/RESULTS.md with --write.

    python benchmarks/bench_national.py --scales 0.1,0.3,1.0 --write
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_md import replace_section  # noqa: E402

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
from dcsim.cli import app
from typer.testing import CliRunner
out = sys.argv[2]
res = CliRunner().invoke(app, ["run", "--scale", sys.argv[1], "--out", out])
assert res.exit_code == 0, res.output
manifest = json.load(open(out + "/manifest.json"))
import pandas as pd
m = pd.read_parquet(out + "/monthly.parquet")
events = m[(m.group == "flow") & (m.metric == "engine_events")]["count"].sum()
print(json.dumps({"command_seconds": time.perf_counter() - t0,
                  "simulate_seconds": manifest["wall_seconds"],
                  "persons": manifest["persons_simulated"], "events": float(events)}))
"""


def run_one(scale: float, source: str | None = None) -> dict:
    """One `dcsim run` in a fresh process; `source` runs another dcsim tree (its src folder),
    with a Numba cache of its own beside the usual one."""
    env = dict(os.environ)
    if source is not None:
        env["PYTHONPATH"] = source
        env["NUMBA_CACHE_DIR"] = str(Path(tempfile.gettempdir()) / "dcsim-reference-cache")
    with tempfile.TemporaryDirectory() as out:
        before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", CHILD, str(scale), out],
                              capture_output=True, text=True, check=True, env=env)
        wall = time.perf_counter() - t0
        peak_kb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    rec = json.loads(proc.stdout.strip().splitlines()[-1])
    rec.update(scale=scale, process_seconds=wall,
               peak_mb=max(peak_kb, before) / 1024.0)
    rec["ns_per_event"] = 1e9 * rec["simulate_seconds"] / rec["events"]
    return rec


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scales", default="0.1,0.3,1.0")
    ap.add_argument("--write", action="store_true",
                    help="replace the 'national' section of benchmarks/RESULTS.md")
    ap.add_argument("--reference", metavar="SRC",
                    help="also time another dcsim source tree (its src folder, e.g. a checkout "
                         "of an earlier commit) at the same scales, alternately, for a ratio")
    args = ap.parse_args()
    scales = [float(x) for x in args.scales.split(",")]
    load0 = os.getloadavg()
    run_one(0.001)  # warm the Numba cache; not reported
    if args.reference:
        run_one(0.001, args.reference)
    rows, refs = [], []
    for s in scales:
        rows.append(run_one(s))
        if args.reference:
            refs.append(run_one(s, args.reference))
    lines = [
        f"### National baseline, {dt.date.today()}",
        "",
        f"Machine: {machine()}. Command: `python benchmarks/bench_national.py "
        f"--scales {args.scales}{' --reference ' + args.reference if args.reference else ''}` "
        f"(each scale a fresh process running `dcsim run --scale S`, "
        f"Numba cache warm). Load average at start {load0[0]:.2f}, at end "
        f"{os.getloadavg()[0]:.2f}.",
        "",
        "| scale | persons | events | `dcsim run` s | simulate s | ns/event | peak MB |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(f"| {r['scale']:g} | {r['persons']:,} | {r['events']:,.0f} | "
                     f"{r['process_seconds']:.1f} | {r['simulate_seconds']:.1f} | "
                     f"{r['ns_per_event']:.0f} | {r['peak_mb']:,.0f} |")
    if refs:
        lines += ["", f"Against the reference tree `{args.reference}` in the same script, "
                  "runs alternating (ratio below 1: this tree is faster):", "",
                  "| scale | this `dcsim run` s | reference s | ratio | this simulate s | "
                  "reference s | ratio |", "|---:|---:|---:|---:|---:|---:|---:|"]
        for r, q in zip(rows, refs, strict=True):
            lines.append(f"| {r['scale']:g} | {r['process_seconds']:.1f} | "
                         f"{q['process_seconds']:.1f} | "
                         f"{r['process_seconds'] / q['process_seconds']:.2f} | "
                         f"{r['simulate_seconds']:.1f} | {q['simulate_seconds']:.1f} | "
                         f"{r['simulate_seconds'] / q['simulate_seconds']:.2f} |")
    text = "\n".join(lines) + "\n"
    print(text)
    if args.write:
        replace_section("national", text)


if __name__ == "__main__":
    main()
