"""A sweep plan as text: the tree of shared prefixes, a segment per node, its steps under it.

A segment's parent is the segment holding its first pass's input: the segment before it on
any variant's path. Each node names the variants that pass through it, so that which
variants share which passes reads off the tree.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from modelcache.planner import Download, Evaluate, Segment, Skip, Step, SweepPlan, Upload

from ..reporting import step_kind

__all__ = ["counted", "render_tree"]

#: Variants named on a node before the rest are counted.
_NAMED: Final = 6


def render_tree(plan: SweepPlan) -> str:
    """The plan as a tree of shared prefixes, one segment per node, each step on a line."""
    parents: dict[int, int] = {}
    through: dict[int, list[str]] = {segment.id: [] for segment in plan.segments}
    for path in plan.workflows:
        for before, after in zip(path.segments, path.segments[1:], strict=False):
            parents.setdefault(after, before)
        for i in path.segments:
            through[i].append(path.name)
    children: dict[int | None, list[int]] = {}
    for segment in plan.segments:
        children.setdefault(parents.get(segment.id), []).append(segment.id)
    totals = plan.totals
    idle = sum(segment.idle for segment in plan.segments)
    lines = [
        f"sweep: {counted(len(plan.workflows), 'variant')}, "
        f"{counted(len(plan.segments), 'segment')} ({idle} idle); "
        f"{counted(totals.runs, 'run')}, {counted(totals.downloads, 'download')}, "
        f"{counted(totals.uploads, 'upload')}, {counted(totals.evaluations, 'evaluation')} "
        f"({totals.cached_evaluations} cached)"
    ]
    roots = children.get(None, [])
    for i, root in enumerate(roots):
        _node(plan.segments, root, children, through, len(plan.workflows), "", i == len(roots) - 1,
              lines, root=True)  # fmt: skip
    return "\n".join(lines) + "\n"


def _node(
    segments: Sequence[Segment],
    at: int,
    children: Mapping[int | None, list[int]],
    through: Mapping[int, list[str]],
    count: int,
    prefix: str,
    last: bool,
    lines: list[str],
    *,
    root: bool = False,
) -> None:
    segment = segments[at]
    below = children.get(at, [])
    branch = "" if root else "└── " if last else "├── "
    lines.append(f"{prefix}{branch}{_header(segment, through[at], count)}")
    inner = prefix if root else prefix + ("    " if last else "│   ")
    bar = "│   " if below else "    "
    lines.extend(f"{inner}{bar}{_step(item.step)}" for item in segment.steps)
    for i, child in enumerate(below):
        _node(segments, child, children, through, count, inner, i == len(below) - 1, lines)


def counted(count: int, noun: str, plural: str | None = None) -> str:
    """``count`` and ``noun``, plural unless one: ``1 variant``, ``4 variants``; ``plural``
    where adding an s will not do (``pass``, ``passes``)."""
    return f"{count} {noun}" if count == 1 else f"{count} {plural or noun + 's'}"


def _header(segment: Segment, names: Sequence[str], count: int) -> str:
    after = f" after {', '.join(str(i) for i in segment.after)}" if segment.after else ""
    idle = " (idle: nothing to do)" if segment.idle else ""
    if len(names) == count and count > 1:
        who = f"all {count} variants"
    elif len(names) > _NAMED:
        who = f"{', '.join(names[: _NAMED - 1])} and {len(names) - _NAMED + 1} more"
    else:
        who = ", ".join(names)
    return f"segment {segment.id}{after}{idle}: {who}"


def _step(step: Step) -> str:
    match step:
        case Skip():
            extra = f" ({step.location})"
        case Download() | Upload() if step.size is not None:
            extra = f" ({step.size} bytes)"
        case Evaluate(cached=True):
            extra = " (cached result)"
        case _:
            extra = ""
    return f"{step_kind(step):<9} {step.pass_name}  {step.key[:12]}  {step.reason}{extra}"
