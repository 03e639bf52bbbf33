"""A small interpreter that replays a plan, or a sweep plan, against an in-memory cache,
checking as it goes.

The cache holds both tiers, as the snapshot describes them. Replaying a plan applies each step
to it and fails (:class:`ReplayError`) the moment a step could not be executed as written:
a run whose input is not present, a download of something the cloud does not hold, an upload
of something not present locally or already in the cloud, an evaluation with no model. What
the replay leaves behind is a new snapshot: plan again against it to check idempotence.

A sweep plan is replayed segment by segment, in whatever order a scheduler picks among the
segments whose ``after`` are finished, one step at a time, so segments run side by side in every
interleaving the scheduler draws; all of them share the one local tier.

The policy decides what the plan may *see*: an output in a disabled tier is not present. What
the replay *writes* (a run's output into the local tier, an upload into the cloud) is written
whatever the policy, as a runner would.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from attrs import evolve, frozen

from modelcache.planner import (
    CachePolicy,
    Chain,
    Download,
    Evaluate,
    Evaluation,
    Plan,
    Run,
    Skip,
    Snapshot,
    SnapshotEntry,
    Step,
    Sweep,
    SweepPlan,
    SweepStep,
    Upload,
    Workflow,
    chain_keys,
)


class ReplayError(AssertionError):
    """A step of the plan cannot be executed as written."""


def recorded_size(key: str) -> int:
    """The size a run of ``key`` produces in this toy world: fixed per key."""
    return int(hashlib.sha256(key.encode()).hexdigest()[:5], 16)


def recorded_run_seconds(key: str) -> float:
    return int(hashlib.sha256(key.encode()).hexdigest()[5:8], 16) / 10


class MemoryCache:
    """Both tiers of a cache in memory, one entry per key."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.entries: dict[str, SnapshotEntry] = dict(snapshot.entries)

    def snapshot(self) -> Snapshot:
        return Snapshot.from_listing(self.entries.values())

    def entry(self, key: str) -> SnapshotEntry:
        return self.entries.get(key) or SnapshotEntry(key=key)

    def update(self, key: str, **changes: object) -> None:
        self.entries[key] = evolve(self.entry(key), **changes)


@frozen(kw_only=True)
class Replay:
    """What a replay did, in the plan's order."""

    ran: tuple[str, ...]
    downloaded: tuple[str, ...]
    uploaded: tuple[str, ...]
    evaluated: tuple[str, ...]
    present: frozenset[str]


def _visible_local(cache: MemoryCache, key: str, policy: CachePolicy) -> bool:
    return cache.entry(key).in_local and policy.enable_local_cache


def _visible_cloud(cache: MemoryCache, key: str, policy: CachePolicy) -> bool:
    return cache.entry(key).in_cloud and policy.enable_cloud_cache


def _execute(
    step: Step,
    *,
    input_key: str | None,
    fingerprint: str,
    policy: CachePolicy,
    cache: MemoryCache,
    present: set[str],
) -> None:
    """Apply one step to the cache, or raise :class:`ReplayError` if it cannot be executed as
    written. ``input_key`` is the key the step's pass runs on; ``fingerprint`` the evaluator's."""
    key = step.key
    match step:
        case Run():
            if step.input_key != input_key:
                raise ReplayError(f"{step}: runs on the wrong input")
            if input_key is not None and input_key not in present:
                raise ReplayError(f"{step}: its input is not present")
            present.add(key)
            entry = cache.entry(key)
            cache.update(
                key,
                in_local=True,
                size=recorded_size(key) if entry.size is None else entry.size,
                run_seconds=(
                    recorded_run_seconds(key) if entry.run_seconds is None else entry.run_seconds
                ),
            )
        case Download():
            if not _visible_cloud(cache, key, policy):
                raise ReplayError(f"{step}: the cloud does not hold it")
            if step.size != cache.entry(key).size:
                raise ReplayError(f"{step}: the size is not the snapshot's")
            present.add(key)
            cache.update(key, in_local=True)
        case Skip(location="local"):
            if not _visible_local(cache, key, policy):
                raise ReplayError(f"{step}: not in the local cache")
        case Skip(location="cloud"):
            if not _visible_cloud(cache, key, policy) or _visible_local(cache, key, policy):
                raise ReplayError(f"{step}: not in the cloud only")
        case Skip():
            if _visible_cloud(cache, key, policy) or _visible_local(cache, key, policy):
                raise ReplayError(f"{step}: it is cached, not nowhere")
        case Upload():
            if not policy.uploads:
                raise ReplayError(f"{step}: uploads are off")
            if key not in present:
                raise ReplayError(f"{step}: nothing to upload, it is not present locally")
            if cache.entry(key).in_cloud:
                raise ReplayError(f"{step}: already in the cloud")
            cache.update(key, in_cloud=True)
        case Evaluate(cached=True):
            any_cache = policy.enable_local_cache or policy.enable_cloud_cache
            if not any_cache or fingerprint not in cache.entry(key).evaluations:
                raise ReplayError(f"{step}: no result is cached")
        case Evaluate():
            if key not in present:
                raise ReplayError(f"{step}: the model to evaluate is not present")
            cache.update(key, evaluations=cache.entry(key).evaluations | {fingerprint})


