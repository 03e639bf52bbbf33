"""The local engine's scheduler against a fake pool: segments submitted only after those they
wait for, a failure failing exactly the variants through it, a segment the cache let down
leaving the rest to the variants' own runs, and every variant ending exactly once."""

from __future__ import annotations

from concurrent.futures import Future
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
from modelcache.runner.sweep import SegmentOutcome, SweepRun, VariantOutcome, _engine


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

    def run_variant(name: str) -> VariantOutcome:
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
