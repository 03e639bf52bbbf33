"""The plot of a sweep's front (``--plot``): an SVG document that parses, one marker per
measured variant in each panel, the front's filled, points placed as their values are, the
same bytes every time; and the command's checks of the file it is asked for."""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from itertools import combinations
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import modelcache.runner.sweep
from modelcache.planner import Snapshot, Sweep, make_sweep_plan
from modelcache.runner.cli import main
from modelcache.runner.reporting import RunReport
from modelcache.runner.sweep import (
    OBJECTIVES,
    NothingToPlot,
    SweepResults,
    SweepRun,
    VariantOutcome,
    plot_front,
    results_of,
)

SVG = "{http://www.w3.org/2000/svg}"
METRICS = {"size": "size_bytes", "latency": "latency_ms", "quality": "fidelity"}

#: The Results section's table in docs/sweeps.md: every size alike, two on the front.
DOCUMENTED = {
    name: {"size_bytes": 49_632, "latency_ms": latency, "fidelity": fidelity}
    for name, latency, fidelity in [
        ("sparsity=0.6,dtype=float16", 205.219, 0.99996),
        ("sparsity=0.6,dtype=bfloat16", 263.738, 0.999954),
        ("sparsity=0.7,dtype=float16", 254.031, 0.999939),
        ("sparsity=0.7,dtype=bfloat16", 126.71, 0.999931),
    ]
}


def _run(
    metrics: Mapping[str, Mapping[str, Any]], failed: Mapping[str, str] | None = None
) -> SweepRun:
    """A sweep's run: each variant of ``metrics`` delivered, its final pass ``cast`` having
    measured them; those of ``failed`` failed (their fault)."""
    outcomes = [
        VariantOutcome(name=name, report=RunReport(metrics={"cast": dict(values)},
                                                   output_dir=f"out/{name}"))
        for name, values in metrics.items()
    ]  # fmt: skip
    outcomes += [VariantOutcome(name=name, report=None, error="it broke", fault=fault)
                 for name, fault in (failed or {}).items()]  # fmt: skip
    return SweepRun(plan=make_sweep_plan(Sweep(workflows=[]), Snapshot.empty()), variants=outcomes)


def _results(
    metrics: Mapping[str, Mapping[str, Any]], failed: Mapping[str, str] | None = None
) -> SweepResults:
    return results_of(_run(metrics, failed), {name: "cast" for name in metrics})


def _panels(svg: str) -> list[ET.Element]:
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    return [g for g in root.iter(f"{SVG}g") if g.get("class") == "panel"]


def _markers(panel: ET.Element) -> dict[str, ET.Element]:
    circles = [c for c in panel.iter(f"{SVG}circle") if "variant" in c.get("class", "").split()]
    named = {str(c.get("data-variant")): c for c in circles}
    assert len(named) == len(circles), "one marker per variant"
    return named


def _front(panel: ET.Element) -> set[str]:
    return {name for name, c in _markers(panel).items() if "front" in c.get("class", "").split()}


def _texts(svg: str, cls: str) -> list[str]:
    root = ET.fromstring(svg)
    return ["".join(t.itertext()) for t in root.iter(f"{SVG}text") if t.get("class") == cls]


def _legend(svg: str) -> list[list[str]]:
    root = ET.fromstring(svg)
    return [
        [span.text or "" for span in row]
        for row in root.iter(f"{SVG}text")
        if row.get("class") == "row"
    ]