def _record(step: Step, done: dict[type, list[str]]) -> None:
    done.setdefault(type(step), []).append(step.key)


def replay(
    plan: Plan,
    chain: Chain,
    evaluation: Evaluation,
    policy: CachePolicy,
    cache: MemoryCache,
) -> Replay:
    """Execute ``plan`` against ``cache``, changing it; raise :class:`ReplayError` on the first
    step that cannot be executed as written, or if the plan leaves its work unfinished."""
    keys = chain_keys(chain)
    if plan.keys != keys:
        raise ReplayError("the plan's keys are not the chain's")
    present = {key for key in keys if _visible_local(cache, key, policy)}
    done: dict[type, list[str]] = {}
    index = -1  # the pass whose primary step came last
    for step in plan.steps:
        if isinstance(step, (Run, Skip, Download)):
            index += 1
            if index >= len(keys) or step.pass_name != chain.passes[index].name:
                raise ReplayError(f"{step}: primary steps must follow the chain, one per pass")
        elif index < 0 or step.pass_name != chain.passes[index].name:
            raise ReplayError(f"{step}: uploads and evaluations follow their pass's primary step")
        if step.key != keys[index]:
            raise ReplayError(f"{step}: not the key of pass {step.pass_name!r}")
        input_key = keys[index - 1] if index else None
        _execute(
            step,
            input_key=input_key,
            fingerprint=evaluation.fingerprint,
            policy=policy,
            cache=cache,
            present=present,
        )
        _record(step, done)
    if index != len(keys) - 1:
        raise ReplayError("the plan has no primary step for some passes")
    if keys and keys[-1] not in present:
        raise ReplayError("the final output is not present at the end")
    evaluated = done.get(Evaluate, [])
    wanted = sorted(evaluation.wanted(chain))
    if evaluated != [keys[i] for i in wanted]:
        raise ReplayError(f"evaluated {evaluated}, wanted the outputs of passes {wanted}")
    return Replay(
        ran=tuple(done.get(Run, [])),
        downloaded=tuple(done.get(Download, [])),
        uploaded=tuple(done.get(Upload, [])),
        evaluated=tuple(evaluated),
        present=frozenset(present),
    )


@frozen(kw_only=True)
class SweepReplay:
    """What a replay of a sweep plan did, in the order it did it; evaluations by (key,
    evaluator fingerprint)."""

    ran: tuple[str, ...]
    downloaded: tuple[str, ...]
    uploaded: tuple[str, ...]
    evaluated: tuple[tuple[str, str], ...]
    present: frozenset[str]


Scheduler = Callable[[Sequence[int]], int]
"""Given the ids of the segments that may take their next step, the one that does."""


def in_plan_order(ready: Sequence[int]) -> int:
    return ready[0]


def _ready(plan: SweepPlan, cursors: list[int]) -> list[int]:
    finished = {
        segment.id for segment in plan.segments if cursors[segment.id] == len(segment.steps)
    }
    return [
        segment.id
        for segment in plan.segments
        if segment.id not in finished and finished.issuperset(segment.after)
    ]


