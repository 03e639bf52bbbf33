"""RayActors: the pool's :class:`~._pool.Actors` made of Ray actors, each a sweep worker.

An actor's constructor sets its process up as a sweep worker once
(:meth:`~modelcache.runner.sweep.WorkerSetup.start`: the variants' configs kept, the passes'
packages imported), and its one method runs the task it is handed. The set-up goes with each
actor's creation, by value (the variants' configs: an argument left in the object store
would have to outlive every restart); after that only tasks (segments, variant names) and
their records cross. Models never do: they travel through the cache.

Retries: Ray restarts an actor that died (its process killed, out of memory, its node lost)
:data:`RESTARTS` times and sends the task it was running again :data:`TASK_RETRIES` times.
Running a task again is safe: publishing is create-only, so a second run finds what the
first published. A pass that kills its actor every time fails after its second try, rather
than taking the cluster down with it again and again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import Future
from typing import Any, Final

import ray
from ray.exceptions import RayError, RayTaskError

from modelcache.runner.sweep import Resources, WorkerSetup

__all__ = ["RESTARTS", "TASK_RETRIES", "RayActors"]

#: How often Ray restarts an actor that died, and sends the task it was running again.
RESTARTS: Final = 1
TASK_RETRIES: Final = 1


class _Worker:
    """A sweep worker as a Ray actor: set up once, then one task at a time."""

    def __init__(self, setup: WorkerSetup) -> None:
        setup.start()

    def call(self, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> Any:
        return fn(*args, **kwargs)

    def ready(self) -> None:
        """Answers once the constructor is done: an actor's calls run in the order sent."""


class RayActors:
    """Actors of the Ray cluster this process is connected to (``ray.init``), each set up
    with ``setup``."""

    def __init__(self, setup: WorkerSetup) -> None:
        self._setup = setup
        self._class = ray.remote(_Worker)

    def start(self, shape: Resources) -> Any:
        options = self._class.options(
            num_cpus=shape.cpus,
            num_gpus=shape.gpus,
            memory=shape.memory or None,
            max_restarts=RESTARTS,
            max_task_retries=TASK_RETRIES,
        )
        return options.remote(self._setup)

    def ready(self, actor: Any) -> Future[None]:
        future: Future[None] = actor.ready.remote().future()
        return future

    def call(
        self, actor: Any, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> Future[Any]:
        future: Future[Any] = actor.call.remote(fn, args, dict(kwargs)).future()
        return future

    def stop(self, actor: Any) -> None:
        ray.kill(actor, no_restart=True)

    def lost(self, error: BaseException) -> bool:
        """Ray's own errors (an actor or its node died, a worker ran out of memory) but the
        one that wraps what the task raised."""
        return isinstance(error, RayError) and not isinstance(error, RayTaskError)
