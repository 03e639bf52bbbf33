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
from ._sweep_plan import SWEEP_FORMAT, Segment, SweepPlan, SweepStep, WorkflowPath

__all__ = ["converter", "dumps", "loads", "structure", "unstructure"]

T = TypeVar("T")

converter = cattrs.Converter(forbid_extra_keys=True)

converter.register_structure_hook(JsonMap, lambda value, _type: _json_map(value))
converter.register_unstructure_hook(JsonMap, thaw)
# A predicate, not the bare class: cattrs dispatches ``frozenset[str]`` fields to its own
# collection hook, which would hand json a frozenset.
converter.register_unstructure_hook_func(is_frozenset, sorted)


class _Refused(ValueError):
    """A problem this module's own checks found; unlike cattrs' errors, its message is shown."""


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

#: Fields left out of the wire form when they hold their default, so that plans that do not
#: use them read exactly as before the field existed.
_OPTIONAL: dict[type, dict[str, Any]] = {Upload: {"if_worthwhile": override(omit_if_default=True)}}

for _step in _STEP_TAGS:
    converter.register_unstructure_hook(
        _step,
        make_dict_unstructure_fn(
            _step, converter, pass_name=override(rename="pass"), **_OPTIONAL.get(_step, {})
        ),
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


def _unstructure_totals(totals: Totals) -> dict[str, Any]:
    return {**converter.unstructure(totals), "bytes_to_move": totals.bytes_to_move}


def _check_totals(given: Any, totals: Totals, what: str) -> None:
    """Refuse ``given`` totals (from the wire, ``bytes_to_move`` optional) unlike ``totals``."""
    if not isinstance(given, Mapping):
        raise ValueError("totals is a JSON object")
    given = dict(given)
    given.pop("bytes_to_move", None)
    if converter.structure(given, Totals) != totals:
        raise ValueError(f"the {what}'s totals do not add up with its steps")


def _unstructure_plan(plan: Plan) -> dict[str, Any]:
    return {
        "format": PLAN_FORMAT,
        "final_key": plan.final_key,
        "keys": list(plan.keys),
        "steps": [_kind_first(converter.unstructure(step, Step)) for step in plan.steps],
        "totals": _unstructure_totals(plan.totals),
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
        _check_totals(value["totals"], plan.totals, "plan")
    return plan


converter.register_unstructure_hook(Plan, _unstructure_plan)
converter.register_structure_hook(Plan, _structure_plan)


# The sweep plan (docs/plan-format.md): a step is flattened, its workflow beside its kind.


def _unstructure_sweep_step(item: SweepStep) -> dict[str, Any]:
    step = converter.unstructure(item.step, Step)
    return {"kind": step.pop("kind"), "workflow": item.workflow, **step}


# A union is not a type to mypy, but it is to cattrs.
_STEP: Any = Step


def _structure_sweep_step(value: Any, _type: type) -> SweepStep:
    if not isinstance(value, Mapping):
        raise _Refused("a step is a JSON object")
    step = dict(value)
    workflow = step.pop("workflow", None)
    if not isinstance(workflow, str):
        raise _Refused("a sweep's step names its workflow, a string")
    return SweepStep(workflow=workflow, step=converter.structure(step, _STEP))


_structure_path = make_dict_structure_fn(WorkflowPath, converter, _cattrs_forbid_extra_keys=True)


def _unstructure_path(path: WorkflowPath) -> dict[str, Any]:
    return {
        "name": path.name,
        "final_key": path.final_key,
        "keys": list(path.keys),
        "segments": list(path.segments),
    }


def _structure_workflow_path(value: Any, _type: type) -> WorkflowPath:
    if not isinstance(value, Mapping):
        raise _Refused("a workflow's path is a JSON object")
    fields = dict(value)
    final_key = fields.pop("final_key", None)
    path = _structure_path(fields, WorkflowPath)
    if "final_key" in value and final_key != path.final_key:
        raise _Refused("final_key is not the last of keys")
    return path


@frozen(kw_only=True)
class _SweepDocument:
    """A sweep plan on the wire; structured as a class so that errors name their path."""

    format: str
    workflows: tuple[WorkflowPath, ...] = ()
    segments: tuple[Segment, ...] = ()
    totals: dict[str, Any] | None = None


def _unstructure_sweep_plan(plan: SweepPlan) -> dict[str, Any]:
    return {
        "format": SWEEP_FORMAT,
        "workflows": [converter.unstructure(path) for path in plan.workflows],
        "segments": [converter.unstructure(segment) for segment in plan.segments],
        "totals": _unstructure_totals(plan.totals),
    }


def _structure_sweep_plan(value: Any, _type: type) -> SweepPlan:
    if not isinstance(value, Mapping):
        raise _Refused("a sweep plan is a JSON object")
    if value.get("format") != SWEEP_FORMAT:
        raise _Refused(
            f"unknown sweep plan format {value.get('format')!r}; expected {SWEEP_FORMAT!r}"
        )
    document = converter.structure(value, _SweepDocument)
    plan = SweepPlan(workflows=document.workflows, segments=document.segments)
    for i, segment in enumerate(plan.segments):
        if segment.id != i:
            raise _Refused(f"segment {i} has id {segment.id}; a segment's id is its position")
        for before in segment.after:
            if not 0 <= before < i:
                raise _Refused(f"segment {i} waits for {before}, which does not come before it")
    for path in plan.workflows:
        if not all(0 <= i < len(plan.segments) for i in path.segments):
            raise _Refused(f"workflow {path.name!r} names a segment the plan does not have")
    if document.totals is not None:
        _check_totals(document.totals, plan.totals, "sweep plan")
    return plan


converter.register_unstructure_hook(SweepStep, _unstructure_sweep_step)
converter.register_structure_hook(SweepStep, _structure_sweep_step)
converter.register_unstructure_hook(WorkflowPath, _unstructure_path)
converter.register_structure_hook(WorkflowPath, _structure_workflow_path)
converter.register_unstructure_hook(SweepPlan, _unstructure_sweep_plan)
converter.register_structure_hook(SweepPlan, _structure_sweep_plan)


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
    if isinstance(error, (PlannerError, _Refused)):
        return str(error)
    if isinstance(error, AttributeError):
        return "expected a JSON object"
    return cattrs.v.format_exception(error, type_)


def dumps(value: Any, as_type: Any = None) -> str:
    """Indented JSON text for a planner value (a plan, a sweep plan, a snapshot, a chain, ...)."""
    return json.dumps(unstructure(value, as_type), indent=2, sort_keys=False, allow_nan=False)


def loads(text: str | bytes, as_type: type[T]) -> T:
    """Parse JSON text into a planner value, with :class:`InvalidInput` on any problem."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise InvalidInput(path="$", problem=f"not JSON: {error}") from error
    return structure(data, as_type)
