"""What a worker of a sweep does (a process of the local engine, an actor of Ray's): a
segment's steps, and a variant's run.

Theory of operation
-------------------
A worker lives for the whole sweep: :func:`start_worker` (the pool's initializer, or a Ray
actor's constructor; :class:`WorkerSetup` holds its arguments) receives every variant's
config once and imports the passes' packages (torch, onnx...) once, so that
no segment pays for them. A variant is prepared, as ``modelcache run`` prepares it (stores
wrapped for signing and trust), the first time a segment of it comes to the worker.

:func:`run_segment` carries out a segment's steps in order with the executor's own step
handlers (``workflow._steps.do``), each step with the :class:`Execution` of the variant it
is taken from (its passes' names, its evaluator), all of them sharing one scratch folder and
one record. Models travel through the cache: a segment reads its first input from the local
tier, where the segment before it published it, and publishes what it makes there (and, with
uploads on, in the cloud). Uploads are sent in line, before the next step: a child segment
waits for its parent's uploads anyway. Single flight stays on: a run step claims its output,
so another sweep or a colleague computing it is waited for, not duplicated.

On a cluster of several machines (the Ray engine) a segment's input may have been made on
another machine, into that machine's local tier: it comes through the cloud, where its
segment uploaded it, fetched as a download step of this segment (:func:`_input_steps`).

When the cache lets a segment down (a :class:`Replan`: the cloud lost, an entry damaged,
another runner published an output first), the segment stops there and says so; the
engine leaves what depends on it to the variants' own runs (:func:`run_variant`), which are
``modelcache run``'s executor, re-planning and all. Every variant ends with that run: with
its segments done it finds everything cached, delivers the final model to its output_dir and
reads its evaluation results.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import time
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, Literal

from attrs import frozen

from modelcache.planner import Download, Plan, Run, Segment, SweepStep, Upload
from modelcache.store import Claim, EntryNotFound, StoreError

from ..config import WorkflowConfig
from ..errors import RunnerError
from ..reporting import Reporter, RunReport, StepRecord, step_kind
from ..trust import with_trust
from ..workflow import Prepared, RunOptions, execute, prepare

# The executor's step machinery, shared rather than copied: the re-planning loop is private
# to the workflow package, the handlers it calls are what a segment needs.
from ..workflow._scratch import scratch_folder
from ..workflow._single_flight import release
from ..workflow._state import Execution, Replan
from ..workflow._steps import do
from ._resources import DEFAULT_RESOURCES, Resources

__all__ = ["SegmentOutcome", "SegmentStatus", "SweepRecord", "VariantOutcome", "WorkerSetup",
           "run_segment", "run_variant", "quiet_state", "start_worker"]  # fmt: skip

#: How a segment ended: ``done``; ``replanned`` when the cache let it down and the rest is
#: left to the variants' runs; ``failed`` when a step raised an error.
SegmentStatus = Literal["done", "replanned", "failed"]


@frozen(kw_only=True)
class SweepRecord:
    """One executed step of a segment, and the variant it was taken from."""

    segment: int
    workflow: str
    record: StepRecord


@frozen(kw_only=True)
class SegmentOutcome:
    """What a segment did: its steps' records, its notes, how it ended and why."""

    segment: int
    status: SegmentStatus
    records: tuple[SweepRecord, ...]
    notes: tuple[str, ...]
    seconds: float
    error: str = ""
    #: Who can fix the error (``user``, ``environment``), as :mod:`..errors` says.
    fault: str = ""


@frozen(kw_only=True)
class VariantOutcome:
    """A variant's own run: its report (``None`` if it failed), or the error that ended it."""

    name: str
    report: RunReport | None
    error: str = ""
    fault: str = ""


# A worker's state, set once by its initializer: the pool's processes run one sweep.
_configs: dict[str, WorkflowConfig] = {}
_options = RunOptions()
_trusted: dict[str, tuple[Prepared, str | None]] = {}


