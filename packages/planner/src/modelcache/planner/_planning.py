"""Planning: from a chain, evaluation targets, a snapshot and a policy to a plan.

Theory of operation
-------------------
Each pass's output ends the plan in one of two states: *present* in the local tier, or
*absent* (left where it is, or nowhere). An output must be present when

* it is the workflow's final output,
* it needs evaluation and the snapshot holds no result for the evaluator, or
* the next pass runs (a pass runs on its input; the first pass's input is the model).

A present output got there in the cheapest of the ways its location allows (the table
``_WAYS`` below): it was already local (free), it is downloaded from the cloud, or its pass
runs. Running a pass whose output is cached in the cloud (*recomputing* it) is considered
only when the policy gives a bandwidth and the snapshot gives the output's size and recorded
run time, so that both the download and the run have a price to compare.

The choice is solved by dynamic programming over a forest of outputs, each output's input
its parent (:func:`choose_ways`): a chain is one branch, and a sweep's chains merged by key
are a forest (``_sweep_planning.py``). From the leaves up, each output gets two numbers: the
cheapest cost of it and everything after it when its input is absent, and when its input is
present; a run needs its input present, and one present input serves all its children. From
the roots down, each output then takes its cheapest way given its input's state. So planning
is linear in the outputs and does one dictionary look-up per output in the snapshot, whatever
its size. A cost is ``(unknown, seconds, actions)``, compared in that order: estimates that
rest on missing sizes or run times count as unknown and are avoided first, then estimated
seconds, then the number of transfers and runs. Without a cached output's size and run time,
or without a bandwidth, it is always downloaded rather than recomputed, as the seed does.

Uploads follow: with uploads on, every output that is run and not yet in the cloud, and every
output in the local tier only, is uploaded once; under the ``worthwhile`` upload policy an
intermediate output only when recomputing it costs more than moving it (``_uploads.py``).
Evaluation steps come last for each pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, TypeAlias

from attrs import evolve, frozen

from ._keys import chain_keys
from ._model import CachePolicy, Chain, Evaluation, Snapshot, SnapshotEntry
from ._plan import Download, Evaluate, Location, Plan, Run, Skip, Step, Upload
from ._sweep_plan import SweepPlan
from ._uploads import upload_verdict

__all__ = [
    "Cost",
    "View",
    "Way",
    "choose_ways",
    "estimate_cost",
    "evaluate_step",
    "make_plan",
    "primary_step",
    "result_cached",
    "upload_step",
    "view_of",
    "with_reason",
]

Way: TypeAlias = Literal["skip", "local", "download", "run"]

# (location, must be present) -> the ways an output may end up, in order of preference when
# their costs tie. A missing row would be a bug; every combination is listed.
_WAYS: dict[tuple[Location, bool], tuple[Way, ...]] = {
    ("local", False): ("skip", "local"),
    ("local", True): ("local",),
    ("cloud", False): ("skip", "download", "run"),
    ("cloud", True): ("download", "run"),
    ("nowhere", False): ("skip", "run"),
    ("nowhere", True): ("run",),
}

_SKIP_REASONS: dict[Location, str] = {
    "local": "in the local cache; not needed by anything",
    "cloud": "cached in the cloud; not needed by anything",
    "nowhere": "not cached, but nothing needs it: later outputs are cached",
}


@frozen(order=True)
class Cost:
    """An estimated cost, compared lexicographically: unknown estimates, seconds, actions."""

    unknown: int = 0
    seconds: float = 0.0
    actions: int = 0

    def __add__(self, other: Cost) -> Cost:
        return Cost(
            self.unknown + other.unknown, self.seconds + other.seconds, self.actions + other.actions
        )


_FREE = Cost()


def _download_cost(entry: SnapshotEntry | None, policy: CachePolicy) -> Cost:
    if policy.bandwidth is None:
        return Cost(actions=1)
    if entry is None or entry.size is None:
        return Cost(unknown=1, actions=1)
    return Cost(seconds=entry.size / policy.bandwidth, actions=1)


def _run_cost(entry: SnapshotEntry | None) -> Cost:
    if entry is None or entry.run_seconds is None:
        return Cost(unknown=1, actions=1)
    return Cost(seconds=entry.run_seconds, actions=1)


@frozen
class View:
    """One pass's output as the policy lets the planner see it."""

    entry: SnapshotEntry | None
    location: Location


def view_of(entry: SnapshotEntry | None, policy: CachePolicy) -> View:
    """Where the planner sees an output: in the local tier, else in the cloud, else nowhere."""
    in_local = entry is not None and entry.in_local and policy.enable_local_cache
    in_cloud = entry is not None and entry.in_cloud and policy.enable_cloud_cache
    location: Location = "local" if in_local else "cloud" if in_cloud else "nowhere"
    return View(entry=entry, location=location)


