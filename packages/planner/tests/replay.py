"""A small interpreter that replays a plan against an in-memory cache, checking as it goes.

The cache holds both tiers, as the snapshot describes them. Replaying a plan applies each step
to it and fails (:class:`ReplayError`) the moment a step could not be executed as written:
a run whose input is not present, a download of something the cloud does not hold, an upload
of something not present locally or already in the cloud, an evaluation with no model. What
the replay leaves behind is a new snapshot: plan again against it to check idempotence.

The policy decides what the plan may *see*: an output in a disabled tier is not present. What
the replay *writes* (a run's output into the local tier, an upload into the cloud) is written
whatever the policy, as a runner would.
"""

from __future__ import annotations

import hashlib

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
    Upload,
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
    ran: list[str] = []
    downloaded: list[str] = []
    uploaded: list[str] = []
    evaluated: list[str] = []
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
        key = step.key
        match step:
            case Run(input_key=input_key):
                expected_input = keys[index - 1] if index else None
                if input_key != expected_input:
                    raise ReplayError(f"{step}: runs on the wrong input")
                if input_key is not None and input_key not in present:
                    raise ReplayError(f"{step}: its input is not present")
                present.add(key)
                ran.append(key)
                entry = cache.entry(key)
                cache.update(
                    key,
                    in_local=True,
                    size=recorded_size(key) if entry.size is None else entry.size,
                    run_seconds=(
                        recorded_run_seconds(key)
                        if entry.run_seconds is None
                        else entry.run_seconds
                    ),
                )
            case Download():
                if not _visible_cloud(cache, key, policy):
                    raise ReplayError(f"{step}: the cloud does not hold it")
                if step.size != cache.entry(key).size:
                    raise ReplayError(f"{step}: the size is not the snapshot's")
                present.add(key)
                downloaded.append(key)
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
                uploaded.append(key)
                cache.update(key, in_cloud=True)
            case Evaluate(cached=True):
                any_cache = policy.enable_local_cache or policy.enable_cloud_cache
                if not any_cache or evaluation.fingerprint not in cache.entry(key).evaluations:
                    raise ReplayError(f"{step}: no result is cached")
                evaluated.append(key)
            case Evaluate():
                if key not in present:
                    raise ReplayError(f"{step}: the model to evaluate is not present")
                evaluated.append(key)
                evaluations = cache.entry(key).evaluations | {evaluation.fingerprint}
                cache.update(key, evaluations=evaluations)
    if index != len(keys) - 1:
        raise ReplayError("the plan has no primary step for some passes")
    if keys and keys[-1] not in present:
        raise ReplayError("the final output is not present at the end")
    wanted = sorted(evaluation.wanted(chain))
    if evaluated != [keys[i] for i in wanted]:
        raise ReplayError(f"evaluated {evaluated}, wanted the outputs of passes {wanted}")
    return Replay(
        ran=tuple(ran),
        downloaded=tuple(downloaded),
        uploaded=tuple(uploaded),
        evaluated=tuple(evaluated),
        present=frozenset(present),
    )
