"""A sweep end to end on the local engine: four variants of the tiny BERT sharing a first
pass, two worker processes, the local cache only.

The shared pass runs once, every key at most once, each variant's model is byte for byte
what a plain ``run_workflow`` of it delivers, and a second sweep runs nothing. When the cache
lets segments down (a damaged entry), the variants' own runs finish the work, under single
flight: still nothing twice.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from modelcache.runner.config import parse_config
from modelcache.runner.workflow import run_workflow
from modelcache.store import LocalStore, blob_name, manifest_name

from .e2e import (
    SWEEP_DTYPES,
    SWEEP_SPARSITIES,
    files,
    sweep_here,
    sweep_runs,
    sweep_workflow,
    write_sweep,
)


def test_a_sweep_shares_its_first_pass_and_delivers_what_plain_runs_do(
    tiny_model: Path, tmp_path: Path
) -> None:
    sweep = write_sweep(tmp_path, sweep_workflow(tiny_model, 0.6, "float16"))
    report = tmp_path / "report.json"

    plot = tmp_path / "front.svg"
    assert sweep_here([str(sweep), "--jobs", "2", "--report", str(report), "--quiet",
                   "--plot", str(plot)]) == 0  # fmt: skip

    document = json.loads(report.read_text())
    runs = sweep_runs(document)
    first = document["segments"][0]["steps"][0]
    assert (first["kind"], first["pass"]) == ("run", "prune")
    assert runs.count(first["key"]) == 1, "the shared pass ran once"
    assert len(runs) == len(set(runs)) == 1 + 2 + 4  # prune, prune_more twice, cast four times
    assert document["totals"]["most_runs_of_one_key"] == 1
    variants = document["variants"]
    assert [v["name"] for v in variants] == [
        f"sparsity={s},dtype={d}" for s, d in itertools.product(SWEEP_SPARSITIES, SWEEP_DTYPES)
    ]
    assert all(v["status"] == "done" and v["metrics"]["size_bytes"] > 0 for v in variants)
    assert any(v["on_front"] for v in variants)
    # The plot: the evaluator measures size alone, so one strip, a point per variant.
    drawn = ElementTree.parse(plot).getroot()
    points = [e for e in drawn.iter() if "variant" in e.get("class", "").split()]
    assert sorted(e.get("data-variant") for e in points) == sorted(v["name"] for v in variants)
    front = {e.get("data-variant") for e in points if "front" in e.get("class", "").split()}
    assert front == {v["name"] for v in variants if v["on_front"]}

    for (sparsity, dtype), variant in zip(
        itertools.product(SWEEP_SPARSITIES, SWEEP_DTYPES), variants, strict=True
    ):
        plain = {
            **sweep_workflow(tiny_model, sparsity, dtype),
            "cache_dir": "plain-cache",
            "output_dir": f"plain/{variant['name']}",
        }
        done = run_workflow(parse_config(plain, base_dir=tmp_path))
        assert done.final_key == variant["final_key"]
        assert files(Path(variant["output_dir"])) == files(tmp_path / "plain" / variant["name"])

    again = tmp_path / "again.json"
    replot = tmp_path / "again.svg"
    assert sweep_here([str(sweep), "--report", str(again), "--quiet", "--plot", str(replot)]) == 0
    assert replot.read_bytes() == plot.read_bytes(), "the same results, the same plot"
    second = json.loads(again.read_text())
    assert sweep_runs(second) == []
    assert second["segments"] == []  # nothing to run: every segment left out
    assert [v["metrics"] for v in second["variants"]] == [v["metrics"] for v in variants]

    # Damage the shared input of two variants and forget their outputs: their segments are let
    # down, and their own runs compute what is missing, one waiting for the other.
    cache = tmp_path / "cache"
    shared = variants[0]["run"]["steps"][1]["key"]  # prune_more at the first sparsity
    manifest = LocalStore(cache).read_manifest(shared)
    # Its weights: its other files (config.json) are blobs it shares with prune's output.
    weights = next(f for f in manifest.files if f.path == "model.safetensors")
    blob = cache / blob_name(weights.sha256)
    blob.chmod(0o644)
    blob.write_bytes(b"damaged" + blob.read_bytes()[7:])
    for variant in variants[:2]:
        (cache / manifest_name(variant["final_key"])).unlink()
    damaged = tmp_path / "damaged.json"
    assert sweep_here([str(sweep), "--report", str(damaged), "--quiet"]) == 0
    third = json.loads(damaged.read_text())
    assert {segment["status"] for segment in third["segments"]} == {"replanned"}
    assert sorted(sweep_runs(third)) == sorted(
        [shared, variants[0]["final_key"], variants[1]["final_key"]]
    )
    for variant in variants:
        assert files(Path(variant["output_dir"])) == files(tmp_path / "plain" / variant["name"])


def test_modelcache_sweep_and_plan_take_a_sweep_file_from_the_command_line(
    tiny_model: Path, tmp_path: Path, capsys: Any
) -> None:
    from modelcache.runner.cli import main

    base = sweep_workflow(tiny_model, 0.6, "float16")
    sweep = write_sweep(tmp_path, base, {"passes.cast.dtype": list(SWEEP_DTYPES)})

    assert main(["plan", str(sweep), "--no-cloud", "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["format"] == "modelcache-sweep/1"
    assert {w["name"] for w in plan["workflows"]} == {f"dtype={d}" for d in SWEEP_DTYPES}
    assert main(["sweep", str(sweep), "--plan", "--no-cloud"]) == 0
    assert "prune" in capsys.readouterr().out
    assert not (tmp_path / "cache").exists()  # the plans moved nothing
    assert not (tmp_path / "out").exists()
