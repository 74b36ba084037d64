"""Progress for the long commands: a Rich bar on a terminal, plain dated lines in a log.

A bar redrawn in place is invisible when the output goes to a file or a batch system's log,
so there `bars` gives `LineProgress`, which prints one line per task every `every` seconds
and when the task ends: done of total, elapsed, and the time left estimated from this
session's pace (work resumed from an earlier session adds nothing to the speed).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

__all__ = ["LineProgress", "bars", "clock_text"]

MIN_PACE = 3  # units done in this session before a time left is given (one is mostly startup)


def bars(console: Console, *, transient: bool = False,
         every: float = 30.0) -> Progress | LineProgress:
    """A Rich progress bar with the time left on a terminal; `LineProgress` otherwise."""
    if console.is_terminal:
        return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn(),
                        console=console, transient=transient)
    return LineProgress(console, every=every)


def clock_text(seconds: float) -> str:
    """4 s, 3 min 20 s, 1 h 05 min: short and exact enough for a log."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


@dataclass
class _Task:
    description: str
    total: int | None
    completed: int = 0
    started_at: float | None = None  # clock time of the first report in this session
    started_done: int = 0  # work already done then (resumed work adds no speed)
    printed_at: float | None = None
    finished: bool = False


@dataclass
class LineProgress:
    """The calls of rich.progress.Progress that dcsim uses (add_task, update, reset, a
    context), printing lines instead of redrawing a bar."""

    console: Console
    every: float = 30.0
    clock: Callable[[], float] = time.monotonic
    tasks: list[_Task] = field(default_factory=list)

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, description: str, total: float | None = None,
                 start: bool = True) -> int:  # noqa: ARG002 - Rich's signature
        self.tasks.append(_Task(description, None if total is None else int(total)))
        return len(self.tasks) - 1

    def reset(self, task: int, *, total: float | None = None, completed: float = 0,
              description: str | None = None) -> None:
        t = self.tasks[task]
        t.started_at = None
        t.finished = False
        self.update(task, total=total, completed=completed, description=description)

    def update(self, task: int, *, completed: float | None = None, total: float | None = None,
               description: str | None = None) -> None:
        t = self.tasks[task]
        now = self.clock()
        if description is not None:
            t.description = description
        if total is not None:
            t.total = int(total)
            t.finished = t.finished and t.completed >= t.total  # more work: report again
        if completed is not None:
            t.completed = int(completed)
        if t.started_at is None:
            t.started_at, t.started_done = now, t.completed
        done = t.total is not None and t.completed >= t.total
        due = t.printed_at is None or now - t.printed_at >= self.every
        if t.finished or not (done or due):
            return
        t.finished = done
        t.printed_at = now
        self.console.print(self.line(t, now), highlight=False, soft_wrap=True)

    def line(self, t: _Task, now: float) -> str:
        """'trials: 120/800 (15%), 2 min 00 s elapsed, about 11 min 20 s left'."""
        elapsed = 0.0 if t.started_at is None else now - t.started_at
        if t.total is None:
            return f"{escape(t.description)}: {t.completed:,} done, {clock_text(elapsed)} elapsed"
        pct = 100.0 * t.completed / t.total if t.total else 100.0
        text = (f"{escape(t.description)}: {t.completed:,}/{t.total:,} ({pct:.0f}%), "
                f"{clock_text(elapsed)} elapsed")
        gained = t.completed - t.started_done
        if t.completed >= t.total:
            return text + ", done"
        if gained >= MIN_PACE and elapsed > 0:
            return text + f", about {clock_text((t.total - t.completed) * elapsed / gained)} left"
        return text
