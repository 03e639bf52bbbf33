"""Properties of make_sweep_plan on generated sweeps: workflows sharing prefixes of each other's
chains, over one or two input models, each with its own evaluation.

The replay interpreter (``replay.py``) executes the segments in every order a scheduler draws,
step by step and side by side; brute force over every assignment of ways to a small tree says
what the cheapest sweep costs; :func:`make_plan` says what one workflow's plan is.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Sequence

from hypothesis import example, given, settings
from hypothesis import strategies as st

from modelcache.planner import (
    SWEEP_FORMAT,
    CachePolicy,
    Cost,
    Download,
    Plan,
    Run,
    Skip,
    Snapshot,
    Sweep,
    SweepPlan,
    Workflow,
    chain_keys,
    dumps,
    estimate_cost,
    loads,
    make_plan,
    make_sweep_plan,
    structure,
    unstructure,
)

from .replay import MemoryCache, replay_sweep
from .strategies import SweepWorld, World, sweep_worlds, worlds
from .sweep_examples import CHEAPER_TO_DOWNLOAD_BOTH, DOWNLOADED_FOR_TWO, ONE_EVALUATOR_CACHED
from .ways import WAYS, Way, allowed, cost_at_most

# A sweep example costs several chain examples to draw and check; the properties that reason
# about every step (replay, brute force) get half the profile's examples, the rest fewer, so
# that this module stays within a few seconds in the ci profile.
HALF = settings(max_examples=max(10, settings.default.max_examples // 2))
THIRD = settings(max_examples=max(10, settings.default.max_examples // 3))
QUARTER = settings(max_examples=max(10, settings.default.max_examples // 4))


def plan(world: SweepWorld, snapshot: Snapshot | None = None) -> SweepPlan:
    snapshot = world.snapshot if snapshot is None else snapshot
    return make_sweep_plan(world.sweep, snapshot, world.policy)


def parents(sweep: Sweep) -> dict[str, str | None]:
    """Each key's input: the key before it in any chain that has it, None for the model."""
    result: dict[str, str | None] = {}
    for workflow in sweep.workflows:
        keys = chain_keys(workflow.chain)
        for i, key in enumerate(keys):
            result[key] = keys[i - 1] if i else None
    return result


def children(sweep: Sweep) -> dict[str, set[str]]:
    result: dict[str, set[str]] = {}
    for key, parent in parents(sweep).items():
        result.setdefault(key, set())
        if parent is not None:
            result.setdefault(parent, set()).add(key)
    return result


def required(world: SweepWorld) -> dict[str, bool]:
    """Which outputs must be present at the end: every workflow's final output, and those a
    workflow wants evaluated with no result cached for its evaluator."""
    policy = world.policy
    any_cache = policy.enable_local_cache or policy.enable_cloud_cache
    must = dict.fromkeys(world.keys, False)
    for workflow in world.sweep.workflows:
        keys = chain_keys(workflow.chain)
        if keys:
            must[keys[-1]] = True
        for i in workflow.evaluation.wanted(workflow.chain):
            entry = world.snapshot.get(keys[i])
            cached = any_cache and entry is not None
            if not (cached and workflow.evaluation.fingerprint in entry.evaluations):
                must[keys[i]] = True
    return must


# Executability --------------------------------------------------------------------------------


# How a scheduler picks among the segments ready to take a step: by position, the last when
# the number is too large; the first when the schedule runs out.
schedules = st.lists(st.integers(min_value=0, max_value=3), max_size=30)


def following(schedule: Sequence[int]) -> Callable[[Sequence[int]], int]:
    picks = iter(schedule)

    def pick(ready: Sequence[int]) -> int:
        return ready[min(next(picks, 0), len(ready) - 1)]

    return pick


@HALF
@given(sweep_worlds(), schedules)
@example(CHEAPER_TO_DOWNLOAD_BOTH, [])
@example(ONE_EVALUATOR_CACHED, [])
@example(DOWNLOADED_FOR_TWO, [3] * 5)
def test_replaying_the_segments_in_any_order_they_allow_meets_every_workflows_needs(
    world: SweepWorld, schedule: list[int]
) -> None:
    plan_ = plan(world)
    cache = MemoryCache(world.snapshot)
    done = replay_sweep(plan_, world.sweep, world.policy, cache, following(schedule))
    assert len(done.ran) == len(set(done.ran)), "a key ran twice"
    assert len(done.downloaded) == len(set(done.downloaded)), "a key was downloaded twice"
    assert len(done.uploaded) == len(set(done.uploaded)), "a key was uploaded twice"
    assert all(step.reason for step in plan_.steps), "every step says why it is there"


