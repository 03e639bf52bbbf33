import errno
import hashlib
import multiprocessing
import os
from pathlib import Path

import pytest

from modelcache.planner import SnapshotEntry
from modelcache.store import (
    CHUNK_SIZE,
    AccessDenied,
    CorruptEntry,
    EntryNotFound,
    InvalidManifest,
    LocalStore,
    Manifest,
    Store,
    StoreConfigError,
    StoreUnavailable,
    blob_name,
    evaluation_name,
    manifest_name,
)
from modelcache.store import _local as local_store

from .entries import entry


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def stored_files(root: Path) -> dict[str, bytes]:
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_local_store_satisfies_the_store_port(tmp_path: Path) -> None:
    assert isinstance(LocalStore(tmp_path), Store)


def test_publish_lays_the_entry_out_as_documented(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "cache")
    source, manifest = entry(tmp_path, "a", {"model.onnx": b"weights", "cfg/c.json": b"{}"})
    assert store.publish(source, manifest) is True
    store.write_evaluation(manifest.key, "acc-v1", {"accuracy": 0.75})
    assert stored_files(tmp_path / "cache") == {
        f"modelcache-v1/blobs/sha256/{sha(b'weights')[:2]}/{sha(b'weights')}": b"weights",
        f"modelcache-v1/blobs/sha256/{sha(b'{}')[:2]}/{sha(b'{}')}": b"{}",
        f"modelcache-v1/entries/{manifest.key}.json": manifest.to_json(),
        f"modelcache-v1/evaluations/{manifest.key}/acc-v1.json": b'{"accuracy":0.75}',
    }


def test_a_missing_cache_directory_is_an_empty_store(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "nowhere")
    assert store.snapshot(["a" * 64]) == []
    with pytest.raises(EntryNotFound):
        store.read_manifest("a" * 64)
    with pytest.raises(EntryNotFound):
        store.read_evaluation("a" * 64, "ev")
    assert not (tmp_path / "nowhere").exists()


def test_snapshot_reads_size_and_run_time_from_the_manifest(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "cache", tier="cloud")
    source, manifest = entry(tmp_path, "a", {"m": b"12345", "n": b"678"})
    store.publish(source, manifest)
    store.write_evaluation(manifest.key, "ev", {})
    store.write_evaluation("b" * 64, "ev2", {})
    assert sorted(
        store.snapshot([manifest.key, "b" * 64, "c" * 64, "not a key", manifest.key]),
        key=lambda item: item.key,
    ) == [
        SnapshotEntry(key="b" * 64, evaluations={"ev2"}),
        SnapshotEntry(
            key=manifest.key, in_cloud=True, size=8, run_seconds=1.25, evaluations={"ev"}
        ),
    ]


def test_snapshot_lists_an_untrustworthy_manifest_as_a_miss(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "cache")
    source, manifest = entry(tmp_path, "a", {"m": b"1"})
    store.publish(source, manifest)
    store.write_evaluation(manifest.key, "ev", {})
    (tmp_path / "cache" / manifest_name(manifest.key)).write_bytes(b"{}")
    assert store.snapshot([manifest.key]) == [SnapshotEntry(key=manifest.key, evaluations={"ev"})]


def test_republishing_neither_rewrites_the_manifest_nor_its_blobs(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "cache")
    source, manifest = entry(tmp_path, "a", {"m": b"shared", "n": b"own"})
    store.publish(source, manifest)
    blob = tmp_path / "cache" / blob_name(sha(b"shared"))
    inode = blob.stat().st_ino
    other_source, other = entry(tmp_path, "b", {"x": b"shared"})
    assert store.publish(source, manifest) is False
    assert store.publish(other_source, other) is True
    assert blob.stat().st_ino == inode


def test_publish_of_a_changed_file_publishes_no_manifest(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "cache")
    source, manifest = entry(tmp_path, "a", {"m": b"before", "z": b"fine"})
    (source / "z").write_bytes(b"after")
    with pytest.raises(CorruptEntry, match="changed"):
        store.publish(source, manifest)
    with pytest.raises(EntryNotFound):
        store.read_manifest(manifest.key)
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.name.endswith(".tmp")]


