"""Rich progress bars for long jobs, or nothing with ``--quiet``."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text

Report = Callable[[int, int], None]


class RateColumn(ProgressColumn):
    """Items per second, in the unit of each bar (its ``unit`` field)."""

    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        unit = task.fields["unit"]
        return Text(f"{speed:,.1f} {unit}/s" if speed else f"– {unit}/s", style="cyan")


@contextmanager
def progress_bar(description: str, unit: str, quiet: bool, console: Console) -> Iterator[Report]:
    """A callback ``report(done, total)`` that drives one bar (a no-op when quiet)."""
    with progress_bars([(description, unit)], quiet, console) as (report,):
        yield report


@contextmanager
def progress_bars(
    steps: Sequence[tuple[str, str]], quiet: bool, console: Console
) -> Iterator[list[Report]]:
    """One ``report(done, total)`` per step of a job, each driving its bar (description,
    unit), in one display: rich shows one at a time. A later step's bar appears when it
    first reports, so a step that never runs shows none."""
    if quiet:
        yield [lambda done, total: None for _ in steps]
        return
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        RateColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=console, transient=False) as bar:

        def driving(description: str, unit: str, shown: bool) -> Report:
            task: list[TaskID] = []  # its bar, once shown

            def show() -> None:
                task.append(bar.add_task(description, total=None, unit=unit))

            def report(done: int, total: int) -> None:
                if not task:
                    show()
                bar.update(task[0], completed=done, total=total)

            if shown:
                show()
            return report

        yield [driving(*step, shown=at == 0) for at, step in enumerate(steps)]
