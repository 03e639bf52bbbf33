"""The storage port: what a runner needs from a cache store, and from its single-flight locks.

Implementations satisfy :class:`Store` structurally: :class:`~modelcache.store.LocalStore`
(a directory), :class:`~modelcache.store.MemoryStore` (a dict, for tests and embedders),
:class:`~modelcache.store.LayeredStore` (local in front of cloud) and
``modelcache.azure.AzureBlobStore`` (a blob container). All share one layout
(:mod:`modelcache.store._layout`, ``docs/storage-layout.md``), one manifest and one verified
transfer (:mod:`modelcache.store._transfer`); ``modelcache.store.testing`` holds the
contract every implementation must pass.

Single flight
-------------
Before running a pass whose output it is going to publish, the runner *claims* the output's
key in the store it will publish to (:class:`EntryLocks`). The claim comes back in one of
three states:

=============  ==============================================  ===========================
outcome        meaning                                         the runner
=============  ==============================================  ===========================
``held``       nobody else is computing it                     runs the pass, publishes,
                                                               then releases the claim
``published``  another runner finished it meanwhile            re-plans, and so downloads
                                                               (or skips) it instead
``timed-out``  another runner is still at it after the         runs the pass anyway
               longest wait
=============  ==============================================  ===========================

Locks are an optional capability: a store without them (:meth:`Store.locks` returns None)
simply does not single-flight, and every runner computes what it misses. Nothing depends on
a lock for correctness (publishing is create-only and all copies of an entry are
equivalent); locks only spare duplicate work.

Two implementations:

* across machines, ``modelcache.azure.BlobLeaseLocks``: a blob lease on
  ``modelcache-v1/locks/<key>``, renewed while the pass runs, expiring within 30 s of a
  crash (see ``modelcache/azure/_lock.py``);
* on one machine, ``modelcache.store.FileLocks``: an exclusive ``flock`` on the file
  ``<cache_dir>/modelcache-v1/locks/<key>``, which the kernel drops when its holder exits,
  however it exits.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, Protocol, runtime_checkable

from modelcache.planner import SnapshotEntry

from ._layout import StoredObject
from ._manifest import Manifest

__all__ = [
    "Claim",
    "ClaimOutcome",
    "EntryLocks",
    "MaintainedStore",
    "Progress",
    "Store",
    "Tier",
    "listed",
]

Tier = Literal["local", "cloud"]
#: Called with a number of bytes each time a transfer moved that many more (from any thread).
Progress = Callable[[int], None]
#: What a claim on an entry came to; see :attr:`Claim.outcome`.
ClaimOutcome = Literal["held", "published", "timed-out"]


class Claim(Protocol):
    """A claim on one entry, as :meth:`EntryLocks.claim` returns it."""

    @property
    def outcome(self) -> ClaimOutcome:
        """``held``: compute the entry, publish it, then :meth:`release`. ``published``:
        the entry exists now; use it. ``timed-out``: another runner still holds the entry
        after the longest wait; compute it without the lock."""
        ...

    @property
    def waited(self) -> float:
        """Seconds spent waiting for another holder (0 if the lock was free at once)."""
        ...

    def release(self) -> None:
        """Let the next claimer in. Idempotent; a no-op for a claim not ``held``. Never
        raises for trouble with the store: a lock that could not be released is freed when
        its holder exits or its lease expires."""
        ...


class EntryLocks(Protocol):
    """The single-flight port: one lock per entry key, in the store the entry goes to.

    A holder must publish the entry *before* it releases the claim: a claimer that gets the
    lock looks for the entry once more, and finds it (``published``) if the previous holder
    finished. A holder that dies must lose the lock within a bounded time (a lease expires,
    a file lock dies with its process), so that waiting is bounded even without
    ``max_wait``.
    """

    def claim(self, key: str, *, max_wait: float) -> Claim:
        """Claim the entry ``key`` before computing it, waiting while another holds it.

        :param key: the entry's key (64 hex digits).
        :param max_wait: the longest wait for another holder, in seconds; 0 tries once.
            Costs a few requests per poll while waiting.
        :return: the claim; see :attr:`Claim.outcome` for what to do next.
        :raises StoreError: the store cannot be reached or locked; the caller may go on
            without single flight.
        """
        ...


@runtime_checkable
class Store(Protocol):
    """A content-addressed store of cache entries.

    Every method raises only :class:`~modelcache.store.StoreError` subclasses for trouble
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

    def locks(self) -> EntryLocks | None:
        """The single-flight locks of this store's entries, or None if it has none (then
        every runner computes what it misses; see the module's "Single flight")."""
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


def listed(
    key: str, tier: Tier, manifest: Manifest | None, fingerprints: Iterable[str]
) -> SnapshotEntry | None:
    """What a store that read ``key``'s manifest (None: absent or refused) and listed its
    evaluation results puts in its snapshot; None if it holds nothing for ``key``."""
    evaluations = frozenset(fingerprints)
    if manifest is None and not evaluations:
        return None
    return SnapshotEntry(
        key=key,
        in_local=manifest is not None and tier == "local",
        in_cloud=manifest is not None and tier == "cloud",
        size=None if manifest is None else manifest.size,
        run_seconds=None if manifest is None else manifest.run_seconds,
        evaluations=evaluations,
    )
