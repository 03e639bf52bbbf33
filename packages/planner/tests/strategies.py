"""Hypothesis strategies for the planner's inputs.

Every strategy is an ``@st.composite`` with keyword feature flags, so that a test asks for
exactly the kind of world it reasons about (``worlds(priced=False)``: no sizes or run times;
``policies(bandwidth=False)``: no recomputation; ``sweep_worlds(max_keys=6)``: a tree small
enough for brute force). Sizes, run times and bandwidths are drawn
from ranges that overlap, so that downloading and recomputing trade places often.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import Any

from attrs import evolve, frozen
from hypothesis import strategies as st

from modelcache.planner import (
    CachePolicy,
    Chain,
    Evaluation,
    HubModel,
    LocalModel,
    ModelIdentity,
    PassSpec,
    Snapshot,
    SnapshotEntry,
    Sweep,
    Workflow,
    chain_keys,
)

FINGERPRINT = "evaluator-a"
OTHER_FINGERPRINT = "evaluator-b"

keys = st.binary(min_size=32, max_size=32).map(bytes.hex)

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
)

json_values: st.SearchStrategy[Any] = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3)
    ),
    max_leaves=6,
)


# Built once: a strategy is validated when first drawn from, which costs more than the draw.
config_names = st.text(max_size=6)
repo_ids = st.text(min_size=1, max_size=12)
revisions = st.text("0123456789abcdef", min_size=1, max_size=40)
pass_names = st.text(min_size=1, max_size=8)
pass_types = st.sampled_from(["OnnxConversion", "OnnxQuantization", "Fp16", "Prune"])
pass_versions = st.sampled_from(["1", "2", "1.0.1"])
package_versions = st.dictionaries(st.sampled_from(["onnx", "torch"]), st.sampled_from(["1", "2"]))


@st.composite
def configs(draw: st.DrawFn, *, max_size: int = 2) -> dict[str, Any]:
    """A pass configuration: a JSON object."""
    return draw(st.dictionaries(config_names, json_values, max_size=max_size))


@st.composite
def models(draw: st.DrawFn, *, hub: bool = True, local: bool = True) -> ModelIdentity:
    """An input model: a pinned hub model or a local directory's digest."""
    kinds = [kind for kind, wanted in (("hub", hub), ("local", local)) if wanted]
    if draw(st.sampled_from(kinds)) == "hub":
        return HubModel(
            repo_id=draw(repo_ids),
            revision=draw(revisions),
        )
    return LocalModel(digest=draw(keys))


@st.composite
def pass_specs(draw: st.DrawFn, *, name: str | None = None, configured: bool = True) -> PassSpec:
    """One pass; ``configured=False`` leaves config and packages empty."""
    return PassSpec(
        name=name if name is not None else draw(pass_names),
        type=draw(pass_types),
        version=draw(pass_versions),
        config=draw(configs()) if configured else {},
        packages=draw(package_versions) if configured else {},
    )


@st.composite
def chains(
    draw: st.DrawFn, *, min_passes: int = 0, max_passes: int = 6, configured: bool = True
) -> Chain:
    """A model and a chain of passes named ``p0``, ``p1``, ..."""
    count = draw(st.integers(min_value=min_passes, max_value=max_passes))
    passes = [draw(pass_specs(name=f"p{i}", configured=configured)) for i in range(count)]
    return Chain(model=draw(models()), passes=passes)


targets = st.sampled_from(["none", "final", "all", "passes"])


@st.composite
def evaluations(
    draw: st.DrawFn,
    chain: Chain,
    *,
    evaluate: bool = True,
    fingerprints: Sequence[str] = (FINGERPRINT,),
) -> Evaluation:
    """Evaluation targets for ``chain``, by one of the evaluators ``fingerprints``;
    ``evaluate=False`` asks for none."""
    if not evaluate:
        return Evaluation.nothing()
    choice = draw(targets)
    fingerprint = draw(st.sampled_from(fingerprints))
    if choice == "none":
        return Evaluation.nothing()
    if choice == "final":
        return Evaluation.final(fingerprint)
    if choice == "all":
        return Evaluation.every_output(fingerprint)
    names = [spec.name for spec in chain.passes]
    return Evaluation.of(
        draw(st.sets(st.sampled_from(names)) if names else st.just(())), fingerprint
    )


sizes = st.integers(min_value=0, max_value=10**6)
run_times = st.floats(min_value=0.0, max_value=1000.0)
bandwidths = st.floats(min_value=1e3, max_value=1e6)
maybe_sizes = st.none() | sizes
maybe_run_times = st.none() | run_times
maybe_bandwidths = st.none() | bandwidths
fingerprint_sets = st.sets(st.sampled_from([FINGERPRINT, OTHER_FINGERPRINT]))
strangers_keys = st.lists(keys, max_size=3)


