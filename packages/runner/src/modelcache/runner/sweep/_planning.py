"""A sweep's variants prepared as ``modelcache run`` prepares them, and planned as one graph.

Preparing reads (the input models, the passes' parameters, the stores' settings) and writes
nothing; planning reads the cache once for every key of the sweep, in each tier, and hands
the chains, their evaluations and that snapshot to the pure sweep planner
(:func:`modelcache.planner.make_sweep_plan`).
"""

from __future__ import annotations

from attrs import evolve, frozen

from modelcache.planner import (
    CachePolicy,
    Snapshot,
    Sweep,
    SweepPlan,
    Workflow,
    make_sweep_plan,
)
from modelcache.store import StoreUnavailable

from ..config import ConfigError, Problem
from ..errors import UserError
from ..workflow import (
    Prepared,
    RunOptions,
    UnknownPass,
    listings,
    prepare,
    prepare_known,
    snapshot,
)
from ..workflow._deliver import output_dir  # the check `run` makes before any work
from ..workflow._vetting import Read, checked, reads_of
from ._file import SweepFile

_NO_OPTIONS = RunOptions()

__all__ = ["CacheRequired", "PreparedSweep", "plan_sweep", "prepare_sweep", "sweep_snapshot"]


@frozen(kw_only=True)
class PreparedSweep:
    """Every variant prepared, in the sweep's order, and the options they were prepared with."""

    sweep: SweepFile
    options: RunOptions
    prepared: tuple[tuple[str, Prepared], ...]
    #: For a plan (``prepare_sweep(known=True)``): each variant's passes whose keys cannot be
    #: known on this machine, as (variant, pass). Their variants are prepared up to the
    #: first of them (not at all, when it is the first pass), and evaluate nothing.
    unknown: tuple[tuple[str, UnknownPass], ...] = ()

    def unknown_notes(self) -> tuple[str, ...]:
        """One note per pass whose key is unknown and why, naming the variants it concerns
        when not all; then the variants of which nothing is planned."""
        every = len(self.sweep.variants)
        found: dict[tuple[str, str], list[str]] = {}
        for name, missing in self.unknown:
            found.setdefault((missing.name, missing.why), []).append(name)
        notes = [
            f"pass {pass_name!r}: key unknown: {why}"
            + ("" if len(names) == every else f" ({_variants(names)})")
            for (pass_name, why), names in found.items()
        ]
        planned = {name for name, _ in self.prepared}
        absent = [v.name for v in self.sweep.variants if v.name not in planned]
        if absent:
            notes.append(f"nothing of {_variants(absent)} is planned: no key of theirs is known")
        return tuple(notes)

    @property
    def first(self) -> Prepared:
        """The first variant's: its stores and policy are every variant's (one cache)."""
        return self.prepared[0][1]

    def of(self, name: str) -> Prepared:
        return dict(self.prepared)[name]

    def workflows(self) -> Sweep:
        """What the sweep planner plans: each variant's chain and evaluation."""
        return Sweep(
            workflows=[
                Workflow(name=name, chain=p.chain, evaluation=p.evaluation)
                for name, p in self.prepared
            ]
        )


class CacheRequired(UserError):
    """A sweep shares its work through the cache, so it cannot run with the cache off."""

    def __init__(self) -> None:
        super().__init__(
            "a sweep shares its variants' work through the local cache; run without --no-cache"
        )


