"""Running a workflow: from a config to a chain, a snapshot, a plan, and its execution.

:func:`prepare` turns the config into what the planner needs and opens the stores, writing
nothing, so ``modelcache plan`` is :func:`prepare` + :func:`snapshot` + ``make_plan``
(:func:`plan_workflow`). :func:`execute` carries plans out through the stores, re-planning
when the cache lets one down, and delivers the final model; :func:`run_workflow` is both.

Modules: ``_prepare`` (config to chain, stores and policy), ``_execute`` (the re-planning
loop; its docstring is the theory of operation), ``_steps`` (one handler per step kind),
``_uploads`` (uploads in the background), ``_single_flight`` (claims on outputs), ``_hits``
(hits and misses), ``_deliver`` (the copy to ``output_dir``), ``_state`` (a run in
progress).
"""

from ._execute import CloudRequired, execute, run_workflow
from ._prepare import (
    Prepared,
    RunOptions,
    UnknownPass,
    plan_workflow,
    prepare,
    prepare_known,
    snapshot,
)

__all__ = [
    "CloudRequired",
    "Prepared",
    "RunOptions",
    "UnknownPass",
    "execute",
    "plan_workflow",
    "prepare",
    "prepare_known",
    "run_workflow",
    "snapshot",
]