def test_fetch_copies_so_the_fetched_files_can_be_changed(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "cache")
    data = os.urandom(CHUNK_SIZE + 5)
    source, manifest = entry(tmp_path, "a", {"w/model.bin": data})
    store.publish(source, manifest)
    assert store.fetch(manifest.key, tmp_path / "out") == manifest
    fetched = tmp_path / "out" / "w" / "model.bin"
    assert fetched.read_bytes() == data
    assert fetched.stat().st_nlink == 1
    fetched.write_bytes(b"edited")
    assert (tmp_path / "cache" / blob_name(sha(data))).read_bytes() == data


def test_fetch_gives_the_model_ordinary_permissions(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "cache")
    source, manifest = entry(tmp_path, "a", {"m": b"1"})
    store.publish(source, manifest)
    old = os.umask(0o022)
    try:
        store.fetch(manifest.key, tmp_path / "out")
    finally:
        os.umask(old)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o755


@pytest.mark.parametrize("damage", ["flip", "truncate", "remove", "symlink"])
def test_fetch_of_a_damaged_blob_fails_and_leaves_nothing(tmp_path: Path, damage: str) -> None:
    store = LocalStore(tmp_path / "cache")
    source, manifest = entry(tmp_path, "a", {"a": b"fine", "b": b"to be damaged"})
    store.publish(source, manifest)
    blob = tmp_path / "cache" / blob_name(sha(b"to be damaged"))
    if damage == "flip":
        blob.write_bytes(b"To be damaged")
    elif damage == "truncate":
        blob.write_bytes(b"to be")
    elif damage == "remove":
        blob.unlink()
    else:
        (tmp_path / "same-bytes").write_bytes(b"to be damaged")
        blob.unlink()
        blob.symlink_to(tmp_path / "same-bytes")
    (tmp_path / "work").mkdir()
    with pytest.raises(CorruptEntry):
        store.fetch(manifest.key, tmp_path / "work" / "out")
    assert os.listdir(tmp_path / "work") == []


def test_a_manifest_that_is_a_symlink_is_not_trusted(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "cache")
    _source, manifest = entry(tmp_path, "a", {"m": b"1"})
    (tmp_path / "elsewhere.json").write_bytes(manifest.to_json())
    path = tmp_path / "cache" / manifest_name(manifest.key)
    path.parent.mkdir(parents=True)
    path.symlink_to(tmp_path / "elsewhere.json")
    with pytest.raises(InvalidManifest, match="symbolic link"):
        store.read_manifest(manifest.key)


def test_an_oversized_manifest_is_not_read(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(local_store, "MAX_MANIFEST_SIZE", 10)
    store = LocalStore(tmp_path / "cache")
    path = tmp_path / "cache" / manifest_name("a" * 64)
    path.parent.mkdir(parents=True)
    path.write_bytes(b" " * 11)
    with pytest.raises(InvalidManifest, match="larger"):
        store.read_manifest("a" * 64)


def test_fetch_never_writes_through_a_link_at_the_destination(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "cache")
    source, manifest = entry(tmp_path, "a", {"m": b"1"})
    store.publish(source, manifest)
    (tmp_path / "target").mkdir()
    (tmp_path / "out").symlink_to(tmp_path / "target")
    with pytest.raises(FileExistsError):
        store.fetch(manifest.key, tmp_path / "out")
    assert os.listdir(tmp_path / "target") == []


def test_an_evaluation_result_once_written_stands(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "cache")
    store.write_evaluation("a" * 64, "ev", {"accuracy": 0.5})
    store.write_evaluation("a" * 64, "ev", {"accuracy": 0.9})
    assert store.read_evaluation("a" * 64, "ev") == {"accuracy": 0.5}


def test_a_corrupt_evaluation_result_is_a_corrupt_entry(tmp_path: Path) -> None:
    store = LocalStore(tmp_path / "cache")
    path = tmp_path / "cache" / evaluation_name("a" * 64, "ev")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"[1, 2]")
    with pytest.raises(CorruptEntry):
        store.read_evaluation("a" * 64, "ev")


