"""``modelcache run``, ``plan`` and ``passes``: a workflow run with its progress on stderr,
what a run would do, and the passes there are."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

from attrs import evolve
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

from modelcache.planner import Chain, Plan, Skip, dumps, make_plan
from modelcache.store import StoreUnavailable

from ..config import (
    CloudOverrides,
    WorkflowConfig,
    check_account_name,
    check_container_name,
    load_config,
    naming_config_file,
)
from ..errors import UserError
from ..passes import available_passes
from ..reporting import Reporter, RunReport, StepKind, StepRecord
from ..workflow import Prepared, RunOptions, execute, prepare, prepare_known, snapshot
from .exit import say
from .render import render_dot, render_mermaid, render_text, summary_table

__all__ = ["add_run_commands", "passes_command", "plan_command", "run_command"]

#: ``plan --format``s other than ``text``: each draws the plan as a document for stdout.
_DRAWINGS: Final[Mapping[str, Callable[[Plan, Chain], str]]] = {
    "json": lambda plan, _chain: dumps(plan) + "\n",
    "mermaid": render_mermaid,
    "dot": render_dot,
}


def add_run_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``run``, ``plan`` and ``passes`` to the ``modelcache`` parser's subparsers."""
    run = commands.add_parser("run", help="plan and run a workflow")
    run.add_argument("config", type=Path, help="workflow config (JSON, or YAML: .yaml/.yml)")
    run.add_argument("--report", type=Path, help="write a JSON report of every step here")
    run.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    _cache_switches(run)
    run.set_defaults(handler=run_command)

    plan = commands.add_parser("plan", help="show what a run would do; moves nothing")
    plan.add_argument("config", type=Path, help="workflow config (JSON, or YAML: .yaml/.yml)")
    plan.add_argument("--format", choices=("text", *_DRAWINGS), default="text")
    _cache_switches(plan)
    plan.set_defaults(handler=plan_command)

    passes = commands.add_parser("passes", help="list the passes available")
    passes.set_defaults(handler=passes_command)


def _cache_switches(command: argparse.ArgumentParser) -> None:
    command.add_argument("--no-cloud", action="store_true",
                         help="do not use the cloud cache for this run")  # fmt: skip
    command.add_argument("--no-upload", action="store_true",
                         help="read the cloud cache but upload nothing this run")  # fmt: skip
    command.add_argument("--no-cache", action="store_true",
                         help="use no cache at all: every pass runs")  # fmt: skip
    command.add_argument("--require-cloud", action="store_true",
                         help="fail if the cloud is lost mid-run")  # fmt: skip
    # Olive's spellings (olive run --account_name), and the usual ones.
    command.add_argument("--account_name", "--account-name", dest="account_name",
                         type=_checked(check_account_name), metavar="NAME",
                         help="the cloud cache's storage account, over the config's")  # fmt: skip
    command.add_argument("--container_name", "--container-name", dest="container_name",
                         type=_checked(check_container_name), metavar="NAME",
                         help="the cloud cache's container, over the config's")  # fmt: skip