def test_three_objectives_make_three_panels_each_variant_a_marker_the_front_filled() -> None:
    results = _results(DOCUMENTED, failed={"sparsity=0.8,dtype=int8": "user"})
    svg = plot_front(results, title="modelcache sweep sweep.json")

    panels = _panels(svg)
    assert [(p.get("data-x"), p.get("data-y")) for p in panels] == [
        ("size", "latency"), ("size", "quality"), ("latency", "quality"),
    ]  # fmt: skip
    for panel in panels:
        assert set(_markers(panel)) == set(DOCUMENTED), "the failed variant is not plotted"
        assert _front(panel) == set(results.front) == {
            "sparsity=0.6,dtype=float16", "sparsity=0.7,dtype=bfloat16",
        }  # fmt: skip
        title = _markers(panel)["sparsity=0.7,dtype=bfloat16"].find(f"{SVG}title")
        assert title is not None
        assert title.text == (
            "sparsity=0.7,dtype=bfloat16\n49.6 KB (49,632 bytes), 126.710 ms, fidelity 0.999931"
            "\non the Pareto front"
        )
    # Names this long are numbered on the points; the legend says which is which.
    assert sorted(_texts(svg, "label")) == sorted(["1", "2", "3", "4"] * 3)
    assert _legend(svg) == [
        ["1", "sparsity=0.6,dtype=float16", "49.6 KB", "205.219 ms", "fidelity 0.999960", "front"],
        ["2", "sparsity=0.6,dtype=bfloat16", "49.6 KB", "263.738 ms", "fidelity 0.999954"],
        ["3", "sparsity=0.7,dtype=float16", "49.6 KB", "254.031 ms", "fidelity 0.999939"],
        ["4", "sparsity=0.7,dtype=bfloat16", "49.6 KB", "126.710 ms", "fidelity 0.999931", "front"],
        ["sparsity=0.8,dtype=int8", "not plotted, failed: it broke"],
    ]  # fmt: skip
    assert _texts(svg, "axis") == [
        "size (KB), lower is better", "latency (ms), lower is better",
        "size (KB), lower is better", "fidelity, higher is better",
        "latency (ms), lower is better", "fidelity, higher is better",
    ]  # fmt: skip
    root = ET.fromstring(svg)
    assert root.findtext(f"{SVG}title") == "modelcache sweep sweep.json"
    assert root.findtext(f"{SVG}desc") == (
        "4 variants plotted, 2 on the Pareto front over size, latency, quality; "
        "1 not plotted (listed below)"
    )
    assert not [p for p in root.iter(f"{SVG}path") if p.get("class") == "front-line"], (
        "a panel shows a projection of a three-objective front, which is no line"
    )


def test_alike_values_are_drawn_in_the_middle_of_their_axis_with_ticks_around_them() -> None:
    svg = plot_front(_results(DOCUMENTED))
    panel = _panels(svg)[0]  # size (all 49.6 KB) across, latency up
    frame = panel.find(f"{SVG}rect")
    assert frame is not None
    middle = float(frame.get("x", "")) + float(frame.get("width", "")) / 2
    assert {float(c.get("cx", "")) for c in _markers(panel).values()} == {middle}
    ticks = [t.text for t in panel.iter(f"{SVG}text") if t.get("text-anchor") == "middle"]
    assert ticks[:5] == ["48", "49", "50", "51", "52"]  # KB


def _position(marker: ET.Element, axis: str) -> float:
    return float(marker.get(axis, ""))


@st.composite
def measured(draw: st.DrawFn) -> dict[str, dict[str, float]]:
    """Variants measuring the same objectives (one to three), with ties and alike values
    common, and values over many magnitudes."""
    objectives = draw(st.lists(st.sampled_from(list(OBJECTIVES)), min_size=1, unique=True))
    values = st.one_of(
        st.sampled_from([0.0, 1.0, 2.0, 1e6]),
        st.floats(min_value=-1e12, max_value=1e12, allow_nan=False),
    )
    count = draw(st.integers(min_value=1, max_value=6))
    return {f"v{i}": {METRICS[o]: draw(values) for o in objectives} for i in range(count)}


@given(measured())
def test_points_are_placed_as_their_values_are_and_the_front_is_filled(
    metrics: dict[str, dict[str, float]],
) -> None:
    results = _results(metrics)
    svg = plot_front(results)
    assert svg == plot_front(results), "the same results, the same bytes"
    panels = _panels(svg)
    count = len(results.objectives)
    assert len(panels) == (1 if count == 1 else math.comb(count, 2))
    by_metric = {o: METRICS[o] for o in results.objectives}
    for panel in panels:
        markers = _markers(panel)
        assert set(markers) == set(metrics)
        assert _front(panel) == set(results.front)
        across, up = panel.get("data-x"), panel.get("data-y")
        for (a, ma), (b, mb) in combinations(markers.items(), 2):
            assert across is not None
            va, vb = metrics[a][by_metric[across]], metrics[b][by_metric[across]]
            if va < vb:  # further right, or as far when the two are a hair apart
                assert _position(ma, "cx") <= _position(mb, "cx")
            if up is None:
                assert _position(ma, "cy") == _position(mb, "cy"), "a strip"
                continue
            va, vb = metrics[a][by_metric[up]], metrics[b][by_metric[up]]
            if va < vb:  # further up: a smaller y on the screen
                assert _position(ma, "cy") >= _position(mb, "cy")


def test_a_larger_value_is_further_right_and_a_higher_quality_further_up() -> None:
    svg = plot_front(_results(DOCUMENTED))
    latency_quality = _markers(_panels(svg)[2])
    by_latency = sorted(DOCUMENTED, key=lambda name: DOCUMENTED[name]["latency_ms"])
    by_fidelity = sorted(DOCUMENTED, key=lambda name: DOCUMENTED[name]["fidelity"])
    xs = [_position(latency_quality[name], "cx") for name in by_latency]
    ys = [_position(latency_quality[name], "cy") for name in by_fidelity]
    assert xs == sorted(xs)
    assert len(set(xs)) == 4
    assert ys == sorted(ys, reverse=True)
    assert len(set(ys)) == 4


