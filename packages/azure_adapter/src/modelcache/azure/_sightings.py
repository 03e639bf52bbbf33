"""What a store learnt of its container from its own requests, to spare repeating them.

Theory of operation
-------------------
A run publishes entries that share blobs (tokenizer and config files), one after another,
through one :class:`~modelcache.azure.AzureBlobStore`; it claims each entry just before it
computes it, having listed the container's manifests once. Each of those requests answers a
question a later request would ask again. :class:`Sightings` keeps the answers, and says
exactly how far each may be trusted (``docs/storage.md``, "Integrity and races"):

* **Blobs, by ETag.** A blob this store committed, or refreshed, is remembered with the ETag
  the service gave it. A later publish that keeps it skips the HEAD and refreshes it *on
  condition* that the ETag is still that one (``If-Match``): one request instead of two.
  The condition is what makes the memory safe. Any change since (deleted by a prune or by
  hand, damaged, rewritten) makes the service refuse it, and the blob is then checked and
  sent as if never seen. Nothing is ever skipped on memory alone: the refresh that protects
  a kept blob from a prune is still made, and a blob someone deleted is always noticed.
* **Manifests absent.** A snapshot lists every manifest. A key it did not find, a short
  while ago, is one nobody had published; if a claim then *creates* the key's lock blob, no
  runner has ever claimed it either (claimers create it first, and lock blobs are never
  deleted). The claim then need not look for the manifest, nor the publish that follows:
  the publish's create-only manifest PUT still tells "already published" if someone did
  without claiming, so the worst a stale answer costs is a computation done twice.
* **Manifests published.** Once this store published an entry, or found it published, its
  claim need not be released: whoever waits for it sees the manifest at its next poll and
  uses the entry, and the lease lapses by itself.

Thread-safe; bounded (the oldest blobs are forgotten past :data:`_MOST_BLOBS`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

__all__ = ["Sightings"]

#: How long a snapshot's "no manifest" stands in for a HEAD of the manifest. Long enough to
#: cover the passes of a quick chain, short enough that a chain of long passes looks again.
SNAPSHOT_TRUSTED_SECONDS = 300.0
#: Blobs remembered at most (a few hundred bytes each), oldest forgotten first.
_MOST_BLOBS = 20_000


class Sightings:
    """The blobs a store wrote or refreshed (with their ETags) and the manifests it saw
    absent or published. See the module's theory of operation."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._guard = threading.Lock()
        self._blobs: dict[str, tuple[int, str]] = {}
        self._listed_absent: dict[str, float] = {}
        self._claimed_absent: set[str] = set()
        self._published: dict[str, float] = {}

    def now(self) -> float:
        """The clock the sightings are dated with (monotonic seconds)."""
        return self._clock()

    # -- blobs ---------------------------------------------------------------------------

    def blob_etag(self, sha256: str, size: int) -> str | None:
        """The ETag this store last gave the blob ``sha256`` of ``size`` bytes, if any."""
        with self._guard:
            seen = self._blobs.get(sha256)
        return seen[1] if seen is not None and seen[0] == size else None

    def saw_blob(self, sha256: str, size: int, etag: str) -> None:
        """This store committed or refreshed the blob ``sha256``; the service named the new
        version ``etag``."""
        with self._guard:
            self._blobs.pop(sha256, None)
            self._blobs[sha256] = (size, etag)
            while len(self._blobs) > _MOST_BLOBS:
                del self._blobs[next(iter(self._blobs))]

    # -- manifests ---------------------------------------------------------------------------

    def listed(self, wanted: Iterable[str], present: Iterable[str]) -> None:
        """A listing of every manifest found ``present`` among the keys ``wanted``."""
        at = self.now()
        found = set(present)
        with self._guard:
            for key in wanted:
                if key in found:
                    self._listed_absent.pop(key, None)
                else:
                    self._listed_absent[key] = at

    def listed_absent(self, key: str) -> bool:
        """Whether a listing made less than :data:`SNAPSHOT_TRUSTED_SECONDS` ago found no
        manifest of ``key`` (and nothing since showed one)."""
        with self._guard:
            at = self._listed_absent.get(key)
        return at is not None and self.now() - at < SNAPSHOT_TRUSTED_SECONDS

    def claimed(self, key: str) -> None:
        """A claim of ``key`` took the lease knowing the entry unpublished: the publish that
        follows need not look for the manifest again."""
        with self._guard:
            self._claimed_absent.add(key)

    def take_claimed(self, key: str) -> bool:
        """Whether a claim vouched that ``key`` is unpublished; the vouching is used up."""
        with self._guard:
            vouched = key in self._claimed_absent
            self._claimed_absent.discard(key)
        return vouched

    def exists(self, key: str) -> None:
        """The manifest of ``key`` was found, or published by this store."""
        at = self.now()
        with self._guard:
            self._listed_absent.pop(key, None)
            self._claimed_absent.discard(key)
            self._published[key] = at

    def gone(self, key: str) -> None:
        """The manifest of ``key`` was found missing (removed, perhaps to be published anew)."""
        with self._guard:
            self._published.pop(key, None)

    def published_since(self, key: str, since: float) -> bool:
        """Whether the manifest of ``key`` was seen stored at ``since`` (``now()``'s clock) or
        later."""
        with self._guard:
            at = self._published.get(key)
        return at is not None and at >= since
