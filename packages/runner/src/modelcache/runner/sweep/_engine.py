"""The local engine: a sweep plan's segments on a pool of long-lived worker processes.

Theory of operation
-------------------
The pool's workers (``forkserver`` where there is one, else ``spawn``: a fresh interpreter,
never a fork of this one's threads) start once per sweep and import the passes' packages
once (:func:`~._worker.start_worker`). The scheduler submits a segment as soon as the
segments in its ``after`` are done, so no worker waits on another's lease; segments with
nothing to do (only skips and cached evaluation results) are not submitted. Nothing but
plans and records crosses the pool's pipes: models travel through the cache (the local tier
every worker shares, the cloud if used).

A segment that the cache let down (``replanned``) or that failed is not waited for by its
dependants: they are not submitted. A variant whose segments all finished, or were left,
gets its own run (:func:`~._worker.run_variant`), ``modelcache run``'s executor: after
segments that went through, it finds everything cached and only delivers its final model
and reads its results; after one that was let down, it does the rest itself, under single
flight. A variant whose segment failed with an error is failed with that error, not run
again. Each key is therefore run at most once, unless the cache lets a segment down.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from typing import Any

from attrs import Factory, define

from modelcache.planner import Evaluate, Segment, Skip, SweepPlan

from ._planning import PreparedSweep, plan_sweep
from ._worker import (
    SegmentOutcome,
    SegmentStatus,
    VariantOutcome,
    quiet_state,
    run_segment,
    run_variant,
    start_worker,
)

__all__ = ["SweepReporter", "SweepRun", "default_jobs", "run_sweep"]


def default_jobs() -> int:
    """Workers by default: two, or one on a one-core machine."""
    return max(1, min(2, os.cpu_count() or 1))


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


def run_sweep(
    prepared: PreparedSweep, *, jobs: int | None = None, reporter: SweepReporter | None = None
) -> SweepRun:
    """Plan the sweep and carry it out on ``jobs`` worker processes of this machine.

    :return: every segment's and variant's outcome; each variant's model is in its
        output_dir by then, unless its outcome says why not.
    :raises StoreUnavailable: the cloud did not answer the snapshot and ``--require-cloud``.
    """
    reporter = reporter or SweepReporter()
    started = time.perf_counter()
    plan, policy, note = plan_sweep(prepared)
    run = SweepRun(plan=plan)
    if note is not None:
        run.notes.append(note)
        reporter.note(message=note)
    reporter.planned(plan=plan)
    # Warm workers import the passes' packages; a sweep with nothing to run or measure
    # only delivers, and need not wait for torch.
    warm = plan.totals.runs > 0 or plan.totals.evaluations > 0
    with _pool(prepared, jobs or default_jobs(), warm=warm) as pool:
        _Scheduler(pool, run, reporter, uploads=policy.uploads).go()
    order = {path.name: i for i, path in enumerate(plan.workflows)}
    run.segments.sort(key=lambda outcome: outcome.segment)
    run.variants.sort(key=lambda outcome: order[outcome.name])
    for outcome in run.segments:
        run.notes.extend(n for n in outcome.notes if n not in run.notes)
    run.wall_seconds = time.perf_counter() - started
    return run


def _pool(prepared: PreparedSweep, jobs: int, *, warm: bool) -> ProcessPoolExecutor:
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("forkserver" if "forkserver" in methods else "spawn")
    configs = {name: p.config for name, p in prepared.prepared}
    packages = sorted(
        {name for _, p in prepared.prepared for i in p.passes.values()
         for name in i.implementation.packages()}
    ) if warm else []  # fmt: skip
    return ProcessPoolExecutor(
        max_workers=jobs,
        mp_context=context,
        initializer=start_worker,
        initargs=(configs, prepared.options, packages, quiet_state()),
    )


class _Scheduler:
    """Submits segments when their ``after`` are done, and variants when their segments
    are over; collects every outcome into the :class:`SweepRun`."""

    def __init__(
        self, pool: ProcessPoolExecutor, run: SweepRun, reporter: SweepReporter, *, uploads: bool
    ) -> None:
        self.pool, self.run, self.reporter, self.uploads = pool, run, reporter, uploads
        plan = run.plan
        self.waiting = [segment for segment in plan.segments if _busy(segment)]
        #: Segments over, by id: how each ended (those with nothing to do are over from the
        #: start).
        self.over: dict[int, SegmentOutcome | None] = {
            s.id: None for s in plan.segments if not _busy(s)
        }
        self.undelivered = list(plan.workflows)
        self.running: dict[Future[Any], Callable[[Any], None]] = {}

    def go(self) -> None:
        try:
            self._submit()
            while self.running:
                finished, _ = wait(self.running, return_when=FIRST_COMPLETED)
                for future in finished:
                    self.running.pop(future)(future.result())
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
            self.running[future] = self._segment_over
        for path in list(self.undelivered):
            if all(i in self.over for i in path.segments):
                self.undelivered.remove(path)
                self._deliver(path.name, [self.over[i] for i in path.segments])

    def _segment_over(self, outcome: SegmentOutcome) -> None:
        self.over[outcome.segment] = outcome
        self.run.segments.append(outcome)
        self.reporter.segment_finished(outcome=outcome)

    def _deliver(self, name: str, outcomes: Iterable[SegmentOutcome | None]) -> None:
        failed = next((o for o in outcomes if o is not None and o.status == "failed"), None)
        if failed is not None:
            error = f"segment {failed.segment} failed: {failed.error}"
            self._variant_over(VariantOutcome(name=name, report=None, error=error,
                                              fault=failed.fault))  # fmt: skip
            return
        self.running[self.pool.submit(run_variant, name)] = self._variant_over

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


def _left(segment: Segment, cause: SegmentOutcome) -> SegmentOutcome:
    """The outcome of a segment not submitted because the one making its input did not."""
    status: SegmentStatus = "failed" if cause.status == "failed" else "replanned"
    why = f"not run: segment {cause.segment} {cause.status}"
    return SegmentOutcome(segment=segment.id, status=status, records=(), notes=(), seconds=0.0,
                          error=f"{why}: {cause.error}" if status == "failed" else why,
                          fault=cause.fault)  # fmt: skip
