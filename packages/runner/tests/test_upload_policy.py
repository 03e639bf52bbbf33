"""The ``worthwhile`` upload policy in a run (issue 15): an intermediate output is uploaded
only when recomputing it costs more than moving it, judged once it has run on its recorded
run time and size; the final output always is; the plan and the report say why. The link's
speed is configured, or measured from this machine's transfers. The rule itself is the
planner's, checked in ``packages/planner/tests/test_upload_policy.py``."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from attrs import evolve

from modelcache.planner import Skip, Upload
from modelcache.runner.config import parse_config
from modelcache.runner.reporting import StepRecord
from modelcache.runner.workflow import Prepared, RunOptions, execute, plan_workflow, prepare
from modelcache.runner.workflow._link import MIN_BYTES, SPEEDS_FILE, measured_speed, note_speed
from modelcache.runner.workflow._prepare import _policy
from modelcache.store import LocalStore, MemoryStore, manifest_name

PASSES = {
    "prune": {"type": "MagnitudePruning", "sparsity": 0.5},
    "prune_more": {"type": "MagnitudePruning", "sparsity": 0.7},
    "cast": {"type": "TorchDtypeCast", "dtype": "float16"},
}


def _prepared(model: Path, folder: Path, cloud: MemoryStore, bandwidth: float | None) -> Prepared:
    config = parse_config(
        {
            "input_model": {"type": "HfModel", "model_path": str(model)},
            "passes": PASSES,
            "cache_dir": "cache",
            "output_dir": "out",
        },
        base_dir=folder,
    )
    prepared = prepare(config, RunOptions())
    prepared.cloud = cloud
    prepared.policy = evolve(prepared.policy, enable_cloud_cache=True, upload_to_cloud=True,
                             upload_policy="worthwhile", bandwidth=bandwidth)  # fmt: skip
    return prepared


def _recompute_seconds(reason: str) -> float:
    found = re.search(r"recomputing it takes ([0-9.e+-]+) s", reason)
    assert found is not None, reason
    return float(found[1])


def test_a_slow_link_keeps_intermediates_local_and_says_why(
    tiny_bert: Path, tmp_path: Path
) -> None:
    cloud = MemoryStore()
    prepared = _prepared(tiny_bert, tmp_path, cloud, bandwidth=1.0)  # one byte a second
    prune, more, cast = prepared.keys
    plan = plan_workflow(prepared)
    judged = [(s.key, s.if_worthwhile) for s in plan.steps if isinstance(s, Upload)]
    assert judged == [(prune, True), (more, True), (cast, False)]

    report = execute(prepared)

    uploads = [s for s in report.steps if s.kind == "upload"]
    assert [(s.pass_name, s.outcome) for s in uploads] == [
        ("prune", "skipped"), ("prune_more", "skipped"), ("cast", "done"),
    ]  # fmt: skip
    assert all(s.detail.startswith("not uploaded: recomputing it takes") for s in uploads[:2])
    assert "at 1 B/s" in uploads[0].detail
    assert cloud.get_object(manifest_name(cast)) is not None  # the final output, always
    assert cloud.get_object(manifest_name(prune)) is None
    assert cloud.get_object(manifest_name(more)) is None
    # Recomputing prune_more means running prune first: its figure includes prune's.
    local = LocalStore(tmp_path / "cache")
    first, second = (_recompute_seconds(s.detail) for s in uploads[:2])
    own = local.read_manifest(more).run_seconds
    assert own is not None
    assert second == pytest.approx(own + first, rel=0.01, abs=0.002)

    # The next plan judges them now, on their recorded figures, and uploads nothing.
    again = plan_workflow(prepared)
    assert not [s for s in again.steps if isinstance(s, Upload)]
    kept = [s for s in again.steps if isinstance(s, Skip) and s.key in (prune, more)]
    assert [s.reason.split("; ")[-1].startswith("not uploaded: ") for s in kept] == [True, True]


@pytest.mark.parametrize("bandwidth", [1e15, None], ids=["fast-link", "no-figure"])
def test_a_fast_or_unknown_link_uploads_every_output(
    tiny_bert: Path, tmp_path: Path, bandwidth: float | None
) -> None:
    cloud = MemoryStore()
    prepared = _prepared(tiny_bert, tmp_path, cloud, bandwidth=bandwidth)

    report = execute(prepared)

    uploads = [(s.pass_name, s.outcome) for s in report.steps if s.kind == "upload"]
    assert uploads == [("prune", "done"), ("prune_more", "done"), ("cast", "done")]
    for key in prepared.keys:
        assert cloud.get_object(manifest_name(key)) is not None


def _record(kind: str, moved: int, seconds: float) -> StepRecord:
    return StepRecord(kind=kind, pass_name="p", key="0" * 64, reason="", seconds=seconds,
                      bytes=moved)  # type: ignore[arg-type]  # fmt: skip


def test_the_link_speed_is_measured_from_transfers_and_averaged(tmp_path: Path) -> None:
    assert measured_speed(tmp_path, "cloud") is None
    note_speed(tmp_path, "cloud", [_record("download", MIN_BYTES - 1, 0.001)])
    assert measured_speed(tmp_path, "cloud") is None  # too small to say anything
    note_speed(tmp_path, "cloud", [_record("upload", 4 * MIN_BYTES, 2.0),
                                   _record("run", 10**9, 1.0)])  # fmt: skip
    assert measured_speed(tmp_path, "cloud") == 2 * MIN_BYTES
    note_speed(tmp_path, "cloud", [_record("download", 8 * MIN_BYTES, 2.0)])
    assert measured_speed(tmp_path, "cloud") == 3 * MIN_BYTES  # the mean of 2 and 4
    assert measured_speed(tmp_path, "another cloud") is None
    (tmp_path / SPEEDS_FILE).write_text("{not json")
    assert measured_speed(tmp_path, "cloud") is None  # a damaged file is no figure


def test_a_measured_speed_prices_uploads_only_where_none_is_configured(tmp_path: Path) -> None:
    local, cloud = LocalStore(tmp_path / "cache"), MemoryStore()
    local.root.mkdir()
    note_speed(local.root, repr(cloud), [_record("upload", 4 * MIN_BYTES, 1.0)])

    def policy(**cloud_cache_config: object) -> tuple[float | None, str]:
        config = parse_config({
            "input_model": {"type": "HfModel", "model_path": "m"},
            "passes": {"cast": {"type": "TorchDtypeCast"}},
            "cloud_cache_config": {"container_name": "models", **cloud_cache_config},
        }, base_dir=tmp_path)  # fmt: skip
        chosen = _policy(config, RunOptions(), local, cloud)
        return chosen.bandwidth, chosen.upload_policy

    assert policy(upload_policy="worthwhile") == (4 * MIN_BYTES, "worthwhile")
    assert policy(upload_policy="worthwhile", bandwidth="1 MB/s") == (1e6, "worthwhile")
    assert policy(bandwidth="400 Mbit/s") == (50e6, "all")
    assert policy() == (None, "all")  # the seed's: no figure is used
