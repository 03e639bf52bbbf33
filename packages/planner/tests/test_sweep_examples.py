"""make_sweep_plan on hand-made sweeps: what the plan of a few variants looks like, and what is
refused."""

from __future__ import annotations

import pytest

from modelcache.planner import (
    Chain,
    Download,
    Evaluate,
    Evaluation,
    InvalidChain,
    InvalidInput,
    Run,
    Snapshot,
    SnapshotEntry,
    Sweep,
    SweepPlan,
    Upload,
    Workflow,
    make_sweep_plan,
    structure,
    unstructure,
)

from .strategies import OTHER_FINGERPRINT
from .sweep_examples import CONVERT, CONVERT_KEY, FOUR, MODEL, variant


def test_four_variants_run_their_shared_conversion_once_and_then_side_by_side() -> None:
    plan_ = make_sweep_plan(FOUR, Snapshot.empty())
    first, *variants = plan_.segments
    assert [type(item.step) for item in first.steps] == [Run, Upload]
    assert first.steps[0].step.reason == "not cached; input of 4 passes that must run ('quantize')"
    assert [segment.after for segment in variants] == [(0,)] * 4
    assert [segment.steps[0].workflow for segment in variants] == ["v0", "v1", "v2", "v3"]
    assert plan_.totals.runs == 5
    assert plan_.totals.evaluations == 4


def test_a_shared_output_in_the_cloud_is_downloaded_once() -> None:
    snapshot = Snapshot.from_listing([SnapshotEntry(key=CONVERT_KEY, in_cloud=True, size=9)])
    plan_ = make_sweep_plan(FOUR, snapshot)
    assert [type(item.step) for item in plan_.segments[0].steps] == [Download]
    assert plan_.totals.downloads == 1
    assert plan_.totals.bytes_to_download == 9


def test_variants_of_an_input_in_the_local_tier_wait_for_nothing() -> None:
    listing = [SnapshotEntry(key=CONVERT_KEY, in_cloud=True, in_local=True)]
    plan_ = make_sweep_plan(FOUR, Snapshot.from_listing(listing))
    assert plan_.segments[0].idle
    assert [segment.after for segment in plan_.segments[1:]] == [()] * 4


def test_a_workflow_that_is_a_prefix_of_another_shares_its_segment() -> None:
    short = Workflow(name="short", chain=Chain(model=MODEL, passes=[CONVERT]))
    sweep = Sweep(workflows=[short, variant("long", "A")])
    plan_ = make_sweep_plan(sweep, Snapshot.empty())
    (segment,) = plan_.segments
    assert segment.steps[0].step.reason == (
        "not cached; final output of 'short'; input of pass 'quantize', which must run"
    )
    assert [path.segments for path in plan_.workflows] == [(0,), (0,)]


def test_a_shared_pass_takes_the_first_workflows_name_and_each_evaluator_runs() -> None:
    first = variant("first", "A", pass_name="q")
    second = variant("second", "A", pass_name="quantize")
    second = Workflow(
        name="second", chain=second.chain, evaluation=Evaluation.final(OTHER_FINGERPRINT)
    )
    plan_ = make_sweep_plan(Sweep(workflows=[first, second]), Snapshot.empty())
    (segment,) = plan_.segments
    named = [
        (item.workflow, type(item.step).__name__, item.step.pass_name) for item in segment.steps
    ]
    assert named == [
        ("first", "Run", "convert"),
        ("first", "Upload", "convert"),
        ("first", "Run", "q"),
        ("first", "Upload", "q"),
        ("first", "Evaluate", "q"),
        ("second", "Evaluate", "quantize"),
    ]
    assert all(isinstance(item.step, Evaluate) for item in segment.steps[-2:])


# Refused inputs -------------------------------------------------------------------------------


def test_workflow_names_are_unique() -> None:
    with pytest.raises(InvalidChain, match="workflow name 'v0' appears twice"):
        Sweep(workflows=[variant("v0", "A"), variant("v0", "B")])


def test_a_workflow_evaluating_a_pass_its_chain_lacks_is_refused_with_its_name() -> None:
    with pytest.raises(InvalidChain, match="workflow 'w': no pass is called 'fp16'"):
        Workflow(
            name="w",
            chain=Chain(model=MODEL, passes=[CONVERT]),
            evaluation=Evaluation.of(["fp16"], "latency-v1"),
        )


def sweep_plan_data() -> dict[str, object]:
    data: dict[str, object] = unstructure(make_sweep_plan(FOUR, Snapshot.empty()))
    return data


@pytest.mark.parametrize(
    ("spoil", "problem"),
    [
        (lambda data: data.update(format="modelcache-sweep/0"), "unknown sweep plan format"),
        (lambda data: data["segments"][1].update(id=7), "segment 1 has id 7"),
        (lambda data: data["segments"][1].update(after=[1]), "segment 1 waits for 1"),
        (lambda data: data["totals"].update(runs=1), "totals do not add up"),
        (lambda data: data["workflows"][0].update(segments=[9]), "names a segment"),
        (lambda data: data["workflows"][0].update(final_key="0" * 64), "final_key"),
        (lambda data: data["segments"][0]["steps"][0].pop("workflow"), "names its workflow"),
        (lambda data: data.update(extra=1), "extra fields found (extra)"),
    ],
)
def test_a_bad_sweep_plan_is_refused_in_one_line(spoil: object, problem: str) -> None:
    data = sweep_plan_data()
    assert callable(spoil)
    spoil(data)
    with pytest.raises(InvalidInput) as raised:
        structure(data, SweepPlan)
    assert problem in str(raised.value)
    assert "\n" not in str(raised.value)
