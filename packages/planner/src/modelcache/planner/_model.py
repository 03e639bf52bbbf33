"""The planner's inputs: the model, the pass chain, evaluation targets, the snapshot, the policy,
and a sweep's workflows.

All are frozen attrs values with keyword-only fields. Collections are tuples, frozensets or
:class:`JsonMap`, so every value is hashable and safe to share between threads.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

from attrs import field, frozen, validators

from ._errors import InvalidChain
from ._json import JsonMap
from ._uploads import UploadPolicy

__all__ = [
    "CachePolicy",
    "Chain",
    "Evaluation",
    "HubModel",
    "LocalModel",
    "ModelIdentity",
    "PassSpec",
    "Snapshot",
    "SnapshotEntry",
    "Sweep",
    "Workflow",
]

_HEX64 = re.compile(r"[0-9a-f]{64}")


def _to_json_map(value: Mapping[str, Any] | None) -> JsonMap:
    return value if isinstance(value, JsonMap) else JsonMap(value)


def _to_packages(value: Mapping[str, str] | None) -> JsonMap:
    packages = _to_json_map(value)
    for name, version in packages.items():
        if not isinstance(version, str):
            raise InvalidChain(f"package {name!r}: version {version!r} must be a string")
    return packages


def _names(value: Iterable[str]) -> frozenset[str]:
    return frozenset(value)


def _passes(value: Iterable[PassSpec]) -> tuple[PassSpec, ...]:
    return tuple(value)


def _nonempty(_instance: object, attribute: Any, value: str) -> None:
    if not value:
        raise InvalidChain(f"{attribute.name} must not be empty")


def _sha256_hex(_instance: object, attribute: Any, value: str) -> None:
    if not _HEX64.fullmatch(value):
        raise InvalidChain(f"{attribute.name} must be 64 lowercase hex digits, got {value!r}")


@frozen(kw_only=True)
class HubModel:
    """A Hugging Face hub model, pinned to the commit its revision resolved to."""

    repo_id: str = field(validator=_nonempty)
    revision: str = field(validator=_nonempty)


@frozen(kw_only=True)
class LocalModel:
    """A model directory on disk, identified by the SHA-256 digest of its files."""

    digest: str = field(validator=_sha256_hex)


ModelIdentity: TypeAlias = HubModel | LocalModel


@frozen(kw_only=True)
class PassSpec:
    """One pass of the chain.

    ``name`` is the workflow's label for the pass and is *not* part of the cache key: renaming
    a pass keeps its cache. ``type``, ``version``, ``config`` and ``packages`` (the versions of
    the packages that affect the pass's output) are.
    """

    name: str = field(validator=_nonempty)
    type: str = field(validator=_nonempty)
    version: str = field(validator=_nonempty)
    config: JsonMap = field(factory=JsonMap, converter=_to_json_map)
    packages: JsonMap = field(factory=JsonMap, converter=_to_packages)


def _unique_names(_instance: object, _attribute: Any, passes: tuple[PassSpec, ...]) -> None:
    seen: set[str] = set()
    for spec in passes:
        if spec.name in seen:
            raise InvalidChain(f"pass name {spec.name!r} appears twice; pass names must be unique")
        seen.add(spec.name)


@frozen(kw_only=True)
class Chain:
    """The input model and the passes applied to it, in order."""

    model: ModelIdentity
    passes: tuple[PassSpec, ...] = field(converter=_passes, validator=_unique_names)

    def index(self, name: str) -> int:
        """The position of the pass called ``name``."""
        for i, spec in enumerate(self.passes):
            if spec.name == name:
                return i
        raise InvalidChain(f"no pass is called {name!r}")


EvaluationTargets: TypeAlias = Literal["none", "final", "all", "passes"]


@frozen(kw_only=True)
class Evaluation:
    """Which outputs need evaluation, and the fingerprint of the evaluator that would run.

    A cached output whose snapshot entry already holds a result for ``fingerprint`` needs no
    evaluation and so no download. Use the named constructors.
    """

    targets: EvaluationTargets = field(
        default="none", validator=validators.in_(("none", "final", "all", "passes"))
    )
    passes: frozenset[str] = field(factory=frozenset, converter=_names)
    fingerprint: str = ""

    def __attrs_post_init__(self) -> None:
        if self.passes and self.targets != "passes":
            raise InvalidChain("evaluation names passes but its targets are not 'passes'")

    @classmethod
    def nothing(cls) -> Evaluation:
        return cls(targets="none")

    @classmethod
    def final(cls, fingerprint: str) -> Evaluation:
        return cls(targets="final", fingerprint=fingerprint)

    @classmethod
    def every_output(cls, fingerprint: str) -> Evaluation:
        return cls(targets="all", fingerprint=fingerprint)

    @classmethod
    def of(cls, names: Iterable[str], fingerprint: str) -> Evaluation:
        return cls(targets="passes", passes=frozenset(names), fingerprint=fingerprint)

    def wanted(self, chain: Chain) -> frozenset[int]:
        """Indices of the chain's passes whose outputs need evaluation."""
        count = len(chain.passes)
        if self.targets == "none" or count == 0:
            return frozenset()
        if self.targets == "final":
            return frozenset({count - 1})
        if self.targets == "all":
            return frozenset(range(count))
        return frozenset(chain.index(name) for name in self.passes)


def _non_negative(_instance: object, attribute: Any, value: float | None) -> None:
    if value is not None and value < 0:
        raise InvalidChain(f"{attribute.name} must not be negative, got {value!r}")


def _positive(_instance: object, attribute: Any, value: float | None) -> None:
    if value is not None and not value > 0:
        raise InvalidChain(f"{attribute.name} must be positive, got {value!r}")


@frozen(kw_only=True)
class SnapshotEntry:
    """What the cache knows about one key.

    ``in_cloud`` and ``in_local`` say where the output model is. An entry may be in neither
    place and still carry evaluation results or a recorded run time (the model was pruned,
    its metrics were kept). ``size`` is the model's size in bytes and ``run_seconds`` how long
    the pass took when it produced the entry, where known.
    """

    key: str = field(validator=_sha256_hex)
    in_cloud: bool = False
    in_local: bool = False
    size: int | None = field(default=None, validator=_non_negative)
    run_seconds: float | None = field(default=None, validator=_non_negative)
    evaluations: frozenset[str] = field(factory=frozenset, converter=_names)

    def merged(self, other: SnapshotEntry) -> SnapshotEntry:
        """Both listings' knowledge of the same key: present where either says so."""
        return SnapshotEntry(
            key=self.key,
            in_cloud=self.in_cloud or other.in_cloud,
            in_local=self.in_local or other.in_local,
            size=self.size if self.size is not None else other.size,
            run_seconds=self.run_seconds if self.run_seconds is not None else other.run_seconds,
            evaluations=self.evaluations | other.evaluations,
        )


def _read_only(entries: Mapping[str, SnapshotEntry]) -> Mapping[str, SnapshotEntry]:
    return entries if isinstance(entries, MappingProxyType) else MappingProxyType(dict(entries))


@frozen(kw_only=True, eq=False)
class Snapshot:
    """The cache's contents as seen at planning time, by key.

    Build it with :meth:`from_listing`, which accepts entries in any order and merges entries
    listed twice (one from the local tier, one from the cloud). Planning looks keys up, so its
    cost does not depend on how many entries the snapshot holds.
    """

    entries: Mapping[str, SnapshotEntry] = field(factory=dict, converter=_read_only)

    @classmethod
    def from_listing(cls, listing: Iterable[SnapshotEntry]) -> Snapshot:
        entries: dict[str, SnapshotEntry] = {}
        for entry in listing:
            known = entries.get(entry.key)
            entries[entry.key] = entry if known is None else known.merged(entry)
        return cls(entries=MappingProxyType(entries))

    @classmethod
    def empty(cls) -> Snapshot:
        return cls()

    def get(self, key: str) -> SnapshotEntry | None:
        return self.entries.get(key)

    def listing(self) -> tuple[SnapshotEntry, ...]:
        """The entries, sorted by key."""
        return tuple(self.entries[key] for key in sorted(self.entries))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Snapshot):
            return NotImplemented
        return dict(self.entries) == dict(other.entries)

    def __len__(self) -> int:
        return len(self.entries)


