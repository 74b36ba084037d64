"""Run one implementation once, in its own process, and print one JSON line about the run.

``python -m benchmarks.peers.runner IMPL N T SEED`` (from the repository root). A process per run
makes the peak resident memory that run's own. A small warm-up run first takes
imports and JIT compilation out of the timed region, for every implementation alike.
"""

from __future__ import annotations

import json
import resource
import sys
import time

from benchmarks.peers import impls, spec

WARM_UP_N, WARM_UP_T = 200, 30


def peak_rss_kib() -> int:
    """This process's peak resident set size, in KiB.

    ``VmHWM`` from /proc is the high-water mark of this process's own memory map. ``ru_maxrss``
    is only the fallback: Linux carries it over ``exec`` from the forking parent, so a child of
    a large benchmark driver would report the driver's peak.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _cpu_seconds() -> float:
    """User + system CPU time of this process: above wall time when a run uses threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main(argv: list[str]) -> int:
    """Warm up, time the run, report seconds, person-days, memory and the summary."""
    name, n, t, seed = argv[0], int(argv[1]), int(argv[2]), int(argv[3])
    run = impls.load(name)
    run(WARM_UP_N, WARM_UP_T, seed)
    baseline_kib = peak_rss_kib()
    cpu_start = _cpu_seconds()
    start = time.perf_counter()
    result = run(n, t, seed)
    seconds = time.perf_counter() - start
    cpu_seconds = _cpu_seconds() - cpu_start
    peak_kib = peak_rss_kib()
    record = {
        "impl": name,
        "n": n,
        "t": t,
        "seed": seed,
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "person_days": spec.person_days(result),
        "peak_rss_kib": peak_kib,
        "baseline_rss_kib": baseline_kib,
        "summary": spec.summary(result),
    }
    print(json.dumps(record), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