@THIRD
@given(sweep_worlds())
def test_segments_are_the_runs_of_only_children_and_each_key_runs_at_most_once(
    world: SweepWorld,
) -> None:
    plan_ = plan(world)
    below, above = children(world.sweep), parents(world.sweep)
    made = {step.key for step in plan_.steps if isinstance(step, (Run, Download))}
    segment_of: dict[str, int] = {}
    for segment in plan_.segments:
        keys = segment.keys
        assert keys, "a segment holds at least one output"
        assert segment_of.keys().isdisjoint(keys), "a key is in one segment only"
        segment_of.update(dict.fromkeys(keys, segment.id))
        for before, after in itertools.pairwise(keys):
            assert below[before] == {after}, "inside a segment, each output has one child"
        first, last = keys[0], keys[-1]
        assert above[first] is None or len(below[above[first]]) != 1
        assert len(below[last]) != 1, "a segment ends where the tree branches, or at a leaf"
        for item, again in itertools.pairwise(segment.steps):
            if not isinstance(again.step, (Run, Skip, Download)):
                assert again.step.key == item.step.key, "uploads, evaluations follow their output"
        parent = above[first]
        if isinstance(segment.steps[0].step, Run) and parent in made:
            # Its input is made by another segment: it waits for that one, and only for it.
            assert segment.after == (segment_of[parent],)
            assert not plan_.segments[segment_of[parent]].idle
        else:
            assert segment.after == ()
    assert sorted(segment_of) == sorted(world.keys), "every key has exactly one primary step"
    runs = [step.key for step in plan_.steps if isinstance(step, Run)]
    assert len(runs) == len(set(runs))
    for path, workflow in zip(plan_.workflows, world.sweep.workflows, strict=True):
        assert path.keys == chain_keys(workflow.chain)
        assert list(path.segments) == list(dict.fromkeys(segment_of[key] for key in path.keys))


@THIRD
@given(sweep_worlds())
def test_after_executing_a_sweep_planning_again_runs_and_uploads_nothing(
    world: SweepWorld,
) -> None:
    local = CachePolicy(
        upload_to_cloud=world.policy.upload_to_cloud, bandwidth=world.policy.bandwidth
    )
    cache = MemoryCache(world.snapshot)
    replay_sweep(make_sweep_plan(world.sweep, world.snapshot, local), world.sweep, local, cache)
    again = make_sweep_plan(world.sweep, cache.snapshot(), local)
    assert again.totals.runs == again.totals.uploads == again.totals.downloads == 0
    assert again.totals.evaluations == 0


# Cost -----------------------------------------------------------------------------------------


@THIRD
@given(sweep_worlds())
@example(CHEAPER_TO_DOWNLOAD_BOTH)
def test_a_sweep_costs_no_more_than_its_workflows_planned_one_by_one(world: SweepWorld) -> None:
    snapshot, policy = world.snapshot, world.policy
    alone = Cost()
    for workflow in world.sweep.workflows:
        single = make_plan(workflow.chain, workflow.evaluation, snapshot, policy)
        alone = alone + estimate_cost(single, snapshot, policy)
    together = estimate_cost(plan(world), snapshot, policy)
    assert cost_at_most(together, alone), f"sweep {together}, one by one {alone}"


@THIRD
@given(worlds())
def test_with_one_workflow_the_sweep_is_the_plan_of_make_plan(world: World) -> None:
    sweep = Sweep(workflows=[Workflow(name="w", chain=world.chain, evaluation=world.evaluation)])
    single = make_plan(world.chain, world.evaluation, world.snapshot, world.policy)
    plan_ = make_sweep_plan(sweep, world.snapshot, world.policy)
    assert len(plan_.segments) == (1 if world.chain.passes else 0)
    assert plan_.steps == single.steps
    assert {item.workflow for segment in plan_.segments for item in segment.steps} <= {"w"}
    assert plan_.totals == single.totals
    assert estimate_cost(plan_, world.snapshot, world.policy) == estimate_cost(
        single, world.snapshot, world.policy
    )


