"""The passes of a config checked against their implementations: each type known, its
parameters valid, and each taking the model type its predecessor makes."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from attrs import evolve

from ._errors import Problem
from ._model import Passes, PassParameters

if TYPE_CHECKING:
    from ..passes import Pass, PassContext

__all__ = ["check_passes"]


def check_passes(
    passes: Passes, input_type: str | None = "hf", context: PassContext | None = None
) -> tuple[dict[str, tuple[Pass, dict[str, Any]]], list[Problem]]:
    """Each pass looked up (whatever the case of its type) and its parameters validated,
    and each checked to take the model type its predecessor makes, starting from
    ``input_type`` (``None``: unknown, the first pass is not checked). A pass that depends
    on its place in the workflow (:class:`~modelcache.runner.passes.ContextDependentPass`)
    is bound to ``context`` first (default: a context of nothing but its input type).
    Returns the passes that are sound,
    by name, as (implementation, validated parameters), and every problem found, in chain
    order."""
    from ..passes import (
        ContextDependentPass,
        PassConfigError,
        PassConfigProblems,
        PassContext,
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
            problems.append(Problem(path=_path(name, raw, "type"), problem=(
                f"unknown pass type {error.type_name!r}; {hint}available pass types: {available}"
            )))  # fmt: skip
            current = None  # what this pass makes is unknown: the next one is not checked
            continue
        if current is not None and current not in implementation.input_types:
            implementation = _olive_instead(implementation, str(raw["type"]), current)
        if isinstance(implementation, ContextDependentPass):
            receives = current or min(implementation.input_types, default="hf")
            bound = evolve(context or PassContext(), input_type=receives,
                           input_known=current is not None)  # fmt: skip
            implementation = implementation.in_context(bound)
        try:
            validated = implementation.validate({k: v for k, v in raw.items() if k != "type"})
        except PassConfigError as error:
            errors = error.errors if isinstance(error, PassConfigProblems) else (error,)
            problems.extend(Problem(path=_path(name, raw, e.field), problem=e.problem,
                                    missing=e.missing) for e in errors)  # fmt: skip
        else:
            sound[name] = (implementation, validated)
        if (
            current is not None
            and implementation.input_types
            and (current not in implementation.input_types)
        ):
            takes = " or ".join(sorted(implementation.input_types))
            problems.append(Problem(path=f"$.passes.{name}", problem=(
                f"{implementation.type} takes {_kind(takes)} models, but receives "
                f"{_kind(current)} models; reorder the passes"
            )))  # fmt: skip
        current = implementation.output_type or None  # None: a format no pass here takes
    return sound, problems


def _olive_instead(implementation: Pass, type_name: str, receives: str) -> Pass:
    """``implementation``, or, when it cannot take ``receives`` models and Olive's pass of
    that name can, Olive's: the built-in ``OnnxConversion`` converts Hugging Face models,
    Olive's converts PyTorch models too. The choice depends on the config alone (and on
    Olive being installed, without which nothing takes such a model)."""
    from ..olive import OLIVE_PREFIX, find_olive_pass

    if implementation.type.startswith(OLIVE_PREFIX):
        return implementation
    olive = find_olive_pass(type_name)
    return olive if olive is not None and receives in olive.input_types else implementation


def _kind(model_type: str) -> str:
    """Model types as a reader says them: "Hugging Face", "ONNX", "PyTorch"."""
    names = {"hf": "Hugging Face", "onnx": "ONNX", "openvino": "OpenVINO IR", "pytorch": "PyTorch"}
    return " or ".join(names.get(kind, kind) for kind in model_type.split(" or "))


def _path(name: str, raw: Mapping[str, Any], field: str | None) -> str:
    """The path of the pass ``name``'s ``field`` (a parameter, perhaps dotted deeper) where
    the file wrote it: Olive's nested ``config`` puts parameters one level down."""
    if not field:
        return f"$.passes.{name}"
    first, dot, rest = field.partition(".")
    origins = raw.origins if isinstance(raw, PassParameters) else {}
    return f"{origins[first]}{dot}{rest}" if first in origins else f"$.passes.{name}.{field}"
