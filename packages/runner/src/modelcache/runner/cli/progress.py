"""The progress display of ``modelcache run`` on a terminal: one bar for the workflow, one
per step under way. Imported only when a run shows progress (rich.progress is not cheap)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    SpinnerColumn,
    Task,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from modelcache.planner import Plan, Skip

from ..reporting import Reporter, StepKind, StepRecord
from .exit import say

__all__ = ["ProgressReporter", "progress_display", "progress_reporter"]


@contextlib.contextmanager
def progress_reporter(console: Console) -> Iterator[ProgressReporter]:
    """A reporter drawing the run's progress on ``console`` while the block runs."""
    with progress_display(console) as progress:
        yield ProgressReporter(progress, console)


def progress_display(console: Console) -> Progress:
    """The progress display of a run: one bar for the workflow, one per step under way."""
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
               _AmountColumn(), TimeElapsedColumn())  # fmt: skip
    return Progress(*columns, console=console, transient=True)


class _AmountColumn(ProgressColumn):
    """How far a bar is, in its task's ``unit``: steps for the workflow, bytes for a transfer
    (in binary units, as every size modelcache prints), nothing for a pass running."""

    def __init__(self) -> None:
        super().__init__()
        self._bytes = DownloadColumn(binary_units=True)

    def render(self, task: Task) -> Text:
        match task.fields.get("unit"):
            case "steps":
                return Text(f"{task.completed:.0f}/{task.total or 0:.0f} steps")
            case "bytes":
                return self._bytes.render(task)
        return Text("")


class ProgressReporter(Reporter):
    """Progress bars for passes and transfers, and the notes, on stderr. An upload goes on in
    the background while the next step runs, so each step in progress has its own bar."""

    def __init__(self, progress: Progress, console: Console) -> None:
        self.console = console
        self.progress = progress
        self.overall: TaskID | None = None
        #: The bar of each step in progress, by kind and pass.
        self.current: dict[tuple[StepKind, str], TaskID] = {}

    def note(self, *, message: str) -> None:
        say(self.console, "note", "yellow", message)

    def planned(self, *, plan: Plan) -> None:
        total = sum(1 for step in plan.steps if not isinstance(step, Skip))
        if self.overall is None:
            self.overall = self.progress.add_task("workflow", total=total, unit="steps")
        else:
            self.progress.update(self.overall, total=total, completed=0)

    def step_started(self, *, kind: StepKind, pass_name: str, total_bytes: int | None) -> None:
        if kind == "skip":
            return
        unit = "bytes" if kind in ("download", "upload") else None
        task = self.progress.add_task(f"{kind} {pass_name}", total=total_bytes, unit=unit)
        self.current[kind, pass_name] = task

    def transferred(self, *, pass_name: str, bytes_done: int) -> None:
        # A pass's output is downloaded or uploaded, never both at once.
        for kind in ("download", "upload"):
            task = self.current.get((kind, pass_name))
            if task is not None:
                self.progress.update(task, completed=bytes_done)

    def step_finished(self, *, record: StepRecord) -> None:
        if record.kind == "skip":
            return
        task = self.current.pop((record.kind, record.pass_name), None)
        if task is not None:
            self.progress.update(task, total=record.bytes or 1,
                                 completed=record.bytes or 1, visible=False)  # fmt: skip
        if self.overall is not None:
            self.progress.advance(self.overall)
