"""RayEngine: ``modelcache sweep --engine ray``, a sweep's tasks on actors of a Ray cluster.

Theory of operation
-------------------
The engine starts a Ray cluster of this machine for the sweep, or joins the one at
``--address`` (:mod:`._cluster`), reads its live nodes once, and hands the sweep a pool of
actors (:class:`~._pool.ActorPool` of :class:`~._actors.RayActors`); the pool stops the
cluster at the end if the engine started it.

Resources: each shape the plan's tasks ask for (:class:`~modelcache.runner.sweep.Workers`)
is compared with the most any node has of each resource. On a cluster of this machine, a
shape beyond it is cut down to what the machine has, with a note (the local engine too runs
such passes with what there is). On a joined cluster it is left as asked, with a note: its
tasks wait for a node that holds it (an autoscaler's). The pool keeps its actors within the
cluster's resources, unless a shape is beyond them (then only ``--jobs`` bounds them, and
Ray holds an actor until a node can take it).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import ray
from attrs import frozen

from modelcache.runner.sweep import Resources, WorkerPool, Workers

from ._actors import TASK_RETRIES, RayActors
from ._cluster import connect, nodes
from ._pool import ActorPool

__all__ = ["RayEngine"]


@frozen(kw_only=True)
class RayEngine:
    """Actors of a Ray cluster: one of this machine started for the sweep (``address``
    None), or the one at ``address`` (``host:port`` of its head, ``auto``, ``ray://...``)."""

    address: str | None = None

    def start(self, workers: Workers, *, note: Callable[[str], None]) -> WorkerPool:
        """Start or join the cluster; the pool of its actors (see the module's docstring).

        :raises RayUnavailable: the cluster could not be started, or joined.
        """
        ours = connect(self.address)
        try:
            return self._pool(workers, note, ours=ours)
        except BaseException:
            if ours:
                ray.shutdown()
            raise

    def _pool(self, workers: Workers, note: Callable[[str], None], *, ours: bool) -> ActorPool:
        found = nodes()
        largest = _resources(found, max)
        where = "this machine's Ray cluster" if ours else "the largest node of the Ray cluster"
        for sentence in workers.resources.beyond(largest, where=where):
            note(f"{sentence}: its segments run with what the machine has" if ours else
                 f"{sentence}: its segments wait for a node that holds it")  # fmt: skip
        placed = {shape: _cut(shape, largest) if ours else shape for shape in workers.shapes}
        fits = all(not shape.beyond(largest) for shape in placed.values())
        asked = workers.resources.of_call

        def shape_of(args: tuple[Any, ...]) -> Resources:
            shape = asked(args)
            return placed.get(shape, shape)

        return ActorPool(
            RayActors(workers.setup),
            jobs=workers.jobs,
            shape_of=shape_of,
            cluster=_resources(found, sum) if fits else None,
            retries=TASK_RETRIES,
            on_shutdown=ray.shutdown if ours else None,
        )


def _resources(
    nodes: Iterable[Mapping[str, float]], fold: Callable[[list[float]], float]
) -> Resources:
    """The nodes' resources folded per resource (``max``: the most one node has; ``sum``:
    all together)."""
    listed = list(nodes)
    return Resources(
        cpus=fold([node.get("CPU", 0.0) for node in listed] or [0.0]),
        gpus=fold([node.get("GPU", 0.0) for node in listed] or [0.0]),
        memory=int(fold([node.get("memory", 0.0) for node in listed] or [0.0])),
    )


def _cut(shape: Resources, largest: Resources) -> Resources:
    """``shape`` within ``largest``, each resource on its own."""
    return Resources(cpus=min(shape.cpus, largest.cpus), gpus=min(shape.gpus, largest.gpus),
                     memory=min(shape.memory, largest.memory))  # fmt: skip
