"""Sweep planning: many workflows over one cache, planned as one forest of shared prefixes.

Theory of operation
-------------------
Keys are chained, so a key names its whole prefix: two workflows share an output exactly when
they share its key, and then they share every output before it. Merging the chains by key
gives a forest, one tree per input model, in which every workflow's chain is a path from a
root and every output's input is its parent.

An output must be present when it is some workflow's final output, or some workflow wants it
evaluated by an evaluator whose result is not cached; and, as in a chain, when a pass that
takes it as input runs. The chain planner's dynamic programme (``choose_ways`` in
``_planning.py``) works on the forest as it is: every output takes exactly one way, so every
key runs (or is downloaded) at most once in the whole sweep, and making an output present is
paid once, whatever the number of children it serves. With one workflow the forest is the
chain, and the sweep's steps are :func:`~modelcache.planner.make_plan`'s.

Each output's steps follow a plan's rules: its primary step, then its upload, then one
evaluation per evaluator that wants it, taken from the first workflow that asks. A step
carries the workflow whose names (and evaluator) it uses: the first to reach the output.

Segments: one starts at each root and at each child of an output with several children, and
runs down while each output has exactly one child. A segment waits for the segment above it
only when its first pass runs on an input made there (run or downloaded); an input in the
local tier is there from the start. Segments are listed depth first, in the order workflows
reach them, so every segment comes after those it waits for.
"""

from __future__ import annotations

from collections.abc import Sequence

from attrs import Factory, define

from ._keys import chain_keys
from ._model import CachePolicy, Snapshot, Sweep
from ._planning import (
    View,
    Way,
    choose_ways,
    evaluate_step,
    primary_step,
    result_cached,
    upload_step,
    view_of,
    with_reason,
)
from ._sweep_plan import Segment, SweepPlan, SweepStep, WorkflowPath

__all__ = ["make_sweep_plan"]


@define
class _Output:
    """One output of the forest, as the sweep's workflows reach it."""

    key: str
    parent: int  # the index of its input's output; -1 when its input is the model
    workflow: str  # the first workflow to reach it: its steps use that workflow's pass name
    pass_name: str
    children: list[int] = Factory(list)
    final_of: list[str] = Factory(list)
    # evaluator fingerprint -> (workflow, pass name) of the first workflow that wants it
    wanted: dict[str, tuple[str, str]] = Factory(dict)


def _merge(sweep: Sweep) -> tuple[list[_Output], list[tuple[str, ...]]]:
    """The workflows' chains merged by key, parents before children; each workflow's keys."""
    outputs: list[_Output] = []
    index: dict[str, int] = {}
    paths: list[tuple[str, ...]] = []
    for workflow in sweep.workflows:
        keys = chain_keys(workflow.chain)
        wanted = workflow.evaluation.wanted(workflow.chain)
        parent = -1
        for i, (spec, key) in enumerate(zip(workflow.chain.passes, keys, strict=True)):
            at = index.get(key)
            if at is None:
                at = index[key] = len(outputs)
                outputs.append(_Output(key, parent, workflow.name, spec.name))
                if parent >= 0:
                    outputs[parent].children.append(at)
            if i in wanted:
                fingerprint = workflow.evaluation.fingerprint
                outputs[at].wanted.setdefault(fingerprint, (workflow.name, spec.name))
            parent = at
        if parent >= 0:
            outputs[parent].final_of.append(workflow.name)
        paths.append(keys)
    return outputs, paths


def _needs(
    output: _Output, outputs: Sequence[_Output], ways: Sequence[Way], evaluate: bool, sweep: Sweep
) -> list[str]:
    """Why an output must be present, in the words of :func:`make_plan`'s reasons."""
    needs: list[str] = []
    if output.final_of:
        several = len(sweep.workflows) > 1
        names = ", ".join(repr(name) for name in output.final_of)
        needs.append(f"final output of {names}" if several else "final output")
    if evaluate:
        needs.append("evaluation needs it")
    runs = [outputs[child].pass_name for child in output.children if ways[child] == "run"]
    if len(runs) == 1:
        needs.append(f"input of pass {runs[0]!r}, which must run")
    elif runs:
        names = ", ".join(repr(name) for name in sorted(set(runs)))
        needs.append(f"input of {len(runs)} passes that must run ({names})")
    return needs


