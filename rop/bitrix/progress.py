"""Showing sync progress: a rich bar per entity on a terminal, log lines elsewhere.

The sync only calls ``progress(entity, done, total)``; the web server passes its
own callable to show live progress, the CLI passes :class:`ConsoleProgress`.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import IO, Any

ProgressCallback = Callable[[str, int, int | None], None]

# Plain-text mode writes at most one line per entity this often.
LOG_EVERY_SECONDS = 5.0
# A rate over less time than this is noise (a resumed run's first report
# carries rows copied before it): show "-" until then.
MIN_RATE_SECONDS = 1.0


class ConsoleProgress:
    """Use as a context manager; the instance is the progress callback."""

    def __init__(
        self,
        stream: IO[str] | None = None,
        *,
        tty: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.stream = stream or sys.stderr
        self.clock = clock
        self.tty = self.stream.isatty() if tty is None else tty
        self._bars: Any = None
        self._tasks: dict[str, Any] = {}
        self._last_line: dict[str, float] = {}
        self._started: dict[str, tuple[float, int]] = {}

    def __enter__(self) -> ConsoleProgress:
        if self.tty:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TaskProgressColumn,
                TextColumn,
                TimeRemainingColumn,
            )

            self._bars = Progress(
                TextColumn("{task.description:<14}"),
                BarColumn(),
                MofNCompleteColumn(),
                TaskProgressColumn(),
                TextColumn("{task.fields[rate]} rows/s"),
                TimeRemainingColumn(),
                console=Console(file=self.stream),
            )
            self._bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bars is not None:
            self._bars.stop()

    def __call__(self, entity: str, done: int, total: int | None) -> None:
        now = self.clock()
        # Rows per second of this run: counted from the first report, whose
        # ``done`` may hold rows an earlier, interrupted run already copied.
        started, first_done = self._started.setdefault(entity, (now, done))
        elapsed = now - started
        rate = f"{(done - first_done) / elapsed:,.0f}" if elapsed >= MIN_RATE_SECONDS else "-"
        if self._bars is not None:
            task = self._tasks.get(entity)
            if task is None:
                task = self._bars.add_task(entity, total=total, rate=rate)
                self._tasks[entity] = task
            self._bars.update(task, completed=done, total=total, rate=rate)
            return
        finished = total is not None and done >= total
        if not finished and now - self._last_line.get(entity, 0.0) < LOG_EVERY_SECONDS:
            return
        self._last_line[entity] = now
        of = f"/{total}" if total is not None else ""
        print(f"sync {entity}: {done}{of} rows ({rate} rows/s)", file=self.stream, flush=True)
