"""What a store remembers of its own requests: fewer round trips, never a manifest naming a
blob that is gone or damaged (``modelcache.azure._sightings``)."""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest
from azure.storage.blob import ContainerClient

from modelcache.azure import AzureBlobStore, BlobLeaseLocks, LeaseClaim
from modelcache.azure._sightings import SNAPSHOT_TRUSTED_SECONDS, Sightings
from modelcache.store import (
    BLOBS_PREFIX,
    ENTRIES_PREFIX,
    LOCKS_PREFIX,
    blob_name,
    lock_name,
    manifest_name,
)

from .model_dirs import BLOCK, Entry, read_tree, sha, write_entry

pytestmark = pytest.mark.azurite

SHARED = {
    "model.onnx": os.urandom(3 * BLOCK),  # blocks: the HEAD path
    "config.json": b'{"hidden": 8}',
    "tokenizer/vocab.txt": b"a\nb\nc\n",
}


class Requests:
    """Every request a store sends, as ``"<object> <operation>"``: ``blob HEAD``,
    ``blob refresh if-match``, ``lock create``... Give it as ``client_options``."""

    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()
        self._lock = threading.Lock()

    @property
    def client_options(self) -> dict[str, Any]:
        return {"raw_request_hook": self._on_request}

    def take(self) -> Counter[str]:
        with self._lock:
            kinds, self.kinds = self.kinds, Counter()
        return kinds

    def _on_request(self, request: Any) -> None:
        http = request.http_request
        parts = urlsplit(http.url)
        comp = parse_qs(parts.query).get("comp", [""])[0]
        path = unquote(parts.path)
        kind = "listing" if comp == "list" else _object_of(path)
        with self._lock:
            self.kinds[f"{kind} {_operation_of(http.method, comp, http.headers)}"] += 1


def _object_of(path: str) -> str:
    for prefix, kind in ((ENTRIES_PREFIX, "manifest"), (BLOBS_PREFIX, "blob"),
                         (LOCKS_PREFIX, "lock")):  # fmt: skip
        if f"/{prefix}" in path:
            return kind
    return "other"


def _operation_of(method: str, comp: str, headers: Any) -> str:
    if comp == "metadata":
        return "refresh if-match" if headers.get("If-Match") else "refresh"
    if comp == "lease":
        return f"lease {headers.get('x-ms-lease-action')}"
    if comp in ("block", "blocklist", "list"):
        return comp
    if method == "PUT":
        return "create" if headers.get("If-None-Match") == "*" else "PUT"
    return method


@pytest.fixture
def requests() -> Requests:
    return Requests()


@pytest.fixture
def store(make_store: Callable[..., AzureBlobStore], requests: Requests) -> AzureBlobStore:
    return make_store(counter=requests)  # anything with client_options will do


def two_entries(tmp_path: Path) -> tuple[Entry, Entry]:
    """Two entries sharing three blobs; the second adds a small file of its own."""
    first = write_entry(tmp_path / "first", SHARED, label="first")
    second = write_entry(
        tmp_path / "second", {**SHARED, "extra.txt": os.urandom(100)}, label="second"
    )
    return first, second


def assert_fetches_back(store: AzureBlobStore, entry: Entry, destination: Path) -> None:
    store.fetch(entry.key, destination)
    assert read_tree(destination) == entry.files


# -- blobs ----------------------------------------------------------------------------------


def test_a_publish_refreshes_the_blobs_this_store_wrote_on_condition_without_a_head(
    store: AzureBlobStore, requests: Requests, tmp_path: Path
) -> None:
    first, second = two_entries(tmp_path)
    assert store.publish(first.source, first.manifest)
    requests.take()

    assert store.publish(second.source, second.manifest)

    # The three shared blobs: one refresh each, If-Match the ETag the first publish left;
    # the new small file: one create-only PUT; the manifest: a HEAD, then its PUT.
    assert requests.take() == {
        "blob refresh if-match": 3,
        "blob create": 1,
        "manifest HEAD": 1,
        "manifest create": 1,
    }
    assert_fetches_back(store, second, tmp_path / "fetched")