def result_cached(entry: SnapshotEntry | None, policy: CachePolicy, fingerprint: str) -> bool:
    """Whether the cache holds ``fingerprint``'s result for this output, as the policy sees it:
    evaluation results count whenever either cache is enabled, wherever they are stored."""
    any_cache = policy.enable_local_cache or policy.enable_cloud_cache
    return any_cache and entry is not None and fingerprint in entry.evaluations


def _priced(view: View, policy: CachePolicy) -> bool:
    """Whether recomputing this cloud output can be weighed against downloading it."""
    entry = view.entry
    return (
        policy.bandwidth is not None
        and entry is not None
        and entry.size is not None
        and entry.run_seconds is not None
    )


def choose_ways(
    parents: Sequence[int],
    views: Sequence[View],
    required: Sequence[bool],
    policy: CachePolicy,
) -> list[Way]:
    """The cheapest way for every output of a forest, by dynamic programming from the leaves up.

    ``parents[i]`` is the index of output *i*'s input, or -1 when its input is the model (always
    present); every parent comes before its children. A chain is the forest ``[-1, 0, 1, ...]``.
    """
    count = len(views)
    # The cheapest cost of an output's children's subtrees when the output is absent (None:
    # impossible, some child must be present and cannot run without it) and when it is present.
    below_absent: list[Cost | None] = [_FREE] * count
    below_present: list[Cost] = [_FREE] * count
    # An output's cheapest way when its input is absent (None: impossible) and when present.
    choices: list[tuple[Way | None, Way]] = [("skip", "skip")] * count
    for i in reversed(range(count)):
        if_absent, if_present = _cheapest(
            views[i], required[i], below_absent[i], below_present[i], policy
        )
        choices[i] = (None if if_absent is None else if_absent[0], if_present[0])
        parent = parents[i]
        if parent >= 0:
            known = below_absent[parent]
            below_absent[parent] = (
                None if known is None or if_absent is None else known + if_absent[1]
            )
            below_present[parent] = below_present[parent] + if_present[1]
    ways: list[Way] = []
    for i, parent in enumerate(parents):
        way = choices[i][1] if parent < 0 or ways[parent] != "skip" else choices[i][0]
        assert way is not None, "an output that cannot do without its input has it present"
        ways.append(way)
    return ways


def _cheapest(
    view: View,
    must: bool,
    below_absent: Cost | None,
    below_present: Cost,
    policy: CachePolicy,
) -> tuple[tuple[Way, Cost] | None, tuple[Way, Cost]]:
    """One output's cheapest way, with its subtree's cost: if its input is absent, if present.
    The first way of ``_WAYS`` wins a tie."""
    if_absent: tuple[Way, Cost] | None = None
    if_present: tuple[Way, Cost] | None = None
    for way in _WAYS[(view.location, must)]:
        if way == "skip":
            if below_absent is None:
                continue
            cost = below_absent
        elif way == "run":
            # Unless both are priced, a download of unknown size would lose to a timed run;
            # the rule is to download then.
            if view.location == "cloud" and not _priced(view, policy):
                continue
            cost = _run_cost(view.entry) + below_present
        elif way == "download":
            cost = _download_cost(view.entry, policy) + below_present
        else:
            cost = below_present  # already local: free
        if if_present is None or cost < if_present[1]:
            if_present = (way, cost)
        if way != "run" and (if_absent is None or cost < if_absent[1]):
            if_absent = (way, cost)
    assert if_present is not None, "every output can be made present once its input is"
    return if_absent, if_present


def _needs(chain: Chain, ways: Sequence[Way], evaluate: Sequence[bool]) -> list[list[str]]:
    count = len(chain.passes)
    needs: list[list[str]] = [[] for _ in range(count)]
    for i in range(count):
        if i == count - 1:
            needs[i].append("final output")
        if evaluate[i]:
            needs[i].append("evaluation needs it")
        if i + 1 < count and ways[i + 1] == "run":
            needs[i].append(f"input of pass {chain.passes[i + 1].name!r}, which must run")
    return needs


def primary_step(
    way: Way,
    view: View,
    name: str,
    key: str,
    input_key: str | None,
    needs: Sequence[str],
    policy: CachePolicy,
) -> Step:
    """The ``run``, ``skip`` or ``download`` step of one output; ``needs`` say why it is needed."""
    why = "; ".join(needs)
    if way == "skip":
        return Skip(
            pass_name=name, key=key, reason=_SKIP_REASONS[view.location], location=view.location
        )
    if way == "local":
        return Skip(pass_name=name, key=key, reason=f"in the local cache ({why})", location="local")
    if way == "download":
        size = view.entry.size if view.entry is not None else None
        return Download(pass_name=name, key=key, reason=f"cached in the cloud; {why}", size=size)
    if view.location == "cloud":
        assert view.entry is not None
        assert policy.bandwidth is not None
        download = _download_cost(view.entry, policy)
        reason = (
            f"cached in the cloud, but recomputing is estimated cheaper than "
            f"downloading ({view.entry.run_seconds:g} s against {download.seconds:g} s); "
            f"{why}"
        )
    else:
        reason = f"not cached; {why}"
    return Run(pass_name=name, key=key, reason=reason, input_key=input_key)


