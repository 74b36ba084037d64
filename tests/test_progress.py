"""Progress in a log: one dated line per interval, the time left from this session's pace."""

from __future__ import annotations

import io

from rich.console import Console
from rich.progress import Progress

from dcsim.progress import LineProgress, bars, clock_text


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _log() -> tuple[Console, io.StringIO]:
    buf = io.StringIO()
    return Console(file=buf, force_terminal=False, width=200), buf


def _lines(every: float) -> tuple[LineProgress, FakeClock, io.StringIO]:
    """A LineProgress printing into a buffer, on a clock the test sets."""
    console, buf = _log()
    clock = FakeClock()
    return LineProgress(console, every=every, clock=clock), clock, buf


def test_bars_is_a_rich_bar_on_a_terminal_and_lines_otherwise() -> None:
    log, _ = _log()
    assert isinstance(bars(log), LineProgress)
    term = Console(file=io.StringIO(), force_terminal=True)
    assert isinstance(bars(term), Progress)


def test_lines_every_interval_and_once_at_the_end() -> None:
    console, buf = _log()
    clock = FakeClock()
    with LineProgress(console, every=30.0, clock=clock) as bar:
        task = bar.add_task("runs", total=100)
        bar.update(task, completed=0)
        for k in range(1, 101):
            clock.now = 2.0 * k  # 2 s a run: 200 s in all
            bar.update(task, completed=k)
        bar.update(task, completed=100)  # a repeated final report prints nothing more
    lines = buf.getvalue().splitlines()
    # at 0 s, then every 30 s (30, 60, ..., 180 s: runs 15, 30, ..., 90), then done at 200 s
    assert lines[0] == "runs: 0/100 (0%), 0 s elapsed"
    assert lines[1] == "runs: 15/100 (15%), 30 s elapsed, about 2 min 50 s left"
    assert len(lines) == 1 + 6 + 1
    assert lines[-1] == "runs: 100/100 (100%), 3 min 20 s elapsed, done"


def test_resumed_work_adds_no_speed() -> None:
    """A study resumed at 500 of 800: the pace is this session's 10 trials in 20 s."""
    bar, clock, buf = _lines(1.0)
    task = bar.add_task("trials", total=800)
    bar.update(task, completed=500)
    clock.now = 20.0
    bar.update(task, completed=510, description="trials (best loss 3.25)")
    assert buf.getvalue().splitlines()[-1] == (
        "trials (best loss 3.25): 510/800 (64%), 20 s elapsed, about 9 min 40 s left")


def test_reset_restarts_the_clock_and_unknown_totals_count_only() -> None:
    bar, clock, buf = _lines(1.0)
    task = bar.add_task("simulating persons", total=None)
    clock.now = 5.0
    bar.update(task, completed=10)
    assert buf.getvalue().splitlines()[-1] == "simulating persons: 10 done, 0 s elapsed"
    clock.now = 100.0
    bar.reset(task, total=8, completed=1)
    clock.now = 105.0
    bar.update(task, completed=2)  # one unit is mostly startup: no time left yet
    assert buf.getvalue().splitlines()[-1] == "simulating persons: 2/8 (25%), 5 s elapsed"
    clock.now = 110.0
    bar.update(task, completed=4)
    assert buf.getvalue().splitlines()[-1] == (
        "simulating persons: 4/8 (50%), 10 s elapsed, about 13 s left")


def test_clock_text() -> None:
    assert [clock_text(s) for s in (4.4, 59.6, 200, 3599, 3900)] == [
        "4 s", "1 min 00 s", "3 min 20 s", "59 min 59 s", "1 h 05 min"]


def test_a_task_whose_total_grows_reports_again() -> None:
    """calibrate's compass rounds add trials after the sampler's are done."""
    bar, clock, buf = _lines(60.0)
    task = bar.add_task("trials", total=1)
    bar.update(task, completed=0)
    clock.now = 2.0
    bar.update(task, completed=1)
    clock.now = 3.0
    bar.update(task, completed=1, total=71)
    clock.now = 80.0
    bar.update(task, completed=40, total=71)
    assert buf.getvalue().splitlines()[1:] == [
        "trials: 1/1 (100%), 2 s elapsed, done",
        "trials: 40/71 (56%), 1 min 20 s elapsed, about 1 min 02 s left"]
