"""The modelcache planner: cache keys and execution plans, with no IO.

Give :func:`make_plan` a :class:`Chain`, an :class:`Evaluation`, a :class:`Snapshot` of the
cache and a :class:`CachePolicy`; it returns a :class:`Plan` of steps. For many workflows over
one cache, give :func:`make_sweep_plan` a :class:`Sweep`; it returns a :class:`SweepPlan`, its
steps grouped in segments. See ``docs/planner.md`` and ``docs/embedding.md``.
"""

from typing import TYPE_CHECKING, Any

from ._errors import InvalidChain, InvalidConfig, InvalidInput, PlannerError
from ._json import JsonMap, canonical_json, thaw
from ._keys import KEY_SCHEMA, chain_keys, identity_document, key_document, pass_key
from ._model import (
    CachePolicy,
    Chain,
    Evaluation,
    HubModel,
    LocalModel,
    ModelIdentity,
    PassSpec,
    Snapshot,
    SnapshotEntry,
    Sweep,
    Workflow,
)
from ._plan import PLAN_FORMAT, Download, Evaluate, Location, Plan, Run, Skip, Step, Totals, Upload
from ._planning import Cost, estimate_cost, make_plan
from ._sweep_plan import SWEEP_FORMAT, Segment, SweepPlan, SweepStep, WorkflowPath
from ._sweep_planning import make_sweep_plan
from ._uploads import UploadPolicy, UploadVerdict, upload_verdict

if TYPE_CHECKING:
    from ._wire import converter, dumps, loads, structure, unstructure

#: The JSON format's names, imported on first use: building its converter costs a process
#: that never reads or writes a plan's JSON (a warm run) a tenth of its start-up.
_WIRE = frozenset({"converter", "dumps", "loads", "structure", "unstructure"})


def __getattr__(name: str) -> Any:
    if name in _WIRE:
        from . import _wire

        return getattr(_wire, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CachePolicy",
    "canonical_json",
    "Chain",
    "chain_keys",
    "converter",
    "Cost",
    "Download",
    "dumps",
    "estimate_cost",
    "Evaluate",
    "Evaluation",
    "HubModel",
    "identity_document",
    "InvalidChain",
    "InvalidConfig",
    "InvalidInput",
    "JsonMap",
    "key_document",
    "KEY_SCHEMA",
    "loads",
    "LocalModel",
    "Location",
    "make_plan",
    "make_sweep_plan",
    "ModelIdentity",
    "pass_key",
    "PassSpec",
    "Plan",
    "PLAN_FORMAT",
    "PlannerError",
    "Run",
    "Segment",
    "Skip",
    "Snapshot",
    "SnapshotEntry",
    "Step",
    "structure",
    "Sweep",
    "SWEEP_FORMAT",
    "SweepPlan",
    "SweepStep",
    "thaw",
    "Totals",
    "unstructure",
    "Upload",
    "upload_verdict",
    "UploadPolicy",
    "UploadVerdict",
    "Workflow",
    "WorkflowPath",
]
