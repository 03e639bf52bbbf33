"""The sweep planner's output: segments of steps, the order between them, each workflow's path.

A sweep plan's steps are a plan's steps (:class:`Run`, :class:`Skip`, :class:`Download`,
:class:`Upload`, :class:`Evaluate`), each tagged with the workflow whose pass, and evaluator,
it takes. They are grouped into segments (:class:`Segment`): each a run of outputs where every
output but the last is the input of exactly one pass, one unit of work for an engine. A segment
names the segments that must finish before it starts; any other order is allowed, segments
side by side included. ``docs/planner.md`` explains how, ``docs/plan-format.md`` the JSON.
"""

from __future__ import annotations

from collections.abc import Iterable

from attrs import field, frozen

from ._plan import Download, Run, Skip, Step, Totals, totals_of

__all__ = ["SWEEP_FORMAT", "Segment", "SweepPlan", "SweepStep", "WorkflowPath"]

SWEEP_FORMAT = "modelcache-sweep/1"


@frozen(kw_only=True)
class SweepStep:
    """A step of a sweep and the workflow it is taken from: ``step.pass_name`` is that
    workflow's name for the pass, and an :class:`Evaluate` runs that workflow's evaluator."""

    workflow: str
    step: Step


def _ids(value: Iterable[int]) -> tuple[int, ...]:
    return tuple(value)


def _sweep_steps(value: Iterable[SweepStep]) -> tuple[SweepStep, ...]:
    return tuple(value)


@frozen(kw_only=True)
class Segment:
    """One unit of work: a run of outputs, each (but the last) the only child of the one
    before, with the steps of each output in order (primary step, upload, evaluations).

    ``id`` is the segment's position in :attr:`SweepPlan.segments`; ``after`` the ids of the
    segments that must finish first (the one that makes this segment's first input present,
    when its first pass runs), always earlier in the plan.
    """

    id: int
    after: tuple[int, ...] = field(converter=_ids)
    steps: tuple[SweepStep, ...] = field(converter=_sweep_steps)

    @property
    def keys(self) -> tuple[str, ...]:
        """The keys of the segment's outputs, inputs first."""
        return tuple(item.step.key for item in self.steps if _is_primary(item.step))

    @property
    def idle(self) -> bool:
        """Whether the segment has nothing to do: all its steps are skips. An idle segment is
        never in another's ``after``; an engine need not submit it."""
        return all(isinstance(item.step, Skip) for item in self.steps)


def _is_primary(step: Step) -> bool:
    return isinstance(step, (Run, Skip, Download))


def _keys(value: Iterable[str]) -> tuple[str, ...]:
    return tuple(value)


@frozen(kw_only=True)
class WorkflowPath:
    """One workflow's way through the sweep: the keys of its passes in chain order, and the
    ids of the segments holding them, in that order. The workflow is done when they are."""

    name: str
    keys: tuple[str, ...] = field(converter=_keys)
    segments: tuple[int, ...] = field(converter=_ids)

    @property
    def final_key(self) -> str | None:
        return self.keys[-1] if self.keys else None


def _paths(value: Iterable[WorkflowPath]) -> tuple[WorkflowPath, ...]:
    return tuple(value)


def _segments(value: Iterable[Segment]) -> tuple[Segment, ...]:
    return tuple(value)


@frozen(kw_only=True)
class SweepPlan:
    """What :func:`~modelcache.planner.make_sweep_plan` returns: every workflow's path, the
    segments in an order that respects ``after`` (parents first), and the totals of all their
    steps. Every key of the sweep has exactly one primary step, in exactly one segment."""

    workflows: tuple[WorkflowPath, ...] = field(converter=_paths)
    segments: tuple[Segment, ...] = field(converter=_segments)
    totals: Totals = field(init=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "totals", totals_of(self.steps))

    @property
    def steps(self) -> tuple[Step, ...]:
        """Every step, segment by segment: an order that can be executed as written."""
        return tuple(item.step for segment in self.segments for item in segment.steps)

    def workflow(self, name: str) -> WorkflowPath:
        """The path of the workflow called ``name``."""
        for path in self.workflows:
            if path.name == name:
                return path
        raise KeyError(name)
