"""The wire format of maintenance: one project-owned cattrs converter, and its time formats.

Run records come from other machines and are untrusted; reports go to ``--json``. Both pass
through :data:`converter` only (never cattrs' global one). Its scalar hooks are strict
(``1.0`` is not a count, ``"1.5"`` is not a number, ``true`` is neither) where cattrs'
defaults would coerce. Extra keys are ignored, not refused: a record written by a later
modelcache of the same format may carry fields this one does not read.

Each module declares the wire form of its own types with :func:`wire_format`, beside the
type, so that this module depends on none of them.
"""

from __future__ import annotations

import datetime as _dt
import math
from collections.abc import Callable, Mapping
from typing import Any, NewType, TypeAlias, TypeVar, get_args, get_origin

import attrs
import cattrs
from attrs import AttrsInstance
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn
from cattrs.gen._consts import AttributeOverride  # what cattrs.gen.override returns

from modelcache.planner import JsonMap, thaw

__all__ = [
    "JsonObject",
    "Timestamp",
    "converter",
    "iso",
    "parse_iso",
    "read_format",
    "stamp",
    "structure",
    "unstructure",
    "wire_format",
]

T = TypeVar("T")
A = TypeVar("A", bound=AttrsInstance)

#: A JSON object ready for ``json.dumps``: what ``to_json`` returns and ``--json`` prints.
JsonObject: TypeAlias = dict[str, Any]
#: Seconds since the epoch; on the wire, ``YYYY-MM-DDTHH:MM:SSZ`` (UTC, whole seconds).
Timestamp = NewType("Timestamp", float)

_ISO = "%Y-%m-%dT%H:%M:%SZ"

converter = cattrs.Converter()


def iso(when: float) -> str:
    """``when`` (epoch seconds) as the wire writes it."""
    return _dt.datetime.fromtimestamp(when, _dt.UTC).strftime(_ISO)


def stamp(when: float) -> str:
    """``when`` as a run record's name carries it: ``YYYYMMDDTHHMMSSZ``."""
    return _dt.datetime.fromtimestamp(when, _dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def parse_iso(text: object) -> float | None:
    """The epoch seconds of a wire timestamp, or None if ``text`` is not one."""
    if not isinstance(text, str):
        return None
    try:
        when = _dt.datetime.strptime(text, _ISO).replace(tzinfo=_dt.UTC)
    except ValueError:
        return None
    return when.timestamp()


def _timestamp(value: object, _type: object) -> Timestamp:
    when = parse_iso(value)
    if when is None:
        raise ValueError(f"{value!r} is not a time of the form 2026-01-31T23:59:59Z")
    return Timestamp(when)


def _int(value: object, _type: object) -> int:
    if type(value) is not int:
        raise TypeError(f"{value!r} is not a whole number")
    return value


def _float(value: object, _type: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise TypeError(f"{value!r} is not a finite number")
    return float(value)


def _str(value: object, _type: object) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not a string")
    return value


def _bool(value: object, _type: object) -> bool:
    if not isinstance(value, bool):
        raise TypeError(f"{value!r} is not true or false")
    return value


def _is_array(type_: object) -> bool:
    return get_origin(type_) is tuple and get_args(type_)[1:] == (...,)


def _array(type_: object) -> Callable[[object, object], tuple[object, ...]]:
    item = get_args(type_)[0]

    def structure_array(value: object, _type: object) -> tuple[object, ...]:
        # cattrs would take any iterable: a string for its characters, an object for its keys.
        if not isinstance(value, list):
            raise TypeError(f"expected a JSON array, got {type(value).__name__}")
        return tuple(converter.structure(element, item) for element in value)

    return structure_array


converter.register_structure_hook_factory(_is_array, _array)
converter.register_structure_hook(Timestamp, _timestamp)
converter.register_unstructure_hook(Timestamp, iso)
converter.register_structure_hook(int, _int)
converter.register_structure_hook(float, _float)
converter.register_structure_hook(str, _str)
converter.register_structure_hook(bool, _bool)
converter.register_unstructure_hook(JsonMap, thaw)


def wire_format(
    cls: type[A],
    *,
    extra: Callable[[A], Mapping[str, object]] | None = None,
    **overrides: AttributeOverride,
) -> None:
    """Declare how ``cls`` (an attrs class) is written: its fields, renamed, transformed or
    omitted by ``overrides`` (``cattrs.gen.override``), then what ``extra`` adds (derived
    values such as a report's verdict). The writing function is generated when the first
    value is written, not when the module declaring ``cls`` is imported."""
    built: list[Callable[[A], JsonObject]] = []

    def unstructure_fields(value: A) -> JsonObject:
        if not built:  # two threads may both build it: the same function, harmlessly
            # mypy matches **overrides against cattrs' own _cattrs_* flags too.
            built.append(make_dict_unstructure_fn(cls, converter, **overrides))  # type: ignore[arg-type]
        fields = built[0](value)
        return fields if extra is None else {**fields, **extra(value)}

    converter.register_unstructure_hook(cls, unstructure_fields)


def read_format(cls: type[A]) -> None:
    """Declare that ``cls`` (an attrs class) is read from a JSON object holding every one of
    its fields: its defaults are for building one, not for filling in what a document lacks
    (cattrs alone would take a list, or an object missing a count, for all defaults). The
    reading function is generated when the first document is read."""
    built: list[Callable[[Mapping[str, Any], Any], A]] = []

    def structure_complete(value: object, _type: object) -> A:
        if not isinstance(value, Mapping):
            raise TypeError(f"expected a JSON object, got {type(value).__name__}")
        names = tuple(attribute.name for attribute in attrs.fields(cls))
        missing = [name for name in names if name not in value]
        if missing:
            raise ValueError(f"missing {', '.join(missing)}")
        if not built:
            built.append(make_dict_structure_fn(cls, converter))
        return built[0](value, cls)

    converter.register_structure_hook(cls, structure_complete)


def unstructure(value: object) -> JsonObject:
    """The JSON object a value declared with :func:`wire_format` is written as."""
    document = converter.unstructure(value)
    assert isinstance(document, dict)
    return document


def structure(document: object, cls: type[T]) -> T:
    """``cls`` from an untrusted JSON document; ``ValueError`` saying what is wrong where."""
    try:
        return converter.structure(document, cls)
    except cattrs.BaseValidationError as error:
        raise ValueError("; ".join(cattrs.transform_error(error, path="$"))) from None
    except (TypeError, ValueError, KeyError, AttributeError) as error:
        raise ValueError(f"$: {error}") from None
