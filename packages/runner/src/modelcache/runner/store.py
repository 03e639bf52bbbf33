"""The storage port: what the runner needs from a cache store.

Implementations satisfy :class:`Store` structurally (none imports this module):
``modelcache.runner.local_store.LocalStore`` (a directory), ``modelcache.runner.memory_store
.MemoryStore`` (a dict, for tests and embedders), ``modelcache.azure.AzureBlobStore`` (a blob
container) and ``modelcache.runner.layered_store.LayeredStore`` (local in front of cloud).
All share one layout (``docs/storage-layout.md``), defined by the pure helpers in
:mod:`modelcache.planner` (``blob_name``, ``manifest_name``, ``Manifest``...).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from modelcache.planner import Manifest, SnapshotEntry, StoredObject

__all__ = ["MaintainedStore", "Progress", "Store", "Tier"]

Tier = Literal["local", "cloud"]
#: Called with a number of bytes each time a transfer moved that many more (from any thread).
Progress = Callable[[int], None]


@runtime_checkable
class Store(Protocol):
    """A content-addressed store of cache entries.

    Every method raises only :class:`modelcache.planner.StoreError` subclasses for trouble
    with the store itself: ``StoreUnavailable`` (unreachable, timed out: retry later),
    ``StoreConfigError``/``AccessDenied`` (credentials, permissions, missing container: the
    user must act), ``EntryNotFound`` and ``CorruptEntry`` (a miss, as far as the caller is
    concerned). No message ever holds a credential.
    """

    #: Which tier this store is; it sets ``in_local`` or ``in_cloud`` in snapshot entries.
    tier: Tier

    def snapshot(self, keys: Iterable[str]) -> list[SnapshotEntry]:
        """What the store holds for ``keys``, in a constant number of round trips.

        :param keys: the keys the caller cares about (a chain's keys); duplicates allowed.
        :return: one :class:`SnapshotEntry` per key that has a manifest or evaluation
            results, with ``in_local``/``in_cloud`` set for this store's :attr:`tier` when the
            manifest exists, ``size`` and ``run_seconds`` from the manifest, and
            ``evaluations`` the fingerprints of the stored results. Keys the store knows
            nothing of are left out. Costs one listing or one batch of concurrent requests,
            never a sequential round trip per key.
        """
        ...

    def read_manifest(self, key: str) -> Manifest:
        """The validated manifest of ``key``; ``EntryNotFound`` if there is none,
        ``InvalidManifest`` if the stored one cannot be trusted."""
        ...

    def fetch(self, key: str, destination: Path, *, progress: Progress | None = None) -> Manifest:
        """Write the entry's files into ``destination`` (created; must not exist yet).

        Every file is streamed to disk and its SHA-256 checked while it streams; on any
        mismatch, missing blob or unsafe manifest, nothing is left at ``destination`` and
        ``CorruptEntry`` is raised. Files are written only inside ``destination``.
        :return: the entry's manifest.
        """
        ...

    def publish(
        self, source: Path, manifest: Manifest, *, progress: Progress | None = None
    ) -> bool:
        """Publish the directory ``source`` as the entry ``manifest`` describes.

        Content blobs go first (each skipped when the store already has it: a file that did
        not change is never sent twice), the manifest last and only if absent, so that no
        reader ever sees a partial entry. Each file is re-hashed while it is sent; a file
        that no longer matches the manifest aborts the publish with ``CorruptEntry``.
        :return: True if this call published the entry, False if an entry with that key was
            already there (another writer won the race; its entry stands, and is equivalent).
        """
        ...

    def read_evaluation(self, key: str, fingerprint: str) -> Mapping[str, Any]:
        """The stored evaluation result of evaluator ``fingerprint`` on entry ``key``;
        ``EntryNotFound`` if there is none."""
        ...

    def write_evaluation(self, key: str, fingerprint: str, result: Mapping[str, Any]) -> None:
        """Store an evaluation result (a small JSON object); an existing one is kept."""
        ...


@runtime_checkable
class MaintainedStore(Store, Protocol):
    """A store that ``modelcache cache ...`` can inspect, verify and prune.

    Maintenance works on the layout's objects by name (``docs/storage-layout.md``); the
    rules that keep a shared cache whole while other runners publish are:

    * :meth:`Store.publish` refreshes every blob it reuses instead of sending it (a new
      :attr:`StoredObject.version`), and sends it after all if the blob vanished meanwhile;
    * :meth:`delete_object` deletes only if the object's version is still the one listed.

    So a blob that a publisher counted on between a prune's listing and its delete is
    never deleted from under it. Errors are the :class:`Store` errors.
    """

    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        """Every object whose name starts with ``prefix`` (one listing request per page)."""
        ...

    def read_object(self, name: str, limit: int) -> bytes | None:
        """The bytes of a small object, None if absent; ``CorruptEntry`` if it is larger
        than ``limit`` or not a plain object."""
        ...

    def hash_object(self, name: str) -> str | None:
        """The SHA-256 of the object's bytes as stored, streamed; None if absent."""
        ...

    def delete_object(self, stored: StoredObject) -> bool:
        """Delete ``stored`` if it has not changed since it was listed; False if it changed
        or is gone already."""
        ...

    def create_object(self, name: str, data: bytes) -> bool:
        """Create a small object if ``name`` is free (create-only); False if it exists."""
        ...
