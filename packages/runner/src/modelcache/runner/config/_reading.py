"""What reading an Olive-shaped document gathers on the way to modelcache's schema: the
document as rewritten so far, the problems and notes found, and where each moved value was
written (so that a problem found later names the place in the file)."""

from __future__ import annotations

import json
from typing import Any

from attrs import Factory, define

from ._errors import Problem

__all__ = ["Reading", "flatten_nested", "json_type", "quote"]


@define
class Reading:
    """The document being rewritten (a copy: the caller's is never changed), the problems
    and notes so far, the data configs by name and ``origins``: the path a value has in
    :attr:`document` -> the path the file wrote it at, for values that moved."""

    document: dict[str, Any]
    problems: list[Problem] = Factory(list)
    notes: list[str] = Factory(list)
    origins: dict[str, str] = Factory(dict)
    data_configs: dict[str, dict[str, Any]] = Factory(dict)
    #: The config's ``search_strategy`` searches (a problem said once, at its path).
    searching: bool = False
    #: The target system's ``accelerators``, as written (``None``: no target gives any).
    accelerators: Any = None

    def problem(self, path: str, problem: str) -> None:
        self.problems.append(Problem(path=path, problem=problem))

    def note(self, note: str) -> None:
        if note not in self.notes:
            self.notes.append(note)

    def moved(self, now: str, written: str) -> None:
        """The value now at ``now`` was written at ``written``."""
        self.origins[now] = self.where(written)

    def where(self, path: str) -> str:
        """The path in the file of the value now at ``path``: the longest moved prefix of
        ``path`` (a whole step: ``$.a`` is a prefix of ``$.a.b`` and ``$.a[0]``, not of
        ``$.ab``) replaced by where it was written."""
        best = ""
        for moved in self.origins:
            if len(moved) > len(best) and (
                path == moved or path.startswith((f"{moved}.", f"{moved}["))
            ):
                best = moved
        return self.origins[best] + path[len(best) :] if best else path


def json_type(value: Any) -> str:
    """The JSON name of ``value``'s type, for messages."""
    names = {bool: "true/false", int: "a number", float: "a number", str: "a string",
             list: "a list", dict: "an object", type(None): "null"}  # fmt: skip
    return names.get(type(value), type(value).__name__)


def quote(value: Any) -> str:
    """``value`` as a short JSON text for a message (a long one is cut)."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 60 else f"{text[:57]}..."


def flatten_nested(
    reading: Reading, value: dict[str, Any], path: str, *, nested: str = "config"
) -> dict[str, Any]:
    """Move the fields of ``value``'s ``nested`` object (Olive's ``{"type": ...,
    "config": {...}}``) beside its others, in place; a field given in both places is a
    problem. Returns the fields moved, for the caller to record where they were written."""
    if nested not in value:
        return {}
    inner = value.pop(nested)
    if inner is None:
        return {}
    if not isinstance(inner, dict):
        reading.problem(f"{path}.{nested}", f"expected an object, got {json_type(inner)}")
        return {}
    moved = {}
    for name, item in inner.items():
        if name in value:
            reading.problem(
                f"{path}.{nested}.{name}", f"also given as {path}.{name}; keep one of the two"
            )
            continue
        value[name] = moved[name] = item
    return moved
