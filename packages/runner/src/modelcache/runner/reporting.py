"""What a run did: its step records and counts, the ``--report`` document, the reporter hooks.

:class:`RunReport` is what the executor fills in as it goes; :meth:`RunReport.to_json` turns it
into the ``modelcache-run-report/1`` document through this module's own cattrs converter
(``docs/operations.md`` describes the fields). :class:`Reporter` is the no-op hooks a front
end subclasses to draw progress.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

import cattrs
from attrs import Factory, define, frozen
from cattrs.gen import make_dict_unstructure_fn, override

from modelcache.planner import Download, Evaluate, Plan, Run, Skip, Step, Upload

from .maintenance.usage import RunTally, TierCounts

__all__ = [
    "CACHED_RESULT",
    "REPORT_FORMAT",
    "Outcome",
    "Reporter",
    "RunReport",
    "RunTotals",
    "StepKind",
    "StepRecord",
    "step_kind",
]

REPORT_FORMAT: Final = "modelcache-run-report/1"
#: The detail of an evaluation step that read its result from the cache.
CACHED_RESULT: Final = "cached result"

StepKind = Literal["run", "skip", "download", "upload", "evaluate"]
#: How a step ended; see :class:`StepRecord`.
Outcome = Literal[
    "done", "skipped", "already-there", "refused", "failed", "waited", "damaged-in-cloud"
]

_STEP_KINDS: Mapping[type[Step], StepKind] = {
    Run: "run",
    Skip: "skip",
    Download: "download",
    Upload: "upload",
    Evaluate: "evaluate",
}


def step_kind(step: Step) -> StepKind:
    """The report's name for the kind of ``step``."""
    return _STEP_KINDS[type(step)]


@frozen(kw_only=True)
class StepRecord:
    """One executed step: what it was, why, how long it took and how many bytes it moved
    (sent or received: a blob an upload found present and only refreshed moved none).

    ``outcome`` is ``done`` normally; ``skipped`` for an upload when uploads are off,
    ``already-there`` for an upload another runner won, ``refused`` for an upload the
    credential may not make, ``failed`` for a step whose failure made the runner re-plan,
    ``waited`` for a run that waited for another runner computing the same output, which
    published it (the runner re-plans to use it), ``damaged-in-cloud`` for an upload of an
    output whose cloud entry this run found damaged (publishing never replaces an entry:
    ``modelcache cache verify --repair`` does).
    """

    kind: StepKind
    pass_name: str
    key: str
    reason: str
    seconds: float
    bytes: int = 0
    outcome: Outcome = "done"
    detail: str = ""


@frozen(kw_only=True)
class RunTotals:
    """A run's ``totals``: the steps done (or found done) by kind, the bytes moved, what the
    cache saved, hits and misses per tier (see :attr:`RunReport.hits`), re-plans, and time."""

    runs: int
    skips: int
    downloads: int
    uploads: int
    #: Evaluations measured in this run; ``cached_evaluations`` counts results read from the
    #: cache instead, as the plan's totals do.
    evaluations: int
    cached_evaluations: int
    bytes_downloaded: int
    bytes_uploaded: int
    bytes_avoided: int
    compute_seconds_saved: float
    hits: TierCounts
    misses: TierCounts
    replans: int
    wall_seconds: float


