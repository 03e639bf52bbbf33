"""AzureBlobStore against Azurite, through the real azure-storage-blob client."""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from azure.storage.blob import ContainerClient

from modelcache.azure import AzureBlobStore, TransferSettings
from modelcache.azure._store import SNAPSHOT_PREFIX
from modelcache.azure.testing import TrafficCounter
from modelcache.planner import SnapshotEntry, canonical_json
from modelcache.store import (
    BLOBS_PREFIX,
    ENTRIES_PREFIX,
    EVALUATIONS_PREFIX,
    LOCKS_PREFIX,
    MAX_MANIFEST_SIZE,
    RUNS_PREFIX,
    CorruptEntry,
    EntryNotFound,
    InvalidManifest,
    blob_name,
    evaluation_name,
    manifest_name,
)

from .model_dirs import BLOCK, SMALL, Entry, key_of, read_tree, sha, write_entry

pytestmark = pytest.mark.azurite

BIG = 5 * BLOCK + 123  # six staged blocks, the last one short


def model_files() -> dict[str, bytes]:
    shared = os.urandom(1000)
    return {
        "model.onnx": os.urandom(BIG),
        "model.onnx.data": os.urandom(BLOCK),  # exactly one single PUT
        "config.json": b'{"hidden": 8}',
        "tokenizer/vocab.txt": b"a\nb\nc\n",
        "tokenizer/deep/empty": b"",
        "copy-1.bin": shared,  # two files, one blob
        "copy-2.bin": shared,
    }


@pytest.fixture
def entry(tmp_path: Path) -> Entry:
    return write_entry(tmp_path / "source", model_files())


def leftovers(parent: Path) -> list[str]:
    return sorted(os.listdir(parent))


def test_a_published_directory_fetches_back_identical(
    store: AzureBlobStore, entry: Entry, tmp_path: Path
) -> None:
    assert store.publish(entry.source, entry.manifest) is True
    destination = tmp_path / "out" / "model"

    assert store.fetch(entry.key, destination) == entry.manifest

    assert read_tree(destination) == entry.files
    assert (destination / "tokenizer" / "deep" / "empty").is_file()
    assert leftovers(destination.parent) == ["model"]
    assert store.read_manifest(entry.key) == entry.manifest


def test_publish_sends_each_distinct_blob_once_and_the_manifest_last(
    make_store: Callable[..., AzureBlobStore], entry: Entry, raw: ContainerClient
) -> None:
    counter = TrafficCounter()
    store = make_store(counter=counter)

    store.publish(entry.source, entry.manifest)

    content = sum(len(data) for data in {sha(d): d for d in entry.files.values()}.values())
    manifest_size = len(entry.manifest.to_json())
    block_list = counter.bytes_sent - content - manifest_size  # the XML of the one commit
    assert 0 < block_list < 100 * 6
    # HEADs: the manifest and the one big blob (each small one goes in one create-only PUT,
    # with no HEAD first). PUTs: 6 blocks + 1 commit for the big file, 5 single PUTs, the
    # manifest.
    assert counter.methods == {"HEAD": 2, "PUT": 13}
    names = set(raw.list_blob_names())
    assert names == {manifest_name(entry.key)} | {blob_name(sha(d)) for d in entry.files.values()}


def test_publishing_an_entry_that_exists_returns_false_and_sends_no_content(
    make_store: Callable[..., AzureBlobStore], entry: Entry
) -> None:
    counter = TrafficCounter()
    store = make_store(counter=counter)
    assert store.publish(entry.source, entry.manifest) is True
    counter.reset()

    assert store.publish(entry.source, entry.manifest) is False

    assert counter.bytes_sent == 0
    assert counter.methods.keys() == {"HEAD"}


def test_republishing_with_one_file_changed_sends_only_that_file(
    make_store: Callable[..., AzureBlobStore], entry: Entry, tmp_path: Path
) -> None:
    counter = TrafficCounter()
    store = make_store(counter=counter)
    store.publish(entry.source, entry.manifest)
    changed = {**entry.files, "config.json": b'{"hidden": 16}'}
    second = write_entry(tmp_path / "second", changed, label="second")
    counter.reset()

    assert store.publish(second.source, second.manifest) is True

    assert counter.bytes_sent == len(b'{"hidden": 16}') + len(second.manifest.to_json())
    # The changed file and the manifest, plus one bodiless refresh per blob kept.
    kept = len({item.sha256 for item in second.manifest.files}) - 1
    assert counter.methods["PUT"] == 2 + kept
    destination = tmp_path / "fetched"
    store.fetch(second.key, destination)
    assert read_tree(destination) == changed


