"""The Ray engine of ``modelcache sweep``: a sweep's segments on long-lived Ray actors.

``modelcache sweep SWEEP --engine ray`` starts a Ray cluster of this machine for the sweep;
``--address ADDR`` joins a running one. :class:`RayEngine` is a
:class:`modelcache.runner.sweep.Engine`: ``run_sweep(prepared, engine=RayEngine())`` from
Python. Each actor is a sweep worker for the whole sweep (the passes' packages imported
once); each segment runs on an actor holding the resources its passes ask for (the sweep
file's ``resources``). Models travel through the cache, never through Ray's object store:
only the workers' set-up, the segments and their records cross. ``docs/sweeps.md`` ("On
Ray") describes it.

Modules: ``_engine`` (the engine; resources compared with the cluster's nodes), ``_cluster``
(starting or joining the cluster, this process kept its own),
``_pool`` (:class:`ActorPool`: tasks to idle actors of their shape, without Ray),
``_actors`` (the Ray actors themselves: their set-up, retries, what counts as one dying).
"""

from ._actors import RESTARTS, TASK_RETRIES, RayActors
from ._cluster import RayUnavailable
from ._engine import RayEngine
from ._pool import ActorPool, Actors

__all__ = [
    "RESTARTS",
    "TASK_RETRIES",
    "ActorPool",
    "Actors",
    "RayActors",
    "RayEngine",
    "RayUnavailable",
]
