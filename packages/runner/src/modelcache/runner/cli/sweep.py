"""``modelcache sweep``: many workflows over one cache, planned as one graph and run on a
pool of workers (processes of this machine, or Ray actors: ``--engine``); the variants'
table with the Pareto front marked, ``--report``.

:func:`add_arguments` fills the command's parser, :func:`handle` runs it. ``--plan`` shows
what the sweep would do (the tree of shared prefixes, or the planner's JSON) and moves
nothing; :func:`plan_command` does the same for ``modelcache plan`` given a sweep file
(:func:`is_sweep_file` tells one from a workflow config).

The module imports only the standard library, as the parser does
(:mod:`.commands`): the parser may call :func:`add_arguments` while building itself, and a
command pays only for what it uses. The rest is imported when the command runs; Ray
(``modelcache.ray``, the ``[ray]`` extra) only for ``--engine ray``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from .commands import cloud_switches

if TYPE_CHECKING:
    from rich.console import Console

    from ..sweep import Engine, PreparedSweep, SweepReporter

__all__ = ["add_arguments", "handle", "is_sweep_file", "plan_command"]

#: How a sweep plan can be shown: the tree for people, the planner's JSON for programs, a
#: Mermaid flowchart or a Graphviz graph of its shared prefixes.
SWEEP_PLAN_FORMATS = ("text", "json", "mermaid", "dot")
#: Where the workers are: this machine's processes, or actors of a Ray cluster.
ENGINES = ("local", "ray")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The arguments of ``modelcache sweep``."""
    parser.add_argument(
        "sweep",
        type=Path,
        metavar="SWEEP",
        help="sweep file (JSON or YAML): a base workflow and a matrix, or workflows; or an "
        "Olive config that searches or has several pass_flows",
    )
    parser.add_argument(
        "--jobs",
        "-j",
        type=_positive,
        metavar="N",
        help="workers: processes, or Ray actors (default: 2, or 1 on a one-core machine)",
    )
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="local",
        help="where the workers run: this machine's processes, or actors of a Ray cluster "
        "(pip install 'modelcache-runner[ray]')",
    )
    parser.add_argument(
        "--address",
        metavar="ADDR",
        help="with --engine ray: join the Ray cluster at ADDR (host:port of its head, or "
        "auto); default: start one on this machine for the sweep",
    )
    parser.add_argument("--report", type=Path, help="write a JSON report of the sweep here")
    parser.add_argument(
        "--plan",
        "--dry-run",
        dest="plan",
        action="store_true",
        help="show what the sweep would do; run and move nothing",
    )
    parser.add_argument(
        "--format",
        choices=SWEEP_PLAN_FORMATS,
        default="text",
        help="with --plan: a tree of shared prefixes, the plan's JSON, or a Mermaid or "
        "Graphviz drawing of it",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress or table")
    cloud_switches(parser)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: give a whole number of workers, 1 or more")
    return value


def is_sweep_file(path: Path) -> bool:
    """Whether ``path`` holds a sweep (see :func:`modelcache.runner.sweep.is_sweep_file`)
    rather than a workflow config; a file that cannot be read is not one (the caller says
    why)."""
    from ..sweep import is_sweep_file as holds_a_sweep

    return holds_a_sweep(path)


def _prepare(args: argparse.Namespace, sweep_path: Path) -> PreparedSweep:
    from ..config import CloudOverrides
    from ..sweep import load_sweep, prepare_sweep
    from ..workflow import RunOptions

    overrides = CloudOverrides(account_name=args.account_name, container_name=args.container_name)
    options = RunOptions(
        no_cloud=args.no_cloud, no_upload=args.no_upload, require_cloud=args.require_cloud
    )
    sweep = load_sweep(sweep_path, overrides=overrides)
    err = _stderr()
    for note in sweep.notes:
        _say(err, "note", "yellow", note)
    return prepare_sweep(sweep, options)


def plan_command(args: argparse.Namespace) -> int:
    """``modelcache plan SWEEP``: the sweep's plan on stdout (``args.config``, the sweep
    file; ``args.format``, ``text`` or ``json``); moves nothing."""
    if args.format not in SWEEP_PLAN_FORMATS:
        from ..errors import UserError

        raise UserError(
            f"a sweep's plan is drawn as {' or '.join(SWEEP_PLAN_FORMATS)}, not {args.format}"
        )
    _show_plan(_prepare(args, args.config), args.format)
    return 0


def _show_plan(prepared: PreparedSweep, drawing: str) -> None:
    from modelcache.planner import dumps

    from ..sweep import plan_sweep, render_tree
    from .render import render_sweep_dot, render_sweep_mermaid

    plan, _policy, notes = plan_sweep(prepared)
    for note in notes:
        _say(_stderr(), "note", "yellow", note)
    drawn = {
        "text": render_tree,
        "json": lambda made: dumps(made) + "\n",
        "mermaid": render_sweep_mermaid,
        "dot": render_sweep_dot,
    }[drawing](plan)
    sys.stdout.write(drawn)


def handle(args: argparse.Namespace) -> int:
    """``modelcache sweep``: run the sweep (or, with ``--plan``, show it), progress on
    stderr, the table of variants on stdout, the report to ``--report``.

    :return: 0 when every variant was delivered; else the exit status of the worst failure
        (2 when every failure is the user's to fix, 1 otherwise), each said on stderr.
    """
    from ..sweep import report_document, results_of, results_table, run_sweep
    from .exit import EXIT_STATUS
    from .run import _check_report, _write_report  # run's own checks, not copies of them

    engine = _engine(args.engine, args.address, plan=args.plan)
    if args.report is not None and not args.plan:
        _check_report(args.report)
    prepared = _prepare(args, args.sweep)
    if engine is None:
        _show_plan(prepared, args.format)
        return 0
    reporter = _progress(_stderr(), quiet=args.quiet)
    run = run_sweep(prepared, jobs=args.jobs, reporter=reporter, engine=engine)
    finals = {name: p.chain.passes[-1].name for name, p in prepared.prepared if p.chain.passes}
    results = results_of(run, finals)
    if args.report is not None:
        _write_report(args.report, report_document(run, results))
    if not args.quiet:
        sys.stdout.write(results_table(results))
    failed = [outcome for outcome in run.variants if outcome.report is None]
    err = _stderr()
    for outcome in failed:
        _say(err, "error", "bold red", f"variant {outcome.name}: {outcome.error}")
    if not failed:
        return 0
    return max(EXIT_STATUS["user" if o.fault == "user" else "environment"] for o in failed)


def _engine(name: str, address: str | None, *, plan: bool) -> Engine | None:
    """The engine ``--engine`` names, its arguments checked; None with ``--plan``, which
    runs nothing (and needs no Ray)."""
    from ..errors import UserError

    if address is not None and name != "ray":
        raise UserError("--address joins a Ray cluster: give --engine ray with it")
    if plan:
        return None
    if name == "local":
        from ..sweep import LocalEngine

        return LocalEngine()
    try:
        from modelcache.ray import RayEngine
    except ImportError:
        raise UserError(
            "--engine ray needs Ray and the Ray engine: pip install 'modelcache-runner[ray]'"
        ) from None
    return RayEngine(address=address)


def _stderr() -> Console:
    from rich.console import Console

    return Console(stderr=True, highlight=False)


def _say(console: Console, label: str, style: str, message: str) -> None:
    from .exit import say

    say(console, label, style, message)


def _progress(console: Console, *, quiet: bool) -> SweepReporter:
    """One line on stderr per segment and per variant as they end; with ``quiet``, the
    notes only (the cloud lost, uploads refused)."""
    from modelcache.planner import SweepPlan

    from ..sweep import SegmentOutcome, SweepReporter, VariantOutcome

    class Progress(SweepReporter):
        def planned(self, *, plan: SweepPlan) -> None:
            busy = sum(not segment.idle for segment in plan.segments)
            _line(f"sweep: {len(plan.workflows)} variants, {busy} segments to run, "
                  f"{plan.totals.runs} passes to run")  # fmt: skip

        def segment_finished(self, *, outcome: SegmentOutcome) -> None:
            runs = [r.record.pass_name for r in outcome.records
                    if (r.record.kind, r.record.outcome) == ("run", "done")]  # fmt: skip
            what = f"ran {', '.join(runs)}" if runs else "nothing to run"
            why = f": {outcome.error}" if outcome.error else ""
            _line(f"segment {outcome.segment} {outcome.status} in {outcome.seconds:.1f} s "
                  f"({what}){why}")  # fmt: skip

        def variant_finished(self, *, outcome: VariantOutcome) -> None:
            if outcome.report is not None:
                _line(f"variant {outcome.name}: {outcome.report.output_dir}")

        def note(self, *, message: str) -> None:
            _say(console, "note", "yellow", message)

    def _line(text: str) -> None:
        if not quiet:
            console.print(text, soft_wrap=True, markup=False)

    return Progress()