def prepare_sweep(
    sweep: SweepFile, options: RunOptions = _NO_OPTIONS, *, known: bool = False
) -> PreparedSweep:
    """Prepare every variant; check each output folder as ``run`` would, before any work.

    :param known: prepare for a plan, as ``modelcache plan`` prepares one workflow
        (:func:`~modelcache.runner.workflow.prepare_known`): what is absent from this
        machine (a hub model not downloaded, a package a pass needs) ends a variant's chain
        there instead of the command, and is listed in :attr:`PreparedSweep.unknown`.
    :raises ConfigError: naming every problem of every variant, each once, with the
        variants it concerns when not all.
    :raises CacheRequired: ``options.no_cache``.
    """
    if options.no_cache:
        raise CacheRequired()
    prepared: list[tuple[str, Prepared]] = []
    unknown: list[tuple[str, UnknownPass]] = []
    found: dict[Problem, list[str]] = {}
    for variant in sweep.variants:
        try:
            if known:
                ready, missing = prepare_known(variant.config, options)
                unknown.extend((variant.name, m) for m in missing)
                if ready is None:
                    continue
            else:
                ready = prepare(variant.config, options)
            output_dir(ready)
        except ConfigError as error:
            # A config's paths are the workflow's; in a sweep they name its file, or its
            # place in the sweep file.
            origin = f"{error.source}: $" if error.source else variant.origin
            for problem in error.problems:
                path = origin + problem.path.removeprefix("$")
                located = Problem(path=path, problem=problem.problem)
                found.setdefault(located, []).append(variant.name)
            continue
        prepared.append((variant.name, ready))
    if found:
        every = len(sweep.variants)
        raise ConfigError.of(
            problem
            if len(names) == every
            else evolve(problem, problem=f"{problem.problem} ({_variants(names)})")
            for problem, names in found.items()
        )
    return PreparedSweep(
        sweep=sweep, options=options, prepared=tuple(prepared), unknown=tuple(unknown)
    )


def _variants(names: list[str]) -> str:
    return f"variant {names[0]}" if len(names) == 1 else f"variants {', '.join(names)}"


def sweep_snapshot(prepared: PreparedSweep, *, cloud: bool = True) -> Snapshot:
    """The cache's contents for every key of the sweep: one listing per tier used."""
    keys = tuple(dict.fromkeys(key for _, p in prepared.prepared for key in p.keys))
    return snapshot(prepared.first, cloud=cloud, keys=keys)


def plan_sweep(prepared: PreparedSweep) -> tuple[SweepPlan, CachePolicy, tuple[str, ...]]:
    """What the sweep would do now. Without the cloud (and without ``--require-cloud``), the
    plan is made from the local tier. With a ``trust`` section, what its signers do not vouch
    for is left out first, as ``modelcache plan`` does for one workflow
    (:func:`~modelcache.runner.workflow.checked_plan`).

    :return: the plan, the policy it was made with, and its notes (the cloud lost, entries
        and results refused).
    :raises StoreUnavailable: the cloud did not answer, and the options require it.
    """
    if not prepared.prepared:  # a plan of which no key is known (``known=True``)
        nothing = CachePolicy()
        return make_sweep_plan(Sweep(workflows=[]), Snapshot.empty(), nothing), nothing, ()
    policy = prepared.first.policy
    notes: list[str] = []
    try:
        plan, refused = _checked(prepared, cloud=True, policy=policy)
    except StoreUnavailable as error:
        if prepared.options.require_cloud:
            raise
        notes.append(f"cloud cache unreachable ({error}); planning locally")
        policy = evolve(policy, enable_cloud_cache=False)
        plan, refused = _checked(prepared, cloud=False, policy=policy)
    return plan, policy, (*notes, *refused)


def _checked(
    prepared: PreparedSweep, *, cloud: bool, policy: CachePolicy
) -> tuple[SweepPlan, list[str]]:
    keys = tuple(dict.fromkeys(key for _, p in prepared.prepared for key in p.keys))
    found = listings(prepared.first, cloud=cloud, keys=keys)
    sweep = prepared.workflows()
    fingerprints = {name: p.evaluation.fingerprint for name, p in prepared.prepared}

    def plan(snapshot: Snapshot) -> SweepPlan:
        return make_sweep_plan(sweep, snapshot, policy)

    def reads(made: SweepPlan) -> list[Read]:
        steps = [(item.step, fingerprints[item.workflow])
                 for segment in made.segments for item in segment.steps]  # fmt: skip
        return reads_of(steps, [path.keys[-1] for path in made.workflows if path.keys])

    return checked(prepared.first, found, plan, reads)