def _place(item: SweepStep, workflows: dict[str, tuple[Workflow, tuple[str, ...]]]) -> int:
    """The position of the step's pass in its workflow's chain, checking that it is there."""
    if item.workflow not in workflows:
        raise ReplayError(f"{item}: the sweep has no such workflow")
    workflow, keys = workflows[item.workflow]
    step = item.step
    if step.key not in keys:
        raise ReplayError(f"{item}: not a key of workflow {item.workflow!r}")
    index = keys.index(step.key)
    if step.pass_name != workflow.chain.passes[index].name:
        raise ReplayError(f"{item}: not the workflow's name for the pass")
    if isinstance(step, Evaluate) and index not in workflow.evaluation.wanted(workflow.chain):
        raise ReplayError(f"{item}: the workflow does not want this output evaluated")
    return index


def replay_sweep(
    plan: SweepPlan,
    sweep: Sweep,
    policy: CachePolicy,
    cache: MemoryCache,
    pick: Scheduler = in_plan_order,
) -> SweepReplay:
    """Execute ``plan``'s segments against ``cache`` in the order ``pick`` chooses, step by step;
    raise :class:`ReplayError` on the first step that cannot be executed as written, or if the
    plan leaves some workflow's final output or evaluations undone."""
    workflows = {w.name: (w, chain_keys(w.chain)) for w in sweep.workflows}
    if [(path.name, path.keys) for path in plan.workflows] != [
        (name, keys) for name, (_, keys) in workflows.items()
    ]:
        raise ReplayError("the plan's workflows are not the sweep's")
    every_key = {key for _, keys in workflows.values() for key in keys}
    present = {key for key in every_key if _visible_local(cache, key, policy)}
    done: dict[type, list[str]] = {}
    evaluated: list[tuple[str, str]] = []
    cursors = [0] * len(plan.segments)
    while ready := _ready(plan, cursors):
        segment = plan.segments[pick(ready)]
        item = segment.steps[cursors[segment.id]]
        cursors[segment.id] += 1
        index = _place(item, workflows)
        workflow, keys = workflows[item.workflow]
        fingerprint = workflow.evaluation.fingerprint
        input_key = keys[index - 1] if index else None
        _execute(
            item.step,
            input_key=input_key,
            fingerprint=fingerprint,
            policy=policy,
            cache=cache,
            present=present,
        )
        _record(item.step, done)
        if isinstance(item.step, Evaluate):
            evaluated.append((item.step.key, fingerprint))
    if any(cursor < len(s.steps) for cursor, s in zip(cursors, plan.segments, strict=True)):
        raise ReplayError("some segments wait for segments that never finish")
    _check_sweep_done(plan, workflows, present, evaluated)
    return SweepReplay(
        ran=tuple(done.get(Run, [])),
        downloaded=tuple(done.get(Download, [])),
        uploaded=tuple(done.get(Upload, [])),
        evaluated=tuple(evaluated),
        present=frozenset(present),
    )


def _check_sweep_done(
    plan: SweepPlan,
    workflows: dict[str, tuple[Workflow, tuple[str, ...]]],
    present: set[str],
    evaluated: list[tuple[str, str]],
) -> None:
    primaries = [step.key for step in plan.steps if isinstance(step, (Run, Skip, Download))]
    every_key = {key for _, keys in workflows.values() for key in keys}
    if sorted(primaries) != sorted(every_key):
        raise ReplayError("every key of the sweep needs exactly one primary step")
    wanted: set[tuple[str, str]] = set()
    for name, (workflow, keys) in workflows.items():
        if keys and keys[-1] not in present:
            raise ReplayError(f"the final output of {name!r} is not present at the end")
        fingerprint = workflow.evaluation.fingerprint
        wanted |= {(keys[i], fingerprint) for i in workflow.evaluation.wanted(workflow.chain)}
    if sorted(evaluated) != sorted(wanted):
        raise ReplayError(f"evaluated {sorted(evaluated)}, wanted {sorted(wanted)}")
