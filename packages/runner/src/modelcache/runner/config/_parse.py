"""A parsed JSON document to a :class:`WorkflowConfig`, or a :class:`ConfigError` naming
every problem: its Olive fields read into modelcache's schema (``_olive``), then cattrs'
validation errors flattened to one :class:`Problem` per leaf, at the path the file wrote."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cattrs
from attrs import evolve
from cattrs.errors import AttributeValidationNote, ClassValidationError, IterableValidationError
from cattrs.v import format_exception

from ._cloud import NO_OVERRIDES, CloudOverrides
from ._errors import ConfigError, Problem
from ._model import Passes, WorkflowConfig
from ._olive import read_olive
from ._passes import check_passes
from ._structure import converter, structure_passes

__all__ = ["parse_config", "with_pass_problems"]

#: Fields of :class:`WorkflowConfig` the reading sets, never the file.
_SET_HERE = ("base_dir", "target_accelerators")


def parse_config(
    document: Any,
    *,
    base_dir: Path = Path("."),
    source: str = "",
    overrides: CloudOverrides = NO_OVERRIDES,
) -> WorkflowConfig:
    """A :class:`WorkflowConfig` from parsed JSON (modelcache's schema or Olive's), or a
    :class:`ConfigError` naming every problem, each with its path. Where the document's
    structure is wrong, the problems of its passes (types, parameters, order) are named too,
    so that one attempt shows all.

    :param overrides: the command line's account and container, over the config's.
    """
    if not isinstance(document, dict):
        raise ConfigError(path="$", problem="a workflow config is a JSON object", source=source)
    problems = [Problem(path=f"$.{name}", problem="unknown field") for name in _SET_HERE
                if name in document]  # fmt: skip
    try:
        reading = read_olive(
            {k: v for k, v in document.items() if k not in _SET_HERE}, overrides, source
        )
    except RecursionError:
        raise ConfigError(
            path="$", problem="not usable: nested too deeply", source=source
        ) from None
    try:
        config = converter.structure(reading.document, WorkflowConfig)
    except cattrs.BaseValidationError as error:
        problems.extend(
            Problem(path=reading.where(p.path), problem=p.problem) for p in _problems_of(error, "$")
        )
    problems.extend(reading.problems)
    if problems:
        if not reading.searching:  # a search's passes hold searches, not values
            problems = with_pass_problems(problems, reading.document)
        raise ConfigError.of(problems, source=source)
    return evolve(
        config,
        base_dir=base_dir,
        data_configs=reading.data_configs,
        target_accelerators=reading.accelerators,
        notes=tuple(reading.notes),
    )


def _problems_of(error: BaseException, path: str, type_: Any = None) -> Iterator[Problem]:
    """Every leaf problem of a cattrs validation error, with its path."""
    if isinstance(error, ClassValidationError | IterableValidationError):
        noted, plain = error.group_exceptions()
        for inner, note in noted:
            step = (
                f".{note.name}"
                if isinstance(note, AttributeValidationNote)
                else f"[{note.index!r}]"
            )
            yield from _problems_of(inner, f"{path}{step}", note.type)
        for inner in plain:
            yield from _problems_of(inner, path)
        return
    yield Problem(path=path, problem=_describe(error, type_))


def _describe(error: BaseException, type_: Any) -> str:
    if isinstance(error, KeyError):
        return "required field missing"
    if isinstance(error, cattrs.ForbiddenExtraKeysError):
        return f"unknown field(s) {sorted(error.extra_fields)}; remove or rename them"
    if isinstance(error, (ValueError, TypeError)) and str(error):
        return str(error)
    return format_exception(error, type_)


def with_pass_problems(problems: list[Problem], document: dict[str, Any]) -> list[Problem]:
    """``problems`` and, when the passes section of ``document`` (in modelcache's schema)
    is sound, its passes' problems."""
    try:
        passes = structure_passes(document.get("passes"), Passes)
    except (ValueError, ClassValidationError):
        return problems
    return [*problems, *check_passes(passes)[1]]
