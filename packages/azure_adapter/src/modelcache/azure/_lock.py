"""Single flight across machines: a blob lease per cache entry being computed.

Theory of operation
-------------------
A runner about to compute the entry ``key`` *claims* it (:meth:`BlobLeaseLocks.claim`): it
acquires a lease on ``modelcache-v1/locks/<key>``, an empty blob created (create-only) the
first time anyone claims the entry. A lease is the service's own lock with expiry: one
holder at a time, for 15 to 60 seconds unless renewed.

* **Holding.** The holder renews its lease from a background thread every third of its
  duration, so the lease outlives the pass however long it runs, and releases it once the
  entry is published (or when it gives up). A holder that crashes stops renewing, and its
  lease expires within one duration (30 s by default): nobody waits on a dead runner.
* **Waiting.** A claimer that finds the lease taken polls, about once a ``poll_seconds``:
  if the entry's manifest has appeared, the holder finished (outcome ``published``: the
  caller downloads the entry); if the lease can be acquired, the holder released it or died
  (outcome ``held``: the caller computes). After ``max_wait`` seconds it stops (outcome
  ``timed-out``) and the caller computes the entry without the lock: a holder that is alive
  but stuck costs one duplicate computation, never an endless wait.
* **Late arrivals.** A claimer that gets the lease checks for the manifest once more before
  computing. Holders publish before they release, so an entry that was finished between
  the caller's snapshot and its claim is found here (``published``), and the lease goes
  back at once. The check is spared when the claim itself created the lock blob of a key
  the store's snapshot found unpublished moments before: nobody had ever claimed it, so
  no holder can have finished it (:mod:`modelcache.azure._sightings`).
* **Letting go.** A holder whose store has since published the entry (or found it
  published) lets its lease lapse rather than release it: whoever waits looks for the
  manifest at each poll and uses the entry.

The lock is an optimization. Correctness never rests on it: publishing is create-only and
every copy of an entry is equivalent, so two runners that both compute one entry (a lease
lost to a network partition, a claimer that timed out) still leave one whole entry. Lock
blobs are empty and never deleted (one per entry ever claimed); no entry data lives in
them. A lease on a lock blob blocks only writes to that blob, which nothing else makes.
"""

from __future__ import annotations

import contextlib
import random
import threading
import time
from collections.abc import Callable
from functools import partial
from typing import Any