# Half the racers send model.onnx in one PUT, half in blocks: a PUT or a commit of one
# racer discards the others' staged blocks.
ONE_PUT = TransferSettings(max_concurrency=4, block_size=BLOCK, single_put_size=BIG)


@pytest.mark.parametrize("mixed", [False, True], ids=["same-settings", "blocks-and-puts"])
def test_racing_publishers_exactly_one_wins_and_the_entry_is_intact(
    make_store: Callable[..., AzureBlobStore], entry: Entry, tmp_path: Path, mixed: bool
) -> None:
    racers = 6
    stores = [make_store(ONE_PUT if mixed and i % 2 else SMALL) for i in range(racers)]
    barrier = threading.Barrier(racers)
    results: list[bool | BaseException] = [False] * racers

    def publish(index: int) -> None:
        barrier.wait()
        try:
            results[index] = stores[index].publish(entry.source, entry.manifest)
        except BaseException as error:  # reported below, with the others
            results[index] = error

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(results, key=str) == [False] * (racers - 1) + [True]
    destination = tmp_path / "fetched"
    stores[0].fetch(entry.key, destination)
    assert read_tree(destination) == entry.files


@pytest.mark.parametrize("path", ["config.json", "model.onnx"], ids=["single-put", "blocks"])
def test_a_file_changed_after_hashing_aborts_publish_before_it_is_stored(
    store: AzureBlobStore, entry: Entry, raw: ContainerClient, path: str
) -> None:
    original = entry.files[path]
    (entry.source / path).write_bytes(bytes([original[0] ^ 1]) + original[1:])

    with pytest.raises(CorruptEntry, match=repr(path)):
        store.publish(entry.source, entry.manifest)

    names = set(raw.list_blob_names())
    assert blob_name(sha(original)) not in names
    assert manifest_name(entry.key) not in names


def test_a_file_that_grew_after_hashing_aborts_publish(
    store: AzureBlobStore, entry: Entry, raw: ContainerClient
) -> None:
    with (entry.source / "model.onnx").open("ab") as stream:
        stream.write(b"more")

    with pytest.raises(CorruptEntry, match=r"model\.onnx"):
        store.publish(entry.source, entry.manifest)

    assert manifest_name(entry.key) not in set(raw.list_blob_names())


def test_publish_rewrites_a_blob_damaged_to_another_size(
    store: AzureBlobStore, entry: Entry, raw: ContainerClient, tmp_path: Path
) -> None:
    name = blob_name(sha(entry.files["model.onnx"]))
    raw.upload_blob(name, b"truncated")

    assert store.publish(entry.source, entry.manifest) is True

    store.fetch(entry.key, tmp_path / "fetched")
    assert read_tree(tmp_path / "fetched") == entry.files


def test_publish_stores_blobs_an_upload_cut_off_midway_left_uncommitted(
    store: AzureBlobStore, entry: Entry, raw: ContainerClient, tmp_path: Path
) -> None:
    # A block staged and never committed by a publisher that died (its block IDs have the
    # store's form): no blob, though Azurite refuses a create-only PUT of one.
    for path in ("model.onnx", "config.json"):
        client = raw.get_blob_client(blob_name(sha(entry.files[path])))
        client.stage_block(f"{uuid.uuid4().hex}{0:06d}", entry.files[path][:BLOCK])

    assert store.publish(entry.source, entry.manifest) is True

    store.fetch(entry.key, tmp_path / "fetched")
    assert read_tree(tmp_path / "fetched") == entry.files


@pytest.mark.parametrize(
    ("path", "damage"),
    [
        ("model.onnx", lambda data: data[:-1] + bytes([data[-1] ^ 1])),  # same size, last block
        ("model.onnx", lambda data: data[: BLOCK * 2]),  # shorter
        ("model.onnx", lambda data: data + b"!"),  # longer
        ("config.json", lambda data: data.upper()),
        ("tokenizer/deep/empty", lambda data: b"x"),
    ],
    ids=["flipped-bit", "truncated", "extended", "small-file", "empty-file"],
)
def test_fetch_of_a_damaged_blob_raises_and_leaves_nothing(
    store: AzureBlobStore,
    entry: Entry,
    raw: ContainerClient,
    tmp_path: Path,
    path: str,
    damage: Callable[[bytes], bytes],
) -> None:
    store.publish(entry.source, entry.manifest)
    raw.upload_blob(blob_name(sha(entry.files[path])), damage(entry.files[path]), overwrite=True)
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()

    with pytest.raises(CorruptEntry, match=repr(path)):
        store.fetch(entry.key, sandbox / "model")

    assert leftovers(sandbox) == []


