"""The local tier in front of the cloud tier, as one store.

Reads try the local store first and fall back to the cloud; what comes from the cloud is
copied into the local store on the way, so the next read is local. Writes of entries go to
the local store only: pushing an entry to the cloud is a plan step (``Upload``), which the
runner carries out on :attr:`LayeredStore.cloud` itself, when the policy allows it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from modelcache.planner import Snapshot, SnapshotEntry

from ._errors import CorruptEntry, EntryNotFound, StoreError
from ._manifest import Manifest
from ._port import EntryLocks, Progress, Store, Tier

__all__ = ["LayeredStore"]


class LayeredStore:
    """A :class:`~modelcache.store.Store` made of a local tier and an optional cloud tier.

    :param local: the local tier (usually a :class:`~modelcache.store.LocalStore`).
    :param cloud: the cloud tier, or None to work from the local tier alone.
    :param write_through: whether :meth:`write_evaluation` also writes to the cloud. Pass
        the policy's ``uploads`` (``enable_cloud_cache and upload_to_cloud``).
    :param on_fill_error: called as ``on_fill_error(key=..., error=...)`` when copying
        something fetched from the cloud into the local tier fails with a ``StoreError``
        (a full disk, a permission problem). The fetch itself still succeeds; without a
        hook the failure is ignored and the next read goes to the cloud again.

    ``tier`` is ``local``: the layered store writes to the local tier. The tiers stay
    available as :attr:`local` and :attr:`cloud`.

    Errors: a miss in the local tier (``EntryNotFound``, or ``CorruptEntry`` for an entry
    that cannot be trusted) falls through to the cloud. Every error of the cloud tier,
    ``StoreUnavailable`` in particular, propagates, from :meth:`snapshot` too: the runner,
    not the store, decides whether to go on with the local tier alone (by planning again
    with a snapshot of :attr:`local`).
    """

    tier: Tier = "local"

    def __init__(
        self,
        local: Store,
        cloud: Store | None = None,
        *,
        write_through: bool = False,
        on_fill_error: Callable[..., None] | None = None,
    ) -> None:
        self.local = local
        self.cloud = cloud
        self.write_through = write_through
        self.on_fill_error = on_fill_error

    def __repr__(self) -> str:
        return f"LayeredStore(local={self.local!r}, cloud={self.cloud!r})"

    def snapshot(self, keys: Iterable[str]) -> list[SnapshotEntry]:
        """Both tiers' entries for ``keys``, merged by key, sorted by key.

        One snapshot of each tier, so the cloud is asked once whatever the number of keys.
        An entry in both tiers has ``in_local`` and ``in_cloud`` set, the evaluations of
        both, and the size and run time the local tier recorded.

        :raises StoreUnavailable: the cloud tier could not be reached. The runner may plan
            with ``layered.local.snapshot(keys)`` instead, cloud disabled.
        """
        wanted = list(keys)
        listing = list(self.local.snapshot(wanted))
        if self.cloud is not None:
            listing.extend(self.cloud.snapshot(wanted))
        return list(Snapshot.from_listing(listing).listing())

    def read_manifest(self, key: str) -> Manifest:
        """The manifest of ``key`` from the local tier, else from the cloud tier."""
        cloud = self.cloud
        try:
            return self.local.read_manifest(key)
        except (EntryNotFound, CorruptEntry):
            if cloud is None:
                raise
        return cloud.read_manifest(key)

    def fetch(self, key: str, destination: Path, *, progress: Progress | None = None) -> Manifest:
        """Write the entry's files into ``destination``, from the local tier if it has the
        entry, else from the cloud tier, then publish them into the local tier.

        Both tiers leave nothing at ``destination`` when they fail, so the cloud fetch starts
        clean after a local miss. See :meth:`Store.fetch`.
        """
        cloud = self.cloud
        try:
            return self.local.fetch(key, destination, progress=progress)
        except (EntryNotFound, CorruptEntry):
            if cloud is None:
                raise
        manifest = cloud.fetch(key, destination, progress=progress)
        try:
            self.local.publish(destination, manifest)
        except StoreError as error:
            self._fill_failed(key, error)
        return manifest

    def publish(
        self, source: Path, manifest: Manifest, *, progress: Progress | None = None
    ) -> bool:
        """Publish into the local tier only; see :meth:`Store.publish`. To publish into the
        cloud, call ``layered.cloud.publish`` (what an ``Upload`` step does)."""
        return self.local.publish(source, manifest, progress=progress)

    def read_evaluation(self, key: str, fingerprint: str) -> Mapping[str, Any]:
        """The result from the local tier, else from the cloud tier (then kept locally)."""
        cloud = self.cloud
        try:
            return self.local.read_evaluation(key, fingerprint)
        except (EntryNotFound, CorruptEntry):
            if cloud is None:
                raise
        result = cloud.read_evaluation(key, fingerprint)
        try:
            self.local.write_evaluation(key, fingerprint, result)
        except StoreError as error:
            self._fill_failed(key, error)
        return result

    def write_evaluation(self, key: str, fingerprint: str, result: Mapping[str, Any]) -> None:
        """Store the result in the local tier and, with ``write_through``, in the cloud tier
        too. A cloud error propagates after the local write has been made."""
        self.local.write_evaluation(key, fingerprint, result)
        if self.cloud is not None and self.write_through:
            self.cloud.write_evaluation(key, fingerprint, result)

    def locks(self) -> EntryLocks | None:
        """The local tier's locks: entries are written there (see :meth:`Store.locks`)."""
        return self.local.locks()

    def _fill_failed(self, key: str, error: StoreError) -> None:
        """Report a failed copy into the local tier, if anyone listens."""
        if self.on_fill_error is not None:
            self.on_fill_error(key=key, error=error)
