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

The choice is a shortest path over the chain, solved left to right by dynamic programming
with two states per pass, so planning is linear in the chain and does one dictionary look-up
per pass in the snapshot, whatever its size. A cost is ``(unknown, seconds, actions)``,
compared in that order: estimates that rest on missing sizes or run times count as unknown
and are avoided first, then estimated seconds, then the number of transfers and runs. Without
a cached output's size and run time, or without a bandwidth, it is always downloaded rather
than recomputed, as the seed does.

Uploads follow: with uploads on, every output that is run and not yet in the cloud, and every
output in the local tier only, is uploaded once. Evaluation steps come last for each pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, TypeAlias

from attrs import frozen

from ._keys import chain_keys
from ._model import CachePolicy, Chain, Evaluation, Snapshot, SnapshotEntry
from ._plan import Download, Evaluate, Location, Plan, Run, Skip, Step, Upload

__all__ = ["Cost", "estimate_cost", "make_plan"]

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
class _View:
    """One pass's output as the policy lets the planner see it."""

    entry: SnapshotEntry | None
    location: Location
    in_cloud: bool
    evaluated: bool


def _view(entry: SnapshotEntry | None, policy: CachePolicy, fingerprint: str) -> _View:
    in_local = entry is not None and entry.in_local and policy.enable_local_cache
    in_cloud = entry is not None and entry.in_cloud and policy.enable_cloud_cache
    location: Location = "local" if in_local else "cloud" if in_cloud else "nowhere"
    any_cache = policy.enable_local_cache or policy.enable_cloud_cache
    evaluated = any_cache and entry is not None and fingerprint in entry.evaluations
    return _View(entry=entry, location=location, in_cloud=in_cloud, evaluated=evaluated)


def _priced(view: _View, policy: CachePolicy) -> bool:
    """Whether recomputing this cloud output can be weighed against downloading it."""
    entry = view.entry
    return (
        policy.bandwidth is not None
        and entry is not None
        and entry.size is not None
        and entry.run_seconds is not None
    )


def _way_cost(way: Way, view: _View, policy: CachePolicy) -> Cost:
    return _download_cost(view.entry, policy) if way == "download" else _FREE


def _choose(views: Sequence[_View], required: Sequence[bool], policy: CachePolicy) -> list[Way]:
    """The cheapest way for every output, by dynamic programming over (pass, present?)."""
    # absent / present: the cheapest cost of outputs 0..i with output i absent / present, or
    # None when that state is impossible. Before the first pass the model is present, free.
    absent: Cost | None = None
    present: Cost | None = _FREE
    # back[i][state] = (way chosen for output i, state of output i-1): a back-pointer per
    # state keeps planning linear in the chain.
    back: list[tuple[tuple[Way, bool] | None, tuple[Way, bool] | None]] = []
    for view, must in zip(views, required, strict=True):
        # Unless it runs, a pass does not care whether its input is present: take the cheaper.
        if absent is not None and (present is None or absent <= present):
            cheapest, cheapest_state = absent, False
        else:
            assert present is not None
            cheapest, cheapest_state = present, True
        new_absent: Cost | None = None
        new_present: Cost | None = None
        to_absent: tuple[Way, bool] | None = None
        to_present: tuple[Way, bool] | None = None
        for way in _WAYS[(view.location, must)]:
            if way == "run":
                # Unless both are priced, a download of unknown size would lose to a timed run;
                # the rule is to download then.
                recompute = view.location == "cloud"
                if present is None or (recompute and not _priced(view, policy)):
                    continue
                cost, prev_state = present + _run_cost(view.entry), True
            else:
                cost, prev_state = cheapest + _way_cost(way, view, policy), cheapest_state
            if way == "skip":
                if new_absent is None or cost < new_absent:
                    new_absent, to_absent = cost, (way, prev_state)
            elif new_present is None or cost < new_present:
                new_present, to_present = cost, (way, prev_state)
        absent, present = new_absent, new_present
        back.append((to_absent, to_present))
    ways: list[Way] = []
    state = True  # the final output is always present
    for to_absent, to_present in reversed(back):
        pointer = to_present if state else to_absent
        assert pointer is not None
        way, state = pointer
        ways.append(way)
    ways.reverse()
    return ways


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


def _primary(
    way: Way,
    view: _View,
    name: str,
    key: str,
    input_key: str | None,
    needs: list[str],
    policy: CachePolicy,
) -> Step:
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
    views = [_view(snapshot.get(key), policy, evaluation.fingerprint) for key in keys]
    evaluate = [i in wanted and not views[i].evaluated for i in range(len(keys))]
    required = [evaluate[i] or i == len(keys) - 1 for i in range(len(keys))]
    ways = _choose(views, required, policy)
    needs = _needs(chain, ways, evaluate)

    steps: list[Step] = []
    for i, (spec, key, view, way) in enumerate(zip(chain.passes, keys, views, ways, strict=True)):
        input_key = keys[i - 1] if i else None
        steps.append(_primary(way, view, spec.name, key, input_key, needs[i], policy))
        if policy.uploads and not (view.entry is not None and view.entry.in_cloud):
            if way == "run":
                steps.append(
                    Upload(
                        pass_name=spec.name,
                        key=key,
                        size=None,
                        reason="computed here and not yet in the cloud",
                    )
                )
            elif view.location == "local":
                assert view.entry is not None
                steps.append(
                    Upload(
                        pass_name=spec.name,
                        key=key,
                        size=view.entry.size,
                        reason="in the local cache only; sharing it",
                    )
                )
        if i in wanted:
            if view.evaluated:
                steps.append(
                    Evaluate(
                        pass_name=spec.name,
                        key=key,
                        cached=True,
                        reason="result cached for this evaluator; no model needed",
                    )
                )
            else:
                steps.append(
                    Evaluate(
                        pass_name=spec.name, key=key, cached=False, reason="evaluation requested"
                    )
                )
    return Plan(keys=keys, steps=steps)


def estimate_cost(plan: Plan, snapshot: Snapshot, policy: CachePolicy) -> Cost:
    """The estimated cost of ``plan``'s runs and downloads, as the planner weighs them."""
    total = _FREE
    for step in plan.steps:
        match step:
            case Download():
                total = total + _download_cost(snapshot.get(step.key), policy)
            case Run():
                total = total + _run_cost(snapshot.get(step.key))
    return total