@frozen(kw_only=True)
class CachePolicy:
    """How the cache may be used for this run.

    ``enable_cloud_cache`` and ``upload_to_cloud`` are the seed's ``cloud_cache_config`` flags
    (both default true). ``enable_local_cache`` lets the local tier count; with both caches
    disabled every pass runs and nothing else happens. ``bandwidth`` (bytes per second), with
    the snapshot's sizes and run times, lets the planner recompute a cached output when that
    is estimated to be cheaper than downloading it. ``upload_policy`` ``"worthwhile"`` uploads
    an intermediate output only when recomputing it costs more than moving it
    (:func:`~modelcache.planner.upload_verdict`); ``"all"``, the seed's, uploads every one.
    """

    enable_cloud_cache: bool = True
    upload_to_cloud: bool = True
    enable_local_cache: bool = True
    bandwidth: float | None = field(default=None, validator=_positive)
    upload_policy: UploadPolicy = field(
        default="all", validator=validators.in_(("all", "worthwhile"))
    )

    @property
    def uploads(self) -> bool:
        return self.enable_cloud_cache and self.upload_to_cloud


@frozen(kw_only=True)
class Workflow:
    """One workflow of a sweep: a name, the chain, and what the workflow wants evaluated.

    ``name`` labels the workflow in the sweep's plan and results; like a pass's name, it is
    not part of any key.
    """

    name: str = field(validator=_nonempty)
    chain: Chain
    evaluation: Evaluation = field(factory=Evaluation)

    def __attrs_post_init__(self) -> None:
        try:
            self.evaluation.wanted(self.chain)
        except InvalidChain as error:
            raise InvalidChain(f"workflow {self.name!r}: {error.problem}") from error


def _workflows(value: Iterable[Workflow]) -> tuple[Workflow, ...]:
    return tuple(value)


def _unique_workflows(_instance: object, _attribute: Any, value: tuple[Workflow, ...]) -> None:
    seen: set[str] = set()
    for workflow in value:
        if workflow.name in seen:
            raise InvalidChain(
                f"workflow name {workflow.name!r} appears twice; workflow names must be unique"
            )
        seen.add(workflow.name)


@frozen(kw_only=True)
class Sweep:
    """Many workflows planned as one (:func:`~modelcache.planner.make_sweep_plan`): a base
    workflow under many pass parameters or input models, or any list of workflows. Their
    order decides which workflow's names a shared pass's steps carry: the first's.
    """

    workflows: tuple[Workflow, ...] = field(converter=_workflows, validator=_unique_workflows)
