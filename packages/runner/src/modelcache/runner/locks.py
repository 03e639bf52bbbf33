"""Single flight: while one runner computes an entry, the others wait for it and use it.

Theory of operation
-------------------
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

Locks are an optional capability: a store without them (:func:`locks_of` returns None)
simply does not single-flight, and every runner computes what it misses. Nothing depends on
a lock for correctness (publishing is create-only and all copies of an entry are
equivalent); locks only spare duplicate work.

Two implementations:

* across machines, ``modelcache.azure.BlobLeaseLocks``: a blob lease on
  ``modelcache-v1/locks/<key>``, renewed while the pass runs, expiring within 30 s of a
  crash (see ``modelcache/azure/_lock.py``);
* on one machine, :class:`FileLocks`: an exclusive ``flock`` on the file
  ``<cache_dir>/modelcache-v1/locks/<key>``, which the kernel drops when its holder exits,
  however it exits.
"""

from __future__ import annotations

import errno
import os
import random
import time
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

from modelcache.planner import StoreError, lock_name, manifest_name

from .local_store import LocalStore

try:
    import fcntl
except ImportError:  # Windows: no flock, so the local tier does not single-flight there
    fcntl = None  # type: ignore[assignment]

__all__ = ["Claim", "ClaimOutcome", "EntryLocks", "FileClaim", "FileLocks", "locks_of"]

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


@runtime_checkable
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


class FileClaim:
    """A claim of :class:`FileLocks`: holds an open descriptor of the lock file while held."""

    def __init__(self, key: str, outcome: ClaimOutcome, waited: float, fd: int | None) -> None:
        self.key = key
        self.outcome: ClaimOutcome = outcome
        self.waited = waited
        self._fd = fd

    def __repr__(self) -> str:
        return f"FileClaim({self.key[:12]}..., {self.outcome}, waited={self.waited:.1f}s)"

    @property
    def held(self) -> bool:
        return self._fd is not None

    def release(self) -> None:
        """Unlock and close the lock file (which stays: deleting it would let two holders
        lock two different files of one name)."""
        fd, self._fd = self._fd, None
        if fd is not None:
            # LOCK_UN first: a child forked meanwhile may still hold a copy of the descriptor.
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self) -> FileClaim:
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.release()


class FileLocks:
    """Single flight between processes on one machine sharing a cache directory
    (a :class:`~modelcache.runner.local_store.LocalStore`'s ``root``): ``flock`` on
    ``modelcache-v1/locks/<key>``, waiting for that entry's manifest to appear.

    :param root: the local cache's directory.
    :param poll_seconds: how often a waiting claimer looks again (with 20 % jitter).

    Lock files are empty and stay (one per entry ever claimed). ``flock`` is not reliable on
    some network file systems; there the locks may not exclude, which costs duplicate work,
    never a wrong entry.
    """

    def __init__(self, root: Path, *, poll_seconds: float = 0.25) -> None:
        self.root = Path(root)
        self.poll_seconds = poll_seconds

    def __repr__(self) -> str:
        return f"FileLocks({str(self.root)!r})"

    def claim(self, key: str, *, max_wait: float) -> FileClaim:
        """Claim ``key``; see :meth:`EntryLocks.claim`. Raises ``StoreError`` if the lock
        file cannot be made or opened."""
        path = self.root / lock_name(key)
        manifest = self.root / manifest_name(key)
        fd: int | None = self._open(path)
        started = time.monotonic()
        waited = 0.0
        try:
            while True:
                assert fd is not None
                acquired = _try_lock(fd, path)
                if os.path.lexists(manifest):
                    return FileClaim(key, "published", waited, None)
                if acquired:
                    claim, fd = FileClaim(key, "held", waited, fd), None
                    return claim
                left = max_wait - (time.monotonic() - started)
                if left <= 0:
                    return FileClaim(key, "timed-out", time.monotonic() - started, None)
                time.sleep(min(left, self.poll_seconds * random.uniform(0.8, 1.2)))
                waited = time.monotonic() - started
        finally:
            if fd is not None:
                os.close(fd)  # closing drops a lock taken on it, if any

    def _open(self, path: Path) -> int:
        flags = os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | getattr(os, "O_NOFOLLOW", 0)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(path, flags, 0o644)
        except OSError as error:
            raise StoreError(
                f"cannot open the lock file {path}: {error.strerror or error}"
            ) from None


def _try_lock(fd: int, path: Path) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return False
        raise StoreError(f"cannot lock {path}: {error.strerror or error}") from None
    return True


def locks_of(store: object) -> EntryLocks | None:
    """The single-flight locks that go with ``store``, or None if it has none.

    A store that is an :class:`EntryLocks` itself is its own; an Azure blob store gets blob
    leases on its container (``modelcache.azure.BlobLeaseLocks``); a local store gets
    :class:`FileLocks` on its directory (where the system has ``flock``). Other stores (the
    in-memory store, a layered store) have none.
    """
    if isinstance(store, EntryLocks):
        return store
    if isinstance(store, LocalStore):
        return FileLocks(store.root) if fcntl is not None else None
    try:
        from modelcache.azure import AzureBlobStore, BlobLeaseLocks
    except ImportError:  # the runner without its [azure] extra
        return None
    if isinstance(store, AzureBlobStore):
        return BlobLeaseLocks.of(store)
    return None
