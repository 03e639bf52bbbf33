"""A sweep on the Ray engine: a real Ray cluster of this machine (two CPUs), the tiny BERT,
the cloud cache on Azurite; and the command line's one line when Ray is missing or misused.

On Ray, every key runs once in the whole sweep (segments and variants' runs together), no
run waits on another's lease (the scheduler submits a segment once what it reads is
published, so single flight never has to), every output reaches the cloud, and each
variant's files are byte for byte what a plain run of its workflow delivers.
"""

from __future__ import annotations

import itertools
import json
import logging
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .e2e import (
    CONNECTION_VARIABLE,
    SWEEP_DTYPES,
    SWEEP_SPARSITIES,
    environment,
    files,
    intact_manifests,
    new_container,
    sweep_here,
    sweep_runs,
    sweep_steps,
    sweep_workflow,
    write_sweep,
)


@pytest.fixture(scope="module")
def ray_cluster(azurite: Any) -> Iterator[str]:
    """A Ray cluster of this machine with two CPUs, for the module; the connection string of
    the session's Azurite, in the environment the cluster's workers inherit."""
    ray = pytest.importorskip("ray")
    pytest.importorskip("modelcache.ray")
    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setenv(CONNECTION_VARIABLE, azurite.connection_string)
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 logging_level=logging.ERROR)  # fmt: skip
        try:
            yield azurite.connection_string
        finally:
            ray.shutdown()


@pytest.mark.azurite
@pytest.mark.slow
def test_a_sweep_on_ray_runs_each_key_once_waits_on_no_lease_and_delivers_what_runs_do(
    ray_cluster: str,
    tiny_model: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from modelcache.ray import RayActors
    from modelcache.runner.config import parse_config
    from modelcache.runner.workflow import run_workflow

    started: list[Any] = []
    start = RayActors.start
    monkeypatch.setattr(
        RayActors, "start", lambda self, shape: started.append(shape) or start(self, shape)
    )
    container = new_container(ray_cluster, "ray")
    base = sweep_workflow(tiny_model, SWEEP_SPARSITIES[0], SWEEP_DTYPES[0], container=container)
    sweep = write_sweep(tmp_path, base)
    report = tmp_path / "report.json"

    arguments = [str(sweep), "--engine", "ray", "--jobs", "2", "--report", str(report), "--quiet"]
    assert sweep_here(arguments) == 0

    assert 1 <= len(started) <= 2, "the segments ran on Ray's actors, at most --jobs of them"
    document = json.loads(report.read_text())
    steps = sweep_steps(document)
    runs = sweep_runs(document)
    assert len(runs) == len(set(runs)) == 1 + 2 + 4, "each key ran once, in the whole sweep"
    assert document["totals"]["most_runs_of_one_key"] == 1
    waits = [s for s in steps if s["outcome"] == "waited" or "waited" in s.get("detail", "")]
    assert waits == [], "single flight waited for another runner"
    notes = document["notes"] + [n for v in document["variants"] for n in v["run"]["notes"]]
    assert [note for note in notes if "waited" in note or "another runner" in note] == []
    assert set(runs) <= set(intact_manifests(ray_cluster, container)), "each output uploaded"

    variants = document["variants"]
    combinations = list(itertools.product(SWEEP_SPARSITIES, SWEEP_DTYPES))
    assert [v["name"] for v in variants] == [f"sparsity={s},dtype={d}" for s, d in combinations]
    for (sparsity, dtype), variant in zip(combinations, variants, strict=True):
        assert variant["status"] == "done"
        plain = {
            **sweep_workflow(tiny_model, sparsity, dtype, container=container),
            "cache_dir": "plain-cache",
            "output_dir": f"plain/{variant['name']}",
        }
        del plain["cloud_cache_config"]  # its own run, from nothing
        done = run_workflow(parse_config(plain, base_dir=tmp_path))
        assert done.final_key == variant["final_key"]
        assert files(Path(variant["output_dir"])) == files(tmp_path / "plain" / variant["name"])


_WITHOUT_RAY = """
import json, sys
sys.modules["ray"] = None  # as if Ray were not installed: importing it fails
sys.modules["modelcache.ray"] = None
from modelcache.runner.cli import main
status = main(sys.argv[1:])
print(json.dumps({"status": status}))
"""


def _without_ray(*args: str) -> tuple[dict[str, Any], str]:
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_RAY, *args],
        capture_output=True,
        text=True,
        env=environment(None),
        check=False,
        timeout=120,
    )
    return json.loads(done.stdout.splitlines()[-1]), done.stderr


def test_the_ray_engine_without_ray_says_what_to_install_in_one_line(tmp_path: Path) -> None:
    answer, stderr = _without_ray("sweep", str(tmp_path / "sweep.json"), "--engine", "ray")
    assert answer["status"] == 2  # the user's to fix
    assert stderr.splitlines() == [
        "error: --engine ray needs Ray and the Ray engine: pip install 'modelcache-runner[ray]'"
    ]


def test_an_address_without_the_ray_engine_is_refused_in_one_line(tmp_path: Path) -> None:
    answer, stderr = _without_ray("sweep", str(tmp_path / "sweep.json"), "--address", "auto")
    assert answer["status"] == 2
    assert stderr.splitlines() == [
        "error: --address joins a Ray cluster: give --engine ray with it"
    ]


@pytest.mark.azurite
def test_a_segment_whose_input_another_machine_made_fetches_it_from_the_cloud(
    azurite: Any, tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Ray engine's path across machines, without a cluster: the first segment runs
    here and uploads; the local tier is then emptied, as another machine's would be; the
    segment after it downloads its input from the cloud, rather than leaving its work to
    the variants' own runs."""
    from modelcache.runner.sweep import WorkerSetup, load_sweep, plan_sweep, prepare_sweep
    from modelcache.runner.sweep._worker import run_segment

    monkeypatch.setenv(CONNECTION_VARIABLE, azurite.connection_string)
    container = new_container(azurite.connection_string, "nodes")
    base = sweep_workflow(tiny_model, SWEEP_SPARSITIES[0], SWEEP_DTYPES[0], container=container)
    del base["passes"]["prune_more"]
    sweep = write_sweep(tmp_path, base, {"passes.cast.dtype": list(SWEEP_DTYPES)})
    prepared = prepare_sweep(load_sweep(sweep))
    plan, policy, _notes = plan_sweep(prepared)
    first, second = plan.segments[0], plan.segments[1]
    assert second.after == (first.id,)
    configs = tuple((name, p.config) for name, p in prepared.prepared)
    WorkerSetup(configs=configs, options=prepared.options).start()

    assert run_segment(first, uploads=policy.uploads).status == "done"
    shutil.rmtree(tmp_path / "cache")  # another machine: its local tier never saw it
    outcome = run_segment(second, uploads=policy.uploads)

    assert outcome.status == "done", outcome.error
    records = [(r.record.kind, r.record.pass_name, r.record.outcome) for r in outcome.records]
    assert records[:2] == [("download", "prune", "done"), ("run", "cast", "done")]
    assert outcome.records[0].record.key == first.keys[-1]
