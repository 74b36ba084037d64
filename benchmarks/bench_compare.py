"""The cost of a comparison: a 2-arm, 10-seed `dcsim compare` against 20 times one `dcsim run`.

Both halves run in this script, one after the other, on the same scale: first 20 single runs
(baseline and reform, seeds 1..10, each `dcsim run` in a fresh process, as a user would do by
hand), then one `dcsim compare national-baseline exit_law_2011 --seeds 10` on a local Dask
cluster. The ratio compare / (20 runs) is the ensemble machinery's overhead (cluster start,
summaries), or its gain when workers run in parallel. A warm-up run fills Numba's on-disk cache
first; it is not timed. With --write the 'compare' section of benchmarks/RESULTS.md is replaced.

    python benchmarks/bench_compare.py --scale 0.01           # a check, not a result
    python benchmarks/bench_compare.py --scale 1.0 --write    # on a quiet machine only
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from results_md import replace_section  # noqa: E402

CLI = [sys.executable, "-c", "from dcsim.cli import app; app()"]
REFORM = "exit_law_2011"


def timed(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([*CLI, *args], check=True, capture_output=True, text=True)
    return time.perf_counter() - t0


def single_runs(scale: float, seeds: int, out: Path) -> float:
    """Seconds for 2 x seeds separate `dcsim run` commands (baseline, then the reform)."""
    total = 0.0
    for s in range(1, seeds + 1):
        total += timed(["run", "--scale", str(scale), "--seed", str(s), "--out",
                        str(out / f"base-{s}")])
        total += timed(["run", "--scale", str(scale), "--seed", str(s), "--overlay", REFORM,
                        "--out", str(out / f"reform-{s}")])
    return total


def comparison(scale: float, seeds: int, workers: int, out: Path) -> float:
    return timed(["compare", "national-baseline", REFORM, "--seeds", str(seeds), "--scale",
                  str(scale), "--first-seed", "1", "--workers", str(workers), "--out",
                  str(out / "compare")])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--workers", type=int, default=1,
                    help="local Dask workers of the comparison (1: the same cores as the runs)")
    ap.add_argument("--write", action="store_true",
                    help="replace the 'compare' section of benchmarks/RESULTS.md")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        timed(["run", "--scale", "0.001", "--out", str(out / "warm")])
        runs = single_runs(args.scale, args.seeds, out)
        cmp = comparison(args.scale, args.seeds, args.workers, out)
    n = 2 * args.seeds
    text = (f"## compare (benchmarks/bench_compare.py)\n\n"
            f"{dt.date.today()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
            f"scale {args.scale:g}, national-baseline vs {REFORM}, {args.seeds} seeds.\n\n"
            f"| what | seconds |\n|---|---:|\n"
            f"| {n} separate `dcsim run` commands | {runs:.1f} |\n"
            f"| one `dcsim compare` ({n} runs, {args.workers} Dask worker(s)) | {cmp:.1f} |\n"
            f"| ratio compare / separate runs | {cmp / runs:.2f} |\n")
    print(text)
    if args.write:
        replace_section("compare", text)


if __name__ == "__main__":
    main()
