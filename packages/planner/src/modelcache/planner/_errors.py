"""The planner's one error family."""

from __future__ import annotations

__all__ = [
    "AccessDenied",
    "CorruptEntry",
    "EntryNotFound",
    "InvalidChain",
    "InvalidConfig",
    "InvalidInput",
    "InvalidManifest",
    "PlannerError",
    "StoreConfigError",
    "StoreError",
    "StoreUnavailable",
]


class PlannerError(Exception):
    """Base of every error the planner raises on purpose."""


class InvalidConfig(PlannerError, ValueError):
    """A pass configuration is not canonical JSON (NaN, infinity, a non-string key, ...)."""

    def __init__(self, *, path: str, problem: str) -> None:
        super().__init__(path, problem)
        self.path = path
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


class InvalidChain(PlannerError, ValueError):
    """The pass chain, evaluation targets or snapshot contradict each other."""

    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem

    def __str__(self) -> str:
        return self.problem


class InvalidInput(PlannerError, ValueError):
    """JSON given to the converter does not describe a planner value.

    ``path`` names the offending field (``$.passes[2].config``); ``problem`` says what is
    wrong with it.
    """

    def __init__(self, *, path: str, problem: str) -> None:
        super().__init__(path, problem)
        self.path = path
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


class StoreError(Exception):
    """Base of the errors the stores raise; the adapters translate SDK errors into these at
    one choke point. ``str()`` is one line a user can act on; it never holds a credential."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class StoreUnavailable(StoreError):
    """The store could not be reached, or did not answer in time. Worth retrying later."""


class StoreConfigError(StoreError):
    """The store is set up wrongly: no usable credential, access refused, no such container."""


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
