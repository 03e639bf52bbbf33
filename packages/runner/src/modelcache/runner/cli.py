"""The ``modelcache`` command.

Exit codes: 0 success; 2 a user error (config, credentials, missing model), reported as one
line with no traceback; 1 any other failure. Tracebacks are for bugs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.text import Text

from modelcache.planner import dumps
from modelcache.store import StoreConfigError, StoreError

from .config import ConfigError, load_config
from .errors import UserError
from .reporting import Reporter, StepKind, StepRecord

__all__ = ["main"]

USER_ERROR = 2
FAILURE = 1
#: Messages longer than this are cut: a config can hold a megabyte-long value to quote.
_LONGEST_MESSAGE = 2000


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelcache",
        description="Run model-optimization workflows whose pass outputs are cached in the cloud.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def cache_switches(command: argparse.ArgumentParser) -> None:
        command.add_argument("--no-cloud", action="store_true",
                             help="do not use the cloud cache for this run")  # fmt: skip
        command.add_argument("--no-upload", action="store_true",
                             help="read the cloud cache but upload nothing this run")  # fmt: skip
        command.add_argument("--no-cache", action="store_true",
                             help="use no cache at all: every pass runs")  # fmt: skip
        command.add_argument("--require-cloud", action="store_true",
                             help="fail if the cloud is lost mid-run")  # fmt: skip

    run = commands.add_parser("run", help="plan and run a workflow")
    run.add_argument("config", type=Path, help="workflow config (JSON)")
    run.add_argument("--report", type=Path, help="write a JSON report of every step here")
    run.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    cache_switches(run)

    plan = commands.add_parser("plan", help="show what a run would do; moves nothing")
    plan.add_argument("config", type=Path, help="workflow config (JSON)")
    plan.add_argument("--format", choices=("text", "json", "mermaid", "dot"), default="text")
    cache_switches(plan)

    commands.add_parser("passes", help="list the passes available")

    from .cache_cli import add_cache_commands

    add_cache_commands(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``modelcache`` console script."""
    args = _parser().parse_args(argv)
    err = Console(stderr=True, highlight=False)
    _quiet_libraries()
    from modelcache.store import ModelDirectoryError

    from .models import ModelError
    from .passes import PassConfigError, PassError

    try:
        return _dispatch(args)
    except (ConfigError, UserError, StoreConfigError, ModelError, PassConfigError) as error:
        if isinstance(error, ConfigError) and not error.source:
            error.source = str(getattr(args, "config", None) or "")  # the config read
        _say(err, "error", "bold red", str(error))
        return USER_ERROR
    except (StoreError, PassError, ModelDirectoryError) as error:
        _say(err, "error", "bold red", str(error))
        return FAILURE
    except OSError as error:  # the machine's, not the config's: a full disk, a lost mount
        where = f": {error.filename}" if error.filename else ""
        _say(err, "error", "bold red", f"{error.strerror or error}{where}")
        return FAILURE
    except KeyboardInterrupt:
        err.print("interrupted; the cache holds only whole entries")
        return FAILURE


def _say(console: Console, label: str, style: str, message: str) -> None:
    """``label: message`` as one line. The message is plain text, never rich markup: it can
    quote a config's strings, and ``[/x]`` in one must neither style nor crash the output."""
    console.print(Text.assemble((f"{label}:", style), " ", _one_line(message)), soft_wrap=True)


def _quiet_libraries() -> None:
    """Keep third-party chatter (progress bars, advice, deprecations) off the user's screen;
    modelcache reports what matters itself."""
    import logging
    import warnings

    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TORCH_LOGS", "-all")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="torch")
    logging.getLogger().setLevel(logging.ERROR)
    for name in ("torch", "torch.onnx", "onnxscript", "onnx_ir", "azure"):
        logging.getLogger(name).setLevel(logging.ERROR)


def _one_line(message: str) -> str:
    """``message`` on one line, its control characters escaped (a config's strings must not
    move the cursor or recolour the terminal), cut to a readable length."""
    text = " ".join(message.split())
    text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
    if len(text) > _LONGEST_MESSAGE:
        cut = len(text) - _LONGEST_MESSAGE
        text = f"{text[:_LONGEST_MESSAGE]}... ({cut} more characters)"
    return text


