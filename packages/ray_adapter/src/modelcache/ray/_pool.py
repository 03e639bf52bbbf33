"""ActorPool: a sweep's tasks handed to long-lived actors, each task to an idle actor of its
shape; the runner's :class:`~modelcache.runner.sweep.WorkerPool`.

Theory of operation
-------------------
An actor is a worker for the whole sweep: it is set up once (the passes' packages imported
once) and then runs one task at a time. Each task asks for a shape (the resources its passes
ask for, :meth:`~modelcache.runner.sweep.PassResources.of_call`), and runs on an actor
holding that shape. The pool keeps every task it was given in a queue, and goes through it
in order whenever something changes (a task submitted, an actor ready, a task over):

1. a task goes to an idle actor of its shape that is ready (set up); else
2. it waits for an actor of its shape that is starting, one per task; else
3. a new actor of its shape is started for it, when there is room for one: fewer than
   ``jobs`` actors, and (when the cluster's size is known) the actors' shapes and the new
   one's within it. Idle actors of other shapes are retired to make that room, when
   retiring them makes it. The task waits in the queue meanwhile: whichever actor of its
   shape is free first, the new one or one that finishes its task, takes it.

So a task is never sent to a busy actor, nor to one still starting: it never waits in an
actor's mailbox while another actor that could run it is idle, nor behind an actor the
cluster cannot place until idle actors are retired. Tasks of different shapes may overtake
each other in the queue; a task's own shape is served in submission order. An actor that
cannot be started fails the first task waiting for its shape (one try per task, not an
endless series of actors that die as they start).

Results come back as futures (``ObjectRef.future()`` for Ray's actors): when one is done its
actor is idle again, the queue is dispatched, and then the task's own future (the one
:meth:`ActorPool.submit` returned) gets the result. Those callbacks run on Ray's IO thread,
which Ray's own calls wait for: so the pool never calls its actors there, but on a thread of
its own (``send``), in the order it decided the calls. An actor that died under a task (after
Ray's own retries) is dropped, a new one is made when a task needs it, and the task's future
gets :class:`~modelcache.runner.sweep.WorkerLost`. Anything else the task raised is the
future's exception as it is.

The pool knows actors only through :class:`Actors`, so that its dispatch is tested without
Ray (``tests/test_pool.py``); :class:`~._actors.RayActors` is the real one.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any, ParamSpec, Protocol, TypeVar

from attrs import define, field

from modelcache.runner.sweep import Resources, WorkerLost

__all__ = ["ActorPool", "Actors"]

_P = ParamSpec("_P")
_T = TypeVar("_T")


class Actors(Protocol):
    """The actors of a cluster, as the pool uses them. Every method returns at once."""

    def start(self, shape: Resources) -> Any:
        """A new actor holding ``shape``, set up as a sweep worker in the background; its
        handle."""
        ...

    def ready(self, actor: Any) -> Future[None]:
        """Done once ``actor`` is set up; its exception if it could not be."""
        ...

    def call(
        self, actor: Any, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> Future[Any]:
        """Have ``actor`` run ``fn(*args, **kwargs)``; the future of its result."""
        ...

    def stop(self, actor: Any) -> None:
        """End ``actor``, whatever it is doing."""
        ...

    def lost(self, error: BaseException) -> bool:
        """Whether ``error``, a call's, says its actor died (rather than ``fn`` raising)."""
        ...


@define(eq=False)
class _Task:
    fn: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: Mapping[str, Any]
    shape: Resources
    future: Future[Any] = field(factory=Future)


@define(eq=False)
class _Actor:
    shape: Resources
    handle: Any = None
    #: Set up: it can take a task.
    ready: bool = False
    #: The task it is running; None when idle.
    task: _Task | None = None

    @property
    def state(self) -> str:
        return "busy" if self.task else "idle" if self.ready else "starting"


#: What dispatching decided, done once the pool's lock is released: Ray's calls may run
#: a finished future's callbacks at once, and those take the lock.
_Action = Callable[[], None]


