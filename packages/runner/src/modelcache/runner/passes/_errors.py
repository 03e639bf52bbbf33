"""The passes' branch of the runner's error family. Each error carries its data as
attributes; ``str()`` is one line that says what is wrong and how to fix it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from modelcache.store import Fault

from ..errors import RunnerError

__all__ = [
    "PassConfigError",
    "PassError",
    "PassInputError",
    "PassRegistryError",
    "PassUnavailable",
    "UnknownPassType",
]


class PassError(RunnerError):
    """Base of every error a pass or the pass registry raises on purpose. Unless a subclass
    says otherwise, nothing in the user's config can fix it: its :attr:`fault` is
    ``"environment"`` (a package missing, a plug-in broken, a model a pass cannot read)."""


class PassConfigError(PassError, ValueError):
    """A pass configuration is wrong.

    ``field`` names the offending parameter (``None`` when the configuration as a whole is
    wrong); ``problem`` says what is wrong with it and how to fix it.
    """

    fault: ClassVar[Fault] = "user"
    #: True when what is wrong is absent from this machine (a package), not the config.
    missing: ClassVar[bool] = False

    def __init__(self, pass_type: str, field: str | None, problem: str) -> None:
        super().__init__(pass_type, field, problem)
        self.pass_type = pass_type
        self.field = field
        self.problem = problem

    def __str__(self) -> str:
        where = f"{self.pass_type}.{self.field}" if self.field else self.pass_type
        return f"{where}: {self.problem}"


class UnknownPassType(PassError):
    """No pass of this type is built in or registered: the config names it, so the user's to
    fix. ``type_name`` is the type asked for, ``available`` the types there are."""

    fault: ClassVar[Fault] = "user"

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
