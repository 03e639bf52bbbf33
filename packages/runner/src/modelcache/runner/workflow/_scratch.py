"""A run's scratch folder beside the local tier: owned while the run lives, removed however
it ends, and swept by a later run when its owner was killed.

Theory of operation
-------------------
Runners on one machine (or sharing the cache directory over a network file system) share
the local tier's root, so a run may remove only scratch whose owner is gone. The owner says
it is alive by holding an exclusive ``flock`` on the folder's :data:`OWNER_FILE` for its
whole life; the kernel drops the lock when the process dies, however it dies (``kill -9``
included), so "the lock can be taken" means "the owner is gone", with no pid to be reused.

A folder is made under a :data:`STARTING_PREFIX` name, its owner file locked, and only then
renamed to ``run-<random>``: a sweeper never sees a ``run-*`` folder whose lock is not yet
held. What has no lock to test (a folder whose start was cut short, or the ``run-*`` scratch
of an older modelcache,
which kept no owner file) is swept only when it is older than
:data:`STALE_SECONDS`.

The owner file also holds ``{"pid": ..., "host": ..., "started": ...}`` for people; the lock,
not the text, is what decides.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Final

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock; only stale folders are swept
    fcntl = None  # type: ignore[assignment]

__all__ = [
    "OWNER_FILE",
    "SCRATCH_PREFIX",
    "STALE_SECONDS",
    "STARTING_PREFIX",
    "abandoned",
    "scratch_folder",
    "sweep_abandoned",
]

#: The names of live and abandoned scratch folders in the local tier's root.
SCRATCH_PREFIX: Final = "run-"
#: A scratch folder being set up: renamed to ``run-...`` once its owner file is locked.
STARTING_PREFIX: Final = ".starting-run-"
#: In a scratch folder, the file its run holds an exclusive ``flock`` on while it lives.
OWNER_FILE: Final = ".owner"
#: A scratch folder with no owner file to test is swept only when older than this: as long
#: as ``cache prune``'s default grace, so that not even an older modelcache's day-long run
#: loses its scratch.
STALE_SECONDS: Final = 24 * 3600


@contextlib.contextmanager
def scratch_folder(root: Path) -> Iterator[Path]:
    """A new, owned scratch folder in ``root`` (which must exist), removed on the way out
    whatever ends the block; abandoned scratch of earlier runs is swept first."""
    sweep_abandoned(root)
    staging = Path(tempfile.mkdtemp(prefix=STARTING_PREFIX, dir=root))
    folder = root / (SCRATCH_PREFIX + staging.name.removeprefix(STARTING_PREFIX))
    owner = os.open(staging / OWNER_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if fcntl is not None:
            fcntl.flock(owner, fcntl.LOCK_EX)
        about = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        os.write(owner, json.dumps(about).encode())
        os.rename(staging, folder)
        yield folder
    finally:
        # Removed while still locked, so no sweeper races the owner for it.
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(staging, ignore_errors=True)
        os.close(owner)


def sweep_abandoned(root: Path, *, now: float | None = None) -> list[Path]:
    """Remove the scratch folders in ``root`` whose run is over (see :func:`abandoned`).

    Safe beside live runs sharing ``root``: their folders are locked and left alone.

    :param now: the time to age owner-less folders against (``time.time()`` if not given).
    :return: the folders removed.
    """
    now = time.time() if now is None else now
    removed = []
    with contextlib.suppress(OSError):  # no root yet, or unreadable: nothing to sweep
        for folder in sorted(root.iterdir()):
            if folder.name.startswith((SCRATCH_PREFIX, STARTING_PREFIX)) and _remove_if_abandoned(
                folder, now
            ):
                removed.append(folder)
    return removed


def abandoned(folder: Path, *, now: float | None = None) -> bool:
    """Whether ``folder``, a scratch folder, belongs to no live run: its owner file's lock
    can be taken, or it has no owner file and is older than :data:`STALE_SECONDS`.

    The answer may be stale by the time it is read (a folder never comes back to life, but
    a live run may end); :func:`sweep_abandoned` holds the lock while it removes.
    """
    now = time.time() if now is None else now
    with _owner_lock(folder) as gone:
        return gone if gone is not None else _older_than_stale(folder, now)


def _remove_if_abandoned(folder: Path, now: float) -> bool:
    with _owner_lock(folder) as gone:
        if not (gone if gone is not None else _older_than_stale(folder, now)):
            return False
        shutil.rmtree(folder, ignore_errors=True)
        return not folder.exists()


@contextlib.contextmanager
def _owner_lock(folder: Path) -> Iterator[bool | None]:
    """Try the owner file's lock: ``True`` taken (the owner is gone; held for the block),
    ``False`` held by a live run, ``None`` no owner file to test."""
    if folder.name.startswith(STARTING_PREFIX) or fcntl is None:
        yield None  # its owner may not have locked it yet: only its age tells
        return
    try:
        owner = os.open(folder / OWNER_FILE, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        yield None
        return
    try:
        fcntl.flock(owner, fcntl.LOCK_EX | fcntl.LOCK_NB)
        gone = True
    except OSError:
        gone = False
    try:
        yield gone
    finally:
        os.close(owner)


def _older_than_stale(folder: Path, now: float) -> bool:
    try:
        return now - folder.lstat().st_mtime > STALE_SECONDS
    except OSError:
        return False
