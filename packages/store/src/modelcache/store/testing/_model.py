"""The model the machine checks every store against: what one tier holds, and a layered
store's two tiers.

Theory of operation
-------------------
The model of a store is a dictionary from layout names (``docs/storage-layout.md``) to bytes,
plus a version per name that changes whenever the name is written or refreshed
(:class:`TierModel`). Every answer a store gives follows from it: a key is an entry while
its manifest is there; a fetch succeeds when every blob its files need holds exactly their
bytes; a snapshot lists the manifests and evaluation results; ``list_objects`` is the names
under a prefix; a conditional delete succeeds only while the version is the one listed. A
:class:`~modelcache.store.LayeredStore` is modelled as two such dictionaries and the rules
of its docstring (:class:`LayeredModel`): reads try the local tier and fill it from the
cloud, publishes go to the local tier only.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from typing import Any

from attrs import frozen

from modelcache.planner import SnapshotEntry, canonical_json

from .._errors import CorruptEntry, EntryNotFound, StoreError
from .._evaluations import evaluation_bytes
from .._layout import (
    blob_name,
    evaluation_name,
    manifest_name,
    parse_evaluation_name,
    parse_manifest_name,
)
from .._manifest import Manifest, manifest_bytes
from .._port import Tier

__all__ = ["LayeredModel", "ModelEntry", "TierModel", "key_of", "sha256_of"]


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def key_of(number: int) -> tuple[str, dict[str, Any]]:
    """The key numbered ``number`` of the contract's entries, and its inputs."""
    inputs = {"schema": "contract", "n": number}
    return sha256_of(canonical_json(inputs).encode()), inputs


@frozen(kw_only=True)
class ModelEntry:
    """An entry as the machine published it: its files by path, and its manifest."""

    files: Mapping[str, bytes]
    manifest: Manifest


class TierModel:
    """What one store holds: its objects by layout name, each with a version.

    ``versions[name]`` changes whenever ``name`` is written or refreshed, as a store's
    version tokens (ETags, inode and modification time) do; ``entries`` holds the files of
    each key whose manifest is there.
    """

    def __init__(self, tier: Tier, versions: Iterator[int]) -> None:
        self.tier = tier
        self.objects: dict[str, bytes] = {}
        self.versions: dict[str, int] = {}
        self.entries: dict[str, ModelEntry] = {}
        self._next_version = versions

    def put(self, name: str, data: bytes) -> None:
        self.objects[name] = data
        self.refresh(name)

    def refresh(self, name: str) -> None:
        self.versions[name] = next(self._next_version)

    def plant(self, name: str, data: bytes) -> None:
        """``data`` written under ``name`` behind the store's back; a manifest so written
        makes its key no entry (the machine plants only manifests a store must refuse)."""
        self.put(name, data)
        key = parse_manifest_name(name)
        if key is not None:
            self.entries.pop(key, None)

    def remove(self, name: str) -> None:
        del self.objects[name], self.versions[name]
        key = parse_manifest_name(name)
        if key is not None:
            self.entries.pop(key, None)  # none for a planted manifest

    def publish(self, entry: ModelEntry) -> bool:
        """Blobs first (one of the right size is kept and refreshed, any other written),
        the manifest last and only if absent."""
        name = manifest_name(entry.manifest.key)
        if name in self.objects:
            return False
        for data in entry.files.values():
            blob = blob_name(sha256_of(data))
            stored = self.objects.get(blob)
            if stored is not None and len(stored) == len(data):
                self.refresh(blob)
            else:
                self.put(blob, data)
        self.put(name, manifest_bytes(entry.manifest))
        self.entries[entry.manifest.key] = entry
        return True

    def fetch(self, key: str) -> ModelEntry | type[StoreError]:
        """The entry, or the error a fetch raises: no manifest, or a blob not as named."""
        entry = self.entries.get(key)
        if entry is None:
            return EntryNotFound
        for data in entry.files.values():
            if self.objects.get(blob_name(sha256_of(data))) != data:
                return CorruptEntry
        return entry

    def read_manifest(self, key: str) -> ModelEntry | None:
        return self.entries.get(key)

    def read_evaluation(self, key: str, fingerprint: str) -> dict[str, Any] | None:
        data = self.objects.get(evaluation_name(key, fingerprint))
        return None if data is None else dict(json.loads(data))

    def write_evaluation(self, key: str, fingerprint: str, result: Mapping[str, Any]) -> None:
        name = evaluation_name(key, fingerprint)
        if name not in self.objects:
            self.put(name, evaluation_bytes(result))

    def snapshot(self, keys: list[str]) -> dict[str, SnapshotEntry]:
        fingerprints: dict[str, set[str]] = {}
        for name in self.objects:
            parsed = parse_evaluation_name(name)
            if parsed is not None:
                fingerprints.setdefault(parsed[0], set()).add(parsed[1])
        listing: dict[str, SnapshotEntry] = {}
        for key in dict.fromkeys(keys):
            entry = self.entries.get(key)
            if entry is None and key not in fingerprints:
                continue
            listing[key] = SnapshotEntry(
                key=key,
                in_local=entry is not None and self.tier == "local",
                in_cloud=entry is not None and self.tier == "cloud",
                size=None if entry is None else entry.manifest.size,
                run_seconds=None if entry is None else entry.manifest.run_seconds,
                evaluations=frozenset(fingerprints.get(key, ())),
            )
        return listing


