"""A sweep's results: the Pareto front is exactly the variants no other dominates, the table
marks it, and the plan's tree shows which variants share which passes."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from modelcache.planner import (
    CachePolicy,
    Chain,
    Evaluation,
    HubModel,
    PassSpec,
    Snapshot,
    Sweep,
    SweepPlan,
    Workflow,
    make_sweep_plan,
)
from modelcache.runner.cli.render import render_sweep_dot, render_sweep_mermaid
from modelcache.runner.reporting import RunReport
from modelcache.runner.sweep import (
    OBJECTIVES,
    Measures,
    SweepRun,
    VariantOutcome,
    dominates,
    measures_of,
    pareto_front,
    render_tree,
    results_of,
    results_table,
)

# Few distinct values, so that ties and equal points are common.
_VALUES = st.sampled_from([0.0, 1.0, 2.0, 3.0])


@st.composite
def measured(draw: st.DrawFn) -> list[Measures]:
    """Variants measuring the same objectives (a non-empty subset), or sometimes nothing."""
    objectives = draw(st.lists(st.sampled_from(list(OBJECTIVES)), min_size=1, unique=True))
    count = draw(st.integers(min_value=0, max_value=7))
    return [
        Measures(
            name=f"v{i}",
            values={} if draw(st.booleans()) and i == 0 else {o: draw(_VALUES) for o in objectives},
        )
        for i in range(count)
    ]


@given(measured())
def test_the_front_is_exactly_the_variants_no_other_dominates(variants: list[Measures]) -> None:
    front, objectives = pareto_front(variants)
    candidates = [m for m in variants if m.values]
    for m in candidates:
        dominated = any(dominates(o.values, m.values, objectives) for o in candidates)
        assert (m.name in front) == (not dominated)
    assert all(m.name not in front for m in variants if not m.values)
    if candidates:
        assert front, "a non-empty set of measured variants has a non-empty front"
        assert set(objectives) == set(candidates[0].values)


@given(measured(), st.randoms(use_true_random=False))
def test_the_front_does_not_depend_on_the_order(variants: list[Measures], rng: Any) -> None:
    shuffled = list(variants)
    rng.shuffle(shuffled)
    assert set(pareto_front(shuffled)[0]) == set(pareto_front(variants)[0])


def test_quality_is_higher_better_size_and_latency_lower_better() -> None:
    small = measures_of("small", {"size_bytes": 10, "latency_ms": 5.0, "fidelity": 0.9})
    faithful = measures_of("faithful", {"size_bytes": 10, "latency_ms": 5.0, "fidelity": 0.99})
    large = measures_of("large", {"size_bytes": 20, "latency_ms": 1.0, "fidelity": 0.99})
    assert pareto_front([small, faithful, large]) == (
        ("faithful", "large"),
        ("size", "latency", "quality"),
    )
    # Accuracy stands for quality when there is no fidelity; booleans are no measure.
    assert measures_of("a", {"accuracy": 0.7, "size_bytes": True}).values == {"quality": 0.7}


def _run(metrics: dict[str, dict[str, Any]], failed: str = "") -> SweepRun:
    plan = make_sweep_plan(Sweep(workflows=[]), Snapshot.empty())
    outcomes = [
        VariantOutcome(
            name=name, report=RunReport(metrics={"cast": values}, output_dir=f"out/{name}")
        )
        for name, values in metrics.items()
    ]
    if failed:
        outcomes.append(VariantOutcome(name=failed, report=None, error="it broke", fault="user"))
    return SweepRun(plan=plan, variants=outcomes)


def test_the_table_marks_the_front_and_says_why_a_variant_failed() -> None:
    run = _run(
        {
            "fp16": {"size_bytes": 2_000_000, "fidelity": 0.999},
            "bf16": {"size_bytes": 2_000_000, "fidelity": 0.99},
        },
        failed="int8",
    )
    results = results_of(run, {"fp16": "cast", "bf16": "cast", "int8": "cast"})
    assert results.front == ("fp16",)
    assert results_table(results).splitlines() == [
        "variant  size    fidelity  front",
        "fp16     2.0 MB  0.999000  *",
        "bf16     2.0 MB  0.990000",
        "int8     -       -         failed: it broke",
        "* Pareto front over size, quality",
    ]


def test_the_table_shows_throughput_when_it_was_measured() -> None:
    run = _run({"a": {"latency_ms": 2.0, "throughput_sps": 4000.0},
                "b": {"latency_ms": 4.0, "throughput_sps": 2000.0}})  # fmt: skip
    table = results_table(results_of(run, {"a": "cast", "b": "cast"})).splitlines()
    assert table[:3] == [
        "variant  latency ms  sentences/s  front",
        "a        2.000       4000.0       *",
        "b        4.000       2000.0",
    ]


def _two_quantizations() -> SweepPlan:
    """Two variants sharing their conversion, each quantizing its own way."""
    model = HubModel(repo_id="org/model", revision="0" * 40)
    convert = PassSpec(name="convert", type="OnnxConversion", version="1")
    workflows = [
        Workflow(
            name=f"q{bits}",
            evaluation=Evaluation.final("eval-1"),
            chain=Chain(
                model=model,
                passes=[
                    convert,
                    PassSpec(name="quantize", type="Q", version="1", config={"bits": bits}),
                ],
            ),
        )
        for bits in (4, 8)
    ]
    local = CachePolicy(enable_cloud_cache=False)
    return make_sweep_plan(Sweep(workflows=workflows), Snapshot.empty(), local)


def test_the_tree_shows_which_variants_share_which_passes() -> None:
    text = render_tree(_two_quantizations())
    lines = text.splitlines()
    assert lines[0].startswith("sweep: 2 variants, 3 segments (0 idle); 3 runs, 0 downloads")
    assert lines[1] == "segment 0: all 2 variants"
    assert lines[2].startswith("│   run       convert  ")
    assert lines[3] == "├── segment 1 after 0: q4"
    assert lines[4].startswith("│       run       quantize  ")
    assert lines[5].startswith("│       evaluate  quantize  ")
    assert lines[6] == "└── segment 2 after 0: q8"
    assert len(lines) == 9


def test_the_sweep_drawings_show_each_output_once_under_its_input() -> None:
    plan = _two_quantizations()
    convert, q4 = plan.workflows[0].keys
    _, q8 = plan.workflows[1].keys

    mermaid = render_sweep_mermaid(plan).splitlines()
    assert mermaid[:2] == ["flowchart LR", '    model(["input model"])']
    nodes = [line for line in mermaid if '["' in line and "model" not in line]
    assert nodes == [
        f'    k0["convert<br/>run<br/>{convert[:12]}"]:::run',
        f'    k1["quantize<br/>run + evaluate<br/>{q4[:12]}<br/>final: q4"]:::run',
        f'    k2["quantize<br/>run + evaluate<br/>{q8[:12]}<br/>final: q8"]:::run',
    ]
    assert [line for line in mermaid if "-->" in line] == [
        "    model --> k0", "    k0 --> k1", "    k0 --> k2",
    ]  # fmt: skip
    dot = render_sweep_dot(plan)
    assert dot.startswith("digraph modelcache_sweep {")
    assert "    k0 -> k1;" in dot
    assert "    k0 -> k2;" in dot
    assert f'k2 [label="quantize\\nrun + evaluate\\n{q8[:12]}\\nfinal: q8"' in dot
