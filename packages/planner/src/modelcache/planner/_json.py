"""Immutable JSON values and their canonical text.

A pass configuration is JSON. To sit inside a frozen, hashable value it is deep-frozen:
objects become :class:`JsonMap`, arrays become tuples. Its canonical text (sorted keys, no
whitespace, UTF-8, no NaN or infinity) is what cache keys hash, so two configurations that
differ only in key order are the same configuration.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping
from typing import Any, TypeAlias

from ._errors import InvalidConfig

__all__ = ["JsonMap", "JsonValue", "canonical_json", "freeze", "thaw"]

JsonValue: TypeAlias = "None | bool | int | float | str | tuple[JsonValue, ...] | JsonMap"


class JsonMap(Mapping[str, "JsonValue"]):
    """A read-only, hashable JSON object with string keys."""

    __slots__ = ("_hash", "_items")

    def __init__(self, items: Mapping[str, Any] | None = None) -> None:
        frozen = freeze(dict(items or {}), "$")
        assert isinstance(frozen, JsonMap)
        self._items: dict[str, JsonValue] = frozen._items
        self._hash: int | None = None

    @classmethod
    def _trusted(cls, items: dict[str, JsonValue]) -> JsonMap:
        new = cls.__new__(cls)
        new._items = items
        new._hash = None
        return new

    def __getitem__(self, key: str) -> JsonValue:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(canonical_json(self))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, JsonMap):
            return canonical_json(self) == canonical_json(other)
        if isinstance(other, Mapping):
            return self._items == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return f"JsonMap({thaw(self)!r})"


def freeze(value: Any, path: str = "$") -> JsonValue:
    """Deep-freeze a JSON value, rejecting anything JSON cannot carry exactly."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidConfig(
                path=path, problem=f"{value!r} is not JSON; use a finite number or a string"
            )
        return value
    if isinstance(value, JsonMap):
        return value
    if isinstance(value, Mapping):
        items: dict[str, JsonValue] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidConfig(
                    path=path, problem=f"key {key!r} is not a string; JSON keys are strings"
                )
            items[key] = freeze(item, f"{path}.{key}")
        return JsonMap._trusted(items)
    if isinstance(value, (list, tuple)):
        return tuple(freeze(item, f"{path}[{i}]") for i, item in enumerate(value))
    raise InvalidConfig(
        path=path,
        problem=f"{type(value).__name__} is not a JSON type; use str, number, bool, "
        "null, list or object",
    )


def thaw(value: JsonValue) -> Any:
    """The plain ``dict``/``list`` form of a frozen JSON value."""
    if isinstance(value, JsonMap):
        return {key: thaw(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [thaw(item) for item in value]
    return value


def canonical_json(value: Any) -> str:
    """Sorted keys, no insignificant whitespace, non-ASCII kept, NaN and infinity refused."""
    return json.dumps(
        thaw(freeze(value)),
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        allow_nan=False,
    )