def quiet_state() -> tuple[list[Any], dict[str, int]]:
    """The parent's warning filters and log levels, for its workers to take on: a worker
    is a fresh interpreter, and must be no chattier than the command that started it."""
    names = ["", *logging.root.manager.loggerDict]
    levels = {name: logging.getLogger(name).level for name in names}
    return list(warnings.filters), {name: level for name, level in levels.items() if level}


def start_worker(
    configs: Mapping[str, WorkflowConfig],
    options: RunOptions,
    packages: Iterable[str],
    quiet: tuple[list[Any], dict[str, int]] = ([], {}),
) -> None:
    """The pool's initializer: keep the variants' configs, take on the parent's warning
    filters and log levels (:func:`quiet_state`), import the passes' packages."""
    global _options
    filters, levels = quiet
    for action, message, category, module, line in reversed(filters):
        # A filter's texts are compiled patterns, or None, or (made by -W) plain strings.
        text, where = (getattr(v, "pattern", v) or "" for v in (message, module))
        with contextlib.suppress(Exception):  # a filter it cannot take is not worth dying
            warnings.filterwarnings(action, text, category, where, line)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    _configs.clear()
    _configs.update(configs)
    _trusted.clear()
    _options = options
    for name in packages:
        # One that does not import is the pass's to report, where it belongs.
        with contextlib.suppress(Exception):
            importlib.import_module(name.replace("-", "_"))


@frozen(kw_only=True)
class WorkerSetup:
    """What every worker of a sweep starts with, sent to it once: :func:`start_worker`'s
    arguments (configs and options only: a worker prepares each variant itself)."""

    configs: tuple[tuple[str, WorkflowConfig], ...]
    options: RunOptions
    #: The passes' packages to import up front; none when the sweep runs and measures nothing.
    packages: tuple[str, ...] = ()
    #: The parent's warning filters and log levels (:func:`quiet_state`).
    filters: tuple[Any, ...] = ()
    levels: tuple[tuple[str, int], ...] = ()

    def start(self) -> None:
        """Set this process up as a worker: :func:`start_worker`."""
        quiet = (list(self.filters), dict(self.levels))
        start_worker(dict(self.configs), self.options, self.packages, quiet)


def _prepared(name: str, report: RunReport) -> Prepared:
    """The variant ``name`` prepared as ``run`` prepares it, its stores wrapped for signing
    and trust (once per worker); the trust note, if any, added to ``report``."""
    if name not in _trusted:
        _trusted[name] = with_trust(prepare(_configs[name], _options))
    prepared, note = _trusted[name]
    if note is not None and note not in report.notes:
        report.notes.append(note)
    return prepared


def run_segment(segment: Segment, *, uploads: bool) -> SegmentOutcome:
    """Carry out ``segment``'s steps; never raises for what a user or the machine caused.

    :param uploads: whether the sweep's plan uploads (the cloud still answered when it was
        made, and uploads are on).
    """
    started = time.perf_counter()
    report = RunReport()
    owners: list[str] = []
    try:
        names = dict.fromkeys(item.workflow for item in segment.steps)
        prepared = {name: _prepared(name, report) for name in names}
        root = next(iter(prepared.values())).local.root
        root.mkdir(parents=True, exist_ok=True)
        with scratch_folder(root) as work:
            runs = _executions(segment, prepared, report, work, uploads=uploads)
            _carry_out([*_input_steps(segment, runs), *segment.steps], runs, owners)
    except Replan as replan:
        return _outcome(segment, report, owners, started, status="replanned", error=replan.reason)
    except (RunnerError, StoreError, OSError) as error:
        fault = getattr(error, "fault", "environment")
        return _outcome(segment, report, owners, started, status="failed", error=str(error),
                        fault=fault)  # fmt: skip
    return _outcome(segment, report, owners, started, status="done")