def _checked(check: Callable[[str], str]) -> Callable[[str], str]:
    """``check`` as an argparse ``type``: its ``ValueError`` becomes argparse's usage error."""

    def argument(text: str) -> str:
        try:
            return check(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return argument


def _prepare(args: argparse.Namespace) -> Prepared:
    return prepare(_load(args), _options(args))


def _options(args: argparse.Namespace) -> RunOptions:
    return RunOptions(
        no_cloud=args.no_cloud,
        no_upload=args.no_upload,
        require_cloud=args.require_cloud,
        no_cache=args.no_cache,
    )


def _load(args: argparse.Namespace) -> WorkflowConfig:
    """The config, with the command line's account and container over its own; its notes
    (what it asks for that modelcache ignores) said on stderr."""
    overrides = CloudOverrides(account_name=args.account_name, container_name=args.container_name)
    config = load_config(args.config, overrides=overrides)
    err = Console(stderr=True, highlight=False)
    for note in config.notes:
        say(err, "note", "yellow", note)
    return config


# -- passes, plan ----------------------------------------------------------------------------


def passes_command(_args: argparse.Namespace) -> int:
    """``modelcache passes``: one line per pass type, its version and what it converts."""
    from ..olive import OlivePass

    for name, implementation in available_passes().items():
        converts = (
            f"{'/'.join(sorted(implementation.input_types))} -> {implementation.output_type}"
            if implementation.input_types
            else "(a model format modelcache does not carry)"
        )
        origin = f"\t{implementation.origin}" if isinstance(implementation, OlivePass) else ""
        print(f"{name}\tversion {implementation.version}\t{converts}{origin}")
    return 0


def plan_command(args: argparse.Namespace) -> int:
    """``modelcache plan``: the plan drawn on stdout; moves nothing. Without the cloud (and
    without ``--require-cloud``), the plan is made from the local cache, with a note. What
    is missing from this machine (a hub model not downloaded, a package a pass needs) ends
    the plan there: the passes from it on are shown as unknown, with a note saying why."""
    with naming_config_file(args.config):
        prepared, unknown = prepare_known(_load(args), _options(args))
        plan = _plan(prepared, require_cloud=args.require_cloud) if prepared else None
    err = Console(stderr=True, highlight=False)
    for missing in unknown:
        say(err, "note", "yellow", f"pass {missing.name!r}: key unknown: {missing.why}")
    if args.format == "text":
        render_text(plan, prepared.chain if prepared else None, Console(highlight=False),
                    unknown=unknown)  # fmt: skip
    elif plan is None or prepared is None:
        raise NothingToDraw(args.format)
    else:
        sys.stdout.write(_DRAWINGS[args.format](plan, prepared.chain))
    return 0


class NothingToDraw(UserError):
    """No pass's key is known (the input model is missing), so there is no plan to draw in
    a format that draws keys."""

    def __init__(self, drawing: str) -> None:
        super().__init__(
            f"no plan to draw as {drawing}: every key depends on what is missing (the notes "
            "above say what); --format text shows the passes"
        )
        self.drawing = drawing


def _plan(prepared: Prepared, *, require_cloud: bool) -> Plan:
    try:
        current = snapshot(prepared)
        policy = prepared.policy
    except StoreUnavailable as error:
        if require_cloud:
            raise
        err = Console(stderr=True, highlight=False)
        say(err, "note", "yellow", f"cloud cache unreachable ({error}); planning locally")
        current = snapshot(prepared, cloud=False)
        policy = evolve(prepared.policy, enable_cloud_cache=False)
    return make_plan(prepared.chain, prepared.evaluation, current, policy)


# -- run -------------------------------------------------------------------------------------


def run_command(args: argparse.Namespace) -> int:
    """``modelcache run``: run the workflow, progress on stderr (when it is a terminal, or
    ``MODELCACHE_PROGRESS=1``), then the summary on stdout and the report to ``--report``."""
    if args.report is not None:
        _check_report(args.report)
    with naming_config_file(args.config):
        prepared = _prepare(args)
        report = _execute(prepared, quiet=args.quiet)
    report.notes[:0] = [n for n in prepared.config.notes if n not in report.notes]
    document = report.to_json()
    if args.report is not None:
        _write_report(args.report, document)
    if not args.quiet:
        summary_table(document, Console(highlight=False))
    return 0


def _execute(prepared: Prepared, *, quiet: bool) -> RunReport:
    err = Console(stderr=True, highlight=False)
    if quiet or (not err.is_terminal and os.environ.get("MODELCACHE_PROGRESS") != "1"):
        return execute(prepared, _NoteReporter(err))
    with _progress(err) as progress:
        return execute(prepared, _ProgressReporter(progress, err))


def _progress(console: Console) -> Progress:
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


def _check_report(path: Path) -> None:
    """Refuse a ``--report`` path the run could not write at its end, before any work: a
    run of an hour must not fail over its report's folder.

    :raises UserError: ``path`` is a directory, or its folder is missing or not writable.
    """
    if path.is_dir():
        raise UserError(f"--report {path}: is a directory; name a file")
    folder = path.parent
    if not folder.is_dir():
        raise UserError(f"--report {path}: the folder {folder} does not exist; create it first")
    # Only writing tells: permission bits mean nothing to root, and a read-only mount or
    # /proc refuses all the same.
    try:
        probe, name = _temporary_beside(path)
    except OSError as error:
        raise UserError(
            f"--report {path}: cannot write in {folder} ({error.strerror or error}); "
            "choose a folder you may write"
        ) from None
    os.close(probe)
    os.unlink(name)


def _temporary_beside(path: Path) -> tuple[int, Path]:
    """A new file beside ``path``, opened for writing; mkstemp's would be private (0600),
    and a report is as readable as any file the user writes."""
    name = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), name


def _write_report(path: Path, document: Mapping[str, Any]) -> None:
    """``document`` as JSON in ``path``, whole or not at all: no temporary file is left."""
    handle, name = _temporary_beside(path)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as temporary:
            temporary.write(json.dumps(document, indent=2) + "\n")
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise


class _NoteReporter(Reporter):
    """No progress, but the notes (cloud lost, uploads refused) still reach stderr."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def note(self, *, message: str) -> None:
        say(self.console, "note", "yellow", message)


class _ProgressReporter(_NoteReporter):
    """Progress bars for passes and transfers, on stderr. An upload goes on in the
    background while the next step runs, so each step in progress has its own bar."""

    def __init__(self, progress: Progress, console: Console) -> None:
        super().__init__(console)
        self.progress = progress
        self.overall: TaskID | None = None
        #: The bar of each step in progress, by kind and pass.
        self.current: dict[tuple[StepKind, str], TaskID] = {}

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
