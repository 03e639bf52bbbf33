"""The actor pool's dispatch, against fake actors (no Ray): each task on an idle actor of its
shape, never behind a busy one while another is idle; actors made lazily, at most ``jobs``,
within the cluster; idle actors of another shape retired to make room; a dead actor's task
lost and the actor replaced; a bug's exception as it is; shutdown."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import CancelledError, Future
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelcache.ray import ActorPool
from modelcache.runner.sweep import Resources, WorkerLost

SHAPES = {"small": Resources(), "gpu": Resources(gpus=1), "big": Resources(cpus=2)}


class Died(Exception):
    """What the fake says when an actor dies under a task."""


class FakeActors:
    """Actors that run a task only when the test says so (:meth:`finish`); set up at once,
    or (``slow``) when the test says so (:meth:`set_up`)."""

    def __init__(self, *, slow: bool = False) -> None:
        self.slow = slow
        self.setting_up: dict[int, Future[None]] = {}
        self.started: list[Resources] = []
        self.stopped: list[int] = []
        #: Calls not finished yet: (actor, future, fn, args, kwargs).
        self.calls: list[tuple[int, Future[Any], Callable[..., Any], tuple[Any, ...], Any]] = []

    def start(self, shape: Resources) -> int:
        self.started.append(shape)
        return len(self.started) - 1

    def ready(self, actor: int) -> Future[None]:
        future: Future[None] = Future()
        if self.slow:
            self.setting_up[actor] = future
        else:
            future.set_result(None)
        return future

    def set_up(self, actor: int, error: Exception | None = None) -> None:
        future = self.setting_up.pop(actor)
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)

    def call(
        self, actor: int, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Mapping[str, Any]
    ) -> Future[Any]:
        assert actor not in self.stopped, "a task sent to an actor stopped"
        assert all(a != actor for a, *_ in self.calls), "a task sent to a busy actor"
        future: Future[Any] = Future()
        self.calls.append((actor, future, fn, args, kwargs))
        return future

    def stop(self, actor: int) -> None:
        self.stopped.append(actor)

    def lost(self, error: BaseException) -> bool:
        return isinstance(error, Died)

    def busy(self) -> dict[int, tuple[Any, ...]]:
        return {actor: args for actor, _, _, args, _ in self.calls}

    def finish(self, index: int = 0, *, died: bool = False) -> None:
        _actor, future, fn, args, kwargs = self.calls.pop(index)
        if died:
            future.set_exception(Died("The actor died unexpectedly before finishing this task."))
            return
        try:
            result = fn(*args, **kwargs)
        except Exception as error:  # as Ray hands back what a task raised
            future.set_exception(error)
            return
        future.set_result(result)


def _pool(
    actors: FakeActors, jobs: int = 2, cluster: Resources | None = None, **options: Any
) -> ActorPool:
    return ActorPool(
        actors,
        jobs=jobs,
        shape_of=lambda args: SHAPES[args[0]],
        cluster=cluster,
        send=_now,  # the calls at once, so that each step is seen as it ends
        **options,
    )


def _now(action: Callable[[], None]) -> None:
    action()


def _echo(shape: str, value: Any) -> Any:
    return value


def test_tasks_go_to_idle_actors_made_lazily_and_wait_when_all_are_busy() -> None:
    actors = FakeActors()
    pool = _pool(actors, jobs=2)
    assert actors.started == []  # nothing made before a task needs it
    first, second, third = (pool.submit(_echo, "small", n) for n in range(3))
    assert len(actors.started) == 2  # two jobs: the third task waits
    assert sorted(actors.busy()) == [0, 1]
    actors.finish(1)  # actor 1 is idle: the waiting task goes there, not behind actor 0
    assert second.result() == 1
    assert actors.busy() == {0: ("small", 0), 1: ("small", 2)}
    actors.finish(0)
    actors.finish(0)
    assert (first.result(), third.result()) == (0, 2)
    later = pool.submit(_echo, "small", 3)
    assert len(actors.started) == 2  # an idle actor is used again, not a new one made
    actors.finish()
    assert later.result() == 3


def test_a_task_goes_to_the_first_actor_free_not_to_one_still_starting() -> None:
    actors = FakeActors(slow=True)
    pool = _pool(actors, jobs=2)
    first = pool.submit(_echo, "small", 0)
    assert actors.calls == []  # its actor is starting: the task waits in the queue
    actors.set_up(0)
    assert actors.busy() == {0: ("small", 0)}
    second = pool.submit(_echo, "small", 1)
    assert len(actors.started) == 2  # a second actor starts for it...
    actors.finish()  # ...but the first is free before it is set up: it takes the task
    assert first.result() == 0
    assert actors.busy() == {0: ("small", 1)}
    actors.set_up(1)  # set up, with nothing to do: idle, for the next task
    assert pool.actors == [(SHAPES["small"], "busy"), (SHAPES["small"], "idle")]
    third = pool.submit(_echo, "small", 2)
    assert actors.busy() == {0: ("small", 1), 1: ("small", 2)}
    actors.finish()
    actors.finish()
    assert (second.result(), third.result()) == (1, 2)


def test_an_actor_that_dies_setting_up_fails_one_waiting_task() -> None:
    actors = FakeActors(slow=True)
    pool = _pool(actors, jobs=1)
    first, second = pool.submit(_echo, "small", 0), pool.submit(_echo, "small", 1)
    actors.set_up(0, Died("The actor died unexpectedly before finishing this task."))
    with pytest.raises(WorkerLost, match="could not be started: The actor died"):
        first.result(timeout=0)
    assert not second.done()
    assert actors.stopped == [0]
    actors.set_up(1)  # a new actor for the task still waiting
    actors.finish()
    assert second.result() == 1


def test_each_task_runs_on_an_actor_of_its_shape() -> None:
    actors = FakeActors()
    pool = _pool(actors, jobs=3)
    futures = [pool.submit(_echo, shape, shape) for shape in ("small", "gpu", "small")]
    assert actors.started == [SHAPES["small"], SHAPES["gpu"], SHAPES["small"]]
    for actor, args in actors.busy().items():
        assert actors.started[actor] == SHAPES[args[0]]
    while actors.calls:
        actors.finish()
    assert [f.result() for f in futures] == ["small", "gpu", "small"]


def test_an_idle_actor_of_another_shape_is_retired_to_make_room() -> None:
    actors = FakeActors()
    pool = _pool(actors, jobs=2)
    pool.submit(_echo, "small", 0)
    pool.submit(_echo, "small", 1)
    gpu = pool.submit(_echo, "gpu", 2)
    assert len(actors.started) == 2  # at jobs: the gpu task waits
    actors.finish(0)  # actor 0 idle, of the wrong shape: retired for a gpu actor
    assert actors.stopped == [0]
    assert actors.started[-1] == SHAPES["gpu"]
    assert actors.busy() == {1: ("small", 1), 2: ("gpu", 2)}
    actors.finish(1)
    assert gpu.result() == 2


def test_actors_stay_within_the_cluster() -> None:
    actors = FakeActors()
    pool = _pool(actors, jobs=3, cluster=Resources(cpus=3))
    first, second = pool.submit(_echo, "big", 0), pool.submit(_echo, "big", 1)
    assert len(actors.started) == 1  # two CPUs each, three in the cluster: one at a time
    small = pool.submit(_echo, "small", 2)  # one CPU left: a small one fits beside it
    assert len(actors.started) == 2
    actors.finish(0)
    assert first.result() == 0
    assert actors.busy() == {0: ("big", 1), 1: ("small", 2)}
    actors.finish()
    actors.finish()
    assert (second.result(), small.result()) == (1, 2)


def test_a_dead_actors_task_is_lost_and_the_actor_replaced() -> None:
    actors = FakeActors()
    pool = _pool(actors, jobs=1, retries=1)
    lost = pool.submit(_echo, "small", 0)
    waiting = pool.submit(_echo, "small", 1)
    actors.finish(died=True)
    with pytest.raises(WorkerLost) as caught:
        lost.result()
    assert str(caught.value) == (
        "its Ray actor died, tried 2 times: The actor died unexpectedly before finishing this task."
    )
    assert caught.value.fault == "environment"
    assert actors.stopped == [0]
    assert actors.busy() == {1: ("small", 1)}  # a new actor for the task that waited
    actors.finish()
    assert waiting.result() == 1


def test_what_a_task_raises_is_its_futures_exception_and_the_actor_stays() -> None:
    def broken(shape: str) -> None:
        raise KeyError("a bug")

    actors = FakeActors()
    pool = _pool(actors, jobs=1)
    future = pool.submit(broken, "small")
    actors.finish()
    with pytest.raises(KeyError):
        future.result()
    pool.submit(_echo, "small", 1)
    assert (actors.started, actors.stopped) == ([SHAPES["small"]], [])


def test_an_actor_that_cannot_start_loses_its_task_and_is_replaced() -> None:
    class Unstartable(FakeActors):
        def start(self, shape: Resources) -> int:
            if not self.started:
                self.started.append(shape)
                raise ValueError("no such resource")
            return super().start(shape)

    actors = Unstartable()
    pool = _pool(actors, jobs=1)
    with pytest.raises(WorkerLost, match="could not be started: no such resource"):
        pool.submit(_echo, "small", 0).result()
    second = pool.submit(_echo, "small", 1)
    actors.finish()
    assert second.result() == 1
    assert actors.stopped == []  # nothing to stop: it never started


def test_actors_are_called_on_the_pools_thread_never_in_a_results_callback() -> None:
    threads: list[str] = []

    class Recording(FakeActors):
        def call(self, actor: int, *rest: Any) -> Future[Any]:
            threads.append(threading.current_thread().name)
            return super().call(actor, *rest)

    actors = Recording()
    pool = ActorPool(actors, jobs=1, shape_of=lambda args: SHAPES[args[0]])
    futures = [pool.submit(_echo, "small", n) for n in range(3)]
    for n in range(3):
        while not actors.calls:  # the pool's thread has not sent it yet
            threading.Event().wait(0.01)
        finisher = threading.Thread(target=actors.finish, name="results")
        finisher.start()
        finisher.join()
        assert futures[n].result(timeout=10) == n
    pool.shutdown(wait=True)
    assert len(threads) == 3
    assert all(name.startswith("actor-pool") for name in threads)


def test_shutdown_cancels_what_waits_lets_the_rest_end_then_stops_every_actor() -> None:
    actors = FakeActors()
    ended: list[str] = []
    pool = _pool(actors, jobs=1, on_shutdown=lambda: ended.append("shut down"))
    running = pool.submit(_echo, "small", 0)
    waiting = pool.submit(_echo, "small", 1)
    finisher = threading.Timer(0.2, actors.finish)
    finisher.start()
    pool.shutdown(wait=True, cancel_futures=True)
    finisher.join()
    assert running.result() == 0  # waited for
    with pytest.raises(CancelledError):
        waiting.result()
    assert actors.stopped == [0]
    assert ended == ["shut down"]
    pool.shutdown(wait=True)  # again: nothing more to stop, nothing called twice
    assert (actors.stopped, ended) == ([0], ["shut down"])
    with pytest.raises(RuntimeError):
        pool.submit(_echo, "small", 2)


@st.composite
def _operations(draw: st.DrawFn) -> list[tuple[str, Any]]:
    kinds = st.sampled_from(["submit", "finish", "set up"])
    steps = draw(st.lists(st.tuples(kinds, st.integers(0, 99))))
    return [(kind, draw(st.sampled_from(sorted(SHAPES))) if kind == "submit" else n)
            for kind, n in steps]  # fmt: skip


@given(
    operations=_operations(),
    jobs=st.integers(1, 3),
    cluster=st.sampled_from([None, Resources(cpus=2, gpus=1), Resources(cpus=4, gpus=2)]),
    deaths=st.sets(st.integers(0, 30)),
    slow=st.booleans(),
)
def test_no_task_waits_while_an_idle_actor_of_its_shape_could_take_it(
    operations: list[tuple[str, Any]],
    jobs: int,
    cluster: Resources | None,
    deaths: set[int],
    slow: bool,
) -> None:
    actors = FakeActors(slow=slow)
    pool = _pool(actors, jobs=jobs, cluster=cluster)
    submitted: list[tuple[str, int, Future[Any]]] = []
    finished = 0

    def check() -> None:
        live = pool.actors
        assert len(live) <= jobs
        if cluster is not None:
            assert sum(shape.cpus for shape, _ in live) <= cluster.cpus
            assert sum(shape.gpus for shape, _ in live) <= cluster.gpus
        started = {args[1] for args in actors.busy().values()}
        done = {n for _, n, future in submitted if future.done()}
        waiting = Counter(shape for shape, n, _ in submitted if n not in started | done)
        for shape in waiting:
            assert (SHAPES[shape], "idle") not in live, "waits while an idle actor could run it"
        starting = Counter(shape for shape, state in live if state == "starting")
        uncovered = sum(max(0, n - starting[SHAPES[shape]]) for shape, n in waiting.items())
        if cluster is None and uncovered:  # only jobs bounds the actors: none to spare
            assert len(live) == jobs
            assert all(state != "idle" for _, state in live), "an idle one could be retired"

    for kind, value in operations:
        if kind == "submit":
            n = len(submitted)
            submitted.append((value, n, pool.submit(_echo, value, n)))
        elif kind == "finish" and actors.calls:
            actors.finish(value % len(actors.calls), died=finished in deaths)
            finished += 1
        elif kind == "set up" and actors.setting_up:
            waiting = sorted(actors.setting_up)
            actors.set_up(waiting[value % len(waiting)], Died("dead") if value % 7 == 0 else None)
        check()
    while actors.calls or actors.setting_up:
        if actors.setting_up:
            actors.set_up(min(actors.setting_up))
        else:
            actors.finish(died=finished in deaths)
            finished += 1
        check()
    assert all(future.done() for _, _, future in submitted), "a task left waiting"
    for _, n, future in submitted:
        if isinstance(future.exception(), WorkerLost):
            continue
        assert future.result() == n


def test_an_actor_still_starting_at_shutdown_is_stopped_once() -> None:
    actors = FakeActors(slow=True)
    pool = ActorPool(actors, jobs=2, shape_of=lambda args: SHAPES[args[0]])  # its own thread
    pool.submit(_echo, "small", 0)
    pool.submit(_echo, "gpu", 1).cancel()  # its actor starts all the same
    while len(actors.setting_up) < 2:
        threading.Event().wait(0.01)
    actors.set_up(0)
    while not actors.calls:
        threading.Event().wait(0.01)
    actors.finish()
    pool.shutdown(wait=True)
    assert sorted(actors.stopped) == [0, 1]
    actors.set_up(1, Died("killed by the shutdown"))  # its callback comes after: ignored
    assert sorted(actors.stopped) == [0, 1]