@st.composite
def entries(
    draw: st.DrawFn,
    key: str,
    *,
    priced: bool = True,
    complete: bool = False,
    evaluated: bool = True,
    present: bool = False,
) -> SnapshotEntry:
    """What the cache may know of ``key``. ``priced`` draws sizes and run times, each of which
    may still be missing unless ``complete``; ``present`` puts the output in at least one tier."""
    in_cloud = draw(st.booleans())
    in_local = draw(st.booleans())
    if present and not (in_cloud or in_local):
        in_cloud = True
    known = sizes if complete else maybe_sizes
    timed = run_times if complete else maybe_run_times
    return SnapshotEntry(
        key=key,
        in_cloud=in_cloud,
        in_local=in_local,
        size=draw(known) if priced else None,
        run_seconds=draw(timed) if priced else None,
        evaluations=(draw(fingerprint_sets) if evaluated else frozenset()),
    )


def split(entry: SnapshotEntry) -> list[SnapshotEntry]:
    """The entry as the two tiers would list it: one listing each, knowledge spread over both.
    Both listings agree on size and run time (or one does not know)."""
    local = SnapshotEntry(
        key=entry.key, in_local=entry.in_local, size=entry.size, evaluations=entry.evaluations
    )
    cloud = SnapshotEntry(key=entry.key, in_cloud=entry.in_cloud, run_seconds=entry.run_seconds)
    return [local, cloud]


@st.composite
def listings(
    draw: st.DrawFn,
    chain_keys_: Sequence[str],
    *,
    priced: bool = True,
    evaluated: bool = True,
    strangers: bool = True,
    split_tiers: bool = True,
) -> list[SnapshotEntry]:
    """A snapshot's listing for a chain with these keys: each key absent or with an entry,
    perhaps listed once per tier, plus entries for keys the chain does not have."""
    listing: list[SnapshotEntry] = []
    for key in chain_keys_:
        if draw(st.booleans()) and draw(st.booleans()):
            continue  # one key in four has no entry
        entry = draw(entries(key, priced=priced, evaluated=evaluated))
        if split_tiers and draw(st.booleans()):
            listing.extend(split(entry))
        else:
            listing.append(entry)
    if strangers:
        for key in draw(strangers_keys):
            listing.append(draw(entries(key, priced=priced, evaluated=evaluated)))
    return listing


@st.composite
def policies(
    draw: st.DrawFn,
    *,
    bandwidth: bool | None = None,
    disabled: bool = True,
    local: bool | None = None,
    judged: bool = False,
) -> CachePolicy:
    """A cache policy. ``bandwidth`` and ``local`` force a bandwidth and the local tier on or
    off (None: either); ``disabled=False`` never turns both caches off; ``judged`` draws the
    upload policy too (else the seed's, ``all``)."""
    enable_local = draw(st.booleans()) if local is None else local
    enable_cloud = draw(st.booleans())
    if not disabled and not (enable_local or enable_cloud):
        enable_cloud = True
    given = draw({None: maybe_bandwidths, True: bandwidths, False: st.none()}[bandwidth])
    return CachePolicy(
        enable_cloud_cache=enable_cloud,
        upload_to_cloud=draw(st.booleans()),
        enable_local_cache=enable_local,
        bandwidth=given,
        upload_policy=draw(st.sampled_from(["all", "worthwhile"])) if judged else "all",
    )


@frozen(kw_only=True)
class World:
    """Everything :func:`make_plan` takes, and the listing the snapshot was built from."""

    chain: Chain
    evaluation: Evaluation
    listing: tuple[SnapshotEntry, ...]
    policy: CachePolicy

    @cached_property
    def snapshot(self) -> Snapshot:
        return Snapshot.from_listing(self.listing)

    @cached_property
    def keys(self) -> tuple[str, ...]:
        return chain_keys(self.chain)


@st.composite
def worlds(
    draw: st.DrawFn,
    *,
    min_passes: int = 0,
    max_passes: int = 6,
    priced: bool = True,
    evaluate: bool = True,
    bandwidth: bool | None = None,
    disabled: bool = True,
    local: bool | None = None,
    strangers: bool = True,
    judged: bool = False,
) -> World:
    """A chain, its evaluation targets, a snapshot listing and a policy. The flags are those of
    :func:`chains`, :func:`evaluations`, :func:`listings` and :func:`policies`."""
    # Configurations only change keys; unconfigured passes keep examples small and fast.
    chain = draw(chains(min_passes=min_passes, max_passes=max_passes, configured=False))
    return World(
        chain=chain,
        evaluation=draw(evaluations(chain, evaluate=evaluate)),
        listing=tuple(draw(listings(chain_keys(chain), priced=priced, strangers=strangers))),
        policy=draw(policies(bandwidth=bandwidth, disabled=disabled, local=local, judged=judged)),
    )


