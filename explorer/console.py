"""Terminal output of the commands: progress bars and tables, on `rich`.

Progress goes to stderr, tables to stdout. On a terminal the bar redraws in place
(with rate and ETA); off a terminal (a log file, a pipe) it prints one plain line
at every tenth of the work instead, so logs stay short and readable.
"""
from __future__ import annotations

import math
import sys
from typing import Callable, Iterable, Sequence

from rich import box
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

#: width of tables printed off a terminal (rich would assume 80 columns and wrap them)
PIPE_WIDTH = 132


def console(stream=None) -> Console:
    """A rich console on ``stream`` (default stdout); wide and plain when it is not a terminal."""
    stream = sys.stdout if stream is None else stream
    tty = hasattr(stream, "isatty") and stream.isatty()
    return Console(file=stream, width=None if tty else PIPE_WIDTH, highlight=False, soft_wrap=False)


class ProgressLine:
    """A progress bar of ``total`` units whose text after the bar is ``describe()``.

    ``advance_to(n)`` moves it; ``note(text)`` prints a line above it; ``close()`` ends it.
    """

    def __init__(self, total: int, describe: Callable[[], str] = lambda: "", out=None, unit: str = "steps"):
        self.total, self.describe = max(1, int(total)), describe
        self.console = console(sys.stderr if out is None else out)
        self.tty = self.console.is_terminal
        self.done = 0
        self._decile = 0  # off a terminal: a line at every tenth, from the first
        self._progress = None
        if self.tty:
            self._progress = Progress(BarColumn(bar_width=24), MofNCompleteColumn(), TextColumn(unit),
                                      TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(),
                                      TextColumn("{task.description}"), console=self.console, transient=False,
                                      refresh_per_second=8)
            self._task = self._progress.add_task("", total=self.total)
            self._progress.start()

    def advance_to(self, done: int) -> None:
        self.done = min(int(done), self.total)
        if self._progress is not None:
            self._progress.update(self._task, completed=self.done, description=self.describe())
            return
        decile = 10 * self.done // self.total
        if decile > self._decile:
            self._decile = decile
            self._plain_line()

    def note(self, text: str) -> None:
        self.console.print(text, markup=False)

    def _plain_line(self) -> None:
        self.console.print(f"{self.done}/{self.total} {self.describe()}".rstrip(), markup=False)

    def close(self) -> None:
        if self._progress is not None:
            self._progress.update(self._task, completed=self.done, description=self.describe())
            self._progress.stop()
        elif 10 * self.done // self.total > self._decile or self.done < self.total:
            self._plain_line()


def print_table(columns: Sequence[tuple[str, str]], rows: Iterable[Sequence], out=None, title: str | None = None):
    """Print ``rows`` under ``columns`` = ((header, "left" | "right"), ...) as an aligned table."""
    table = Table(box=box.SIMPLE_HEAD, title=title, title_justify="left", pad_edge=False, show_edge=False)
    for header, justify in columns:
        table.add_column(header, justify=justify, no_wrap=True)
    for row in rows:
        table.add_row(*(str(v) for v in row))
    console(out).print(table)


def compact(n) -> str:
    """Counts for humans: 74,000 -> "74k", 1,234,567 -> "1.23M"."""
    if n is None or (isinstance(n, float) and not math.isfinite(n)):
        return "-"
    n = float(n)
    if n >= 1e6:
        return f"{n / 1e6:.3g}M"
    if n >= 1e3:
        return f"{n / 1e3:.3g}k"
    return f"{n:.0f}"