from azure.core.exceptions import (
    AzureError,
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.storage.blob import BlobClient, BlobLeaseClient, ContainerClient
from modelcache.store import ClaimOutcome, EntryNotFound, lock_name, manifest_name

from ._errors import Place, error_code, translated
from ._sightings import Sightings
from ._store import AzureBlobStore

__all__ = ["BlobLeaseLocks", "LeaseClaim"]

# The service's bounds on a lease's duration (an infinite lease could never expire).
_SHORTEST_LEASE = 15
_LONGEST_LEASE = 60
# Renewals and releases are not retried, and give up soon: a renewal is sent again at the
# next tick, and a lease that cannot be released expires by itself. (With the store's
# retries, a run that lost the service would wait half a minute to release its lease.)
_UPKEEP: dict[str, Any] = {"retry_total": 0, "connection_timeout": 5, "read_timeout": 5}


class LeaseClaim:
    """One claim of an entry's lock, as :meth:`BlobLeaseLocks.claim` returns it.

    :attr:`outcome` says what the claimer should do: ``held`` (this claim holds the lease:
    compute the entry, publish it, then :meth:`release`), ``published`` (another runner
    published the entry: use it), ``timed-out`` (another runner still holds the lease after
    the longest wait: compute without it). :attr:`waited` is how long the claim waited for
    another holder, in seconds (0 when the lease was free or the entry there at once).

    A held claim is renewed by a daemon thread until :meth:`release`. Usable as a context
    manager, which releases it.
    """

    def __init__(
        self,
        key: str,
        outcome: ClaimOutcome,
        waited: float,
        *,
        lease: BlobLeaseClient | None = None,
        renew_seconds: float = 10.0,
        published: Callable[[], bool] | None = None,
    ) -> None:
        self.key = key
        self.outcome: ClaimOutcome = outcome
        self.waited = waited
        self._lease = lease
        self._published = published
        self._lost = False
        self._done = threading.Event()
        self._guard = threading.Lock()
        self._renewer: threading.Thread | None = None
        if lease is not None:
            self._renewer = threading.Thread(
                target=self._keep, args=(renew_seconds,), name=f"lease-{key[:12]}", daemon=True
            )
            self._renewer.start()
        else:
            self._done.set()

    def __repr__(self) -> str:
        return f"LeaseClaim({self.key[:12]}..., {self.outcome}, waited={self.waited:.1f}s)"

    @property
    def held(self) -> bool:
        """Whether this claim still holds the lease as far as it knows: taken, not
        released, and every renewal so far succeeded or may still."""
        return self._lease is not None and not self._done.is_set() and not self._lost

    @property
    def lost(self) -> bool:
        """Whether a renewal found the lease gone (it expired and another runner took it):
        two runners may now compute the entry, which is wasteful but harmless."""
        return self._lost

    def release(self) -> None:
        """Give the lease back (one request); the next claimer gets it at once. Idempotent.

        No request once the store published the entry (or found it published) since the
        claim: renewals stop and the lease lapses within its duration, which delays nobody,
        since a claimer that finds the lease taken looks for the manifest, finds it, and
        uses the entry. Never raises for trouble with the service: a lease that could not
        be released expires by itself within its duration.
        """
        with self._guard:
            if self._done.is_set():
                return
            self._done.set()
        assert self._renewer is not None
        assert self._lease is not None
        self._renewer.join()
        if not self._lost and not (self._published is not None and self._published()):
            _give_back(self._lease)

    def __enter__(self) -> LeaseClaim:
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.release()

    def _keep(self, every: float) -> None:
        """Renew the lease every ``every`` seconds until released; stop if it was lost."""
        assert self._lease is not None
        while not self._done.wait(every):
            try:
                self._lease.renew(**_UPKEEP)
            except (ResourceExistsError, ResourceModifiedError, ResourceNotFoundError):
                # 409 LeaseIdMismatch/LeaseNotPresent: it expired and someone else has it.
                self._lost = True
                return
            except AzureError:
                continue  # unreachable or throttled: the lease outlives two missed renewals


def _give_back(lease: BlobLeaseClient) -> None:
    """Release a lease; if that fails, it expires by itself within its duration."""
    with contextlib.suppress(AzureError):
        lease.release(**_UPKEEP)


class BlobLeaseLocks:
    """Single-flight locks on the entries of one container: blob leases on
    ``modelcache-v1/locks/<key>`` (see the module's theory of operation).

    A companion of :class:`~modelcache.azure.AzureBlobStore`, built with :meth:`of`; it
    satisfies the ``modelcache.store.EntryLocks`` port structurally. Thread-safe.

    :param container: the container of the cache; lock blobs live beside the entries.
    :param lease_seconds: how long a lease lasts unless renewed: 15 to 60 (the service's
        bounds). It is also how long a crashed holder keeps others waiting, at most.
    :param renew_seconds: how often a holder renews (a third of ``lease_seconds`` if not
        given): two renewals can fail before the lease lapses.
    :param poll_seconds: how often a waiting claimer looks again (with 20 % jitter, so
        waiters do not move in step).

    Requests: a claim that finds the lease free costs two (acquire, and a HEAD of the
    manifest), four the first time an entry is claimed (an acquire finds no lock blob,
    which is then created). Through a store whose snapshot found no manifest of the key a
    moment ago (``sightings``), the lock blob is created first: then two (create,
    acquire) if the claim created it, as nobody can have claimed, so published, the entry
    since; else three. Waiting costs two per poll; a holder sends one renewal per
    ``renew_seconds`` and one release, none if the entry was published through the store.
    Errors are the store's (``StoreUnavailable``, ``StoreConfigError``...).
    """

    def __init__(
        self,
        container: ContainerClient,
        *,
        lease_seconds: int = 30,
        renew_seconds: float | None = None,
        poll_seconds: float = 1.0,
        sightings: Sightings | None = None,
    ) -> None:
        if not _SHORTEST_LEASE <= lease_seconds <= _LONGEST_LEASE:
            raise ValueError(
                f"lease_seconds must be {_SHORTEST_LEASE} to {_LONGEST_LEASE}, not {lease_seconds}"
            )
        if renew_seconds is not None and not 0 < renew_seconds < lease_seconds:
            raise ValueError(f"renew_seconds must be above 0 and below {lease_seconds}")
        if poll_seconds <= 0:
            raise ValueError("poll_seconds must be above 0")
        self._container = container
        self._place = Place.of(container)
        self.lease_seconds = lease_seconds
        self.renew_seconds = lease_seconds / 3 if renew_seconds is None else renew_seconds
        self.poll_seconds = poll_seconds
        # What the store's requests told it (a fresh one knows nothing): see _sightings.
        self._sightings = Sightings() if sightings is None else sightings

    @classmethod
    def of(
        cls,
        store: AzureBlobStore,
        *,
        lease_seconds: int = 30,
        renew_seconds: float | None = None,
        poll_seconds: float = 1.0,
    ) -> BlobLeaseLocks:
        """The locks of ``store``'s container, through the store's client (its timeouts
        and retries)."""
        return cls(
            store.container,
            lease_seconds=lease_seconds,
            renew_seconds=renew_seconds,
            poll_seconds=poll_seconds,
            sightings=store._sightings,  # its companion's: they share what it saw
        )

    def __repr__(self) -> str:
        return f"BlobLeaseLocks({self._place}, lease_seconds={self.lease_seconds})"

    def claim(self, key: str, *, max_wait: float) -> LeaseClaim:
        """Claim the entry ``key`` before computing it; wait while another runner holds it.

        :param key: the entry's key (64 hex digits).
        :param max_wait: the longest time, in seconds, to wait for another holder; 0 tries
            once.
        :return: a :class:`LeaseClaim` whose ``outcome`` is ``held`` (compute, publish,
            then release it), ``published`` (the entry exists now: use it) or
            ``timed-out`` (another runner still holds it: compute without the lock).
        :raises StoreError: the container cannot be reached or written
            (``StoreUnavailable``, ``AccessDenied``, ``StoreConfigError``).
        """
        lock = self._container.get_blob_client(lock_name(key))
        lease = BlobLeaseClient(lock)
        started = time.monotonic()
        since = self._sightings.now()
        waited = 0.0
        # A key the snapshot found unpublished usually has no lock blob yet: make it first
        # rather than learn so from a failed acquire. One this claim created had never been
        # claimed, so nobody published the entry through a claim since the snapshot.
        unclaimed = self._sightings.listed_absent(key) and self._create(lock)
        while True:
            acquired = self._acquire(lock, lease, key)
            try:
                published = not (acquired and unclaimed) and self._published(key)
            except BaseException:
                if acquired:
                    _give_back(lease)
                raise
            unclaimed = False
            if published:
                if acquired:
                    _give_back(lease)
                return LeaseClaim(key, "published", waited)
            if acquired:
                self._sightings.claimed(key)
                published_since = partial(self._sightings.published_since, key, since)
                return LeaseClaim(key, "held", waited, lease=lease,
                                  renew_seconds=self.renew_seconds,
                                  published=published_since)  # fmt: skip
            left = max_wait - (time.monotonic() - started)
            if left <= 0:
                return LeaseClaim(key, "timed-out", time.monotonic() - started)
            time.sleep(min(left, self.poll_seconds * random.uniform(0.8, 1.2)))
            waited = time.monotonic() - started

    def _acquire(self, lock: BlobClient, lease: BlobLeaseClient, key: str) -> bool:
        """Try to take the lease once; False if another holds it."""
        with translated(self._place, f"take the lock of entry {key}"):
            for _ in range(2):
                try:
                    lease.acquire(lease_duration=self.lease_seconds)
                    return True
                except ResourceExistsError as error:
                    if error_code(error) == "LeaseAlreadyPresent":
                        return False
                    raise
                except ResourceNotFoundError as error:
                    if error_code(error) != "BlobNotFound":
                        raise
                self._create(lock)
        # Created, then gone before the lease (deleted from outside): as if taken; try again.
        return False

    def _create(self, lock: BlobClient) -> bool:
        """Make the empty lock blob, unless it exists (several claimers may race here);
        whether this call made it."""
        with translated(self._place, f"create the lock blob {lock.blob_name}"):
            try:
                lock.upload_blob(b"", overwrite=False)
            except (ResourceExistsError, ResourceModifiedError):
                return False
            except HttpResponseError as error:
                # A blob that exists and is leased may answer 412 to a conditional PUT.
                if error.status_code != 412:
                    raise
                return False
        return True

    def _published(self, key: str) -> bool:
        """Whether the entry's manifest exists (one HEAD)."""
        try:
            with translated(
                self._place,
                f"look for the manifest of entry {key}",
                missing=lambda: EntryNotFound(key),
            ):
                self._container.get_blob_client(manifest_name(key)).get_blob_properties()
        except EntryNotFound:
            return False
        self._sightings.exists(key)
        return True
