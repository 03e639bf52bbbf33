"""Sweeps: many workflows over one cache, planned as one graph, run on a pool of workers.

:func:`load_sweep` reads a sweep file (a base workflow and a matrix, or a list of
workflows) into variants; :func:`prepare_sweep` prepares each as ``modelcache run`` would;
:func:`plan_sweep` plans them as one graph (:func:`modelcache.planner.make_sweep_plan`);
:func:`run_sweep` carries the plan out on an engine (:class:`LocalEngine`, this machine's
processes, by default; ``modelcache.ray.RayEngine``, actors of a Ray cluster, implements
the same :class:`Engine` protocol and its :class:`WorkerPool`); :func:`results_of`
and :func:`report_document` give the table, the Pareto front and the ``--report`` document;
:func:`plot_front` draws the front as an SVG image (``--plot``).
``docs/sweeps.md`` describes it all.

Modules: ``_file`` (the sweep file), ``_matrix`` (its axes and variant names),
``_planning`` (variants prepared, the snapshot, the plan), ``_render`` (the plan as a tree),
``_engine`` (the engines, the scheduler and its pool), ``_worker`` (a worker's set-up, its
segment and variant runs), ``_resources`` (what each pass asks of its worker),
``_results`` (the Pareto front, pure), ``_report`` (the table and the report document),
``_plot`` (the variants and the front as an SVG image, pure).
"""

from ._engine import (
    Engine,
    LocalEngine,
    ProcessPool,
    SweepReporter,
    SweepRun,
    WorkerLost,
    WorkerPool,
    Workers,
    default_jobs,
    run_sweep,
)
from ._file import SweepFile, Variant, is_sweep_file, load_sweep, parse_sweep
from ._matrix import MAX_VARIANTS
from ._planning import CacheRequired, PreparedSweep, plan_sweep, prepare_sweep, sweep_snapshot
from ._plot import NothingToPlot, plot_front
from ._render import render_tree
from ._report import (
    SWEEP_REPORT_FORMAT,
    SweepResults,
    VariantRow,
    report_document,
    results_of,
    results_table,
)
from ._resources import DEFAULT_RESOURCES, PassResources, Resources, machine, read_resources
from ._results import OBJECTIVES, Measures, dominates, measures_of, pareto_front
from ._worker import SegmentOutcome, SweepRecord, VariantOutcome, WorkerSetup

__all__ = [
    "DEFAULT_RESOURCES",
    "MAX_VARIANTS",
    "OBJECTIVES",
    "SWEEP_REPORT_FORMAT",
    "CacheRequired",
    "Engine",
    "LocalEngine",
    "Measures",
    "NothingToPlot",
    "PassResources",
    "PreparedSweep",
    "ProcessPool",
    "Resources",
    "SegmentOutcome",
    "SweepFile",
    "SweepRecord",
    "SweepReporter",
    "SweepResults",
    "SweepRun",
    "Variant",
    "VariantOutcome",
    "VariantRow",
    "WorkerLost",
    "WorkerPool",
    "WorkerSetup",
    "Workers",
    "default_jobs",
    "dominates",
    "is_sweep_file",
    "load_sweep",
    "machine",
    "measures_of",
    "pareto_front",
    "parse_sweep",
    "plan_sweep",
    "plot_front",
    "prepare_sweep",
    "read_resources",
    "render_tree",
    "report_document",
    "results_of",
    "results_table",
    "run_sweep",
    "sweep_snapshot",
]
