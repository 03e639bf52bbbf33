from pathlib import Path
from typing import Any

import pytest

from modelcache.planner import SnapshotEntry
from modelcache.store import (
    AccessDenied,
    EntryNotFound,
    LayeredStore,
    LocalStore,
    Manifest,
    MemoryStore,
    Store,
    StoreError,
    StoreUnavailable,
    blob_name,
)

from .entries import entry


@pytest.fixture
def tiers() -> tuple[MemoryStore, MemoryStore]:
    return MemoryStore(tier="local"), MemoryStore(tier="cloud")


def test_layered_store_satisfies_the_store_port(tiers) -> None:
    assert isinstance(LayeredStore(*tiers), Store)


def test_snapshot_merges_both_tiers_asking_the_cloud_once(tmp_path: Path, tiers) -> None:
    local, cloud = tiers
    both_source, both = entry(tmp_path, "both", {"m": b"12"})
    cloud_source, cloud_only = entry(tmp_path, "cloud", {"m": b"123"})
    local.publish(both_source, both)
    cloud.publish(both_source, both)
    cloud.publish(cloud_source, cloud_only)
    cloud.write_evaluation(both.key, "ev-cloud", {})
    local.write_evaluation(both.key, "ev-local", {})
    before = cloud.requests
    keys = (key for key in [both.key, cloud_only.key, *(f"{i:064x}" for i in range(300))])
    listing = LayeredStore(local, cloud).snapshot(keys)
    assert cloud.requests == before + 1
    assert listing == sorted(
        [
            SnapshotEntry(
                key=both.key,
                in_local=True,
                in_cloud=True,
                size=2,
                run_seconds=1.25,
                evaluations={"ev-cloud", "ev-local"},
            ),
            SnapshotEntry(key=cloud_only.key, in_cloud=True, size=3, run_seconds=1.25),
        ],
        key=lambda item: item.key,
    )


def test_snapshot_propagates_an_unreachable_cloud(tmp_path: Path, tiers) -> None:
    local, cloud = tiers
    cloud.unavailable = True
    with pytest.raises(StoreUnavailable):
        LayeredStore(local, cloud).snapshot(["a" * 64])


def test_without_a_cloud_the_local_tier_is_the_whole_store(tmp_path: Path, tiers) -> None:
    local, _cloud = tiers
    source, manifest = entry(tmp_path, "a", {"m": b"1"})
    layered = LayeredStore(local, None)
    assert layered.snapshot([manifest.key]) == []
    with pytest.raises(EntryNotFound):
        layered.fetch(manifest.key, tmp_path / "out")
    assert layered.publish(source, manifest) is True
    assert layered.fetch(manifest.key, tmp_path / "out") == manifest


def test_fetch_prefers_the_local_tier(tmp_path: Path, tiers) -> None:
    local, cloud = tiers
    source, manifest = entry(tmp_path, "a", {"m": b"1"})
    local.publish(source, manifest)
    cloud.publish(source, manifest)
    before = cloud.requests
    LayeredStore(local, cloud).fetch(manifest.key, tmp_path / "out")
    assert cloud.requests == before
    assert (tmp_path / "out" / "m").read_bytes() == b"1"


def test_fetch_from_the_cloud_fills_the_local_tier(tmp_path: Path) -> None:
    local, cloud = LocalStore(tmp_path / "cache"), MemoryStore()
    source, manifest = entry(tmp_path, "a", {"m": b"from the cloud"})
    cloud.publish(source, manifest)
    layered = LayeredStore(local, cloud)
    assert layered.fetch(manifest.key, tmp_path / "first") == manifest
    assert local.read_manifest(manifest.key) == manifest
    cloud.unavailable = True
    layered.fetch(manifest.key, tmp_path / "second")
    assert (tmp_path / "second" / "m").read_bytes() == b"from the cloud"


def test_a_corrupt_local_entry_falls_through_to_the_cloud(tmp_path: Path, tiers) -> None:
    local, cloud = tiers
    source, manifest = entry(tmp_path, "a", {"m": b"good"})
    local.publish(source, manifest)
    cloud.publish(source, manifest)
    local.put_object(blob_name(manifest.files[0].sha256), b"evil")
    LayeredStore(local, cloud).fetch(manifest.key, tmp_path / "out")
    assert (tmp_path / "out" / "m").read_bytes() == b"good"


def test_a_cloud_miss_after_a_local_miss_is_not_found(tmp_path: Path, tiers) -> None:
    with pytest.raises(EntryNotFound):
        LayeredStore(*tiers).fetch("a" * 64, tmp_path / "out")
    assert not (tmp_path / "out").exists()


class RefusingStore(MemoryStore):
    """A local tier that cannot be written."""

    def publish(self, source: Path, manifest: Manifest, *, progress: Any = None) -> bool:
        raise AccessDenied("read-only cache")

    def write_evaluation(self, key: str, fingerprint: str, result: Any) -> None:
        raise AccessDenied("read-only cache")


def test_a_failed_fill_is_reported_and_the_fetch_still_succeeds(tmp_path: Path) -> None:
    cloud = MemoryStore()
    source, manifest = entry(tmp_path, "a", {"m": b"1"})
    cloud.publish(source, manifest)
    cloud.write_evaluation(manifest.key, "ev", {"x": 1})
    failures: list[tuple[str, StoreError]] = []
    layered = LayeredStore(
        RefusingStore(tier="local"),
        cloud,
        on_fill_error=lambda *, key, error: failures.append((key, error)),
    )
    assert layered.fetch(manifest.key, tmp_path / "out") == manifest
    assert layered.read_evaluation(manifest.key, "ev") == {"x": 1}
    assert [(key, str(error)) for key, error in failures] == [
        (manifest.key, "read-only cache"),
        (manifest.key, "read-only cache"),
    ]


def test_publish_goes_to_the_local_tier_only(tmp_path: Path, tiers) -> None:
    local, cloud = tiers
    source, manifest = entry(tmp_path, "a", {"m": b"1"})
    layered = LayeredStore(local, cloud)
    assert layered.publish(source, manifest) is True
    assert layered.local is local
    assert layered.cloud is cloud
    assert local.snapshot([manifest.key]) != []
    assert cloud.snapshot([manifest.key]) == []


def test_read_evaluation_falls_back_to_the_cloud_and_keeps_it_locally(tiers) -> None:
    local, cloud = tiers
    cloud.write_evaluation("a" * 64, "ev", {"accuracy": 0.5})
    assert LayeredStore(local, cloud).read_evaluation("a" * 64, "ev") == {"accuracy": 0.5}
    assert local.read_evaluation("a" * 64, "ev") == {"accuracy": 0.5}


@pytest.mark.parametrize("write_through", [False, True])
def test_write_evaluation_reaches_the_cloud_only_with_write_through(
    tiers, write_through: bool
) -> None:
    local, cloud = tiers
    LayeredStore(local, cloud, write_through=write_through).write_evaluation(
        "a" * 64, "ev", {"accuracy": 0.5}
    )
    assert local.read_evaluation("a" * 64, "ev") == {"accuracy": 0.5}
    assert bool(cloud.snapshot(["a" * 64])) is write_through
