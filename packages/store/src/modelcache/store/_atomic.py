"""Files that appear whole or not at all, and are never overwritten by accident.

A file is written under a temporary name (``.<random>.tmp``, which no reader takes for an
object) in the folder it belongs to, flushed to disk, and then given its name with
``os.link``, which fails if the name exists: so a name, once it exists, always holds
complete content. :class:`~modelcache.store.LocalStore` writes every object this way.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["create_file"]

_TEMPORARY_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)


def create_file(final: Path, chunks: Iterable[bytes], *, replace: bool = False) -> bool:
    """Write ``chunks`` to a temporary file, flush it, and link it to ``final`` unless
    ``final`` exists (or, with ``replace``, rename it onto ``final``). True if this call
    created ``final``."""
    folder = final.parent
    folder.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = _temporary(folder)
    try:
        with os.fdopen(descriptor, "wb") as output:
            for chunk in chunks:
                output.write(chunk)
            output.flush()
            os.fsync(output.fileno())
        try:
            if replace:
                os.replace(temporary, final)
            else:
                os.link(temporary, final)
        except FileExistsError:
            return False
        _fsync_directory(folder)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _temporary(folder: Path) -> tuple[int, Path]:
    """A new, empty file in ``folder`` under a name no reader takes for an object."""
    while True:
        path = folder / f".{os.urandom(8).hex()}.tmp"
        try:
            return os.open(path, _TEMPORARY_FLAGS, 0o644), path
        except FileExistsError:
            continue


def _fsync_directory(folder: Path) -> None:
    """Flush a directory's entries to disk, where the system allows it (not on Windows)."""
    if os.name != "posix":
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