@st.composite
def _workflow_chain(
    draw: st.DrawFn,
    earlier: Sequence[Chain],
    input_models: Sequence[ModelIdentity],
    max_passes: int,
) -> Chain:
    """A chain that shares a prefix (perhaps all of it) with an earlier one, or starts afresh
    from one of the input models."""
    if earlier and draw(st.integers(0, 3)):
        base = draw(st.sampled_from(earlier))
        length = draw(st.integers(min(1, len(base.passes)), len(base.passes)))
        model, shared = base.model, list(base.passes[:length])
    else:
        model, shared = draw(st.sampled_from(input_models)), []
    # Unconfigured passes come in few kinds, so a new pass often repeats an earlier one.
    more = draw(st.integers(0, max_passes - len(shared)))
    added = [draw(pass_specs(name="p", configured=False)) for _ in range(more)]
    return Chain(model=model, passes=_named([*shared, *added], "p"))


def _named(passes: Sequence[PassSpec], prefix: str) -> list[PassSpec]:
    return [evolve(spec, name=f"{prefix}{i}") for i, spec in enumerate(passes)]


@st.composite
def sweeps(
    draw: st.DrawFn,
    *,
    min_workflows: int = 1,
    max_workflows: int = 4,
    max_passes: int = 4,
    max_keys: int | None = None,
    evaluate: bool = True,
) -> Sweep:
    """Workflows ``w0``, ``w1``, ... sharing prefixes of each other's chains, over one or two
    input models, each with its own evaluation by one of two evaluators. A workflow names its
    passes ``p0``, ``p1``, ... or, now and then, in its own way (``w1.0``, ...), so that shared
    passes go by different names. With ``max_keys``, workflows that would bring the sweep's
    distinct keys above it are left out."""
    input_models = draw(st.lists(models(), min_size=1, max_size=2))
    chains_: list[Chain] = []
    workflows: list[Workflow] = []
    seen: set[str] = set()
    for i in range(draw(st.integers(min_workflows, max_workflows))):
        chain = draw(_workflow_chain(chains_, input_models, max_passes))
        if draw(st.integers(0, 3)) == 0:
            chain = evolve(chain, passes=_named(chain.passes, f"w{i}."))
        keys = set(chain_keys(chain))
        if max_keys is not None and len(seen | keys) > max_keys:
            continue
        seen |= keys
        chains_.append(chain)
        evaluation = draw(
            evaluations(chain, evaluate=evaluate, fingerprints=(FINGERPRINT, OTHER_FINGERPRINT))
        )
        workflows.append(Workflow(name=f"w{i}", chain=chain, evaluation=evaluation))
    return Sweep(workflows=workflows)


def sweep_keys(sweep: Sweep) -> tuple[str, ...]:
    """Every key of the sweep, once, in the order the workflows reach them."""
    keys = (key for workflow in sweep.workflows for key in chain_keys(workflow.chain))
    return tuple(dict.fromkeys(keys))


@frozen(kw_only=True)
class SweepWorld:
    """Everything :func:`make_sweep_plan` takes, and the listing the snapshot was built from."""

    sweep: Sweep
    listing: tuple[SnapshotEntry, ...]
    policy: CachePolicy

    @cached_property
    def snapshot(self) -> Snapshot:
        return Snapshot.from_listing(self.listing)

    @cached_property
    def keys(self) -> tuple[str, ...]:
        return sweep_keys(self.sweep)


@st.composite
def sweep_worlds(
    draw: st.DrawFn,
    *,
    min_workflows: int = 2,
    max_workflows: int = 4,
    max_passes: int = 4,
    max_keys: int | None = None,
    priced: bool = True,
    bandwidth: bool | None = None,
    strangers: bool = False,
) -> SweepWorld:
    """A sweep, a snapshot listing for its keys and a policy; the flags are those of
    :func:`sweeps`, :func:`listings` and :func:`policies`. At least two workflows by default:
    one is a chain, which the chain's tests cover. Entries for keys the sweep does not have
    are left out by default: the chain's tests cover them too, and they cost drawing time."""
    sweep = draw(
        sweeps(
            min_workflows=min_workflows,
            max_workflows=max_workflows,
            max_passes=max_passes,
            max_keys=max_keys,
        )
    )
    listing = draw(listings(sweep_keys(sweep), priced=priced, strangers=strangers))
    return SweepWorld(
        sweep=sweep, listing=tuple(listing), policy=draw(policies(bandwidth=bandwidth))
    )