def _output_steps(
    i: int,
    outputs: Sequence[_Output],
    views: Sequence[View],
    ways: Sequence[Way],
    sweep: Sweep,
    policy: CachePolicy,
) -> list[SweepStep]:
    """One output's steps: its primary step, its upload, one evaluation per evaluator."""
    output, view, way = outputs[i], views[i], ways[i]
    cached = {fp: result_cached(view.entry, policy, fp) for fp in output.wanted}
    needs = _needs(output, outputs, ways, not all(cached.values()), sweep)
    input_key = outputs[output.parent].key if output.parent >= 0 else None
    primary = primary_step(way, view, output.pass_name, output.key, input_key, needs, policy)
    upload, kept = upload_step(way, view, output.pass_name, output.key, policy,
                               final=bool(output.final_of))  # fmt: skip
    if kept is not None:
        primary = with_reason(primary, kept)
    steps = [SweepStep(workflow=output.workflow, step=primary)]
    if upload is not None:
        steps.append(SweepStep(workflow=output.workflow, step=upload))
    for fingerprint, (workflow, pass_name) in output.wanted.items():
        step = evaluate_step(pass_name, output.key, cached[fingerprint])
        steps.append(SweepStep(workflow=workflow, step=step))
    return steps


def _runs(outputs: Sequence[_Output]) -> list[list[int]]:
    """The outputs grouped into segments, depth first: each a run of only children."""
    roots = [i for i, output in enumerate(outputs) if output.parent < 0]
    segments: list[list[int]] = []
    stack = roots[::-1]
    while stack:
        members = [stack.pop()]
        while len(outputs[members[-1]].children) == 1:
            members.append(outputs[members[-1]].children[0])
        segments.append(members)
        stack.extend(outputs[members[-1]].children[::-1])
    return segments


def _segments(
    outputs: Sequence[_Output],
    views: Sequence[View],
    ways: Sequence[Way],
    sweep: Sweep,
    policy: CachePolicy,
) -> tuple[list[Segment], list[int]]:
    """The segments, parents first, and the segment of each output."""
    segment_of = [0] * len(outputs)
    segments: list[Segment] = []
    for members in _runs(outputs):
        for member in members:
            segment_of[member] = len(segments)
        parent = outputs[members[0]].parent
        # Only the first pass can need an input from another segment; one in the local tier
        # (a skip) is there from the start.
        waits = parent >= 0 and ways[members[0]] == "run" and ways[parent] in ("run", "download")
        steps = [
            step for i in members for step in _output_steps(i, outputs, views, ways, sweep, policy)
        ]
        after = (segment_of[parent],) if waits else ()
        segments.append(Segment(id=len(segments), after=after, steps=steps))
    return segments, segment_of


def make_sweep_plan(
    sweep: Sweep, snapshot: Snapshot, policy: CachePolicy | None = None
) -> SweepPlan:
    """Plan many workflows over one cache as one graph.

    :param sweep: the workflows, each a chain and its evaluation targets.
    :param snapshot: the cache's contents (both tiers) at planning time.
    :param policy: which tiers may be used, as for :func:`~modelcache.planner.make_plan`.
    :return: the segments of steps and the order between them. Every key runs at most once in
        the whole sweep, however many workflows share it; executing the segments in any order
        that respects their ``after`` meets every workflow's final output and evaluations.

    A pure function: equal arguments give equal plans. With one workflow, the plan's steps are
    :func:`~modelcache.planner.make_plan`'s, in one segment.
    """
    policy = policy if policy is not None else CachePolicy()
    outputs, paths = _merge(sweep)
    views = [view_of(snapshot.get(output.key), policy) for output in outputs]
    required = [
        bool(output.final_of)
        or not all(result_cached(view.entry, policy, fp) for fp in output.wanted)
        for output, view in zip(outputs, views, strict=True)
    ]
    ways = choose_ways([output.parent for output in outputs], views, required, policy)
    segments, segment_of = _segments(outputs, views, ways, sweep, policy)
    index = {output.key: i for i, output in enumerate(outputs)}
    workflows = [
        WorkflowPath(
            name=workflow.name,
            keys=keys,
            segments=dict.fromkeys(segment_of[index[key]] for key in keys),
        )
        for workflow, keys in zip(sweep.workflows, paths, strict=True)
    ]
    return SweepPlan(workflows=workflows, segments=segments)