def upload_step(
    way: Way, view: View, name: str, key: str, policy: CachePolicy, *, final: bool
) -> tuple[Upload | None, str | None]:
    """The upload after an output's primary step, if it has one: runs and local-only outputs
    not yet in the cloud, with uploads on; under the ``worthwhile`` policy an intermediate
    only if worth it (:mod:`._uploads`). Also, when an upload is left out for that policy,
    why, for the primary step's reason."""
    if not policy.uploads or (view.entry is not None and view.entry.in_cloud):
        return None, None
    judged = policy.upload_policy == "worthwhile" and not final
    if way == "run":
        if judged:
            reason = (
                "computed here; uploaded if recomputing it would cost more than moving it, "
                "judged once its run time and size are known"
            )
            return Upload(pass_name=name, key=key, size=None, reason=reason,
                          if_worthwhile=True), None  # fmt: skip
        reason = "computed here and not yet in the cloud"
        return Upload(pass_name=name, key=key, size=None, reason=reason), None
    if view.location != "local":
        return None, None
    assert view.entry is not None
    reason = "in the local cache only; sharing it"
    if judged:
        verdict = upload_verdict(recompute_seconds=view.entry.run_seconds,
                                 size=view.entry.size, bandwidth=policy.bandwidth)  # fmt: skip
        if not verdict.upload:
            return None, verdict.reason
        reason = f"in the local cache only; {verdict.reason}"
    return Upload(pass_name=name, key=key, size=view.entry.size, reason=reason), None


def with_reason(step: Step, more: str) -> Step:
    """``step`` with ``more`` added to its reason."""
    return evolve(step, reason=f"{step.reason}; {more}")


def evaluate_step(name: str, key: str, cached: bool) -> Evaluate:
    """The evaluation of an output, or the reading of its cached result."""
    if cached:
        return Evaluate(
            pass_name=name,
            key=key,
            cached=True,
            reason="result cached for this evaluator; no model needed",
        )
    return Evaluate(pass_name=name, key=key, cached=False, reason="evaluation requested")


def make_plan(
    chain: Chain,
    evaluation: Evaluation,
    snapshot: Snapshot,
    policy: CachePolicy | None = None,
) -> Plan:
    """Plan a workflow run.

    :param chain: the input model and its passes.
    :param evaluation: which outputs need evaluation, by which evaluator.
    :param snapshot: the cache's contents (both tiers) at planning time.
    :param policy: which tiers may be used; defaults to the seed's (cloud on, uploads on).
    :return: the steps, in an order that can be executed as written.

    A pure function: equal arguments give equal plans. It raises
    :class:`~modelcache.planner.InvalidChain` if evaluation names a pass the chain lacks.
    """
    policy = policy if policy is not None else CachePolicy()
    keys = chain_keys(chain)
    wanted = evaluation.wanted(chain)
    views = [view_of(snapshot.get(key), policy) for key in keys]
    cached = [result_cached(view.entry, policy, evaluation.fingerprint) for view in views]
    evaluate = [i in wanted and not cached[i] for i in range(len(keys))]
    required = [evaluate[i] or i == len(keys) - 1 for i in range(len(keys))]
    ways = choose_ways(range(-1, len(keys) - 1), views, required, policy)
    needs = _needs(chain, ways, evaluate)

    steps: list[Step] = []
    for i, (spec, key, view, way) in enumerate(zip(chain.passes, keys, views, ways, strict=True)):
        input_key = keys[i - 1] if i else None
        primary = primary_step(way, view, spec.name, key, input_key, needs[i], policy)
        upload, kept = upload_step(way, view, spec.name, key, policy, final=i == len(keys) - 1)
        steps.append(primary if kept is None else with_reason(primary, kept))
        if upload is not None:
            steps.append(upload)
        if i in wanted:
            steps.append(evaluate_step(spec.name, key, cached[i]))
    return Plan(keys=keys, steps=steps)


def estimate_cost(plan: Plan | SweepPlan, snapshot: Snapshot, policy: CachePolicy) -> Cost:
    """The estimated cost of a plan's (or a sweep plan's) runs and downloads, as the planner
    weighs them."""
    total = _FREE
    for step in plan.steps:
        match step:
            case Download():
                total = total + _download_cost(snapshot.get(step.key), policy)
            case Run():
                total = total + _run_cost(snapshot.get(step.key))
    return total