def test_permission_denied_is_access_denied(tmp_path: Path, monkeypatch) -> None:
    def refuse(*_args: object) -> None:
        raise PermissionError(errno.EACCES, "Permission denied", "somewhere")

    monkeypatch.setattr(local_store.os, "link", refuse)
    with pytest.raises(AccessDenied, match="permission denied on somewhere"):
        LocalStore(tmp_path / "cache").write_evaluation("a" * 64, "ev", {})


def test_a_full_disk_is_unavailable_with_a_hint(tmp_path: Path, monkeypatch) -> None:
    def full(*_args: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(local_store.os, "fsync", full)
    with pytest.raises(StoreUnavailable, match="no space left"):
        LocalStore(tmp_path / "cache").write_evaluation("a" * 64, "ev", {})
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.is_file()]


def test_a_file_in_the_way_of_the_layout_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "cache").write_bytes(b"not a directory")
    source, manifest = entry(tmp_path, "a", {"m": b"1"})
    with pytest.raises(StoreConfigError, match="in the way"):
        LocalStore(tmp_path / "cache").publish(source, manifest)


def _publish_in_child(root: str, source: str, data: bytes, barrier, results) -> None:
    manifest = Manifest.from_json(data)
    barrier.wait()
    results.put(LocalStore(Path(root)).publish(Path(source), manifest))


@pytest.mark.parametrize("early_check", [True, False], ids=["as-is", "links-decide"])
def test_concurrent_processes_publishing_one_entry_agree_on_one_winner(
    tmp_path: Path, monkeypatch, early_check: bool
) -> None:
    if not early_check:
        # Every process gets past the "already there?" checks, so os.link alone decides.
        monkeypatch.setattr(local_store.os.path, "lexists", lambda _path: False)
    files = {f"part-{i}.bin": os.urandom(200_000 + i) for i in range(4)}
    files["shared.txt"] = b"same in every entry"
    source, manifest = entry(tmp_path, "a", files)
    context = multiprocessing.get_context("fork")
    count = 6
    barrier = context.Barrier(count)
    results = context.Queue()
    workers = [
        context.Process(
            target=_publish_in_child,
            args=(str(tmp_path / "cache"), str(source), manifest.to_json(), barrier, results),
        )
        for _ in range(count)
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert sorted(outcomes) == [False] * (count - 1) + [True]
    store = LocalStore(tmp_path / "cache")
    store.fetch(manifest.key, tmp_path / "out")
    assert stored_files(tmp_path / "out") == files
    for item in manifest.files:
        assert sha((tmp_path / "cache" / blob_name(item.sha256)).read_bytes()) == item.sha256
    assert not [p for p in (tmp_path / "cache").rglob("*") if p.name.endswith(".tmp")]


def test_concurrent_processes_publishing_entries_that_share_blobs(tmp_path: Path) -> None:
    shared = os.urandom(300_000)
    prepared = [
        entry(tmp_path, f"e{i}", {"shared.bin": shared, "own": bytes([i])}) for i in range(5)
    ]
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(len(prepared))
    results = context.Queue()
    workers = [
        context.Process(
            target=_publish_in_child,
            args=(str(tmp_path / "cache"), str(source), manifest.to_json(), barrier, results),
        )
        for source, manifest in prepared
    ]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=60) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert outcomes == [True] * len(prepared)
    store = LocalStore(tmp_path / "cache")
    for i, (_source, manifest) in enumerate(prepared):
        store.fetch(manifest.key, tmp_path / f"out{i}")
        assert stored_files(tmp_path / f"out{i}") == {"shared.bin": shared, "own": bytes([i])}
