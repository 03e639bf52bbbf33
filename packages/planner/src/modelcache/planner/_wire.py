"""The wire format: one project-owned cattrs converter for every planner value.

Serialization lives here, at the edge, and nowhere else. Sum types carry a ``kind`` tag
(``{"kind": "run", ...}``); ``pass_name`` is spelt ``pass`` on the wire; extra keys are
refused. :func:`structure` is the single entry point for outside data: it turns cattrs'
validation errors into :class:`~modelcache.planner.InvalidInput` naming the offending path.
``docs/plan-format.md`` documents the result.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, TypeVar

import cattrs
from attrs import frozen
from cattrs.cols import is_frozenset
from cattrs.gen import make_dict_structure_fn, make_dict_unstructure_fn, override
from cattrs.strategies import configure_tagged_union

from ._errors import InvalidInput, PlannerError
from ._json import JsonMap, thaw
from ._model import HubModel, LocalModel, ModelIdentity, Snapshot, SnapshotEntry
from ._plan import PLAN_FORMAT, Download, Evaluate, Plan, Run, Skip, Step, Totals, Upload

__all__ = ["converter", "dumps", "loads", "structure", "unstructure"]

T = TypeVar("T")

converter = cattrs.Converter(forbid_extra_keys=True)

converter.register_structure_hook(JsonMap, lambda value, _type: _json_map(value))
converter.register_unstructure_hook(JsonMap, thaw)
# A predicate, not the bare class: cattrs dispatches ``frozenset[str]`` fields to its own
# collection hook, which would hand json a frozenset.
converter.register_unstructure_hook_func(is_frozenset, sorted)


def _json_map(value: Any) -> JsonMap:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected a JSON object, got {type(value).__name__}")
    return JsonMap(value)


def _strict_bool(value: Any, _type: type) -> bool:
    # cattrs' default is bool(value), which reads the string "false" as true.
    if not isinstance(value, bool):
        raise TypeError(f"expected true or false, got {value!r}")
    return value


converter.register_structure_hook(bool, _strict_bool)


_MODEL_TAGS: dict[type, str] = {HubModel: "hf_hub", LocalModel: "local_dir"}
_STEP_TAGS: dict[type, str] = {
    Run: "run",
    Skip: "skip",
    Download: "download",
    Upload: "upload",
    Evaluate: "evaluate",
}

for _step in _STEP_TAGS:
    converter.register_unstructure_hook(
        _step,
        make_dict_unstructure_fn(_step, converter, pass_name=override(rename="pass")),
    )
    converter.register_structure_hook(
        _step,
        make_dict_structure_fn(
            _step, converter, pass_name=override(rename="pass"), _cattrs_forbid_extra_keys=True
        ),
    )

configure_tagged_union(
    ModelIdentity, converter, tag_generator=_MODEL_TAGS.__getitem__, tag_name="kind"
)
configure_tagged_union(Step, converter, tag_generator=_STEP_TAGS.__getitem__, tag_name="kind")


def _unstructure_snapshot(snapshot: Snapshot) -> dict[str, Any]:
    return {"entries": [converter.unstructure(entry) for entry in snapshot.listing()]}


@frozen(kw_only=True)
class _Listing:
    """A snapshot on the wire; structured as a class so that errors name ``$.entries[i]``."""

    entries: tuple[SnapshotEntry, ...]


def _structure_snapshot(value: Any, _type: type) -> Snapshot:
    if not isinstance(value, Mapping):
        raise ValueError('a snapshot is {"entries": [...]}')
    return Snapshot.from_listing(converter.structure(value, _Listing).entries)


converter.register_unstructure_hook(Snapshot, _unstructure_snapshot)
converter.register_structure_hook(Snapshot, _structure_snapshot)


def _unstructure_plan(plan: Plan) -> dict[str, Any]:
    totals = converter.unstructure(plan.totals)
    totals["bytes_to_move"] = plan.totals.bytes_to_move
    return {
        "format": PLAN_FORMAT,
        "final_key": plan.final_key,
        "keys": list(plan.keys),
        "steps": [_kind_first(converter.unstructure(step, Step)) for step in plan.steps],
        "totals": totals,
    }


def _kind_first(step: dict[str, Any]) -> dict[str, Any]:
    return {"kind": step.pop("kind"), **step}


def _structure_plan(value: Any, _type: type) -> Plan:
    if not isinstance(value, Mapping):
        raise ValueError("a plan is a JSON object")
    if value.get("format") != PLAN_FORMAT:
        raise ValueError(f"unknown plan format {value.get('format')!r}; expected {PLAN_FORMAT!r}")
    extra = set(value) - {"format", "final_key", "keys", "steps", "totals"}
    if extra:
        raise ValueError(f"unknown plan fields {sorted(extra)}")
    plan = Plan(
        keys=converter.structure(value.get("keys", []), tuple[str, ...]),
        steps=converter.structure(value.get("steps", []), tuple[Step, ...]),
    )
    if "totals" in value:
        given = dict(value["totals"])
        given.pop("bytes_to_move", None)
        if converter.structure(given, Totals) != plan.totals:
            raise ValueError("the plan's totals do not add up with its steps")
    return plan


converter.register_unstructure_hook(Plan, _unstructure_plan)
converter.register_structure_hook(Plan, _structure_plan)


def unstructure(value: Any, as_type: Any = None) -> Any:
    """Plain JSON-ready data for a planner value."""
    return converter.unstructure(value, as_type) if as_type else converter.unstructure(value)


def structure(data: Any, as_type: type[T]) -> T:
    """A planner value from plain data, or :class:`InvalidInput` naming what is wrong where."""
    try:
        return converter.structure(data, as_type)
    except PlannerError as error:
        raise InvalidInput(path="$", problem=str(error)) from error
    except cattrs.BaseValidationError as error:
        path, problem = _first_problem(error)
        raise InvalidInput(path=path, problem=problem) from error
    except AttributeError as error:
        # cattrs calls .keys() on what should be an object: a list or a number has none.
        raise InvalidInput(path="$", problem=_describe(error, None)) from error
    except (TypeError, ValueError, KeyError) as error:
        raise InvalidInput(path="$", problem=str(error) or type(error).__name__) from error


def _first_problem(error: cattrs.BaseValidationError) -> tuple[str, str]:
    # cattrs renders each leaf problem as "what is wrong @ $.path.to[3].field".
    rendered = cattrs.transform_error(error, path="$", format_exception=_describe)
    problem, _, path = rendered[0].rpartition(" @ ")
    return path or "$", problem


def _describe(error: BaseException, type_: type | None) -> str:
    # Our validators' messages say what is wrong; cattrs' default would say "invalid value".
    if isinstance(error, PlannerError):
        return str(error)
    if isinstance(error, AttributeError):
        return "expected a JSON object"
    return cattrs.v.format_exception(error, type_)


def dumps(value: Any, as_type: Any = None) -> str:
    """Indented JSON text for a planner value (a plan, a snapshot, a chain, ...)."""
    return json.dumps(unstructure(value, as_type), indent=2, sort_keys=False, allow_nan=False)


def loads(text: str | bytes, as_type: type[T]) -> T:
    """Parse JSON text into a planner value, with :class:`InvalidInput` on any problem."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidInput(path="$", problem=f"not JSON: {error}") from error
    return structure(data, as_type)
