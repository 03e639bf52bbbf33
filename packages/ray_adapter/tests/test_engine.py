"""The Ray engine without a cluster: resources compared with the nodes, cut down on this
machine's cluster, left for an autoscaler on a joined one, each with a note."""

from __future__ import annotations

import pytest

from modelcache.planner import Run, Segment, SweepStep
from modelcache.ray import ActorPool, RayEngine, _engine
from modelcache.runner.sweep import (
    DEFAULT_RESOURCES,
    PassResources,
    Resources,
    Workers,
    WorkerSetup,
)
from modelcache.runner.workflow import RunOptions

NODE = {"CPU": 2.0, "memory": 8.0 * 2**30, "object_store_memory": 2.0**30}
ASKED = PassResources(by_pass=[("quantize", Resources(gpus=1, memory=4 * 2**30))])
GPU_SHAPE = Resources(gpus=1, memory=4 * 2**30)


def _segment(pass_name: str) -> Segment:
    run = Run(pass_name=pass_name, key="k" * 64, reason="not cached", input_key=None)
    return Segment(id=0, after=(), steps=(SweepStep(workflow="v", step=run),))


def _start(
    monkeypatch: pytest.MonkeyPatch, *, ours: bool, nodes: list[dict[str, float]]
) -> tuple[ActorPool, list[str]]:
    monkeypatch.setattr(_engine, "connect", lambda address: ours)
    monkeypatch.setattr(_engine, "nodes", lambda: nodes)
    monkeypatch.setattr(_engine, "RayActors", lambda setup: None)
    workers = Workers(
        jobs=2,
        setup=WorkerSetup(configs=(), options=RunOptions()),
        resources=ASKED,
        shapes=frozenset({DEFAULT_RESOURCES, GPU_SHAPE}),
    )
    notes: list[str] = []
    pool = RayEngine().start(workers, note=notes.append)
    assert isinstance(pool, ActorPool)
    return pool, notes


def test_on_this_machines_cluster_a_shape_beyond_it_is_cut_down_with_a_note(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pool, notes = _start(monkeypatch, ours=True, nodes=[NODE])
    assert notes == [
        "pass 'quantize' asks for 1 GPU; this machine's Ray cluster has 0 GPUs: its segments "
        "run with what the machine has"
    ]
    assert pool._shape_of((_segment("quantize"),)) == Resources(memory=4 * 2**30)
    assert pool._shape_of(("a variant",)) == DEFAULT_RESOURCES
    assert pool._cluster == Resources(cpus=2, gpus=0, memory=8 * 2**30)
    assert pool._on_shutdown is not None  # the sweep's own cluster: stopped at the end


def test_on_a_joined_cluster_a_shape_beyond_its_nodes_waits_for_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pool, notes = _start(monkeypatch, ours=False, nodes=[NODE, {**NODE, "CPU": 8.0}])
    assert notes == [
        "pass 'quantize' asks for 1 GPU; the largest node of the Ray cluster has 0 GPUs: its "
        "segments wait for a node that holds it"
    ]
    assert pool._shape_of((_segment("quantize"),)) == GPU_SHAPE
    assert pool._cluster is None  # unbounded: Ray holds the actor until a node can
    assert pool._on_shutdown is None  # someone else's cluster: left running
    fits, quiet = _start(monkeypatch, ours=False, nodes=[{**NODE, "GPU": 1.0}])
    assert quiet == []
    assert fits._cluster == Resources(cpus=2, gpus=1, memory=8 * 2**30)