def test_a_publish_by_another_store_heads_and_refreshes_what_is_stored(
    make_store: Callable[..., AzureBlobStore], requests: Requests, tmp_path: Path
) -> None:
    first, second = two_entries(tmp_path)
    assert make_store().publish(first.source, first.manifest)
    other = make_store(counter=requests)
    progress: list[int] = []

    assert other.publish(second.source, second.manifest, progress=progress.append)

    # Small blobs: a create-only PUT, refused, then a HEAD and a refresh; the big one: a
    # HEAD and a refresh. Only the new file's bytes count as sent.
    assert requests.take() == {
        "blob create": 3,
        "blob HEAD": 3,
        "blob refresh": 3,
        "manifest HEAD": 1,
        "manifest create": 1,
    }
    assert sum(progress) == len(second.files["extra.txt"])
    assert_fetches_back(other, second, tmp_path / "fetched")


@pytest.mark.parametrize("path", ["model.onnx", "config.json"], ids=["blocks", "single-put"])
def test_a_blob_deleted_by_someone_else_between_two_publishes_is_sent_again(
    store: AzureBlobStore, raw: ContainerClient, tmp_path: Path, path: str
) -> None:
    first, second = two_entries(tmp_path)
    assert store.publish(first.source, first.manifest)
    raw.delete_blob(blob_name(sha(SHARED[path])))  # a prune of no grace, a person, a bug

    assert store.publish(second.source, second.manifest)

    assert raw.get_blob_client(blob_name(sha(SHARED[path]))).exists()
    assert_fetches_back(store, second, tmp_path / "fetched")


@pytest.mark.parametrize("path", ["model.onnx", "config.json"], ids=["blocks", "single-put"])
def test_a_blob_damaged_to_another_size_after_this_store_wrote_it_is_written_again(
    store: AzureBlobStore, raw: ContainerClient, tmp_path: Path, path: str
) -> None:
    first, second = two_entries(tmp_path)
    assert store.publish(first.source, first.manifest)
    raw.upload_blob(blob_name(sha(SHARED[path])), SHARED[path][:-1], overwrite=True)

    assert store.publish(second.source, second.manifest)

    assert_fetches_back(store, second, tmp_path / "fetched")


def test_a_prune_that_listed_a_remembered_blob_cannot_delete_it_once_it_is_reused(
    store: AzureBlobStore, make_store: Callable[..., AzureBlobStore], tmp_path: Path
) -> None:
    first, second = two_entries(tmp_path)
    assert store.publish(first.source, first.manifest)
    pruner = make_store()
    (listed,) = pruner.list_objects(blob_name(sha(SHARED["config.json"])))

    assert store.publish(second.source, second.manifest)  # reuses it: a refresh, If-Match

    assert pruner.delete_object(listed) is False
    assert_fetches_back(store, second, tmp_path / "fetched")


# -- single flight ------------------------------------------------------------------------


@pytest.fixture
def locks(store: AzureBlobStore) -> BlobLeaseLocks:
    return BlobLeaseLocks.of(store, poll_seconds=0.2)


def test_a_claim_of_a_key_the_snapshot_lacks_creates_the_lock_first_and_skips_the_heads(
    store: AzureBlobStore, locks: BlobLeaseLocks, requests: Requests, tmp_path: Path
) -> None:
    entry = write_entry(tmp_path / "entry", SHARED)
    assert store.snapshot([entry.key]) == []
    requests.take()

    claim = locks.claim(entry.key, max_wait=0)
    assert claim.outcome == "held"
    # The lock blob made first; no manifest HEAD: nobody had ever claimed the entry.
    assert requests.take() == {"lock create": 1, "lock lease acquire": 1}

    assert store.publish(entry.source, entry.manifest)
    claim.release()
    kinds = requests.take()
    # No manifest HEAD before the blobs (the claim vouched), no release (published).
    assert "manifest HEAD" not in kinds
    assert "lock lease release" not in kinds
    assert not claim.held


