"""The passes' error family. Each error carries its data as attributes; ``str()`` is one line
that says what is wrong and how to fix it."""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "PassConfigError",
    "PassError",
    "PassInputError",
    "PassRegistryError",
    "PassUnavailable",
    "UnknownPassType",
]


class PassError(Exception):
    """Base of every error a pass or the pass registry raises on purpose."""


class PassConfigError(PassError, ValueError):
    """A pass configuration is wrong.

    ``field`` names the offending parameter (``None`` when the configuration as a whole is
    wrong); ``problem`` says what is wrong with it and how to fix it.
    """

    def __init__(self, pass_type: str, field: str | None, problem: str) -> None:
        super().__init__(pass_type, field, problem)
        self.pass_type = pass_type
        self.field = field
        self.problem = problem

    def __str__(self) -> str:
        where = f"{self.pass_type}.{self.field}" if self.field else self.pass_type
        return f"{where}: {self.problem}"


class UnknownPassType(PassError, KeyError):
    """No pass of this type is built in or registered.

    A :class:`KeyError` so lookups can be handled like a missing key; ``args[0]`` and
    ``str()`` are the message (not its ``repr``, as with a plain ``KeyError``).
    """

    def __init__(self, type_name: str, available: Iterable[str]) -> None:
        self.type_name = type_name
        self.available = tuple(sorted(available))
        super().__init__(self._message())

    def _message(self) -> str:
        return (
            f"unknown pass type {self.type_name!r}; available pass types: "
            f"{', '.join(self.available)}"
        )

    def __str__(self) -> str:
        return self._message()


class PassRegistryError(PassError):
    """A pass registered through an entry point cannot be used: it fails to load, is not a
    pass, or clashes with another registration of the same type."""

    def __init__(self, type_name: str, problem: str) -> None:
        super().__init__(type_name, problem)
        self.type_name = type_name
        self.problem = problem

    def __str__(self) -> str:
        return f"pass type {self.type_name!r}: {self.problem}"


class PassUnavailable(PassError):
    """A package the pass needs (and whose version goes into its cache key) is not installed."""

    def __init__(self, pass_type: str, package: str) -> None:
        super().__init__(pass_type, package)
        self.pass_type = pass_type
        self.package = package

    def __str__(self) -> str:
        return (
            f"{self.pass_type} needs the {self.package!r} package, which is not installed; "
            "install the real passes with: pip install 'modelcache-runner[ml]'"
        )


class PassInputError(PassError, ValueError):
    """The model handed to a pass is not one it can work on (wrong type, missing files)."""

    def __init__(self, pass_type: str, problem: str) -> None:
        super().__init__(pass_type, problem)
        self.pass_type = pass_type
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.pass_type}: {self.problem}"
