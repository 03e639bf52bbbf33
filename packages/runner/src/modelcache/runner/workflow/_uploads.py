"""Uploads in the background: an output goes to the cloud while the next pass runs.

A cold run used to wait for each upload before starting the next pass, so its wall time was
the passes' time plus every upload's. Now :meth:`Uploads.submit` hands the upload to one
worker thread and the plan goes on; the run waits for the uploads only at the end of the
plan (:meth:`Uploads.finish`), so a cold run takes the passes' time plus the last upload's.

Bounded: one upload at a time, in plan order, each streaming the output's files from disk in
the store's chunks; an upload waiting its turn holds only a path. Nothing is copied for it:
the output is already materialized (in the scratch folder, which lives until the run ends).

Each upload's record goes where the step is in the plan, so a report reads as the plan does;
it is written, and the reporter told, when the main thread next looks (:meth:`Uploads.collect`,
before each step). An upload that raised :class:`~._state.Replan` (the cloud stopped
answering) is recorded and its re-plan raised from the main thread there, as if the step had
run in place. The upload releases its single-flight claim itself, as soon as the entry is
published, so other runners waiting for it go on while this run is still busy.

Interrupted (Ctrl-C, SIGTERM), the run does not wait: the worker is a daemon thread, and a
store publishes an entry's manifest last, create-only, after every blob it names, so an
upload cut short leaves blobs no manifest names and never a partial entry.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from concurrent.futures import Future
from pathlib import Path
from queue import SimpleQueue

from attrs import define

from modelcache.planner import Upload

from ._single_flight import release
from ._state import Execution, Replan
from ._steps import StepResult, publish

__all__ = ["Uploads"]


@define
class _Job:
    step: Upload
    path: Path
    #: Where the step's record goes in ``report.steps``, counting earlier uploads as there.
    position: int
    future: Future[tuple[StepResult, float]]


class Uploads:
    """The uploads of one plan, sent by one worker thread in the order submitted."""

    def __init__(self, run: Execution) -> None:
        self._run = run
        self._pending: deque[_Job] = deque()
        self._queue: SimpleQueue[_Job | None] = SimpleQueue()
        self._worker: threading.Thread | None = None

    def submit(self, step: Upload, path: Path) -> None:
        """Send the materialized output ``path`` to the cloud, in the background."""
        position = len(self._run.report.steps) + len(self._pending)
        job = _Job(step=step, path=path, position=position, future=Future())
        self._pending.append(job)
        if self._worker is None:
            self._worker = threading.Thread(
                target=self._send, name="modelcache-uploads", daemon=True
            )
            self._worker.start()
        self._queue.put(job)

    def collect(self, *, wait: bool = False) -> None:
        """Record the uploads that ended (all of them, waiting, with ``wait``), in order.

        :raises Replan: an upload's, once it is recorded; the uploads after it are left
            pending, for :meth:`finish`.
        """
        while self._pending and (wait or self._pending[0].future.done()):
            job = self._pending.popleft()
            try:
                (moved, outcome, detail), seconds = job.future.result()
            except _Failed as failed:
                replan = failed.replan
                self._run.record(job.step, failed.seconds, 0, replan.outcome, replan.reason,
                                 at=job.position)  # fmt: skip
                raise replan from None
            self._run.record(job.step, seconds, moved, outcome, detail, at=job.position)

    def finish(self, *, interrupted: bool) -> None:
        """Wait for every upload still pending and record it, unless ``interrupted`` (then
        leave them to die with the process). A re-plan raised now is dropped: the run is
        already on its way out, and the next plan or run sends the upload again."""
        if not interrupted:
            while self._pending:
                try:
                    self.collect(wait=True)
                except Replan:
                    continue
        self._queue.put(None)

    def _send(self) -> None:
        while (job := self._queue.get()) is not None:
            started = time.perf_counter()
            run, step = self._run, job.step
            run.reporter.step_started(kind="upload", pass_name=step.pass_name,
                                      total_bytes=step.size)  # fmt: skip
            try:
                result = publish(run, step, job.path)
            except Replan as replan:
                job.future.set_exception(_Failed(replan, time.perf_counter() - started))
            except BaseException as error:  # a bug, or the store's: the main thread raises it
                job.future.set_exception(error)
            else:
                job.future.set_result((result, time.perf_counter() - started))
            finally:
                # In the cloud now (or never will be): waiters go on.
                release(run, step.key)


class _Failed(Exception):
    """An upload's :class:`Replan`, and how long the upload took until then."""

    def __init__(self, replan: Replan, seconds: float) -> None:
        super().__init__(replan.reason)
        self.replan = replan
        self.seconds = seconds
