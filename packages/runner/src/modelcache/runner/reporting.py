"""What a run did: step records, totals, and the reporter hooks a front end listens on."""

from __future__ import annotations

from typing import Any, Literal

from attrs import Factory, define, frozen

__all__ = ["Reporter", "RunReport", "StepRecord"]

StepKind = Literal["run", "skip", "download", "upload", "evaluate"]


@frozen(kw_only=True)
class StepRecord:
    """One executed step: what it was, why, how long it took and how many bytes it moved.

    ``outcome`` is ``done`` normally; ``already-there`` for an upload another runner won,
    ``refused`` for an upload the credential may not make, ``failed`` for a step whose
    failure made the runner re-plan, ``waited`` for a run that waited for another runner
    computing the same output, which published it (the runner re-plans to use it),
    ``damaged-in-cloud`` for an upload of an output whose cloud entry this run found
    damaged (publishing never replaces an entry: ``modelcache cache verify --repair`` does).
    """

    kind: StepKind
    pass_name: str
    key: str
    reason: str
    seconds: float
    bytes: int = 0
    outcome: str = "done"
    detail: str = ""


@define(kw_only=True)
class RunReport:
    """The record of a whole run, as ``--report`` writes it."""

    steps: list[StepRecord] = Factory(list)
    notes: list[str] = Factory(list)
    final_key: str | None = None
    output_dir: str | None = None
    metrics: dict[str, dict[str, Any]] = Factory(dict)
    replans: int = 0
    wall_seconds: float = 0.0
    #: Run time the cache saved: recorded run times of the passes that did not run.
    compute_seconds_saved: float = 0.0
    #: Bytes of cached outputs that were neither downloaded nor recomputed.
    bytes_avoided: int = 0
    #: Per tier, outputs of the chain found there (``hits``) and looked for but not found
    #: (``misses``). A tier that was not consulted for an output counts neither: an output
    #: found locally is not looked for in the cloud.
    hits: dict[str, int] = Factory(lambda: {"local": 0, "cloud": 0})
    misses: dict[str, int] = Factory(lambda: {"local": 0, "cloud": 0})

    def totals(self) -> dict[str, Any]:
        count: dict[str, int] = {"run": 0, "skip": 0, "download": 0, "upload": 0, "evaluate": 0}
        for step in self.steps:
            if step.outcome in ("done", "already-there"):
                count[step.kind] += 1
        return {
            "runs": count["run"],
            "skips": count["skip"],
            "downloads": count["download"],
            "uploads": count["upload"],
            "evaluations": count["evaluate"],
            "bytes_downloaded": sum(s.bytes for s in self.steps if s.kind == "download"),
            "bytes_uploaded": sum(
                s.bytes for s in self.steps if s.kind == "upload" and s.outcome == "done"
            ),
            "bytes_avoided": self.bytes_avoided,
            "compute_seconds_saved": round(self.compute_seconds_saved, 3),
            "hits": dict(self.hits),
            "misses": dict(self.misses),
            "replans": self.replans,
            "wall_seconds": round(self.wall_seconds, 3),
        }

    def to_json(self) -> dict[str, Any]:
        return {
            "format": "modelcache-run-report/1",
            "final_key": self.final_key,
            "output_dir": self.output_dir,
            "steps": [
                {
                    "kind": s.kind,
                    "pass": s.pass_name,
                    "key": s.key,
                    "reason": s.reason,
                    "seconds": round(s.seconds, 4),
                    "bytes": s.bytes,
                    "outcome": s.outcome,
                    **({"detail": s.detail} if s.detail else {}),
                }
                for s in self.steps
            ],
            "totals": self.totals(),
            "metrics": self.metrics,
            "notes": list(self.notes),
        }


class Reporter:
    """Hooks the runner calls as it goes; all do nothing. A front end subclasses this to draw
    progress. Hooks are called with keyword arguments only."""

    def planned(self, *, plan: Any) -> None:
        """A plan was made (again, after a re-plan)."""

    def step_started(self, *, kind: StepKind, pass_name: str, total_bytes: int | None) -> None:
        """A step begins; ``total_bytes`` is known for transfers of known size."""

    def transferred(self, *, pass_name: str, bytes_done: int) -> None:
        """Bytes moved so far by the current transfer step."""

    def step_finished(self, *, record: StepRecord) -> None:
        """A step ended (successfully or not, see ``record.outcome``)."""

    def note(self, *, message: str) -> None:
        """Something the user should know that is not a step (cloud lost, upload refused)."""
