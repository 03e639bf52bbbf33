"""The Olive adapter's errors: one line each, naming the pass and what to do."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from ..passes import PassConfigError, PassError

__all__ = ["OliveFileMissing", "OliveMissingPackage", "OlivePassFailed", "OliveUnsupported"]


class OliveUnsupported(PassConfigError):
    """An Olive pass that cannot run here: a package it needs is missing, or it works on a
    model format modelcache does not carry. ``problem`` says which and what to do. A
    configuration problem of the pass as a whole (``field`` is ``None``), so that a plan
    lists it beside the others."""

    def __init__(self, pass_type: str, problem: str) -> None:
        super().__init__(pass_type, None, problem)

    def __str__(self) -> str:
        return f"{self.pass_type} {self.problem}"


class OliveMissingPackage(OliveUnsupported):
    """A package an Olive pass needs is not installed here: ``package`` names it. The
    pass's key cannot be known (it holds the package's version), but the config is not
    wrong: a plan shows the pass as unknown, a run refuses it."""

    missing: ClassVar[bool] = True

    def __init__(self, pass_type: str, package: str, problem: str) -> None:
        super().__init__(pass_type, problem)
        self.package = package


class OliveFileMissing(PassConfigError):
    """A path a pass's parameters name (a ``data_dir``, a ``user_script``) is not there: an
    example's own script often downloads or makes it first. The pass's key cannot be known
    (it holds the files' content), but the config need not be wrong: a plan shows the pass
    as unknown, naming the path, and a run refuses it."""

    missing: ClassVar[bool] = True


class OlivePassFailed(PassError):
    """Olive's implementation of a pass raised: ``cause`` is what it raised. Nothing of its
    output is kept."""

    def __init__(self, pass_type: str, cause: BaseException | str, hint: str = "") -> None:
        super().__init__(pass_type, cause)
        self.pass_type = pass_type
        self.cause = cause
        #: What to try, when the failure is a known one (``""`` otherwise).
        self.hint = hint

    @classmethod
    def of_layout(cls, made: Path, graphs: list[str]) -> OlivePassFailed:
        found = ", ".join(graphs) or "none"
        return cls("Olive", f"wrote no single ONNX graph to use as {made.name} (found: {found})")

    def __str__(self) -> str:
        cause = self.cause
        if isinstance(cause, str):
            return f"{self.pass_type}: {cause}"
        message = " ".join(str(cause).split())[:500]
        hint = f" ({self.hint})" if self.hint else ""
        return f"{self.pass_type} failed in Olive: {type(cause).__name__}: {message}{hint}"