def _options(args: argparse.Namespace) -> Any:
    from .workflow import RunOptions

    return RunOptions(
        no_cloud=args.no_cloud,
        no_upload=args.no_upload,
        require_cloud=args.require_cloud,
        no_cache=args.no_cache,
    )


def _prepare(args: argparse.Namespace) -> Any:
    from .workflow import prepare

    return prepare(load_config(args.config), _options(args))


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "passes":
        from .passes import available_passes

        for name, implementation in sorted(available_passes().items()):
            print(f"{name}\tversion {implementation.version}\t"
                  f"{'/'.join(sorted(implementation.input_types))} -> "
                  f"{implementation.output_type}")  # fmt: skip
        return 0
    if args.command == "plan":
        return _plan(args)
    if args.command == "cache":
        from .cache_cli import run_cache_command

        return run_cache_command(args)
    return _run(args)


def _plan(args: argparse.Namespace) -> int:
    from modelcache.planner import make_plan
    from modelcache.store import StoreUnavailable

    from .render import render_dot, render_mermaid, render_text
    from .workflow import snapshot

    prepared = _prepare(args)
    err = Console(stderr=True, highlight=False)
    try:
        current = snapshot(prepared)
        policy = prepared.policy
    except StoreUnavailable as error:
        if args.require_cloud:
            raise
        _say(err, "note", "yellow", f"cloud cache unreachable ({error}); planning locally")
        current = snapshot(prepared, cloud=False)
        from attrs import evolve

        policy = evolve(prepared.policy, enable_cloud_cache=False)
    plan = make_plan(prepared.chain, prepared.evaluation, current, policy)
    if args.format == "json":
        sys.stdout.write(dumps(plan) + "\n")
    elif args.format == "mermaid":
        sys.stdout.write(render_mermaid(plan, prepared.chain))
    elif args.format == "dot":
        sys.stdout.write(render_dot(plan, prepared.chain))
    else:
        render_text(plan, prepared.chain, Console(highlight=False))
    return 0


class _ProgressReporter(Reporter):
    """Progress bars for passes and transfers, on stderr."""

    def __init__(self, progress: Progress, console: Console) -> None:
        self.progress = progress
        self.console = console
        self.overall: TaskID | None = None
        self.current: TaskID | None = None

    def planned(self, *, plan: Any) -> None:
        total = sum(1 for s in plan.steps if type(s).__name__ != "Skip")
        if self.overall is None:
            self.overall = self.progress.add_task("workflow", total=total)
        else:
            self.progress.update(self.overall, total=total, completed=0)

    def step_started(self, *, kind: StepKind, pass_name: str, total_bytes: int | None) -> None:
        if kind == "skip":
            return
        self.current = self.progress.add_task(f"{kind} {pass_name}", total=total_bytes)

    def transferred(self, *, pass_name: str, bytes_done: int) -> None:
        if self.current is not None:
            self.progress.update(self.current, completed=bytes_done)

    def step_finished(self, *, record: StepRecord) -> None:
        if record.kind == "skip":
            return
        if self.current is not None:
            self.progress.update(self.current, total=record.bytes or 1,
                                 completed=record.bytes or 1, visible=False)  # fmt: skip
            self.current = None
        if self.overall is not None:
            self.progress.advance(self.overall)

    def note(self, *, message: str) -> None:
        _say(self.console, "note", "yellow", message)


class _NoteReporter(Reporter):
    """No progress, but the notes (cloud lost, uploads refused) still reach stderr."""

    def __init__(self, console: Console) -> None:
        self.console = console

    def note(self, *, message: str) -> None:
        _say(self.console, "note", "yellow", message)


def _run(args: argparse.Namespace) -> int:
    from .render import summary_table
    from .workflow import execute

    prepared = _prepare(args)
    err = Console(stderr=True, highlight=False)
    if args.quiet or (not err.is_terminal and os.environ.get("MODELCACHE_PROGRESS") != "1"):
        report = execute(prepared, _NoteReporter(err))
    else:
        columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                   DownloadColumn(), TimeElapsedColumn())  # fmt: skip
        with Progress(*columns, console=err, transient=True) as progress:
            report = execute(prepared, _ProgressReporter(progress, err))
    document = report.to_json()
    if args.report is not None:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        temporary = args.report.with_name(f".{args.report.name}.tmp")
        temporary.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
        os.replace(temporary, args.report)
    if not args.quiet:
        summary_table(document, Console(highlight=False))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
