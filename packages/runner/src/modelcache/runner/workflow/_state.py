"""A run in progress: the state every step handler shares, and the signal to re-plan.

The local tier is trusted no more than the cloud: an entry of it that cannot be read whole
is a miss. :meth:`Execution.materialize` turns it into a :class:`Replan` after removing it
(with whatever else of the chain's local entries is damaged), and a damaged entry in the
way of an output being published is removed first
(:meth:`Execution.clear_damaged_local`): the local tier never replaces an entry, so one left
there would hide the recomputed output and fail every later run.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from attrs import Factory, define

from modelcache.planner import Download, Plan, Step, Upload
from modelcache.store import Claim, CorruptEntry, EntryNotFound, StoreError

from ..maintenance import repair_entries
from ..reporting import Outcome, Reporter, RunReport, StepRecord, step_kind
from ..trust import trust_of
from ._prepare import Prepared

__all__ = ["PRODUCER", "Execution", "Replan", "Transfer"]

#: Who made an entry or an output, as its manifest and its output marker say.
PRODUCER = "modelcache-runner 0.1.0"


@define
class Replan(Exception):
    """Raised while carrying out a plan whose assumptions broke; the executor plans again."""

    reason: str
    #: A key whose cloud entry turned out unusable: the next plans count it as a miss.
    drop_key: str | None = None
    #: The cloud stopped answering: the next plans do without it.
    lose_cloud: bool = False
    #: The outcome recorded for the step that raised it: ``waited`` when another runner
    #: published the output a run step was about to compute (single flight).
    outcome: Outcome = "failed"


@define(kw_only=True)
class Execution:
    """One plan being carried out, and what the run has gathered so far."""

    prepared: Prepared
    plan: Plan
    #: The scratch folder models are materialized in, beside the local tier.
    work: Path
    report: RunReport
    reporter: Reporter
    #: Off for the rest of the run once the cloud refuses an upload.
    uploads_allowed: bool
    #: Outputs materialized in :attr:`work`, by key; shared by every plan of the run.
    materialized: dict[str, Path]
    #: Single-flight claims held, by key: each until its output is published where claimed.
    claims: dict[str, Claim] = Factory(dict)
    #: Keys whose cloud entry turned out unusable (damaged) in this run.
    dropped: set[str] = Factory(set)
    #: Outputs the ``worthwhile`` upload policy kept local, by key: the seconds recomputing
    #: each would take (its pass's run time, and its unshared inputs' before it).
    unshared: dict[str, float] = Factory(dict)
    #: The final output's key, once found already delivered in ``output_dir``.
    delivered: str | None = None

    def input_path(self, key: str | None) -> Path:
        """The model a step reads: the input model (``None``) or an output."""
        return self.prepared.model_path if key is None else self.materialize(key)

    def materialize(self, key: str) -> Path:
        """The output ``key``, fetched from the local tier the first time it is read.

        :raises Replan: the local entry is damaged or gone; what is damaged was removed.
        :raises CorruptEntry: it is damaged again, after this run removed it once.
        """
        path = self.materialized.get(key)
        if path is None:
            path = self.work / key
            try:
                self.prepared.local.fetch(key, path)
            except (CorruptEntry, EntryNotFound) as error:
                raise Replan(self._remove_damaged_local(key, error, "re-planning")) from error
            self.materialized[key] = path
        return path

    def clear_damaged_local(self, key: str) -> bool:
        """If the local tier's entry ``key`` is in the way but cannot be trusted (its
        manifest is unreadable, hostile or a link), remove it, with a note, so that this
        run's output can take its place. :return: whether it did."""
        try:
            self.prepared.local.read_manifest(key)
        except CorruptEntry as error:
            self._remove_damaged_local(key, error, "replacing it with this run's output")
            return True
        except EntryNotFound:
            pass
        return False

    def _remove_damaged_local(self, key: str, error: StoreError, then: str) -> str:
        """Remove what is damaged among the chain's local entries, and say so.

        :return: the note made, naming the entry and what is wrong with it.
        :raises CorruptEntry: this run removed the entry before, and it is damaged again:
            something outside keeps damaging it, and re-planning would not end.
        """
        said = f"local entry {key[:12]} unusable:"
        message = f"{said} {error}"
        if any(note.startswith(said) for note in self.report.notes):
            raise CorruptEntry(
                f"{message}, again after this run removed it; run `modelcache cache verify "
                f"--repair --cache-dir {self.prepared.local.root}` and look for what damages it"
            )
        local = self.prepared.local
        repaired = repair_entries(local, self.prepared.keys, now=time.time(), trust=trust_of(local))
        removed = [name[:12] for name in repaired.removed_entries] + repaired.removed_links
        if removed:
            message += f"; removed from the local cache: {', '.join(removed)}"
        message += f"; {then}"
        self.note(message)
        return message

    def note(self, message: str) -> None:
        """Tell the user, now and in the report."""
        self.report.notes.append(message)
        self.reporter.note(message=message)

    def record(
        self,
        step: Step,
        seconds: float,
        moved: int,
        outcome: Outcome,
        detail: str,
        *,
        at: int | None = None,
    ) -> None:
        """Add the step's record to the report (at position ``at``, or last), and tell the
        reporter it finished."""
        record = StepRecord(
            kind=step_kind(step),
            pass_name=step.pass_name,
            key=step.key,
            reason=step.reason,
            seconds=seconds,
            bytes=moved,
            outcome=outcome,
            detail=detail,
        )
        steps = self.report.steps
        steps.insert(len(steps) if at is None else at, record)
        self.reporter.step_finished(record=record)

    def progress(self, step: Download | Upload) -> Transfer:
        """A transfer's progress callback, which totals the bytes it moved."""
        return Transfer(reporter=self.reporter, pass_name=step.pass_name)


@define(kw_only=True)
class Transfer:
    """A :data:`~modelcache.store.Progress` callback: totals the bytes a store reports it
    moved (from its worker threads) and hands the running total to the reporter. The total
    is what crossed the wire: a store reports the bytes it sent or fetched, not the blobs it
    found present and only refreshed."""

    reporter: Reporter
    pass_name: str
    total: int = 0
    _lock: threading.Lock = Factory(threading.Lock)

    def __call__(self, count: int) -> None:
        with self._lock:
            self.total += count
            done = self.total
        self.reporter.transferred(pass_name=self.pass_name, bytes_done=done)
