"""``modelcache sweep``: many workflows over one cache, planned as one graph and run on a
pool of workers (processes of this machine, or Ray actors: ``--engine``); the variants'
table with the Pareto front marked, ``--report``, and ``--plot``: the front as an SVG image.

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

    from ..sweep import Engine, PreparedSweep, SweepReporter, SweepResults

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
        "--plot",
        type=Path,
        metavar="FILE.svg",
        help="draw the variants and their Pareto front here, as an SVG image",
    )
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


def _prepare(args: argparse.Namespace, sweep_path: Path, *, plan: bool) -> PreparedSweep:
    """The sweep prepared, its notes said; for a ``plan``, each variant stopped at what this
    machine misses, with a note for each pass whose key is unknown."""
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
    prepared = prepare_sweep(sweep, options, known=plan)
    for note in prepared.unknown_notes():
        _say(err, "note", "yellow", note)
    return prepared


def plan_command(args: argparse.Namespace) -> int:
    """``modelcache plan SWEEP``: the sweep's plan on stdout (``args.config``, the sweep
    file; ``args.format``, ``text`` or ``json``); moves nothing."""
    if args.format not in SWEEP_PLAN_FORMATS:
        from ..errors import UserError

        raise UserError(
            f"a sweep's plan is drawn as {' or '.join(SWEEP_PLAN_FORMATS)}, not {args.format}"
        )
    _show_plan(_prepare(args, args.config, plan=True), args.format)
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
    stderr, the table of variants on stdout, the report to ``--report``, the plot of the
    front to ``--plot`` (with ``--plan``, which measures nothing, left out with a note).

    :return: 0 when every variant was delivered; else the exit status of the worst failure
        (2 when every failure is the user's to fix, 1 otherwise), each said on stderr; 2 too
        when ``--plot`` finds nothing to plot although variants were delivered.
    """
    from ..sweep import report_document, results_of, results_table, run_sweep
    from .exit import EXIT_STATUS
    from .run import _check_report, _write_report  # run's own checks, not copies of them

    engine = _engine(args.engine, args.address, plan=args.plan)
    if args.report is not None and not args.plan:
        _check_report(args.report)
    if args.plot is not None:
        if args.plan:
            _say(_stderr(), "note", "yellow", "--plot is left out: --plan measures nothing")
        else:
            _check_plot(args.plot)
    prepared = _prepare(args, args.sweep, plan=args.plan)
    if engine is None:
        _show_plan(prepared, args.format)
        return 0
    reporter = _progress(_stderr(), quiet=args.quiet)
    run = run_sweep(prepared, jobs=args.jobs, reporter=reporter, engine=engine)
    finals = {name: p.chain.passes[-1].name for name, p in prepared.prepared if p.chain.passes}
    results = results_of(run, finals)
    if args.report is not None:
        _write_report(args.report, report_document(run, results))
    unplotted = None if args.plot is None else _write_plot(args.plot, results, args.sweep)
    if not args.quiet:
        sys.stdout.write(results_table(results))
    failed = [outcome for outcome in run.variants if outcome.report is None]
    err = _stderr()
    for outcome in failed:
        _say(err, "error", "bold red", f"variant {outcome.name}: {outcome.error}")
    statuses = [EXIT_STATUS["user" if o.fault == "user" else "environment"] for o in failed]
    if unplotted is not None:
        # No variant was delivered: their errors above say why, and the plot's absence is
        # only their consequence. Else the variants measured nothing to plot: the user's to fix.
        if not any(row.ok for row in results.rows):
            _say(err, "note", "yellow", f"--plot {args.plot} is not written: {unplotted}")
        else:
            _say(err, "error", "bold red", f"--plot {args.plot}: {unplotted}")
            statuses.append(EXIT_STATUS["user"])
    return max(statuses, default=0)


def _check_plot(path: Path) -> None:
    """Refuse a ``--plot`` path before any work: not an ``.svg`` file, or one that could not
    be written (``run``'s check of ``--report``).

    :raises UserError: what is wrong with ``path``, and what to do.
    """
    from ..errors import UserError
    from .run import _check_report

    if path.suffix.lower() != ".svg":
        raise UserError(f"--plot {path}: the plot is an SVG image; name a file ending in .svg")
    _check_report(path, "--plot")


def _write_plot(path: Path, results: SweepResults, sweep: Path) -> str | None:
    """The plot of ``results`` in ``path``, whole or not at all (an earlier plot there is
    replaced); or why there is nothing to plot, and no file."""
    from modelcache.store import create_file

    from ..sweep import NothingToPlot, plot_front

    try:
        svg = plot_front(results, title=f"modelcache sweep {sweep.name}")
    except NothingToPlot as nothing:
        return str(nothing)
    create_file(path, [svg.encode("utf-8")], replace=True)
    return None


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
    from ..sweep._render import counted

    class Progress(SweepReporter):
        def planned(self, *, plan: SweepPlan) -> None:
            busy = sum(not segment.idle for segment in plan.segments)
            passes = counted(plan.totals.runs, "pass", "passes")
            _line(f"sweep: {counted(len(plan.workflows), 'variant')}, "
                  f"{counted(busy, 'segment')} to run, {passes} to run")  # fmt: skip

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
