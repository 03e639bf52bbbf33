"""Stores that sign what they publish and check what they hand out (:mod:`._trust`).

:class:`TrustedStore` wraps any store (the cloud tier); :class:`TrustedLocalStore` is a
:class:`~modelcache.store.LocalStore` with the same rules, for callers that need the local
tier's own API (its ``root``). Both apply them at the same four points: ``publish`` and
``write_evaluation`` sign, ``read_manifest``/``fetch`` and ``read_evaluation`` check.
``snapshot`` lists entries without reading their signatures (a listing of the cloud reads no
manifest), so an untrusted entry of the cloud is found when it is fetched, and the runner
re-plans around it as around a damaged one; the local store reads its manifests anyway, so
its snapshot leaves untrusted entries out.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from modelcache.planner import SnapshotEntry

from ._errors import StoreError, UntrustedEntry
from ._layout import StoredObject
from ._local import LocalStore
from ._manifest import Manifest
from ._port import EntryLocks, MaintainedStore, Progress, Store, Tier
from ._trust import (
    Trust,
    check_evaluation,
    check_manifest,
    manifest_problem,
    sign_evaluation,
    sign_manifest,
)

__all__ = ["TrustedLocalStore", "TrustedStore"]


class TrustedStore:
    """``inner`` with signatures: see :mod:`modelcache.store._trust` for the rules.

    :param inner: the store wrapped; its maintenance methods (``list_objects``...) are passed
        through, so ``inner`` should be a :class:`~modelcache.store.MaintainedStore` for
        ``modelcache cache`` to work on the wrapper.
    :param trust: the keys trusted, whether signatures are required, the key to sign with.

    Errors are ``inner``'s, plus :class:`~modelcache.store.UntrustedEntry` (a
    ``CorruptEntry``) for an entry or result that ``trust`` refuses.
    """

    def __init__(self, inner: Store, trust: Trust) -> None:
        self.inner = inner
        self.trust = trust
        self.tier: Tier = inner.tier

    def __repr__(self) -> str:
        return f"TrustedStore({self.inner!r})"

    def snapshot(self, keys: Iterable[str]) -> list[SnapshotEntry]:
        """``inner``'s snapshot: signatures are checked when an entry is read."""
        return self.inner.snapshot(keys)

    def read_manifest(self, key: str) -> Manifest:
        """The manifest of ``key``, if ``trust`` accepts it."""
        return check_manifest(self.inner.read_manifest(key), self.trust)

    def fetch(self, key: str, destination: Path, *, progress: Progress | None = None) -> Manifest:
        """The entry, if ``trust`` accepts it. Its manifest is checked before any file is
        moved (a refused entry costs one manifest read, not its model), and the manifest the
        fetch went by is checked again: on refusal ``destination`` is removed, so nothing of
        an untrusted entry is left."""
        if self.trust.checking:
            check_manifest(self.inner.read_manifest(key), self.trust)
        manifest = self.inner.fetch(key, destination, progress=progress)
        problem = manifest_problem(manifest, self.trust)
        if problem is not None:
            shutil.rmtree(destination, ignore_errors=True)
            raise UntrustedEntry(f"entry {key} is untrusted: {problem}")
        return manifest

    def publish(
        self, source: Path, manifest: Manifest, *, progress: Progress | None = None
    ) -> bool:
        """Publish ``manifest``, signed first if the writer has a key and it is unsigned."""
        return self.inner.publish(source, sign_manifest(manifest, self.trust), progress=progress)

    def read_evaluation(self, key: str, fingerprint: str) -> Mapping[str, Any]:
        """The metrics, if ``trust`` accepts the result; its signature is not among them."""
        stored = self.inner.read_evaluation(key, fingerprint)
        return check_evaluation(key, fingerprint, stored, self.trust)

    def write_evaluation(self, key: str, fingerprint: str, result: Mapping[str, Any]) -> None:
        """Store the result, signed if the writer has a key."""
        signed = sign_evaluation(key, fingerprint, result, self.trust)
        self.inner.write_evaluation(key, fingerprint, signed)

    def locks(self) -> EntryLocks | None:
        return self.inner.locks()

    # -- maintenance, by object name: passed through (verify checks signatures itself) ------

    def _maintained(self) -> MaintainedStore:
        # A store error, not a TypeError: callers that treat maintenance as optional (run
        # records) already go on without it on a store error.
        if not isinstance(self.inner, MaintainedStore):
            raise StoreError(f"{self.inner!r} keeps no maintainable objects")
        return self.inner

    def list_objects(self, prefix: str) -> Iterator[StoredObject]:
        return self._maintained().list_objects(prefix)

    def read_object(self, name: str, limit: int) -> bytes | None:
        return self._maintained().read_object(name, limit)

    def hash_object(self, name: str) -> str | None:
        return self._maintained().hash_object(name)

    def delete_object(self, stored: StoredObject) -> bool:
        return self._maintained().delete_object(stored)

    def create_object(self, name: str, data: bytes) -> bool:
        return self._maintained().create_object(name, data)

    def close(self) -> None:
        """Close ``inner`` if it holds connections."""
        close = getattr(self.inner, "close", None)
        if close is not None:
            close()


class TrustedLocalStore(LocalStore):
    """A :class:`~modelcache.store.LocalStore` with signatures, as :class:`TrustedStore`.

    Its :meth:`snapshot` and :meth:`fetch` read manifests through :meth:`read_manifest`,
    which checks them: an untrusted entry is absent from the snapshot and never copied out.
    """

    def __init__(self, root: Path, *, trust: Trust, tier: Tier = "local") -> None:
        super().__init__(root, tier)
        self.trust = trust

    def __repr__(self) -> str:
        return f"TrustedLocalStore({str(self.root)!r}, tier={self.tier!r})"

    def read_manifest(self, key: str) -> Manifest:
        return check_manifest(super().read_manifest(key), self.trust)

    def publish(
        self, source: Path, manifest: Manifest, *, progress: Progress | None = None
    ) -> bool:
        return super().publish(source, sign_manifest(manifest, self.trust), progress=progress)

    def read_evaluation(self, key: str, fingerprint: str) -> Mapping[str, Any]:
        stored = super().read_evaluation(key, fingerprint)
        return check_evaluation(key, fingerprint, stored, self.trust)

    def write_evaluation(self, key: str, fingerprint: str, result: Mapping[str, Any]) -> None:
        super().write_evaluation(key, fingerprint, sign_evaluation(key, fingerprint, result,
                                                                   self.trust))  # fmt: skip