def test_two_objectives_draw_the_front_as_a_staircase_through_its_points() -> None:
    metrics = {
        "fp32": {"latency_ms": 12.0, "accuracy": 0.91},
        "fp16": {"latency_ms": 7.5, "accuracy": 0.905},
        "int8": {"latency_ms": 3.1, "accuracy": 0.87},
        "int8-dynamic": {"latency_ms": 4.0, "accuracy": 0.86},
    }
    svg = plot_front(_results(metrics))
    (panel,) = _panels(svg)
    assert (panel.get("data-x"), panel.get("data-y")) == ("latency", "quality")
    markers = _markers(panel)
    assert _front(panel) == {"fp32", "fp16", "int8"}
    (line,) = [p for p in panel.iter(f"{SVG}path") if p.get("class") == "front-line"]
    corners = re.findall(r"[MHV] [-\d. ]+", line.get("d", ""))
    at = {name: (m.get("cx"), m.get("cy")) for name, m in markers.items()}
    assert corners == [
        f"M {at['int8'][0]} {at['int8'][1]} ",
        f"H {at['fp16'][0]} ", f"V {at['fp16'][1]} ",
        f"H {at['fp32'][0]} ", f"V {at['fp32'][1]}",
    ]  # fmt: skip
    # Short names are drawn beside their points; the only quality measured is accuracy.
    assert sorted(_texts(svg, "label")) == sorted(metrics)
    assert _texts(svg, "axis") == ["latency (ms), lower is better", "accuracy, higher is better"]


def test_one_objective_is_a_strip_and_points_that_fall_together_share_a_label() -> None:
    metrics = {"a": {"size_bytes": 2_400_000}, "b": {"size_bytes": 600_000},
               "c": {"size_bytes": 600_000}}  # fmt: skip
    svg = plot_front(_results(metrics))
    (panel,) = _panels(svg)
    assert (panel.get("data-x"), panel.get("data-y")) == ("size", None)
    assert _front(panel) == {"b", "c"}
    assert sorted(_texts(svg, "label")) == ["a", "b, c"]
    assert _texts(svg, "axis") == ["size (MB), lower is better"]
    assert _legend(svg)[1] == ["b", "600.0 KB", "front"]


def test_a_lone_variant_is_on_its_front_in_the_middle_of_each_panel() -> None:
    svg = plot_front(_results({"only": {"size_bytes": 500, "latency_ms": 1.0, "fidelity": 1.0}}))
    for panel in _panels(svg):
        assert _front(panel) == {"only"}
    assert _texts(svg, "axis")[0] == "size (B), lower is better"


def test_qualities_of_both_kinds_name_both_on_their_axis() -> None:
    metrics = {
        "a": {"latency_ms": 1.0, "fidelity": 0.99},
        "b": {"latency_ms": 2.0, "accuracy": 0.9},
    }
    svg = plot_front(_results(metrics))
    assert _texts(svg, "axis")[1] == "quality (fidelity or accuracy), higher is better"
    assert [row[2] for row in _legend(svg)] == ["fidelity 0.990000", "accuracy 0.9000"]


def test_a_measure_that_is_no_finite_number_leaves_its_variant_out() -> None:
    metrics = {"a": {"latency_ms": 1.0}, "b": {"latency_ms": math.inf}, "c": {"latency_ms": 2.0}}
    svg = plot_front(_results(metrics))
    (panel,) = _panels(svg)
    assert set(_markers(panel)) == {"a", "c"}
    assert _legend(svg)[1] == ["b", "not plotted, not measured"]


@given(st.lists(st.text(max_size=30), min_size=1, max_size=4, unique=True))
def test_any_name_is_drawn_as_xml_can_hold_it(names: list[str]) -> None:
    metrics = {name: {"latency_ms": float(i)} for i, name in enumerate(names)}
    (panel,) = _panels(plot_front(_results(metrics)))
    clean = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
    drawn = [c.get("data-variant") for c in panel.iter(f"{SVG}circle") if c.get("class")]
    assert sorted(drawn) == sorted(clean.sub("\ufffd", name) for name in names)


