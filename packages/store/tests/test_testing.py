"""The store contract (``modelcache.store.testing``) catches stores that break it.

Each test runs the contract's state machine against a store with one deliberate fault and
expects it to fail; the faithful stores pass it in ``tests/test_store_contract.py``.
"""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pytest
from hypothesis import Phase, settings

from modelcache.planner import SnapshotEntry
from modelcache.store import (
    CorruptEntry,
    EntryNotFound,
    InvalidManifest,
    LayeredStore,
    Manifest,
    MemoryStore,
    Progress,
    StoredObject,
)
from modelcache.store.testing import (
    LayeredModel,
    Subject,
    TierModel,
    memory_subject,
    run_contract,
)

# No shrinking: these runs only need to fail, not to explain why.
FIND_ONLY = settings(
    settings(),
    phases=[Phase.explicit, Phase.generate],
    report_multiple_bugs=False,
    stateful_step_count=30,
    max_examples=200,
)


def subject_of(store: MemoryStore) -> Subject:
    return Subject(store=store, get_object=store.get_object, put_object=store.put_object)


def assert_contract_fails(make_subject: Callable[[Path], Subject]) -> None:
    with pytest.raises(AssertionError):
        run_contract(make_subject, settings=FIND_ONLY)


class DeletesWhatChanged(MemoryStore):
    def delete_object(self, stored: StoredObject) -> bool:
        if self.get_object(stored.name) is None:
            return False
        self.delete_raw(stored.name)
        return True


class VersionsNeverChange(MemoryStore):
    """As a store whose version token is too coarse a timestamp: a refreshed or rewritten
    object keeps the version it was listed with."""

    def _stamp(self, name: str) -> None:
        if name not in self._stamps:
            super()._stamp(name)


class OverwritesOnCreate(MemoryStore):
    def create_object(self, name: str, data: bytes) -> bool:
        self.put_object(name, data)
        return True


class ListsOnlyTheFirstPage(MemoryStore):
    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        return itertools.islice(super().list_objects(prefix), 4)


class ReadsPastTheLimit(MemoryStore):
    def read_object(self, name: str, limit: int) -> bytes | None:
        return super().read_object(name, limit + 1)


class HashesOnlyTheFirstChunk(MemoryStore):
    def hash_object(self, name: str) -> str | None:
        found = self.get_object(name)
        return None if found is None else hashlib.sha256(found[:64]).hexdigest()


@pytest.mark.parametrize(
    "store",
    [
        DeletesWhatChanged,
        VersionsNeverChange,
        OverwritesOnCreate,
        ListsOnlyTheFirstPage,
        ReadsPastTheLimit,
        HashesOnlyTheFirstChunk,
    ],
)
def test_the_contract_catches_a_maintenance_fault(store: type[MemoryStore]) -> None:
    assert_contract_fails(lambda _scratch: subject_of(store()))


class RemembersARefusedKey(MemoryStore):
    """As the Azure adapter did: a key whose manifest it once refused stays out of its
    snapshots, even once a repair removed that manifest and a valid entry was published."""

    def __init__(self) -> None:
        super().__init__()
        self.refused: set[str] = set()

    def read_manifest(self, key: str) -> Manifest:
        try:
            return super().read_manifest(key)
        except InvalidManifest:
            self.refused.add(key)
            raise

    def snapshot(self, keys: Iterable[str]) -> list[SnapshotEntry]:
        return [item for item in super().snapshot(keys) if item.key not in self.refused]


def test_the_contract_catches_a_store_that_remembers_a_refused_key() -> None:
    assert_contract_fails(lambda _scratch: subject_of(RemembersARefusedKey()))


class PublishesIntoBothTiers(LayeredStore):
    def publish(
        self, source: Path, manifest: Manifest, *, progress: Progress | None = None
    ) -> bool:
        if self.cloud is not None:
            self.cloud.publish(source, manifest)
        return super().publish(source, manifest, progress=progress)


class DoesNotFillTheLocalTier(LayeredStore):
    def fetch(self, key: str, destination: Path, *, progress: Progress | None = None) -> Manifest:
        try:
            return self.local.fetch(key, destination, progress=progress)
        except (EntryNotFound, CorruptEntry):
            if self.cloud is None:
                raise
        return self.cloud.fetch(key, destination, progress=progress)


@pytest.mark.parametrize("layered", [PublishesIntoBothTiers, DoesNotFillTheLocalTier])
def test_the_contract_catches_a_layering_fault(layered: type[LayeredStore]) -> None:
    def make(scratch: Path) -> Subject:
        subject = Subject.layered(memory_subject(scratch, tier="local"), memory_subject(scratch))
        assert isinstance(subject.store, LayeredStore)
        store = layered(subject.store.local, subject.store.cloud)
        return Subject(
            store=store,
            get_object=subject.get_object,
            put_object=subject.put_object,
            tiers=subject.tiers,
        )

    assert_contract_fails(make)


def test_a_layered_subject_plants_into_both_tiers_and_reads_the_local_first(
    tmp_path: Path,
) -> None:
    local, cloud = memory_subject(tmp_path, tier="local"), memory_subject(tmp_path)
    subject = Subject.layered(local, cloud)
    subject.put_object("modelcache-v1/runs/x", b"both")
    cloud.put_object("modelcache-v1/runs/x", b"cloud")
    assert local.get_object("modelcache-v1/runs/x") == b"both"
    assert subject.get_object("modelcache-v1/runs/x") == b"both"
    cloud.put_object("modelcache-v1/runs/y", b"cloud")
    assert subject.get_object("modelcache-v1/runs/y") == b"cloud"
    assert subject.get_object("modelcache-v1/runs/z") is None


def test_a_layered_subject_needs_two_different_tiers(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="must differ"):
        Subject.layered(memory_subject(tmp_path), memory_subject(tmp_path))


def test_the_layered_model_fills_the_local_tier_from_the_cloud() -> None:
    versions = iter(range(1, 1000))
    local, cloud = TierModel("local", versions), TierModel("cloud", versions)
    model = LayeredModel(local, cloud, write_through=False)
    cloud.write_evaluation("a" * 64, "acc", {"x": 1})
    assert model.read_evaluation("a" * 64, "acc") == {"x": 1}
    assert local.read_evaluation("a" * 64, "acc") == {"x": 1}
    model.write_evaluation("b" * 64, "acc", {"y": 2})
    assert cloud.read_evaluation("b" * 64, "acc") is None
