"""``modelcache run``, ``plan`` and ``passes``: a workflow run with its progress on stderr,
what a run would do, and the passes there are."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from attrs import evolve

from modelcache.planner import Chain, Plan
from modelcache.store import StoreUnavailable

from ..config import CloudOverrides, WorkflowConfig, load_config, naming_config_file
from ..errors import UserError
from ..passes import available_passes
from ..reporting import Reporter, RunReport
from ..workflow import Prepared, RunOptions, checked_plan, execute, prepare, prepare_known

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["passes_command", "plan_command", "run_command"]


def _draw_mermaid(plan: Plan, chain: Chain) -> str:
    from .render import render_mermaid

    return render_mermaid(plan, chain)


def _draw_dot(plan: Plan, chain: Chain) -> str:
    from .render import render_dot

    return render_dot(plan, chain)


def _json(plan: Plan) -> str:
    from modelcache.planner import dumps

    return dumps(plan) + "\n"


#: ``plan --format``s other than ``text`` (:data:`.commands.PLAN_FORMATS`): each draws the
#: plan as a document for stdout.
_DRAWINGS: Final[Mapping[str, Callable[[Plan, Chain], str]]] = {
    "json": lambda plan, _chain: _json(plan),
    "mermaid": _draw_mermaid,
    "dot": _draw_dot,
}


def _stderr() -> Console:
    """A console on stderr, for notes; rich is imported only when there is one to say."""
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _note(console: Console, message: str) -> None:
    from .exit import say

    say(console, "note", "yellow", message)


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
    if config.notes:
        err = _stderr()
        for note in config.notes:
            _note(err, note)
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
    the plan there: the passes from it on are shown as unknown, with a note saying why.
    Given a sweep file, the sweep's plan (:mod:`.sweep`)."""
    from .sweep import is_sweep_file
    from .sweep import plan_command as plan_sweep

    if is_sweep_file(args.config):
        return plan_sweep(args)
    with naming_config_file(args.config):
        prepared, unknown = prepare_known(_load(args), _options(args))
        plan = _plan(prepared, require_cloud=args.require_cloud) if prepared else None
    for missing in unknown:
        _note(_stderr(), f"pass {missing.name!r}: key unknown: {missing.why}")
    if args.format == "text":
        from rich.console import Console

        from .render import render_text

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
        plan, notes = checked_plan(prepared)
    except StoreUnavailable as error:
        if require_cloud:
            raise
        _note(_stderr(), f"cloud cache unreachable ({error}); planning locally")
        policy = evolve(prepared.policy, enable_cloud_cache=False)
        plan, notes = checked_plan(prepared, cloud=False, policy=policy)
    for note in notes:
        _note(_stderr(), note)
    return plan


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
        from rich.console import Console

        from .render import summary_table

        summary_table(document, Console(highlight=False))
    return 0


def _execute(prepared: Prepared, *, quiet: bool) -> RunReport:
    if quiet:  # rich is imported for a note, if there is one
        return execute(prepared, _NoteReporter())
    err = _stderr()
    if not err.is_terminal and os.environ.get("MODELCACHE_PROGRESS") != "1":
        return execute(prepared, _NoteReporter(err))
    from .progress import progress_reporter

    with progress_reporter(err) as reporter:
        return execute(prepared, reporter)


def _check_report(path: Path, option: str = "--report") -> None:
    """Refuse a ``--report`` path (or the file of another ``option``) the run could not
    write at its end, before any work: a run of an hour must not fail over its report's
    folder.

    :raises UserError: ``path`` is a directory, or its folder is missing or not writable.
    """
    if path.is_dir():
        raise UserError(f"{option} {path}: is a directory; name a file")
    folder = path.parent
    if not folder.is_dir():
        raise UserError(f"{option} {path}: the folder {folder} does not exist; create it first")
    # Only writing tells: permission bits mean nothing to root, and a read-only mount or
    # /proc refuses all the same.
    try:
        probe, name = _temporary_beside(path)
    except OSError as error:
        raise UserError(
            f"{option} {path}: cannot write in {folder} ({error.strerror or error}); "
            "choose a folder you may write"
        ) from None
    os.close(probe)
    os.unlink(name)


def _temporary_beside(path: Path) -> tuple[int, Path]:
    """A new file beside ``path``, opened for writing; mkstemp's would be private (0600),
    and a report is as readable as any file the user writes."""
    name = path.with_name(f".{path.name}.{os.urandom(6).hex()}.tmp")
    return os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), name


def _write_report(path: Path, document: Mapping[str, Any]) -> None:
    """``document`` as JSON in ``path``, whole or not at all: no temporary file is left."""
    from modelcache.store import create_file

    create_file(path, [(json.dumps(document, indent=2) + "\n").encode("utf-8")], replace=True)


class _NoteReporter(Reporter):
    """No progress, but the notes (cloud lost, uploads refused) still reach stderr; rich is
    imported for the first one, not before."""

    def __init__(self, console: Console | None = None) -> None:
        self.console = console

    def note(self, *, message: str) -> None:
        if self.console is None:
            self.console = _stderr()
        _note(self.console, message)