def ways_of(plan_: SweepPlan) -> dict[str, Way]:
    ways: dict[str, Way] = {}
    for step in plan_.steps:
        match step:
            case Run():
                ways[step.key] = "run"
            case Download():
                ways[step.key] = "download"
            case Skip(location="local"):
                ways[step.key] = "local"
            case Skip():
                ways[step.key] = "skip"
    return ways


def valid(ways: dict[str, Way], world: SweepWorld) -> bool:
    """Every required output present; every run's input present (the model always is)."""
    must, above = required(world), parents(world.sweep)
    for key, way in ways.items():
        if must[key] and way == "skip":
            return False
        parent = above[key]
        if way == "run" and parent is not None and ways[parent] == "skip":
            return False
    return True


def cheapest_by_brute_force(world: SweepWorld) -> Cost:
    snapshot, policy = world.snapshot, world.policy
    options = [[w for w in WAYS if allowed(w, snapshot.get(key), policy)] for key in world.keys]
    best: Cost | None = None
    for choice in itertools.product(*options):
        ways = dict(zip(world.keys, choice, strict=True))
        if not valid(ways, world):
            continue
        steps: list[Run | Download] = []
        for key, way in ways.items():
            if way == "run":
                steps.append(Run(pass_name="p", key=key, reason="", input_key=None))
            elif way == "download":
                steps.append(Download(pass_name="p", key=key, reason="", size=None))
        cost = estimate_cost(Plan(keys=world.keys, steps=steps), snapshot, policy)
        if best is None or cost < best:
            best = cost
    assert best is not None, "some assignment is always valid: run everything"
    return best


@HALF
@given(
    st.one_of(
        sweep_worlds(max_keys=6),
        sweep_worlds(max_keys=6, bandwidth=True),
    )
)
@example(CHEAPER_TO_DOWNLOAD_BOTH)
def test_no_sweep_is_cheaper_than_the_planners_on_small_trees(world: SweepWorld) -> None:
    plan_ = plan(world)
    ways = ways_of(plan_)
    assert all(allowed(way, world.snapshot.get(key), world.policy) for key, way in ways.items())
    assert valid(ways, world)
    cost = estimate_cost(plan_, world.snapshot, world.policy)
    best = cheapest_by_brute_force(world)
    assert cost.unknown == best.unknown
    assert cost_at_most(cost, best), f"planner {cost}, brute force {best}"


# Purity and the wire --------------------------------------------------------------------------


@QUARTER
@given(sweep_worlds())
def test_sweep_planning_is_a_pure_function_of_its_inputs(world: SweepWorld) -> None:
    before = (dumps(world.sweep), dumps(world.snapshot), dumps(world.policy))
    first = plan(world)
    assert (dumps(world.sweep), dumps(world.snapshot), dumps(world.policy)) == before
    assert plan(world) == first
    again = make_sweep_plan(
        structure(unstructure(world.sweep), Sweep),
        structure(unstructure(world.snapshot), Snapshot),
        structure(unstructure(world.policy), CachePolicy),
    )
    assert again == first


@QUARTER
@given(sweep_worlds())
def test_a_sweep_and_its_plan_survive_json(world: SweepWorld) -> None:
    assert loads(dumps(world.sweep), Sweep) == world.sweep
    plan_ = plan(world)
    assert loads(dumps(plan_), SweepPlan) == plan_


@QUARTER
@given(sweep_worlds())
def test_the_sweep_plan_json_is_as_documented(world: SweepWorld) -> None:
    data = json.loads(dumps(plan(world)))
    assert list(data) == ["format", "workflows", "segments", "totals"]
    assert data["format"] == SWEEP_FORMAT
    for path in data["workflows"]:
        assert list(path) == ["name", "final_key", "keys", "segments"]
    for i, segment in enumerate(data["segments"]):
        assert list(segment) == ["id", "after", "steps"]
        assert segment["id"] == i
        for step in segment["steps"]:
            assert list(step)[:5] == ["kind", "workflow", "pass", "key", "reason"]
