"""The engines' scheduler against fake pools: segments submitted only after those they wait
for, a failure failing exactly the variants through it, a segment the cache let down leaving
the rest to the variants' own runs, and every variant ending exactly once; the same when the
pool finishes its tasks in any order, runs some twice and loses the workers of others.
The local engine's pool: a task whose worker died sent again once, then lost; its note on
resources beyond the machine."""

from __future__ import annotations

import functools
import multiprocessing
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from modelcache.planner import (
    CachePolicy,
    Chain,
    Evaluation,
    HubModel,
    PassSpec,
    Segment,
    Snapshot,
    Sweep,
    SweepPlan,
    Workflow,
    make_sweep_plan,
)
from modelcache.runner.reporting import RunReport
from modelcache.runner.sweep import (
    LocalEngine,
    PassResources,
    Resources,
    SegmentOutcome,
    SweepRun,
    VariantOutcome,
    WorkerLost,
    Workers,
    WorkerSetup,
    _engine,
)
from modelcache.runner.workflow import RunOptions


def _plan() -> SweepPlan:
    """Four variants: a shared first pass, two second passes, four third passes."""
    model = HubModel(repo_id="org/model", revision="0" * 40)
    first = PassSpec(name="convert", type="OnnxConversion", version="1")
    workflows = [
        Workflow(
            name=f"v{a}{b}",
            evaluation=Evaluation.final("eval-1"),
            chain=Chain(
                model=model,
                passes=[
                    first,
                    PassSpec(name="quantize", type="Q", version="1", config={"a": a}),
                    PassSpec(name="cast", type="C", version="1", config={"b": b}),
                ],
            ),
        )
        for a in (0, 1)
        for b in (0, 1)
    ]
    return make_sweep_plan(
        Sweep(workflows=workflows), Snapshot.empty(), CachePolicy(enable_cloud_cache=False)
    )


class _Pool:
    """Runs what is submitted at once, and remembers the order."""

    def __init__(self) -> None:
        self.submitted: list[Any] = []

    def submit(self, function: Any, *args: Any, **kwargs: Any) -> Future[Any]:
        self.submitted.append(args[0])  # a segment, or a variant's name
        future: Future[Any] = Future()
        future.set_result(function(*args, **kwargs))
        return future

    def shutdown(self, **_: Any) -> None:
        pass


def _schedule(
    monkeypatch: pytest.MonkeyPatch, plan: SweepPlan, failed: set[int], let_down: set[int]
) -> tuple[SweepRun, _Pool]:
    def run_segment(segment: Segment, *, uploads: bool) -> SegmentOutcome:
        status = (
            "failed" if segment.id in failed else "replanned" if segment.id in let_down else "done"
        )
        return SegmentOutcome(segment=segment.id, status=status, records=(), notes=(), seconds=0.0,
                              error="boom" if status == "failed" else "", fault="user")  # fmt: skip

    def run_variant(name: str, _shape: Any = None) -> VariantOutcome:
        return VariantOutcome(name=name, report=RunReport())

    monkeypatch.setattr(_engine, "run_segment", run_segment)
    monkeypatch.setattr(_engine, "run_variant", run_variant)
    pool = _Pool()
    run = SweepRun(plan=plan)
    _engine._Scheduler(pool, run, _engine.SweepReporter(), uploads=False).go()  # type: ignore[arg-type]
    return run, pool


_PLAN = _plan()
_IDS = [segment.id for segment in _PLAN.segments]


