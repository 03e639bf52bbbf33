"""The planner's output: a plan of steps, and its totals.

A plan lists, in execution order, one primary step per pass (:class:`Run`, :class:`Skip` or
:class:`Download`), followed where needed by an :class:`Upload` and an :class:`Evaluate` of
that pass's output. Every step names its pass and key and says why, in words, it is there.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal, TypeAlias

from attrs import field, frozen

__all__ = [
    "Download",
    "Evaluate",
    "Location",
    "PLAN_FORMAT",
    "Plan",
    "Run",
    "Skip",
    "Step",
    "Totals",
    "Upload",
    "totals_of",
]

PLAN_FORMAT = "modelcache-plan/1"

Location: TypeAlias = Literal["local", "cloud", "nowhere"]


@frozen(kw_only=True)
class Run:
    """Run the pass on its input (the previous pass's output, or the input model when
    ``input_key`` is None); the runner keeps the output in the local tier."""

    pass_name: str
    key: str
    reason: str
    input_key: str | None


@frozen(kw_only=True)
class Skip:
    """Do not run the pass. ``location`` says where its output is (``nowhere`` when nothing
    needs it); an output in the local tier may still be read by a later step."""

    pass_name: str
    key: str
    reason: str
    location: Location


@frozen(kw_only=True)
class Download:
    """Fetch the pass's output from the cloud into the local tier. ``size`` in bytes, if known."""

    pass_name: str
    key: str
    reason: str
    size: int | None


@frozen(kw_only=True)
class Upload:
    """Publish the pass's output, present in the local tier by now, to the cloud.
    ``size`` is known when the output is already cached locally. ``if_worthwhile``: only if,
    once the pass has run, :func:`~modelcache.planner.upload_verdict` says so (the
    ``worthwhile`` upload policy, for an intermediate output the plan runs)."""

    pass_name: str
    key: str
    reason: str
    size: int | None
    if_worthwhile: bool = False


@frozen(kw_only=True)
class Evaluate:
    """Evaluate the pass's output; when ``cached``, read the stored result instead, which needs
    no model at all."""

    pass_name: str
    key: str
    reason: str
    cached: bool


Step: TypeAlias = Run | Skip | Download | Upload | Evaluate


@frozen(kw_only=True)
class Totals:
    """Counts of each step kind and the bytes the plan will move, where sizes are known.
    ``evaluations`` counts evaluations to run, ``cached_evaluations`` results read from the
    cache; ``unknown_sizes`` counts the transfers whose size the snapshot did not know."""

    runs: int
    skips: int
    downloads: int
    uploads: int
    evaluations: int
    cached_evaluations: int
    bytes_to_download: int
    bytes_to_upload: int
    unknown_sizes: int

    @property
    def bytes_to_move(self) -> int:
        return self.bytes_to_download + self.bytes_to_upload


def totals_of(steps: Iterable[Step]) -> Totals:
    """The totals of these steps."""
    counts = {Run: 0, Skip: 0, Download: 0, Upload: 0}
    down = up = unknown = evaluations = cached = 0
    for step in steps:
        match step:
            case Evaluate(cached=True):
                cached += 1
                continue
            case Evaluate():
                evaluations += 1
                continue
            case Download(size=None) | Upload(size=None):
                unknown += 1
            case Download(size=int(size)):
                down += size
            case Upload(size=int(size)):
                up += size
        counts[type(step)] += 1
    return Totals(
        runs=counts[Run],
        skips=counts[Skip],
        downloads=counts[Download],
        uploads=counts[Upload],
        evaluations=evaluations,
        cached_evaluations=cached,
        bytes_to_download=down,
        bytes_to_upload=up,
        unknown_sizes=unknown,
    )


def _keys(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


def _steps(value: Iterable[Step]) -> tuple[Step, ...]:
    return tuple(value)


@frozen(kw_only=True)
class Plan:
    """The ordered steps that bring the workflow's outputs into being, and their totals.

    ``keys`` holds every pass's key in chain order; ``final_key`` is the last of them (None for
    an empty chain). ``totals`` is derived from ``steps``.
    """

    keys: tuple[str, ...] = field(converter=_keys)
    steps: tuple[Step, ...] = field(converter=_steps)
    totals: Totals = field(init=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "totals", totals_of(self.steps))

    @property
    def final_key(self) -> str | None:
        return self.keys[-1] if self.keys else None

    def steps_for(self, pass_name: str) -> tuple[Step, ...]:
        """The steps that concern one pass, in order."""
        return tuple(step for step in self.steps if step.pass_name == pass_name)