class LayeredModel:
    """A local :class:`TierModel` in front of a cloud one, by the rules of
    :class:`~modelcache.store.LayeredStore`: reads try the local tier (a miss or a corrupt
    entry falls through) and copy what the cloud had into the local tier; entries are
    published into the local tier only; evaluation results too, and into the cloud tier
    with ``write_through``."""

    def __init__(self, local: TierModel, cloud: TierModel | None, *, write_through: bool):
        self.local = local
        self.cloud = cloud
        self.write_through = write_through

    def publish(self, entry: ModelEntry) -> bool:
        return self.local.publish(entry)

    def fetch(self, key: str) -> ModelEntry | type[StoreError]:
        found = self.local.fetch(key)
        if isinstance(found, ModelEntry) or self.cloud is None:
            return found
        found = self.cloud.fetch(key)
        if isinstance(found, ModelEntry):
            self.local.publish(found)
        return found

    def read_manifest(self, key: str) -> ModelEntry | None:
        found = self.local.read_manifest(key)
        if found is None and self.cloud is not None:
            found = self.cloud.read_manifest(key)
        return found

    def read_evaluation(self, key: str, fingerprint: str) -> dict[str, Any] | None:
        result = self.local.read_evaluation(key, fingerprint)
        if result is None and self.cloud is not None:
            result = self.cloud.read_evaluation(key, fingerprint)
            if result is not None:
                self.local.write_evaluation(key, fingerprint, result)
        return result

    def write_evaluation(self, key: str, fingerprint: str, result: Mapping[str, Any]) -> None:
        self.local.write_evaluation(key, fingerprint, result)
        if self.cloud is not None and self.write_through:
            self.cloud.write_evaluation(key, fingerprint, result)

    def snapshot(self, keys: list[str]) -> dict[str, SnapshotEntry]:
        """Both tiers' listings merged: present where either says so, the size and run
        time the local tier knows (else the cloud tier's), the evaluations of both."""
        local = self.local.snapshot(keys)
        cloud = {} if self.cloud is None else self.cloud.snapshot(keys)
        listing: dict[str, SnapshotEntry] = {}
        for key in local.keys() | cloud.keys():
            both = [item for item in (local.get(key), cloud.get(key)) if item is not None]
            listing[key] = SnapshotEntry(
                key=key,
                in_local=any(item.in_local for item in both),
                in_cloud=any(item.in_cloud for item in both),
                size=next((item.size for item in both if item.size is not None), None),
                run_seconds=next(
                    (item.run_seconds for item in both if item.run_seconds is not None), None
                ),
                evaluations=frozenset().union(*(item.evaluations for item in both)),
            )
        return listing