class ActorPool:
    """Tasks on at most ``jobs`` actors of ``actors``, each on an idle actor of its shape.

    :param shape_of: the shape a task asks for, from its arguments.
    :param cluster: the cluster's resources, all nodes together; None: unknown, unbounded.
    :param retries: how often Ray retries a task whose actor died, for the error's words.
    :param on_shutdown: called once, when :meth:`shutdown` has stopped every actor.
    :param send: how the pool's calls to its actors are made; by default in order on a
        thread of the pool's own, never in a result's callback (tests make them at once).
    """

    def __init__(
        self,
        actors: Actors,
        *,
        jobs: int,
        shape_of: Callable[[tuple[Any, ...]], Resources],
        cluster: Resources | None = None,
        retries: int = 0,
        on_shutdown: Callable[[], None] | None = None,
        send: Callable[[Callable[[], None]], object] | None = None,
    ) -> None:
        self._actors, self._jobs, self._shape_of = actors, jobs, shape_of
        self._cluster, self._retries, self._on_shutdown = cluster, retries, on_shutdown
        self._sender: ThreadPoolExecutor | None = None
        if send is None:
            self._sender = ThreadPoolExecutor(1, thread_name_prefix="actor-pool")
            send = self._sender.submit
        self._send = send
        self._lock = threading.Condition()
        self._queue: deque[_Task] = deque()
        self._live: list[_Actor] = []
        self._closed = False
        #: Shut down: every actor is the shutdown's to stop, nothing more is called.
        self._stopped = False

    def submit(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> Future[_T]:
        """Queue ``fn(*args, **kwargs)`` and hand it to an actor as soon as one can take it."""
        task = _Task(fn=fn, args=args, kwargs=kwargs, shape=self._shape_of(args))
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit a task to a pool shut down")
            self._queue.append(task)
            actions = self._dispatch()
        self._run(actions)
        return task.future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Take no more tasks; with ``cancel_futures``, cancel those not started; with
        ``wait``, let the others run to their end. Then stop every actor: without ``wait``,
        the tasks still running are abandoned (what they published stays; what they claimed
        is freed when their process ends)."""
        with self._lock:
            self._closed = True
            if cancel_futures:
                for task in self._queue:
                    task.future.cancel()
                self._queue.clear()
            while wait and (self._queue or any(a.task is not None for a in self._live)):
                self._lock.wait()
            stopping, self._live = self._live, []
            done, self._on_shutdown = self._on_shutdown, None
            self._stopped = True
        if self._sender is not None:
            self._sender.shutdown(wait=True)  # the calls decided before, in their order
        for actor in stopping:
            if actor.handle is not None:  # else never started: shut down before its start
                self._actors.stop(actor.handle)
        if done is not None:
            done()

    @property
    def actors(self) -> list[tuple[Resources, str]]:
        """Each live actor's shape and state (``starting``, ``idle``, ``busy``): for tests
        and progress."""
        with self._lock:
            return [(a.shape, a.state) for a in self._live]

    def _dispatch(self) -> list[_Action]:
        """Go through the queue (the module's rules 1, 2 and 3); the calls to make."""
        actions: list[_Action] = []
        starting = Counter(a.shape for a in self._live if not a.ready)
        for task in list(self._queue):
            if task.future.cancelled():
                self._queue.remove(task)
                continue
            actor = self._idle(task.shape)
            if actor is not None:
                self._queue.remove(task)
                task.future.set_running_or_notify_cancel()
                actor.task = task
                actions.append(partial(self._call, actor, task))
            elif starting[task.shape]:
                starting[task.shape] -= 1  # it waits for that one, or an idle one
            else:
                self._new(task.shape, actions)
        return actions

    def _idle(self, shape: Resources) -> _Actor | None:
        return next((a for a in self._live if a.state == "idle" and a.shape == shape), None)

    def _new(self, shape: Resources, actions: list[_Action]) -> None:
        """Start an actor of ``shape``, idle actors (none are of ``shape``) retired to make
        room for it if that does; none if there is no room even then."""
        spare = [a for a in self._live if a.state == "idle"]
        kept = [a for a in self._live if a.state != "idle"]
        if not self._room([*kept, _Actor(shape=shape)]):
            return
        while not self._room([*self._live, _Actor(shape=shape)]):
            retired = spare.pop(0)
            self._live.remove(retired)
            actions.append(partial(self._actors.stop, retired.handle))
        actor = _Actor(shape=shape)
        self._live.append(actor)
        actions.append(partial(self._start, actor))

    def _room(self, actors: list[_Actor]) -> bool:
        """Whether ``actors`` can all live at once: at most ``jobs``, within the cluster."""
        if len(actors) > self._jobs:
            return False
        return self._cluster is None or not _total(a.shape for a in actors).beyond(self._cluster)

    def _run(self, actions: list[_Action]) -> None:
        if actions and not self._stopped:  # after shutdown, every actor is stopped already
            self._send(partial(_run, actions))

    def _start(self, actor: _Actor) -> None:
        try:
            actor.handle = self._actors.start(actor.shape)
            ready = self._actors.ready(actor.handle)
        except Exception as error:  # as if it had died starting
            ready = Future()
            ready.set_exception(error)
        ready.add_done_callback(partial(self._started, actor))

    def _started(self, actor: _Actor, ready: Future[None]) -> None:
        """The actor is ready, and takes a task; or it could not start, and fails the first
        task waiting for its shape."""
        error = ready.exception()
        failed = None
        with self._lock:
            if actor not in self._live:
                return  # retired, or the pool shut down: stopped by whoever removed it
            if error is None:
                actor.ready = True
            else:
                self._live.remove(actor)
                waiting = (t for t in self._queue if t.shape == actor.shape)
                failed = next((t for t in waiting if t.future.set_running_or_notify_cancel()), None)
                if failed is not None:
                    self._queue.remove(failed)
            actions = self._dispatch()
            self._lock.notify_all()
        if error is not None and actor.handle is not None:
            actions.append(partial(self._actors.stop, actor.handle))
        self._run(actions)
        if failed is not None and error is not None:
            failed.future.set_exception(self._lost(error, started=False))

    def _call(self, actor: _Actor, task: _Task) -> None:
        try:
            done = self._actors.call(actor.handle, task.fn, task.args, task.kwargs)
        except Exception as error:  # the call could not be sent (its arguments, say)
            done = Future()
            done.set_exception(error)
        done.add_done_callback(partial(self._finished, actor, task))

    def _finished(self, actor: _Actor, task: _Task, done: Future[Any]) -> None:
        """The actor is idle again, or dropped if it died; then the task's future is set."""
        error = done.exception()
        lost = error is not None and self._actors.lost(error)
        with self._lock:
            actor.task = None
            if lost and actor in self._live:
                self._live.remove(actor)
            actions = self._dispatch()
            self._lock.notify_all()
        if lost:
            actions.append(partial(self._actors.stop, actor.handle))
        self._run(actions)
        if error is None:
            task.future.set_result(done.result())
        elif lost:
            task.future.set_exception(self._lost(error, started=True))
        else:
            task.future.set_exception(error)

    def _lost(self, error: BaseException, *, started: bool) -> WorkerLost:
        first = next(iter(str(error).strip().splitlines()), type(error).__name__)
        if not started:
            return WorkerLost(f"its Ray actor could not be started: {first}")
        tried = f", tried {1 + self._retries} times" if self._retries else ""
        return WorkerLost(f"its Ray actor died{tried}: {first}")


def _total(shapes: Iterable[Resources]) -> Resources:
    cpus, gpus, memory = 0.0, 0.0, 0
    for shape in shapes:
        cpus, gpus, memory = cpus + shape.cpus, gpus + shape.gpus, memory + shape.memory
    return Resources(cpus=cpus, gpus=gpus, memory=memory)


def _run(actions: list[_Action]) -> None:
    for action in actions:
        action()
