"""Running a workflow: from a config to a chain, a snapshot, a plan, and its execution.

:func:`prepare` turns the config into what the planner needs and opens the stores, writing
nothing, so ``modelcache plan`` is :func:`prepare` + :func:`checked_plan` (the
:func:`snapshot` planned, less what the config's ``trust`` refuses; :func:`plan_workflow`).
:func:`execute` carries plans out through the stores, re-planning when the cache lets one
down, and delivers the final model; :func:`run_workflow` is both.

Modules: ``_prepare`` (config to chain, stores and policy), ``_vetting`` (the plan, with
what the config's trust refuses left out), ``_execute`` (the re-planning loop; its docstring
is the theory of operation), ``_steps`` (one handler per step kind), ``_uploads`` (uploads in
the background), ``_single_flight`` (claims on outputs), ``_hits`` (hits and misses),
``_deliver`` (the copy to ``output_dir``), ``_state`` (a run in progress).
"""

from ._execute import CloudRequired, execute, run_workflow
from ._prepare import (
    Prepared,
    RunOptions,
    UnknownPass,
    listings,
    prepare,
    prepare_known,
    snapshot,
)
from ._vetting import checked_plan, plan_workflow

__all__ = [
    "CloudRequired",
    "Prepared",
    "RunOptions",
    "UnknownPass",
    "checked_plan",
    "execute",
    "listings",
    "plan_workflow",
    "prepare",
    "prepare_known",
    "run_workflow",
    "snapshot",
]
