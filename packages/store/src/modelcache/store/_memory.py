"""A store held in memory: the reference implementation of the Store port.

It keeps one dictionary from layout names (``modelcache-v1/blobs/sha256/ab/ab12...``) to
bytes, exactly the objects a directory or a blob container would hold, so it follows the
same rules with none of their failure modes. The contract test checks every other store
against the same model it is checked against; embedders use it to try the runner out.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from modelcache.planner import SnapshotEntry

from ._errors import CorruptEntry, EntryNotFound, InvalidManifest, StoreUnavailable
from ._evaluations import evaluation_bytes, parse_evaluation
from ._layout import StoredObject, blob_name, evaluation_name, manifest_name, parse_evaluation_name
from ._manifest import Manifest, manifest_bytes
from ._port import Progress, Tier, listed
from ._transfer import CHUNK_SIZE, counted, source_chunks, write_entry

__all__ = ["MemoryStore"]


class MemoryStore:
    """An in-memory :class:`~modelcache.store.Store`, safe to share between threads.

    :param tier: which tier it stands for in snapshots (``cloud`` by default, as it usually
        stands in for a blob container in tests).
    :param clock: the time objects are stamped with when written (seconds since the epoch);
        tests of pruning pass a clock they control.

    It is a :class:`~modelcache.store.MaintainedStore` too.

    Besides the port's methods it offers what tests need:

    * :attr:`requests`, the number of port calls made so far (one per method call: a
      snapshot is one request whatever the number of keys, as the port promises);
    * :attr:`unavailable`: set it to True and every port call raises ``StoreUnavailable``,
      as an unreachable cloud store would;
    * :meth:`get_object` and :meth:`put_object`, raw access to the stored objects by layout
      name, bypassing every check (to corrupt a blob or plant a hostile manifest).
    """

    def __init__(self, tier: Tier = "cloud", *, clock: Callable[[], float] = time.time) -> None:
        self.tier: Tier = tier
        self.requests = 0
        self.unavailable = False
        self._clock = clock
        self._objects: dict[str, bytes] = {}
        # name -> (modified, version), set on every write and refresh. Under the lock.
        self._stamps: dict[str, tuple[float, str]] = {}
        self._versions = itertools.count(1)
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
            entry = listed(key, self.tier, manifest, evaluations.get(key, set()))
            if entry is not None:
                listing.append(entry)
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

    def fetch(self, key: str, destination: Path, *, progress: Progress | None = None) -> Manifest:
        """Write the entry's files into ``destination``; see :meth:`Store.fetch`."""
        manifest = self.read_manifest(key)
        write_entry(destination, manifest, self._blob_chunks, progress)
        return manifest

    def publish(
        self, source: Path, manifest: Manifest, *, progress: Progress | None = None
    ) -> bool:
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
                stored = self._objects.get(blob)
                # One of the wrong size was damaged from outside, and is written again.
                present = stored is not None and len(stored) == item.size
                if present:
                    self._stamp(blob)  # refreshed: a prune listed before now keeps it
            if not present:
                chunks = source_chunks(source, item)
                content = b"".join(chunks if progress is None else counted(chunks, progress))
                with self._lock:
                    stored = self._objects.get(blob)
                    if stored is None or len(stored) != item.size:
                        self._store(blob, content)
        with self._lock:
            if name in self._objects:
                return False
            self._store(name, data)
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
            if name not in self._objects:
                self._store(name, data)

    def locks(self) -> None:
        """None: an in-memory store has no single-flight locks (see :meth:`Store.locks`)."""
        return None

    def get_object(self, name: str) -> bytes | None:
        """The raw bytes stored under the layout name ``name``, if any. Not a request."""
        with self._lock:
            return self._objects.get(name)

    def put_object(self, name: str, data: bytes) -> None:
        """Store raw bytes under ``name``, replacing what is there, unchecked. Not a request."""
        with self._lock:
            self._store(name, bytes(data))

    def delete_raw(self, name: str) -> None:
        """Remove the object ``name`` if present, unconditionally. Not a request."""
        with self._lock:
            self._objects.pop(name, None)
            self._stamps.pop(name, None)

    # -- maintenance (MaintainedStore) -----------------------------------------------------

    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        """Every object under ``prefix``, by name; see :meth:`MaintainedStore.list_objects`."""
        with self._lock:
            self._begin()
            listed = [
                StoredObject(name=name, size=len(data), modified=stamp[0], version=stamp[1])
                for name, data in self._objects.items()
                if (stamp := self._stamps[name])
                if name.startswith(prefix)
            ]
        return iter(sorted(listed, key=lambda item: item.name))

    def read_object(self, name: str, limit: int) -> bytes | None:
        """A small object's bytes; see :meth:`MaintainedStore.read_object`."""
        with self._lock:
            self._begin()
            data = self._objects.get(name)
        if data is not None and len(data) > limit:
            raise CorruptEntry(f"{name} is larger than {limit} bytes")
        return data

    def hash_object(self, name: str) -> str | None:
        """The SHA-256 of an object; see :meth:`MaintainedStore.hash_object`."""
        with self._lock:
            self._begin()
            data = self._objects.get(name)
        return None if data is None else hashlib.sha256(data).hexdigest()

    def delete_object(self, stored: StoredObject) -> bool:
        """Delete an unchanged object; see :meth:`MaintainedStore.delete_object`."""
        with self._lock:
            self._begin()
            stamp = self._stamps.get(stored.name)
            if stamp is None or stamp[1] != stored.version:
                return False
            del self._objects[stored.name], self._stamps[stored.name]
            return True

    def create_object(self, name: str, data: bytes) -> bool:
        """Create a small object if absent; see :meth:`MaintainedStore.create_object`."""
        with self._lock:
            self._begin()
            if name in self._objects:
                return False
            self._store(name, bytes(data))
            return True

    def _store(self, name: str, data: bytes) -> None:
        """Put an object and stamp it. Called under the lock."""
        self._objects[name] = data
        self._stamp(name)

    def _stamp(self, name: str) -> None:
        """A new modification time and version for ``name``. Called under the lock."""
        self._stamps[name] = (self._clock(), str(next(self._versions)))

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
