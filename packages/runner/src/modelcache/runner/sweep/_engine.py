"""The engines: a sweep plan's segments, in dependency order, on a pool of long-lived workers.

Theory of operation
-------------------
An engine (:class:`Engine`) starts the workers and hands back a :class:`WorkerPool`: the
local engine (:class:`LocalEngine`) a process pool of this machine, the Ray engine
(``modelcache.ray``) actors on a Ray cluster. Either way each worker starts once per sweep
and imports the passes' packages once (:class:`~._worker.WorkerSetup`); the scheduler
(:class:`_Scheduler`) is the same for both. It submits a segment as soon as the segments in
its ``after`` are done, so no worker waits on another's lease; segments with nothing to do
(only skips and cached evaluation results) are not submitted. Nothing but plans and records
crosses to the workers: models travel through the cache (the local tier every worker of a
machine shares, the cloud if used).

The local engine's workers are fresh interpreters (``forkserver`` where there is one, else
``spawn``: never a fork of this one's threads). It places nothing: the passes' resources
(:mod:`._resources`) are only compared with the machine, and a note says which ask for more.

A segment that the cache let down (``replanned``) or that failed is not waited for by its
dependants: they are not submitted. A variant whose segments all finished, or were left,
gets its own run (:func:`~._worker.run_variant`), ``modelcache run``'s executor: after
segments that went through, it finds everything cached and only delivers its final model
and reads its results; after one that was let down, it does the rest itself, under single
flight. A variant whose segment failed with an error is failed with that error, not run
again. Each key is therefore run at most once, unless the cache lets a segment down.

A task whose worker died (:class:`WorkerLost`: killed, out of memory, its machine lost),
after whatever retries the engine makes, fails as a step would: its segment or variant,
with that error. An engine may run a task twice (Ray retries a task whose actor died, even
after it did its work): publishing is create-only, so the second run finds the first's
outputs published and says the cache let it down, or finds nothing left to do.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from functools import partial
from typing import Any, ClassVar, ParamSpec, Protocol, TypeVar

from attrs import Factory, define, frozen

from modelcache.planner import Evaluate, Segment, Skip, SweepPlan
from modelcache.store import Fault

from ..errors import RunnerError
from ._planning import PreparedSweep, plan_sweep
from ._resources import DEFAULT_RESOURCES, PassResources, Resources, machine
from ._worker import (
    SegmentOutcome,
    SegmentStatus,
    VariantOutcome,
    WorkerSetup,
    quiet_state,
    run_segment,
    run_variant,
)

__all__ = ["Engine", "LocalEngine", "ProcessPool", "SweepReporter", "SweepRun", "WorkerLost",
           "WorkerPool", "Workers", "default_jobs", "run_sweep"]  # fmt: skip

_P = ParamSpec("_P")
_T = TypeVar("_T")


def default_jobs() -> int:
    """Workers by default: two, or one on a one-core machine."""
    return max(1, min(2, os.cpu_count() or 1))


class WorkerPool(Protocol):
    """Where the scheduler's tasks run: ``concurrent.futures.ProcessPoolExecutor`` is one.

    The scheduler submits module-level functions of :mod:`._worker` (``run_segment(segment,
    uploads=...)``, ``run_variant(name)``) whose arguments and results are small values
    (plans, records): they must pickle. A pool may queue tasks, and run them in any order;
    what it must not do is run one on a worker that is busy while another that could take it
    is idle.
    """

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        """Run ``fn(*args, **kwargs)`` on a worker; the future of its result. Anything ``fn``
        raised (a bug: the worker's functions return what a user or the machine caused) is
        the future's exception; so is :class:`WorkerLost`, when a worker died under the
        task after the pool's retries (:class:`ProcessPool`'s, the Ray engine's)."""
        ...

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Stop the workers: first, with ``wait``, let the tasks running end; with
        ``cancel_futures``, the tasks not started are cancelled, not run."""
        ...


@frozen(kw_only=True)
class Workers:
    """What a sweep asks of an engine: at most ``jobs`` tasks at once, each worker set up with
    ``setup``, and each task on a worker holding what it asks for (``resources.of_call``)."""

    jobs: int
    setup: WorkerSetup
    resources: PassResources = Factory(PassResources)
    #: What the plan's tasks ask for, one shape each: the default, and each submitted
    #: segment's.
    shapes: frozenset[Resources] = frozenset({DEFAULT_RESOURCES})


class Engine(Protocol):
    """Starts a sweep's workers: :class:`LocalEngine`, or ``modelcache.ray.RayEngine``."""

    def start(self, workers: Workers, *, note: Callable[[str], None]) -> WorkerPool:
        """The pool the sweep's tasks run on; :meth:`WorkerPool.shutdown` ends it, and
        whatever the engine started for it.

        :param note: called with each thing the user should know (resources ignored...).
        :raises RunnerError: the workers cannot be had (an engine not installed, a cluster
            that does not answer), saying what to do.
        """
        ...


class WorkerLost(RunnerError):
    """A worker died under a task (killed, out of memory, its machine lost), after the
    engine's retries; the task's segment or variant fails with it."""

    fault: ClassVar[Fault] = "environment"


@frozen
class LocalEngine:
    """Worker processes of this machine (``--engine local``, the default)."""

    def start(self, workers: Workers, *, note: Callable[[str], None]) -> WorkerPool:
        for sentence in workers.resources.beyond(machine()):
            note(f"{sentence}: the local engine runs every pass in its own processes all "
                 "the same (--engine ray places passes by their resources)")  # fmt: skip
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
        return ProcessPool(
            partial(ProcessPoolExecutor, max_workers=workers.jobs, mp_context=context,
                    initializer=workers.setup.start)
        )  # fmt: skip


class ProcessPool:
    """A :class:`WorkerPool` of processes that survives a worker's death.

    When a worker process dies (killed, out of memory), ``ProcessPoolExecutor`` breaks: every
    task it holds fails, and it takes no more. This pool then starts a new executor and sends
    each of those tasks again, once, as Ray does when an actor dies: running a task twice is
    safe, publishing being create-only. A task whose worker dies on its second try fails with
    :class:`WorkerLost`. Nothing is restarted once :meth:`shutdown` is called, nor in the
    :attr:`GRACE` after a break in which it may be: Ctrl-C reaches the workers too (so that
    they stop and clean up), and the sweep's shutdown must not start new ones. What was
    running then fails with :class:`WorkerLost`.

    :param start: makes an executor: called at once, and after each break.
    """

    #: How many times a task is sent before its worker's death is its failure.
    TRIES: ClassVar[int] = 2
    #: Seconds between a break and the new executor's start, for a shutdown to come first.
    GRACE: ClassVar[float] = 0.25

    def __init__(self, start: Callable[[], ProcessPoolExecutor]) -> None:
        self._start = start
        self._lock = threading.Lock()
        self._executor = start()
        self._closed = threading.Event()

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        result: Future[_T] = Future()
        self._send(result, partial(fn, *args, **kwargs), 1)
        return result

    def _send(self, result: Future[_T], call: Callable[[], _T], tries: int) -> None:
        with self._lock:
            if self._closed.is_set():
                result.set_exception(WorkerLost("its worker process died as the sweep stopped"))
                return
            executor = self._executor
            try:
                inner = executor.submit(call)
            except BrokenProcessPool as error:
                inner = Future()
                inner.set_exception(error)
        inner.add_done_callback(partial(self._ended, result, call, tries, executor))

    def _ended(
        self,
        result: Future[_T],
        call: Callable[[], _T],
        tries: int,
        executor: ProcessPoolExecutor,
        inner: Future[_T],
    ) -> None:
        if inner.cancelled():
            result.cancel()
            result.set_running_or_notify_cancel()  # wakes whoever waits for it
            return
        error = inner.exception()
        if not isinstance(error, BrokenProcessPool):
            if error is None:
                result.set_result(inner.result())
            else:
                result.set_exception(error)
            return
        if tries >= self.TRIES:
            result.set_exception(
                WorkerLost(f"its worker process died, tried {tries} times: {error}")
            )
            return
        self._closed.wait(self.GRACE)
        with self._lock:
            if self._executor is executor and not self._closed.is_set():
                # Called from the broken executor's own thread: it cannot be waited for here.
                executor.shutdown(wait=False, cancel_futures=True)
                self._executor = self._start()
        self._send(result, call, tries + 1)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed.set()
            executor = self._executor
        executor.shutdown(wait=wait, cancel_futures=cancel_futures)


class SweepReporter:
    """Hooks the engine calls as it goes, with keyword arguments; all do nothing."""

    def planned(self, *, plan: SweepPlan) -> None:
        """The sweep was planned."""

    def segment_started(self, *, segment: Segment) -> None:
        """A segment was handed to a worker."""

    def segment_finished(self, *, outcome: SegmentOutcome) -> None:
        """A segment ended, or was left (``outcome.status``)."""

    def variant_finished(self, *, outcome: VariantOutcome) -> None:
        """A variant's own run ended (delivered, or failed)."""

    def note(self, *, message: str) -> None:
        """Something the user should know."""


@define(kw_only=True)
class SweepRun:
    """What a sweep did: its plan, each segment's outcome and each variant's, in the plan's
    order, the notes, and its wall time."""

    plan: SweepPlan
    segments: list[SegmentOutcome] = Factory(list)
    variants: list[VariantOutcome] = Factory(list)
    notes: list[str] = Factory(list)
    wall_seconds: float = 0.0

    def note(self, message: str, reporter: SweepReporter) -> None:
        if message not in self.notes:
            self.notes.append(message)
            reporter.note(message=message)


def run_sweep(
    prepared: PreparedSweep,
    *,
    jobs: int | None = None,
    reporter: SweepReporter | None = None,
    engine: Engine | None = None,
) -> SweepRun:
    """Plan the sweep and carry it out on ``jobs`` workers of ``engine`` (default: the
    :class:`LocalEngine`, worker processes of this machine).

    :return: every segment's and variant's outcome; each variant's model is in its
        output_dir by then, unless its outcome says why not.
    :raises StoreUnavailable: the cloud did not answer the snapshot and ``--require-cloud``.
    :raises RunnerError: the engine could not start its workers.
    """
    reporter = reporter or SweepReporter()
    started = time.perf_counter()
    plan, policy, notes = plan_sweep(prepared)
    run = SweepRun(plan=plan)
    for note in notes:
        run.note(note, reporter)
    reporter.planned(plan=plan)
    workers = _workers(prepared, plan, jobs or default_jobs())
    pool = (engine or LocalEngine()).start(workers, note=lambda text: run.note(text, reporter))
    try:
        _Scheduler(pool, run, reporter, uploads=policy.uploads,
                   resources=workers.resources).go()  # fmt: skip
    finally:
        pool.shutdown(wait=True)
    order = {path.name: i for i, path in enumerate(plan.workflows)}
    run.segments.sort(key=lambda outcome: outcome.segment)
    run.variants.sort(key=lambda outcome: order[outcome.name])
    for outcome in run.segments:
        run.notes.extend(n for n in outcome.notes if n not in run.notes)
    run.wall_seconds = time.perf_counter() - started
    return run


def _workers(prepared: PreparedSweep, plan: SweepPlan, jobs: int) -> Workers:
    # Warm workers import the passes' packages; a sweep with nothing to run or measure
    # only delivers, and need not wait for torch.
    warm = plan.totals.runs > 0 or plan.totals.evaluations > 0
    packages = sorted(
        {name for _, p in prepared.prepared for i in p.passes.values()
         for name in i.implementation.packages()}
    ) if warm else []  # fmt: skip
    filters, levels = quiet_state()
    setup = WorkerSetup(
        configs=tuple((name, p.config) for name, p in prepared.prepared),
        options=prepared.options,
        packages=tuple(packages),
        filters=tuple(filters),
        levels=tuple(levels.items()),
    )
    resources = prepared.sweep.resources
    shapes = {DEFAULT_RESOURCES} | {resources.of_segment(s) for s in plan.segments if _busy(s)}
    shapes |= {resources.of_variant(plan, path.name) for path in plan.workflows}
    return Workers(jobs=jobs, setup=setup, resources=resources, shapes=frozenset(shapes))


#: What the scheduler does with a task's result, and with its worker's loss.
_Task = tuple[Callable[[Any], None], Callable[[WorkerLost], Any]]


class _Scheduler:
    """Submits segments when their ``after`` are done, and variants when their segments
    are over; collects every outcome into the :class:`SweepRun`."""

    def __init__(
        self,
        pool: WorkerPool,
        run: SweepRun,
        reporter: SweepReporter,
        *,
        uploads: bool,
        resources: PassResources | None = None,
    ) -> None:
        self.pool, self.run, self.reporter, self.uploads = pool, run, reporter, uploads
        self.resources = resources or PassResources()
        plan = run.plan
        self.waiting = [segment for segment in plan.segments if _busy(segment)]
        #: Segments over, by id: how each ended (those with nothing to do are over from the
        #: start).
        self.over: dict[int, SegmentOutcome | None] = {
            s.id: None for s in plan.segments if not _busy(s)
        }
        self.undelivered = list(plan.workflows)
        self.running: dict[Future[Any], _Task] = {}

    def go(self) -> None:
        try:
            self._submit()
            while self.running:
                finished, _ = wait(self.running, return_when=FIRST_COMPLETED)
                for future in finished:
                    over, lost = self.running.pop(future)
                    try:
                        outcome = future.result()
                    except WorkerLost as error:
                        outcome = lost(error)
                    over(outcome)
                self._submit()
        except BaseException:
            self.pool.shutdown(wait=True, cancel_futures=True)
            raise

    def _submit(self) -> None:
        for segment in list(self.waiting):
            blocked = [self.over[i] for i in segment.after if i in self.over]
            if len(blocked) < len(segment.after):
                continue  # an input is still being made
            self.waiting.remove(segment)
            left = next((o for o in blocked if o is not None and o.status != "done"), None)
            if left is not None:
                self._segment_over(_left(segment, left))
                continue
            self.reporter.segment_started(segment=segment)
            future = self.pool.submit(run_segment, segment, uploads=self.uploads)
            self.running[future] = (self._segment_over, partial(_lost, segment))
        for path in list(self.undelivered):
            if all(i in self.over for i in path.segments):
                self.undelivered.remove(path)
                self._deliver(path.name, [self.over[i] for i in path.segments])

    def _segment_over(self, outcome: SegmentOutcome) -> None:
        self.over[outcome.segment] = outcome
        self.run.segments.append(outcome)
        self.reporter.segment_finished(outcome=outcome)

    def _deliver(self, name: str, outcomes: Iterable[SegmentOutcome | None]) -> None:
        outcomes = list(outcomes)
        failed = next((o for o in outcomes if o is not None and o.status == "failed"), None)
        if failed is not None:
            error = f"segment {failed.segment} failed: {failed.error}"
            self._variant_over(VariantOutcome(name=name, report=None, error=error,
                                              fault=failed.fault))  # fmt: skip
            return
        if any(o is not None and o.status != "done" for o in outcomes):
            # Let down: its own run may run any of its passes, and asks for what they do.
            shape = self.resources.of_variant(self.run.plan, name)
            future = self.pool.submit(run_variant, name, shape)
        else:
            future = self.pool.submit(run_variant, name)
        self.running[future] = (self._variant_over, partial(_lost_variant, name))

    def _variant_over(self, outcome: VariantOutcome) -> None:
        self.run.variants.append(outcome)
        self.reporter.variant_finished(outcome=outcome)


def _busy(segment: Segment) -> bool:
    """Whether a segment has work: more than skips and cached evaluation results, which
    the variants' own runs read anyway. One without makes nothing another waits for."""
    return not all(
        isinstance(item.step, Skip) or (isinstance(item.step, Evaluate) and item.step.cached)
        for item in segment.steps
    )


def _lost(segment: Segment, error: WorkerLost) -> SegmentOutcome:
    """The outcome of a segment whose worker died under it."""
    return SegmentOutcome(segment=segment.id, status="failed", records=(), notes=(), seconds=0.0,
                          error=str(error), fault=error.fault)  # fmt: skip


def _lost_variant(name: str, error: WorkerLost) -> VariantOutcome:
    """The outcome of a variant whose worker died under its run."""
    return VariantOutcome(name=name, report=None, error=str(error), fault=error.fault)


def _left(segment: Segment, cause: SegmentOutcome) -> SegmentOutcome:
    """The outcome of a segment not submitted because the one making its input did not."""
    status: SegmentStatus = "failed" if cause.status == "failed" else "replanned"
    why = f"not run: segment {cause.segment} {cause.status}"
    return SegmentOutcome(segment=segment.id, status=status, records=(), notes=(), seconds=0.0,
                          error=f"{why}: {cause.error}" if status == "failed" else why,
                          fault=cause.fault)  # fmt: skip