def test_fetch_with_a_missing_blob_raises_corrupt_entry(
    store: AzureBlobStore, entry: Entry, raw: ContainerClient, tmp_path: Path
) -> None:
    store.publish(entry.source, entry.manifest)
    raw.delete_blob(blob_name(sha(entry.files["tokenizer/vocab.txt"])))

    (tmp_path / "sandbox").mkdir()

    with pytest.raises(CorruptEntry, match=r"'tokenizer/vocab\.txt'.*missing"):
        store.fetch(entry.key, tmp_path / "sandbox" / "model")

    assert leftovers(tmp_path / "sandbox") == []


def hostile_manifest(path: str, data: bytes = b"evil") -> tuple[str, bytes]:
    key, inputs = key_of("hostile")
    document = {
        "format": "modelcache-manifest/1",
        "key": key,
        "model_type": "onnx",
        "files": [{"path": path, "size": len(data), "sha256": sha(data)}],
        "key_inputs": inputs,
        "producer": "attacker",
        "run_seconds": None,
        "created": "",
    }
    return key, json.dumps(document).encode()


@pytest.mark.parametrize("path", ["../escape", "/tmp/escape", "a/../../escape", "..", "a\\..\\b"])
def test_fetch_of_a_manifest_with_an_unsafe_path_writes_nothing(
    store: AzureBlobStore, raw: ContainerClient, tmp_path: Path, path: str
) -> None:
    key, document = hostile_manifest(path)
    raw.upload_blob(manifest_name(key), document)
    raw.upload_blob(blob_name(sha(b"evil")), b"evil")
    sandbox = tmp_path / "sandbox" / "work"
    sandbox.mkdir(parents=True)

    with pytest.raises(InvalidManifest):
        store.fetch(key, sandbox / "model")

    assert [p.name for p in (tmp_path / "sandbox").rglob("*")] == ["work"]


def test_fetch_of_a_manifest_stored_under_another_key_is_refused(
    store: AzureBlobStore, entry: Entry, raw: ContainerClient, tmp_path: Path
) -> None:
    store.publish(entry.source, entry.manifest)
    other, _ = key_of("other")
    raw.upload_blob(manifest_name(other), entry.manifest.to_json())

    (tmp_path / "sandbox").mkdir()

    with pytest.raises(InvalidManifest, match="expected"):
        store.fetch(other, tmp_path / "sandbox" / "model")
    assert leftovers(tmp_path / "sandbox") == []


def test_a_manifest_too_big_to_be_one_is_not_read(
    store: AzureBlobStore, raw: ContainerClient
) -> None:
    key, _ = key_of("huge")
    raw.upload_blob(manifest_name(key), b" " * (MAX_MANIFEST_SIZE + 1))

    with pytest.raises(CorruptEntry, match="larger than"):
        store.read_manifest(key)


def test_fetch_of_an_unknown_key_raises_entry_not_found(
    store: AzureBlobStore, tmp_path: Path
) -> None:
    with pytest.raises(EntryNotFound):
        store.fetch(key_of("nothing")[0], tmp_path / "model")
    assert leftovers(tmp_path) == []


def test_fetch_refuses_an_existing_destination(
    store: AzureBlobStore, entry: Entry, tmp_path: Path
) -> None:
    store.publish(entry.source, entry.manifest)
    (tmp_path / "model").mkdir()

    with pytest.raises(FileExistsError):
        store.fetch(entry.key, tmp_path / "model")


def test_fetch_downloads_in_ranged_gets_of_one_block(
    make_store: Callable[..., AzureBlobStore], entry: Entry, tmp_path: Path
) -> None:
    counter = TrafficCounter()
    store = make_store(counter=counter)
    store.publish(entry.source, entry.manifest)
    counter.reset()

    store.fetch(entry.key, tmp_path / "model")

    # The manifest, 6 ranges of model.onnx, one for each of the 5 other non-empty files;
    # the empty file costs a HEAD.
    assert counter.methods == {"GET": 1 + 6 + 5, "HEAD": 1}
    assert counter.bytes_received == sum(map(len, entry.files.values())) + len(
        entry.manifest.to_json()
    )


