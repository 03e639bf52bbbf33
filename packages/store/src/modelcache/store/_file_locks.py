"""Single flight on one machine: ``flock`` on a lock file per entry, in a local cache.

The port (:class:`~modelcache.store.EntryLocks`) and the theory of single flight are in
:mod:`modelcache.store._port`; this is the implementation :meth:`LocalStore.locks` returns.
"""

from __future__ import annotations

import errno
import os
import random
import time
from pathlib import Path

from ._errors import StoreError
from ._layout import lock_name, manifest_name
from ._port import ClaimOutcome

try:
    import fcntl
except ImportError:  # Windows: no flock, so the local tier does not single-flight there
    fcntl = None  # type: ignore[assignment]

__all__ = ["FILE_LOCKS_WORK", "FileClaim", "FileLocks"]

#: Whether this system has ``flock`` (not Windows): without it the local tier does not
#: single-flight.
FILE_LOCKS_WORK = fcntl is not None


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
    (a :class:`~modelcache.store.LocalStore`'s ``root``): ``flock`` on
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