@given(failed=st.sets(st.sampled_from(_IDS)), let_down=st.sets(st.sampled_from(_IDS)))
def test_failures_fail_exactly_the_variants_through_them(
    failed: set[int], let_down: set[int]
) -> None:
    with pytest.MonkeyPatch.context() as monkeypatch:
        run, pool = _schedule(monkeypatch, _PLAN, failed, let_down - failed)
    segments = [item for item in pool.submitted if isinstance(item, Segment)]
    done: set[int] = set()
    for segment in segments:
        assert set(segment.after) <= done, "submitted before what it waits for"
        done.add(segment.id)
    outcomes = {o.segment: o for o in run.segments}
    assert set(outcomes) == set(_IDS), "every segment ends once, run or left"
    for segment in _PLAN.segments:
        blocked = any(outcomes[i].status != "done" for i in segment.after)
        assert (segment in segments) == (not blocked)
    assert sorted(o.name for o in run.variants) == sorted(p.name for p in _PLAN.workflows)
    for path in _PLAN.workflows:
        through_failure = any(outcomes[i].status == "failed" for i in path.segments)
        (outcome,) = [o for o in run.variants if o.name == path.name]
        assert (outcome.report is None) == through_failure
        assert (path.name in pool.submitted) == (not through_failure)


def test_a_variant_runs_after_its_segments_and_never_before(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    run, pool = _schedule(monkeypatch, _PLAN, set(), set())
    for path in _PLAN.workflows:
        at = pool.submitted.index(path.name)
        before = {item.id for item in pool.submitted[:at] if isinstance(item, Segment)}
        assert set(path.segments) <= before
    assert [o.status for o in run.segments] == ["done"] * len(_IDS)


class _DeferredPool:
    """Finishes nothing when submitted: each time the scheduler waits, it finishes some of the
    tasks pending, in an order Hypothesis draws. A task may run twice (retried after its
    worker died having done the work) or end with its worker lost (after it ran, or not)."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data
        self.pending: list[tuple[Future[Any], Callable[..., Any], tuple[Any, ...], Any]] = []
        self.submitted: list[Any] = []
        #: How each segment's future ended, as the scheduler learnt it: its status, or lost.
        self.ended: dict[int, str] = {}

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        first = args[0]
        if isinstance(first, Segment):
            assert all(self.ended.get(i) == "done" for i in first.after), "submitted too soon"
        self.submitted.append(first)
        future: Future[Any] = Future()
        self.pending.append((future, fn, args, kwargs))
        return future

    def shutdown(self, **_: Any) -> None:
        pass

    def wait(self, futures: Iterable[Future[Any]], return_when: str) -> tuple[set[Any], set[Any]]:
        assert return_when == FIRST_COMPLETED
        waited = set(futures)
        assert {item[0] for item in self.pending} <= waited
        count = len(self.pending)
        chosen = self.data.draw(
            st.lists(st.integers(0, count - 1), min_size=1, max_size=count, unique=True)
        )
        for index in sorted(chosen, reverse=True):
            self._finish(*self.pending.pop(index))
        done = {future for future in waited if future.done()}
        return done, waited - done

    def _finish(
        self, future: Future[Any], fn: Callable[..., Any], args: tuple[Any, ...], kwargs: Any
    ) -> None:
        ran = self.data.draw(st.sampled_from([1, 1, 1, 2, 0]), label="times run")
        results = [fn(*args, **kwargs) for _ in range(ran)]
        lost = not results or self.data.draw(st.integers(0, 3), label="worker lost") == 0
        first = args[0]
        if lost:
            if isinstance(first, Segment):
                self.ended[first.id] = "lost"
            future.set_exception(WorkerLost("its Ray actor died, tried 2 times"))
            return
        result = results[-1]  # a retry's result is the one the engine hands back
        if isinstance(first, Segment):
            self.ended[first.id] = result.status
        future.set_result(result)


@given(
    data=st.data(),
    failed=st.sets(st.sampled_from(_IDS)),
    let_down=st.sets(st.sampled_from(_IDS)),
)
def test_any_order_duplicates_and_lost_workers_end_each_segment_and_variant_once(
    data: st.DataObject, failed: set[int], let_down: set[int]
) -> None:
    runs: Counter[Any] = Counter()

    def run_segment(segment: Segment, *, uploads: bool) -> SegmentOutcome:
        runs[segment.id] += 1
        # Run again, a segment finds what its first run published: the cache let it down.
        status = (
            "failed" if segment.id in failed
            else "replanned" if segment.id in let_down or runs[segment.id] > 1
            else "done"
        )  # fmt: skip
        return SegmentOutcome(segment=segment.id, status=status, records=(), notes=(), seconds=0.0,
                              error="boom" if status == "failed" else "", fault="user")  # fmt: skip

    def run_variant(name: str, _shape: Any = None) -> VariantOutcome:
        runs[name] += 1
        return VariantOutcome(name=name, report=RunReport())

    pool = _DeferredPool(data)
    run = SweepRun(plan=_PLAN)
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(_engine, "run_segment", run_segment)
        monkeypatch.setattr(_engine, "run_variant", run_variant)
        monkeypatch.setattr(_engine, "wait", pool.wait)
        _engine._Scheduler(pool, run, _engine.SweepReporter(), uploads=False).go()  # type: ignore[arg-type]

    assert pool.pending == []
    segments = [item.id for item in pool.submitted if isinstance(item, Segment)]
    assert len(segments) == len(set(segments)), "a segment submitted twice"
    assert sorted(o.segment for o in run.segments) == sorted(_IDS), "each segment ends once"
    outcomes = {o.segment: o for o in run.segments}
    for segment in _PLAN.segments:
        if segment.id in pool.ended:
            assert (outcomes[segment.id].status == "failed") == (
                pool.ended[segment.id] in ("failed", "lost")
            )
    names = sorted(p.name for p in _PLAN.workflows)
    assert sorted(o.name for o in run.variants) == names, "each variant ends once"
    for path in _PLAN.workflows:
        (outcome,) = [o for o in run.variants if o.name == path.name]
        through_failure = any(outcomes[i].status == "failed" for i in path.segments)
        assert (path.name in pool.submitted) == (not through_failure)
        if through_failure:
            assert outcome.report is None
            assert outcome.error.startswith("segment ")
        at = pool.submitted.index(path.name) if path.name in pool.submitted else None
        if at is not None:
            before = {item.id for item in pool.submitted[:at] if isinstance(item, Segment)}
            assert before >= {i for i in path.segments if i in segments}


def test_a_lost_worker_fails_its_segment_and_the_variants_through_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class LosingPool(_Pool):
        def submit(self, function: Any, *args: Any, **kwargs: Any) -> Future[Any]:
            if isinstance(args[0], Segment) and args[0].id == 0:
                future: Future[Any] = Future()
                future.set_exception(WorkerLost("its Ray actor died, tried 2 times: OOM"))
                self.submitted.append(args[0])
                return future
            return super().submit(function, *args, **kwargs)

    monkeypatch.setattr(
        _engine, "run_variant", lambda name, *_: VariantOutcome(name=name, report=None)
    )
    run = SweepRun(plan=_PLAN)
    _engine._Scheduler(LosingPool(), run, _engine.SweepReporter(), uploads=False).go()  # type: ignore[arg-type]
    first = next(o for o in run.segments if o.segment == 0)
    assert (first.status, first.fault) == ("failed", "environment")
    assert "its Ray actor died" in first.error
    assert all(o.error.startswith("segment ") for o in run.variants), "all share segment 0"


def _workers(resources: PassResources) -> Workers:
    return Workers(jobs=1, setup=WorkerSetup(configs=(), options=RunOptions()), resources=resources)


def test_the_local_engine_notes_passes_asking_for_more_than_the_machine_has(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_engine, "machine", lambda: Resources(cpus=2, gpus=0, memory=2**33))
    asked = PassResources(
        by_pass=[("quantize", Resources(gpus=1, memory=2**34)), ("convert", Resources(cpus=2))]
    )
    notes: list[str] = []
    pool = LocalEngine().start(_workers(asked), note=notes.append)
    try:
        assert isinstance(pool, _engine.ProcessPool)
    finally:
        pool.shutdown(wait=True)
    assert notes == [
        "pass 'quantize' asks for 1 GPU, 16.0 GiB of memory; the machine has 0 GPUs, 8.0 GiB "
        "of memory: the local engine runs every pass in its own processes all the same "
        "(--engine ray places passes by their resources)"
    ]
    quiet: list[str] = []
    LocalEngine().start(_workers(PassResources()), note=quiet.append).shutdown(wait=True)
    assert quiet == []


def _process_pool(workers: int = 1) -> _engine.ProcessPool:
    context = multiprocessing.get_context("forkserver")
    return _engine.ProcessPool(
        functools.partial(ProcessPoolExecutor, max_workers=workers, mp_context=context)
    )


def test_the_process_pool_sends_again_what_a_dead_worker_held() -> None:
    pool = _process_pool()
    try:
        first = pool.submit(os.getpid).result(timeout=60)
        # Kills its worker on the first try; on the second, in a new worker, finds the
        # first one gone. The task queued behind it is sent again too.
        killer = pool.submit(os.kill, first, signal.SIGKILL)
        behind = pool.submit(os.getpid)
        with pytest.raises(ProcessLookupError):
            killer.result(timeout=60)
        assert behind.result(timeout=60) not in (first, None)
    finally:
        pool.shutdown(wait=True)


def test_a_task_whose_worker_dies_twice_is_lost_and_the_pool_goes_on() -> None:
    pool = _process_pool()
    try:
        doomed = pool.submit(os._exit, 3)
        with pytest.raises(WorkerLost, match="its worker process died, tried 2 times"):
            doomed.result(timeout=60)
        assert isinstance(pool.submit(os.getpid).result(timeout=60), int)
    finally:
        pool.shutdown(wait=True)


def test_the_process_pool_starts_nothing_once_it_is_shut_down() -> None:
    pool = _process_pool()
    pool.GRACE = 30.0  # type: ignore[misc]  # the shutdown comes within it
    executor = pool._executor
    doomed = pool.submit(os._exit, 3)
    time.sleep(1.0)  # the worker dies, the break is seen: the pool waits out its grace
    pool.shutdown(wait=True)
    with pytest.raises(WorkerLost, match="as the sweep stopped"):
        doomed.result(timeout=60)
    assert pool._executor is executor, "no new executor was started"
    late = pool.submit(os.getpid)
    with pytest.raises(WorkerLost):
        late.result(timeout=5)


def test_a_variants_run_after_a_let_down_segment_asks_for_what_its_passes_do(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: dict[str, tuple[Any, ...]] = {}

    class Recording(_Pool):
        def submit(self, function: Any, *args: Any, **kwargs: Any) -> Future[Any]:
            if not isinstance(args[0], Segment):
                asked[args[0]] = args
            return super().submit(function, *args, **kwargs)

    let_down = {s.id for s in _PLAN.segments if s.after}  # every second pass's segment
    monkeypatch.setattr(_engine, "run_segment", lambda segment, *, uploads: SegmentOutcome(
        segment=segment.id, status="replanned" if segment.id in let_down else "done",
        records=(), notes=(), seconds=0.0))  # fmt: skip
    monkeypatch.setattr(
        _engine, "run_variant", lambda name, *_: VariantOutcome(name=name, report=None)
    )
    resources = PassResources(by_pass=[("cast", Resources(gpus=1)), ("convert", Resources(cpus=2))])
    run = SweepRun(plan=_PLAN)
    _engine._Scheduler(Recording(), run, _engine.SweepReporter(), uploads=False,  # type: ignore[arg-type]
                       resources=resources).go()  # fmt: skip
    shape = Resources(cpus=2, gpus=1)  # the most of convert, quantize and cast, each on its own
    assert asked == {path.name: (path.name, shape) for path in _PLAN.workflows}
    assert resources.of_call(asked["v00"]) == shape

    asked.clear()
    let_down.clear()  # every segment went through: delivering asks for the default
    _engine._Scheduler(Recording(), SweepRun(plan=_PLAN), _engine.SweepReporter(),  # type: ignore[arg-type]
                       uploads=False, resources=resources).go()  # fmt: skip
    assert asked == {path.name: (path.name,) for path in _PLAN.workflows}
