"""A store held in memory: the reference implementation of the Store port.

It keeps one dictionary from layout names (``modelcache-v1/blobs/sha256/ab/ab12...``) to
bytes, exactly the objects a directory or a blob container would hold, so it follows the
same rules with none of their failure modes. The contract test checks every other store
against the same model it is checked against; embedders use it to try the runner out.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from modelcache.planner import (
    CorruptEntry,
    EntryNotFound,
    InvalidManifest,
    Manifest,
    SnapshotEntry,
    StoreUnavailable,
    blob_name,
    evaluation_name,
    manifest_name,
    parse_evaluation_name,
)

from .entries import (
    CHUNK_SIZE,
    evaluation_bytes,
    manifest_bytes,
    parse_evaluation,
    source_chunks,
    write_entry,
)
from .store import Tier

__all__ = ["MemoryStore"]


class MemoryStore:
    """An in-memory :class:`~modelcache.runner.store.Store`, safe to share between threads.

    :param tier: which tier it stands for in snapshots (``cloud`` by default, as it usually
        stands in for a blob container in tests).

    Besides the port's methods it offers what tests need:

    * :attr:`requests`, the number of port calls made so far (one per method call: a
      snapshot is one request whatever the number of keys, as the port promises);
    * :attr:`unavailable`: set it to True and every port call raises ``StoreUnavailable``,
      as an unreachable cloud store would;
    * :meth:`get_object` and :meth:`put_object`, raw access to the stored objects by layout
      name, bypassing every check (to corrupt a blob or plant a hostile manifest).
    """

    def __init__(self, tier: Tier = "cloud") -> None:
        self.tier: Tier = tier
        self.requests = 0
        self.unavailable = False
        self._objects: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"MemoryStore(tier={self.tier!r}, objects={len(self._objects)})"

    def snapshot(self, keys: Iterable[str]) -> list[SnapshotEntry]:
        """What the store holds for ``keys``; see :meth:`Store.snapshot`. One request.

        An entry whose manifest cannot be trusted is listed as absent (a miss), with its
        evaluation results if it has any.
        """
        wanted = dict.fromkeys(keys)
        with self._lock:
            self._begin()
            objects = dict(self._objects)
        evaluations: dict[str, set[str]] = {}
        for name in objects:
            parsed = parse_evaluation_name(name)
            if parsed is not None and parsed[0] in wanted:
                evaluations.setdefault(parsed[0], set()).add(parsed[1])
        listing: list[SnapshotEntry] = []
        for key in wanted:
            try:
                data = objects.get(manifest_name(key))
                manifest = None if data is None else Manifest.from_json(data, key=key)
            except InvalidManifest:
                manifest = None
            fingerprints = evaluations.get(key, set())
            if manifest is None and not fingerprints:
                continue
            listing.append(
                SnapshotEntry(
                    key=key,
                    in_local=manifest is not None and self.tier == "local",
                    in_cloud=manifest is not None and self.tier == "cloud",
                    size=None if manifest is None else manifest.size,
                    run_seconds=None if manifest is None else manifest.run_seconds,
                    evaluations=frozenset(fingerprints),
                )
            )
        return listing

    def read_manifest(self, key: str) -> Manifest:
        """The validated manifest of ``key``; see :meth:`Store.read_manifest`."""
        name = manifest_name(key)
        with self._lock:
            self._begin()
            data = self._objects.get(name)
        if data is None:
            raise EntryNotFound(f"no entry {key} in the memory store")
        return Manifest.from_json(data, key=key)

    def fetch(self, key: str, destination: Path) -> Manifest:
        """Write the entry's files into ``destination``; see :meth:`Store.fetch`."""
        manifest = self.read_manifest(key)
        write_entry(destination, manifest, self._blob_chunks)
        return manifest

    def publish(self, source: Path, manifest: Manifest) -> bool:
        """Publish ``source`` as ``manifest``'s entry; see :meth:`Store.publish`."""
        data = manifest_bytes(manifest)
        name = manifest_name(manifest.key)
        with self._lock:
            self._begin()
            if name in self._objects:
                return False
        for item in manifest.files:
            blob = blob_name(item.sha256)
            with self._lock:
                present = blob in self._objects
            if not present:
                content = b"".join(source_chunks(source, item))
                with self._lock:
                    self._objects.setdefault(blob, content)
        with self._lock:
            if name in self._objects:
                return False
            self._objects[name] = data
            return True

    def read_evaluation(self, key: str, fingerprint: str) -> Mapping[str, Any]:
        """The stored result of ``fingerprint`` on ``key``; see :meth:`Store.read_evaluation`."""
        name = evaluation_name(key, fingerprint)
        with self._lock:
            self._begin()
            data = self._objects.get(name)
        if data is None:
            raise EntryNotFound(f"no result of evaluator {fingerprint} for entry {key}")
        return parse_evaluation(data)

    def write_evaluation(self, key: str, fingerprint: str, result: Mapping[str, Any]) -> None:
        """Store an evaluation result, keeping an existing one; see
        :meth:`Store.write_evaluation`."""
        name = evaluation_name(key, fingerprint)
        data = evaluation_bytes(result)
        with self._lock:
            self._begin()
            self._objects.setdefault(name, data)

    def get_object(self, name: str) -> bytes | None:
        """The raw bytes stored under the layout name ``name``, if any. Not a request."""
        with self._lock:
            return self._objects.get(name)

    def put_object(self, name: str, data: bytes) -> None:
        """Store raw bytes under ``name``, replacing what is there, unchecked. Not a request."""
        with self._lock:
            self._objects[name] = bytes(data)

    def _begin(self) -> None:
        """Count a request; fail it if the store plays unavailable. Called under the lock."""
        self.requests += 1
        if self.unavailable:
            raise StoreUnavailable("the memory store is marked unavailable")

    def _blob_chunks(self, sha256: str) -> Iterator[bytes]:
        """The bytes of a blob, 1 MiB at a time."""
        with self._lock:
            content = self._objects.get(blob_name(sha256))
        if content is None:
            raise CorruptEntry(f"blob {sha256} is missing from the memory store")
        view = memoryview(content)
        for start in range(0, len(content), CHUNK_SIZE):
            yield bytes(view[start : start + CHUNK_SIZE])
