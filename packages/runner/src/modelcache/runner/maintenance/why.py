"""``modelcache cache why``: why a pass misses, as the key inputs that differ from the nearest
cached entry of the same pass type, up the chain when its input changed."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import TypeAlias

from attrs import frozen
from cattrs.gen import override

from modelcache.planner import canonical_json

from ._codec import JsonObject, unstructure, wire_format
from .inventory import EntryInfo, Inventory

__all__ = ["Difference", "WhyReport", "explain_miss"]

#: Plain JSON, as a key document holds it (arrays as lists, objects as dicts).
JsonData: TypeAlias = "None | bool | int | float | str | list[JsonData] | dict[str, JsonData]"

#: What a difference shows for a field that one side lacks.
_MISSING = "<absent>"


@frozen(kw_only=True)
class Difference:
    """One key input that differs from the nearest cached entry's, named by its path in the
    key document (``pass.config.opset``, ``input``; ``docs/cache-keys.md``)."""

    field: str
    cached: JsonData
    now: JsonData


@frozen(kw_only=True)
class WhyReport:
    """Why a pass misses: the nearest cached entry of the same pass type and how its key
    inputs differ; ``upstream`` explains the pass before, when its output changed."""

    pass_name: str
    key: str
    cached: bool
    nearest: str | None = None
    candidates: int = 0
    differences: tuple[Difference, ...] = ()
    note: str = ""
    upstream: WhyReport | None = None

    def to_json(self) -> JsonObject:
        """The report as ``modelcache cache why --json`` prints it."""
        return unstructure(self)


def _as_is(value: JsonData) -> JsonData:
    return value


wire_format(Difference, cached=override(unstruct_hook=_as_is), now=override(unstruct_hook=_as_is))
wire_format(WhyReport, pass_name=override(rename="pass"))


def explain_miss(
    inventory: Inventory,
    pass_names: Sequence[str],
    documents: Sequence[Mapping[str, object]],
    keys: Sequence[str],
    pass_name: str,
) -> WhyReport:
    """Why the pass ``pass_name`` of a chain misses in ``inventory``.

    :param pass_names: the chain's pass names, in order.
    :param documents: each pass's key document (``modelcache.planner.key_document``).
    :param keys: each pass's key.
    """
    index = pass_names.index(pass_name)
    key = keys[index]
    if key in inventory.entries and inventory.entries[key].manifest is not None:
        return WhyReport(pass_name=pass_name, key=key, cached=True, note="cached: a hit")
    document = _plain(documents[index])
    pass_type = _pass_type(document)
    candidates = [
        entry
        for entry in inventory.entries.values()
        if entry.manifest is not None and entry.pass_type == pass_type
    ]
    if not candidates:
        return WhyReport(
            pass_name=pass_name,
            key=key,
            cached=False,
            note=f"no entry of pass type {pass_type} in this cache: it never ran here, "
            "with any configuration",
        )
    nearest = min(candidates, key=lambda entry: _distance(entry, document))
    differences = _diff(_key_inputs(nearest), document)
    upstream, note = None, ""
    if any(d.field == "input" or d.field.startswith("input.") for d in differences):
        upstream, note = _explain_input(inventory, pass_names, documents, keys, index)
    return WhyReport(
        pass_name=pass_name,
        key=key,
        cached=False,
        nearest=nearest.key,
        candidates=len(candidates),
        differences=differences,
        upstream=upstream,
        note=note,
    )


def _explain_input(
    inventory: Inventory,
    pass_names: Sequence[str],
    documents: Sequence[Mapping[str, object]],
    keys: Sequence[str],
    index: int,
) -> tuple[WhyReport | None, str]:
    """Why the input of pass ``index`` differs: the input model, or the pass before's miss."""
    if index == 0:
        return None, "the input model differs from the one the cached entry was made from"
    before = pass_names[index - 1]
    return explain_miss(inventory, pass_names, documents, keys, before), (
        f"its input differs: the output of pass {before!r} is not the one the cached entry "
        "was made from"
    )


def _plain(document: Mapping[str, object]) -> dict[str, JsonData]:
    """A key document as plain JSON, as the differences show it."""
    data = json.loads(canonical_json(dict(document)))
    assert isinstance(data, dict)
    return data


def _pass_type(document: Mapping[str, JsonData]) -> JsonData:
    spec = document.get("pass")
    return spec.get("type") if isinstance(spec, dict) else None


def _key_inputs(entry: EntryInfo) -> dict[str, JsonData]:
    assert entry.manifest is not None
    return _plain(entry.manifest.key_inputs)


def _distance(entry: EntryInfo, document: Mapping[str, JsonData]) -> tuple[int, float]:
    """How far a cached entry is from ``document``: fields that differ, then the least
    recently used is the farthest."""
    return len(_diff(_key_inputs(entry), document)), -entry.last_used


def _leaves(value: JsonData, path: str) -> Iterator[tuple[str, JsonData]]:
    if isinstance(value, dict) and value:
        for name in sorted(value):
            yield from _leaves(value[name], f"{path}.{name}" if path else str(name))
    else:
        yield path, value


def _diff(cached: dict[str, JsonData], now: Mapping[str, JsonData]) -> tuple[Difference, ...]:
    old = dict(_leaves(cached, ""))
    new = dict(_leaves(dict(now), ""))
    return tuple(
        Difference(field=name, cached=old.get(name, _MISSING), now=new.get(name, _MISSING))
        for name in sorted(old.keys() | new.keys())
        if old.get(name, _MISSING) != new.get(name, _MISSING)
    )
