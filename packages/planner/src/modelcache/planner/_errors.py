"""The planner's one error family."""

from __future__ import annotations

from typing import ClassVar, Literal

__all__ = ["InvalidChain", "InvalidConfig", "InvalidInput", "PlannerError"]


class PlannerError(Exception):
    """Base of every error the planner raises on purpose.

    Each is about what the caller handed in (a chain, a configuration, JSON), so
    :attr:`fault`, the hint a command line turns into an exit status, is ``"user"``, as
    for the other packages' errors that the user must fix.
    """

    fault: ClassVar[Literal["user", "environment"]] = "user"


class InvalidConfig(PlannerError, ValueError):
    """A pass configuration is not canonical JSON (NaN, infinity, a non-string key, ...)."""

    def __init__(self, *, path: str, problem: str) -> None:
        super().__init__(path, problem)
        self.path = path
        self.problem = problem

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


class InvalidChain(PlannerError, ValueError):
    """The pass chain, evaluation targets or snapshot contradict each other, or a sweep names
    a workflow twice."""

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
