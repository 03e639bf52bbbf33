"""The store's one error family.

Every store raises only these for trouble with the store itself; the adapters translate
their SDK's or operating system's exceptions into them at one choke point. ``str()`` of each
is one line a user can act on, and never holds a credential. :attr:`StoreError.fault` is the
hint a command line turns into an exit status: ``"user"`` for what the user must fix (a
credential, a permission, a setting), ``"environment"`` for what failed around them (an
unreachable service, a damaged entry, a full disk).
"""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar, Literal

__all__ = [
    "AccessDenied",
    "CorruptEntry",
    "EntryNotFound",
    "Fault",
    "InvalidManifest",
    "ModelDirectoryError",
    "StoreConfigError",
    "StoreError",
    "StoreUnavailable",
    "UntrustedEntry",
]

#: Who can fix an error: the user (exit status 2 on the command line) or nobody right now.
Fault = Literal["user", "environment"]


class StoreError(Exception):
    """Base of the errors the stores raise."""

    fault: ClassVar[Fault] = "environment"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class StoreUnavailable(StoreError):
    """The store could not be reached, or did not answer in time. Worth retrying later."""


class StoreConfigError(StoreError):
    """The store is set up wrongly: no usable credential, access refused, no such container."""

    fault: ClassVar[Fault] = "user"


class AccessDenied(StoreConfigError):
    """The credential works but is not allowed to do this (HTTP 403)."""


class EntryNotFound(StoreError):
    """No entry, or no evaluation result, under the key asked for."""


class CorruptEntry(StoreError):
    """An entry's content does not match its manifest: a blob is missing, or its bytes hash
    to something else. The entry is treated as a miss; nothing of it is handed on."""


class InvalidManifest(CorruptEntry, ValueError):
    """A manifest is not one this modelcache can trust: unparsable, unknown format, unsafe path,
    impossible size, or a key that does not match its inputs."""


class UntrustedEntry(CorruptEntry):
    """An entry or evaluation result that no trusted signer vouches for: unsigned where
    signatures are required, signed by a key the reader does not trust, or with a signature
    that does not match. Like any corrupt entry it is a miss: nothing of it is handed on."""


class ModelDirectoryError(StoreError, ValueError):
    """A model directory cannot become a cache entry: it holds a symbolic link, a special
    file or a name a manifest cannot carry, or it is not a directory at all.

    ``path`` is the offending file, ``problem`` what is wrong with it.
    """

    def __init__(self, *, path: Path, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem
