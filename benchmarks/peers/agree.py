"""Do the implementations compute the same model? Compare seed-averaged summaries.

Each implementation runs the same seeds (its own random streams, so runs differ seed by seed);
the means of final using, total released, total alerts and total positives are compared and
the largest relative difference between any two implementations is reported. A speed ratio
means something only if this agreement holds.

``python benchmarks/peers/agree.py [--n 20000] [--t 2190] [--seeds 5] [--impls numpy,starsim]``
"""

from __future__ import annotations

import itertools
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: make ``benchmarks.peers`` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

import numpy as np  # noqa: E402

from benchmarks.peers import impls as _impls  # noqa: E402
from benchmarks.peers import spec  # noqa: E402

METRICS = ("final_using", "total_released", "total_alerts", "total_positives")
TOLERANCE = 0.03


def rel_diff(a: float, b: float) -> float:
    """|a - b| relative to their mean (0 when both are 0)."""
    scale = (abs(a) + abs(b)) / 2
    return 0.0 if scale == 0 else abs(a - b) / scale


def check_agreement(
    n: int = 20000,
    t: int = 2190,
    seeds: int | Sequence[int] = 5,
    impls: Iterable[str] = _impls.MODELS,
    tolerance: float = TOLERANCE,
    verbose: bool = False,
) -> tuple[dict[str, Any], bool]:
    """Run every available implementation for each seed; return (table, all within tolerance).

    ``table`` holds, per implementation, the mean and standard deviation over seeds of each
    metric and the seconds taken; per metric, the largest pairwise relative difference of the
    means; and the implementations skipped because they did not import.
    """
    seed_list = list(range(seeds)) if isinstance(seeds, int) else list(seeds)
    found, skipped = _impls.available(impls)
    means: dict[str, dict[str, float]] = {}
    sds: dict[str, dict[str, float]] = {}
    seconds: dict[str, float] = {}
    for name, run in found.items():
        rows = []
        start = time.perf_counter()
        for seed in seed_list:
            rows.append(spec.summary(run(n, t, seed)))
            if verbose:
                print(f"  {name} seed {seed}: {rows[-1]}", flush=True)
        seconds[name] = time.perf_counter() - start
        values = {m: np.array([r[m] for r in rows]) for m in METRICS}
        means[name] = {m: float(v.mean()) for m, v in values.items()}
        sds[name] = {m: float(v.std(ddof=1)) if len(v) > 1 else 0.0 for m, v in values.items()}
    max_rel = {
        m: max(
            (rel_diff(means[a][m], means[b][m]) for a, b in itertools.combinations(means, 2)),
            default=0.0,
        )
        for m in METRICS
    }
    ok = len(means) >= 2 and all(v <= tolerance for v in max_rel.values())
    table: dict[str, Any] = {
        "n": n,
        "t": t,
        "seeds": seed_list,
        "tolerance": tolerance,
        "mean": means,
        "sd": sds,
        "seconds": seconds,
        "max_rel_diff": max_rel,
        "skipped": skipped,
    }
    return table, ok


def format_table(table: dict[str, Any], ok: bool) -> str:
    """Markdown rendering of ``check_agreement``'s table."""
    lines = [
        f"Agreement at n={table['n']}, t={table['t']}, seeds={table['seeds']} "
        f"(mean ± sd over seeds)",
        "",
        "| impl | " + " | ".join(METRICS) + " | seconds |",
        "|---" * (len(METRICS) + 2) + "|",
    ]
    for name, mean in table["mean"].items():
        sd = table["sd"][name]
        cells = [f"{mean[m]:.1f} ± {sd[m]:.1f}" for m in METRICS]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {table['seconds'][name]:.1f} |")
    rel = [f"{100 * table['max_rel_diff'][m]:.2f} %" for m in METRICS]
    lines.append("| max rel. diff | " + " | ".join(rel) + " | |")
    lines.append("")
    verdict = "within" if ok else "NOT within"
    lines.append(f"All metrics {verdict} {100 * table['tolerance']:.0f} %.")
    for name, why in table["skipped"].items():
        lines.append(f"Skipped {name}: {why}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command line: print the agreement table; exit 1 when outside the tolerance."""
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--t", type=int, default=2190)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--impls", default=",".join(_impls.MODELS))
    args = parser.parse_args(argv)
    table, ok = check_agreement(args.n, args.t, args.seeds, args.impls.split(","), verbose=True)
    print(format_table(table, ok))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
