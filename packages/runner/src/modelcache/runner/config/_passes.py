"""The passes of a config checked against their implementations: each type known, its
parameters valid, and each taking the model type its predecessor makes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._errors import Problem
from ._model import Passes

if TYPE_CHECKING:
    from ..passes import Pass

__all__ = ["check_passes"]


def check_passes(
    passes: Passes, input_type: str = "hf"
) -> tuple[dict[str, tuple[Pass, dict[str, Any]]], list[Problem]]:
    """Each pass looked up (whatever the case of its type) and its parameters validated,
    and each checked to take the model type its predecessor makes, starting from
    ``input_type``. Returns the passes that are sound, by name, as (implementation,
    validated parameters), and every problem found, in chain order."""
    from ..passes import (
        PassConfigError,
        PassConfigProblems,
        UnknownPassType,
        did_you_mean,
        load_pass,
    )

    sound: dict[str, tuple[Pass, dict[str, Any]]] = {}
    problems: list[Problem] = []
    current: str | None = input_type
    for name, raw in passes:
        try:
            implementation = load_pass(str(raw["type"]))
        except UnknownPassType as error:
            hint = did_you_mean(error.type_name, error.available)
            available = ", ".join(error.available)
            problems.append(Problem(path=f"$.passes.{name}.type", problem=(
                f"unknown pass type {error.type_name!r}; {hint}available pass types: {available}"
            )))  # fmt: skip
            current = None  # what this pass makes is unknown: the next one is not checked
            continue
        try:
            validated = implementation.validate({k: v for k, v in raw.items() if k != "type"})
        except PassConfigError as error:
            errors = error.errors if isinstance(error, PassConfigProblems) else (error,)
            problems.extend(
                Problem(path=f"$.passes.{name}" + (f".{e.field}" if e.field else ""),
                        problem=e.problem)
                for e in errors
            )  # fmt: skip
        else:
            sound[name] = (implementation, validated)
        if current is not None and current not in implementation.input_types:
            problems.append(Problem(path=f"$.passes.{name}", problem=(
                f"{implementation.type} takes a {' or '.join(sorted(implementation.input_types))}"
                f" model, but its input is a {current} model; reorder the passes"
            )))  # fmt: skip
        current = implementation.output_type
    return sound, problems