def test_a_claim_whose_lock_blob_exists_still_looks_for_the_manifest(
    store: AzureBlobStore,
    locks: BlobLeaseLocks,
    make_store: Callable[..., AzureBlobStore],
    raw: ContainerClient,
    requests: Requests,
) -> None:
    key = "c" * 64
    assert store.snapshot([key]) == []
    # Another runner claimed the key since, computed it and published it.
    BlobLeaseLocks.of(make_store()).claim(key, max_wait=0).release()
    raw.upload_blob(manifest_name(key), b"{}")
    requests.take()

    claim = locks.claim(key, max_wait=0)

    assert claim.outcome == "published"
    assert requests.take() == {
        "lock create": 1,
        "lock lease acquire": 1,
        "manifest HEAD": 1,
        "lock lease release": 1,
    }


def test_a_claim_without_a_recent_snapshot_acquires_first(
    locks: BlobLeaseLocks, requests: Requests
) -> None:
    locks.claim("d" * 64, max_wait=0).release()
    assert requests.take() == {
        "lock lease acquire": 2,  # the first finds no lock blob
        "lock create": 1,
        "manifest HEAD": 1,
        "lock lease release": 1,
    }


def test_a_holder_that_published_lets_its_lease_lapse_and_a_waiter_uses_the_entry(
    store: AzureBlobStore,
    locks: BlobLeaseLocks,
    make_store: Callable[..., AzureBlobStore],
    raw: ContainerClient,
    tmp_path: Path,
) -> None:
    entry = write_entry(tmp_path / "entry", SHARED)
    holder = locks.claim(entry.key, max_wait=0)
    result: list[LeaseClaim] = []
    waiter = BlobLeaseLocks.of(make_store(), poll_seconds=0.2)
    thread = threading.Thread(target=lambda: result.append(waiter.claim(entry.key, max_wait=20)))
    thread.start()
    time.sleep(0.5)

    assert store.publish(entry.source, entry.manifest)
    holder.release()
    thread.join()

    (claim,) = result
    assert claim.outcome == "published"
    assert claim.waited < 3.0
    lock = raw.get_blob_client(lock_name(entry.key))
    assert str(lock.get_blob_properties().lease.state) == "leased"  # until it lapses


def test_a_holder_that_did_not_publish_releases(
    locks: BlobLeaseLocks, raw: ContainerClient, requests: Requests
) -> None:
    claim = locks.claim("e" * 64, max_wait=0)
    requests.take()
    claim.release()
    assert requests.take() == {"lock lease release": 1}
    assert str(raw.get_blob_client(lock_name("e" * 64)).get_blob_properties().lease.state) == (
        "available"
    )


# -- the sightings themselves -------------------------------------------------------------


def test_a_snapshot_vouches_for_an_absent_manifest_only_for_a_while() -> None:
    now = [100.0]
    sightings = Sightings(clock=lambda: now[0])
    sightings.listed(["a", "b"], present=["b"])
    assert sightings.listed_absent("a")
    assert not sightings.listed_absent("b")
    now[0] += SNAPSHOT_TRUSTED_SECONDS
    assert not sightings.listed_absent("a")


def test_a_manifest_seen_ends_what_a_snapshot_or_a_claim_vouched() -> None:
    sightings = Sightings()
    sightings.listed(["a"], present=[])
    sightings.claimed("a")
    since = sightings.now()
    sightings.exists("a")
    assert not sightings.listed_absent("a")
    assert not sightings.take_claimed("a")
    assert sightings.published_since("a", since)
    sightings.gone("a")
    assert not sightings.published_since("a", since)


def test_a_claim_vouches_for_one_publish() -> None:
    sightings = Sightings()
    sightings.claimed("a")
    assert sightings.take_claimed("a")
    assert not sightings.take_claimed("a")


def test_a_blob_is_remembered_by_its_etag_at_its_size() -> None:
    sightings = Sightings()
    sightings.saw_blob("f" * 64, 10, '"0x1"')
    assert sightings.blob_etag("f" * 64, 10) == '"0x1"'
    assert sightings.blob_etag("f" * 64, 11) is None
    sightings.saw_blob("f" * 64, 10, '"0x2"')
    assert sightings.blob_etag("f" * 64, 10) == '"0x2"'