@define(kw_only=True)
class RunReport:
    """The record of a whole run, as ``--report`` writes it; the executor adds to it."""

    steps: list[StepRecord] = Factory(list)
    notes: list[str] = Factory(list)
    final_key: str | None = None
    output_dir: str | None = None
    #: The delivered model's OpenSSF model-signing signature, if it was signed.
    model_signature: str | None = None
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

    def totals(self) -> RunTotals:
        """The counts of :attr:`steps` and the run's figures, as the report's ``totals``."""
        # A step counts when it did its work or found it done: an upload another runner won
        # leaves the output in the cloud all the same.
        done = [step for step in self.steps if step.outcome in ("done", "already-there")]
        count = {kind: sum(step.kind == kind for step in done) for kind in _STEP_KINDS.values()}
        cached = sum(step.kind == "evaluate" and step.detail == CACHED_RESULT for step in done)
        return RunTotals(
            runs=count["run"],
            skips=count["skip"],
            downloads=count["download"],
            uploads=count["upload"],
            evaluations=count["evaluate"] - cached,
            cached_evaluations=cached,
            # What crossed the wire, whatever came of it: an upload that lost the race to
            # publish sent its blobs all the same.
            bytes_downloaded=sum(s.bytes for s in self.steps if s.kind == "download"),
            bytes_uploaded=sum(s.bytes for s in self.steps if s.kind == "upload"),
            bytes_avoided=self.bytes_avoided,
            compute_seconds_saved=self.compute_seconds_saved,
            hits=TierCounts(**self.hits),
            misses=TierCounts(**self.misses),
            replans=self.replans,
            wall_seconds=self.wall_seconds,
        )

    def tally(self) -> RunTally:
        """What this run adds to the run records of the stores it used: its hits, misses,
        bytes moved and avoided, and compute saved (``modelcache cache stats``)."""
        totals = self.totals()
        return RunTally(
            runs=1,
            hits=totals.hits,
            misses=totals.misses,
            bytes_downloaded=totals.bytes_downloaded,
            bytes_uploaded=totals.bytes_uploaded,
            bytes_avoided=totals.bytes_avoided,
            compute_seconds_saved=totals.compute_seconds_saved,
        )

    def to_json(self) -> dict[str, Any]:
        """The ``modelcache-run-report/1`` document: plain JSON data."""
        document = _ReportDocument(
            format=REPORT_FORMAT,
            final_key=self.final_key,
            output_dir=self.output_dir,
            model_signature=self.model_signature,
            steps=tuple(self.steps),
            totals=self.totals(),
            metrics=self.metrics,
            notes=tuple(self.notes),
        )
        unstructured: dict[str, Any] = _converter().unstructure(document)
        return unstructured


@frozen(kw_only=True)
class _ReportDocument:
    """The report on the wire, field by field in the order it is written."""

    format: str
    final_key: str | None
    output_dir: str | None
    model_signature: str | None = None  # written only when the model was signed
    steps: tuple[StepRecord, ...]
    totals: RunTotals
    metrics: Mapping[str, Mapping[str, Any]]
    notes: tuple[str, ...]


def _rounded(digits: int) -> Callable[[float], float]:
    """Times on the wire: milliseconds are plenty for totals, a tenth of one for steps."""
    return lambda seconds: round(seconds, digits)


@functools.cache
def _converter() -> cattrs.Converter:
    """The report's wire format; the runner's own, never cattrs' global converter. Made on
    first use: a run without ``--report`` never needs it."""
    converter = cattrs.Converter()
    converter.register_unstructure_hook(
        StepRecord,
        make_dict_unstructure_fn(
            StepRecord,
            converter,
            pass_name=override(rename="pass"),
            seconds=override(unstruct_hook=_rounded(4)),
            detail=override(omit_if_default=True),
        ),
    )
    converter.register_unstructure_hook(
        RunTotals,
        make_dict_unstructure_fn(
            RunTotals,
            converter,
            compute_seconds_saved=override(unstruct_hook=_rounded(3)),
            wall_seconds=override(unstruct_hook=_rounded(3)),
        ),
    )
    converter.register_unstructure_hook(
        _ReportDocument,
        make_dict_unstructure_fn(
            _ReportDocument, converter, model_signature=override(omit_if_default=True)
        ),
    )
    return converter


class Reporter:
    """Hooks the runner calls as it goes; all do nothing. A front end subclasses this to draw
    progress. Hooks are called with keyword arguments only."""

    def planned(self, *, plan: Plan) -> None:
        """A plan was made (again, after a re-plan)."""

    def step_started(self, *, kind: StepKind, pass_name: str, total_bytes: int | None) -> None:
        """A step begins; ``total_bytes`` is known for transfers of known size."""

    def transferred(self, *, pass_name: str, bytes_done: int) -> None:
        """Bytes moved so far by the current transfer step."""

    def step_finished(self, *, record: StepRecord) -> None:
        """A step ended (successfully or not, see ``record.outcome``)."""

    def note(self, *, message: str) -> None:
        """Something the user should know that is not a step (cloud lost, upload refused)."""
