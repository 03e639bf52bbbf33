"""A run in progress: the state every step handler shares, and the signal to re-plan."""

from __future__ import annotations

import threading
from pathlib import Path

from attrs import Factory, define

from modelcache.planner import Download, Plan, Upload
from modelcache.store import Claim, Progress

from ..reporting import Outcome, Reporter, RunReport
from ._prepare import Prepared

__all__ = ["PRODUCER", "Execution", "Replan"]

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

    def input_path(self, key: str | None) -> Path:
        """The model a step reads: the input model (``None``) or an output."""
        return self.prepared.model_path if key is None else self.materialize(key)

    def materialize(self, key: str) -> Path:
        """The output ``key``, fetched from the local tier the first time it is read."""
        path = self.materialized.get(key)
        if path is None:
            path = self.work / key
            self.prepared.local.fetch(key, path)
            self.materialized[key] = path
        return path

    def note(self, message: str) -> None:
        """Tell the user, now and in the report."""
        self.report.notes.append(message)
        self.reporter.note(message=message)

    def progress(self, step: Download | Upload) -> Progress:
        """A transfer's progress callback: totals the bytes moved (the stores call it from
        their worker threads) and hands the running total to the reporter."""
        lock = threading.Lock()
        total = 0

        def moved(count: int) -> None:
            nonlocal total
            with lock:
                total += count
                done = total
            self.reporter.transferred(pass_name=step.pass_name, bytes_done=done)

        return moved