def test_snapshot_reports_entries_sizes_run_times_and_evaluations(
    store: AzureBlobStore, entry: Entry, raw: ContainerClient
) -> None:
    store.publish(entry.source, entry.manifest)
    store.write_evaluation(entry.key, "accuracy-v1", {"accuracy": 0.9})
    store.write_evaluation(entry.key, "latency-v1", {"ms": 3})
    evaluated_only, _ = key_of("pruned")
    store.write_evaluation(evaluated_only, "accuracy-v1", {"accuracy": 0.5})
    planted, _ = key_of("planted without metadata")
    raw.upload_blob(manifest_name(planted), b"{}")
    unknown, _ = key_of("unknown")

    listing = store.snapshot([entry.key, evaluated_only, planted, unknown, entry.key])

    assert listing == sorted(
        [
            SnapshotEntry(
                key=entry.key,
                in_cloud=True,
                size=sum(map(len, entry.files.values())),
                run_seconds=1.5,
                evaluations={"accuracy-v1", "latency-v1"},
            ),
            SnapshotEntry(key=evaluated_only, evaluations={"accuracy-v1"}),
            SnapshotEntry(key=planted, in_cloud=True),
        ],
        key=lambda item: item.key,
    )


def test_snapshot_of_no_keys_sends_nothing(make_store: Callable[..., AzureBlobStore]) -> None:
    counter = TrafficCounter()
    assert make_store(counter=counter).snapshot([]) == []
    assert counter.requests == 0


def test_snapshot_is_one_request_for_1_10_or_100_keys(
    make_store: Callable[..., AzureBlobStore], raw: ContainerClient
) -> None:
    keys = [key_of(f"entry {i}")[0] for i in range(100)]
    for key in keys:
        raw.upload_blob(manifest_name(key), b"{}", metadata={"size": "10"})
        raw.upload_blob(evaluation_name(key, "accuracy-v1"), b"{}")
    counter = TrafficCounter()
    store = make_store(counter=counter)
    cost = {}
    for count in (1, 10, 100):
        counter.reset()
        listing = store.snapshot(keys[:count])
        assert [item.key for item in listing] == sorted(keys[:count])
        cost[count] = counter.requests

    assert cost == {1: 1, 10: 1, 100: 1}  # manifests and evaluations in one listing


def test_the_snapshot_s_listing_holds_manifests_and_evaluations_only() -> None:
    assert ENTRIES_PREFIX.startswith(SNAPSHOT_PREFIX)
    assert EVALUATIONS_PREFIX.startswith(SNAPSHOT_PREFIX)
    others = (BLOBS_PREFIX, RUNS_PREFIX, LOCKS_PREFIX)
    assert not [prefix for prefix in others if prefix.startswith(SNAPSHOT_PREFIX)]


def test_an_evaluation_result_reads_back_and_is_never_replaced(store: AzureBlobStore) -> None:
    key, _ = key_of("evaluated")
    store.write_evaluation(key, "accuracy-v1", {"accuracy": 0.9, "per_class": [1, 2]})
    store.write_evaluation(key, "accuracy-v1", {"accuracy": 0.1})

    assert store.read_evaluation(key, "accuracy-v1") == {"accuracy": 0.9, "per_class": [1, 2]}


def test_reading_an_absent_evaluation_raises_entry_not_found(store: AzureBlobStore) -> None:
    with pytest.raises(EntryNotFound, match="accuracy-v1"):
        store.read_evaluation(key_of("nothing")[0], "accuracy-v1")


@pytest.mark.parametrize("stored", [b"[1, 2]", b"not json", b"\xff"])
def test_an_evaluation_that_is_not_a_json_object_is_corrupt(
    store: AzureBlobStore, raw: ContainerClient, stored: bytes
) -> None:
    key, _ = key_of("evaluated")
    raw.upload_blob(evaluation_name(key, "accuracy-v1"), stored)

    with pytest.raises(CorruptEntry, match=r"not JSON|not a JSON object"):
        store.read_evaluation(key, "accuracy-v1")


def test_an_evaluation_is_stored_as_canonical_json(
    store: AzureBlobStore, raw: ContainerClient
) -> None:
    key, _ = key_of("evaluated")
    store.write_evaluation(key, "accuracy-v1", {"b": 1, "a": 2})

    stored = raw.download_blob(evaluation_name(key, "accuracy-v1")).readall()
    assert stored == canonical_json({"a": 2, "b": 1}).encode()


def test_transfers_work_with_one_request_at_a_time(
    make_store: Callable[..., AzureBlobStore], entry: Entry, tmp_path: Path
) -> None:
    store = make_store(TransferSettings(max_concurrency=1, block_size=BLOCK, single_put_size=1))

    assert store.publish(entry.source, entry.manifest) is True
    store.fetch(entry.key, tmp_path / "model")
    assert read_tree(tmp_path / "model") == entry.files


def test_the_store_describes_itself_without_secrets(store: AzureBlobStore) -> None:
    assert store.tier == "cloud"
    assert "AccountKey" not in repr(store)
    assert store.settings == SMALL