@pytest.mark.parametrize(
    ("metrics", "failed", "reason"),
    [
        ({}, {"a": "user"}, "no variant was delivered"),
        ({"a": {"throughput_sps": 3.0}}, {}, "no variant measured size, latency, quality: give"),
        (
            {"a": {"size_bytes": 1}, "b": {"latency_ms": 1.0}},
            {},
            "the variants measured no objective in common",
        ),
        ({"a": {"latency_ms": math.nan}}, {}, "no variant's measures are finite numbers"),
    ],
)
def test_nothing_to_plot_says_why(
    metrics: dict[str, dict[str, float]], failed: dict[str, str], reason: str
) -> None:
    with pytest.raises(NothingToPlot, match=r"^nothing to plot: ") as raised:
        plot_front(_results(metrics, failed))
    assert raised.value.reason.startswith(reason)
    assert raised.value.fault == "user"


# The command: its checks before any work, and the file after the sweep. The sweep itself is
# faked (a real one is tests/test_sweep_e2e.py's): its variants are prepared and run as given.


def _one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def test_plot_must_name_an_svg_file_in_a_folder_that_exists(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sweep = str(tmp_path / "sweep.json")  # never read: the checks come first
    assert main(["sweep", sweep, "--plot", str(tmp_path / "front.png")]) == 2
    assert _one_line(capsys.readouterr().err) == (
        f"error: --plot {tmp_path / 'front.png'}: the plot is an SVG image; name a file "
        "ending in .svg"
    )
    missing = tmp_path / "plots" / "front.svg"
    assert main(["sweep", sweep, "--plot", str(missing)]) == 2
    assert _one_line(capsys.readouterr().err) == (
        f"error: --plot {missing}: the folder {missing.parent} does not exist; create it first"
    )
    folder = tmp_path / "front.svg"
    folder.mkdir()
    assert main(["sweep", sweep, "--plot", str(folder)]) == 2
    assert _one_line(capsys.readouterr().err) == (
        f"error: --plot {folder}: is a directory; name a file"
    )


def test_plot_with_plan_is_left_out_with_a_note(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plot = tmp_path / "plots" / "front.png"  # neither checked nor written
    assert main(["sweep", str(tmp_path / "sweep.json"), "--plan", "--plot", str(plot)]) == 2
    note, error = capsys.readouterr().err.strip().splitlines()
    assert note == "note: --plot is left out: --plan measures nothing"
    assert error.startswith("error: ")  # the missing sweep file's
    assert "--plot" not in error
    assert not plot.parent.exists()


@pytest.fixture
def fake_sweep(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``fake_sweep(run)``: the command prepares variants whose last pass is ``cast`` and
    runs them into ``run``."""
    import modelcache.runner.cli.sweep as command

    def fake(run: SweepRun) -> None:
        passes = SimpleNamespace(passes=[SimpleNamespace(name="cast")])
        prepared = SimpleNamespace(prepared=[(v.name, SimpleNamespace(chain=passes))
                                             for v in run.variants])  # fmt: skip
        monkeypatch.setattr(command, "_prepare", lambda _args, _path, plan: prepared)
        monkeypatch.setattr(modelcache.runner.sweep, "run_sweep", lambda *_a, **_k: run)

    return fake


def test_the_plot_is_written_after_the_sweep_replacing_an_earlier_one(
    tmp_path: Path, fake_sweep: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_sweep(_run(DOCUMENTED))
    plot = tmp_path / "front.svg"
    plot.write_text("an earlier plot")
    assert main(["sweep", str(tmp_path / "sweep.json"), "--plot", str(plot), "--quiet"]) == 0
    assert capsys.readouterr().err == ""
    expected = plot_front(_results(DOCUMENTED), title="modelcache sweep sweep.json")
    assert plot.read_text(encoding="utf-8") == expected
    assert sorted(p.name for p in tmp_path.iterdir()) == ["front.svg"], "no temporary left"


def test_nothing_to_plot_is_an_error_unless_every_variant_failed(
    tmp_path: Path, fake_sweep: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    plot = tmp_path / "front.svg"
    sweep = ["sweep", str(tmp_path / "sweep.json"), "--plot", str(plot), "--quiet"]
    fake_sweep(_run({"a": {"throughput_sps": 3.0}}))
    assert main(sweep) == 2
    assert _one_line(capsys.readouterr().err).startswith(
        f"error: --plot {plot}: nothing to plot: no variant measured size, latency, quality"
    )
    fake_sweep(_run({}, failed={"a": "environment"}))
    assert main(sweep) == 1  # the failure's status: the plot is only its consequence
    assert capsys.readouterr().err.strip().splitlines() == [
        "error: variant a: it broke",
        f"note: --plot {plot} is not written: nothing to plot: no variant was delivered",
    ]
    assert not plot.exists()
