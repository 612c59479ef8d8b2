"""Progress for long stages: a rich progress bar on a terminal, plain lines otherwise."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Protocol, TextIO

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn


class StageProgress(Protocol):
    def advance(self, message: str = "") -> None: ...


class Reporter(Protocol):
    def stage(self, name: str, total: int) -> AbstractContextManager[StageProgress]: ...

    def info(self, message: str) -> None: ...


class _PlainStage:
    def __init__(self, name: str, total: int, stream: TextIO) -> None:
        self.name, self.total, self.done, self.stream = name, total, 0, stream

    def advance(self, message: str = "") -> None:
        self.done += 1
        suffix = f": {message}" if message else ""
        print(f"[{self.name}] {self.done}/{self.total}{suffix}", file=self.stream, flush=True)


class PlainReporter:
    """One line per step, for logs and CI (stderr)."""

    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream: TextIO = stream or sys.stderr
        self.quiet = quiet

    @contextmanager
    def stage(self, name: str, total: int) -> Iterator[StageProgress]:
        if not self.quiet:
            print(f"[{name}] started", file=self.stream, flush=True)
        yield _PlainStage(name, total, self.stream if not self.quiet else _null())

    def info(self, message: str) -> None:
        if not self.quiet:
            print(message, file=self.stream, flush=True)


def _null() -> TextIO:
    import io

    return io.StringIO()


class _RichStage:
    def __init__(self, progress: Progress, task: object) -> None:
        self.progress, self.task = progress, task

    def advance(self, message: str = "") -> None:
        self.progress.update(self.task, advance=1, info=message)  # type: ignore[arg-type]


class RichReporter:
    """A progress bar per stage and round, on stderr."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True)

    @contextmanager
    def stage(self, name: str, total: int) -> Iterator[StageProgress]:
        columns = (
            TextColumn(f"[bold]{name:<8}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[info]}"),
        )
        with Progress(*columns, console=self.console, transient=False) as progress:
            task = progress.add_task(name, total=total, info="")
            yield _RichStage(progress, task)

    def info(self, message: str) -> None:
        self.console.print(message)


def default_reporter() -> Reporter:
    if sys.stderr.isatty():
        return RichReporter()
    return PlainReporter()