def _executions(
    segment: Segment,
    prepared: Mapping[str, Prepared],
    report: RunReport,
    work: Path,
    *,
    uploads: bool,
) -> dict[str, Execution]:
    """An :class:`Execution` per variant the segment's steps come from, all sharing the
    segment's plan, scratch folder, record, materialized outputs and claims."""
    plan = Plan(keys=segment.keys, steps=[item.step for item in segment.steps])
    materialized: dict[str, Path] = {}
    claims: dict[str, Claim] = {}
    dropped: set[str] = set()
    return {
        name: Execution(
            prepared=ready,
            plan=plan,
            work=work,
            report=report,
            reporter=Reporter(),
            uploads_allowed=uploads and ready.policy.uploads,
            materialized=materialized,
            claims=claims,
            dropped=dropped,
        )
        for name, ready in prepared.items()
    }


def _input_steps(segment: Segment, runs: Mapping[str, Execution]) -> list[SweepStep]:
    """A download of the segment's first input, when this machine's local tier lacks it and
    there is a cloud: the segment before it ran on another machine, and uploaded it."""
    first = segment.steps[0]
    step, run = first.step, runs[first.workflow]
    prepared = run.prepared
    if not isinstance(step, Run) or step.input_key is None or prepared.cloud is None:
        return []
    try:
        prepared.local.read_manifest(step.input_key)
        return []
    except EntryNotFound:
        pass  # a damaged entry is the run step's to find, and report
    made_by = dict(zip(prepared.keys, prepared.chain.passes, strict=True))[step.input_key]
    reason = "made on another machine; not in this one's local cache"
    download = Download(pass_name=made_by.name, key=step.input_key, reason=reason, size=None)
    return [SweepStep(workflow=first.workflow, step=download)]


def _carry_out(
    steps: Iterable[SweepStep], runs: Mapping[str, Execution], owners: list[str]
) -> None:
    """Each step by its variant's execution; every claim released however it ends.
    ``owners`` gets each recorded step's variant, in order."""
    first = next(iter(runs.values()))
    try:
        for item in steps:
            owners.append(item.workflow)
            _step(runs[item.workflow], item)
    finally:
        for key in list(first.claims):
            release(first, key)


def _step(run: Execution, item: SweepStep) -> None:
    """Carry out one step and record it (a failed one too, then raise).

    :raises Replan: the step let the plan down.
    """
    step = item.step
    started = time.perf_counter()
    run.reporter.step_started(kind=step_kind(step), pass_name=step.pass_name, total_bytes=None)
    try:
        moved, outcome, detail = do(run, step)
    except Replan as replan:
        run.record(step, time.perf_counter() - started, 0, replan.outcome, replan.reason)
        raise
    run.record(step, time.perf_counter() - started, moved, outcome, detail)
    if isinstance(step, Upload):
        release(run, step.key)  # in the cloud now: other runners waiting for it go on


def _outcome(
    segment: Segment,
    report: RunReport,
    owners: list[str],
    started: float,
    *,
    status: SegmentStatus,
    error: str = "",
    fault: str = "",
) -> SegmentOutcome:
    records = tuple(
        SweepRecord(segment=segment.id, workflow=owner, record=record)
        for owner, record in zip(owners, report.steps, strict=False)
    )
    return SegmentOutcome(segment=segment.id, status=status, records=records,
                          notes=tuple(report.notes), seconds=time.perf_counter() - started,
                          error=error, fault=fault)  # fmt: skip


def run_variant(name: str, shape: Resources = DEFAULT_RESOURCES) -> VariantOutcome:
    """The variant's own run, as ``modelcache run`` would: what its segments left undone is
    done now (re-planning as the executor does), its final model delivered, its evaluation
    results read. Never raises for what a user or the machine caused. ``shape`` is what
    the task asked of its worker (:meth:`PassResources.of_call` reads it); the run ignores
    it."""
    try:
        # execute() wraps the stores for signing and trust itself.
        report = execute(prepare(_configs[name], _options))
    except (RunnerError, StoreError, OSError) as error:
        fault = getattr(error, "fault", "environment")
        return VariantOutcome(name=name, report=None, error=str(error), fault=fault)
    return VariantOutcome(name=name, report=report)
