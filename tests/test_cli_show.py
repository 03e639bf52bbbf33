"""What a finished run and ``cache show`` say add up: metric values shown, run times rounded,
and the report's evaluation counts the plan's.

One workflow (the float16 cast of the tiny model, its size measured) is run twice through the
real command (in this process, ``e2e.run_ok``), without a cloud: the first run evaluates, the
second reads the cached result. ``cache show`` runs in a subprocess, as a shell sees it, then
in this process for its ``--json`` form.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from .e2e import HALF, modelcache, modelcache_here, run_ok, write_config


@pytest.fixture(scope="module")
def twice(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Any]]:
    """The workflow's config and the reports of its two runs."""
    folder = tmp_path_factory.mktemp("evaluated")
    evaluator = {"metrics": ["size"], "evaluate": "final"}
    config = write_config(folder, tiny_model, {"half": HALF}, evaluator=evaluator)
    return config, [run_ok(config, None), run_ok(config, None)]


def test_cache_show_prints_the_metric_values_and_a_rounded_run_time(
    twice: tuple[Path, list[Any]],
) -> None:
    config, (first, _second) = twice
    key = first["final_key"]
    size = first["metrics"]["half"]["size_bytes"]
    shown = modelcache("cache", "show", key[:12], "--cache-dir", config.parent / "cache",
                       connection_string=None)  # fmt: skip
    assert shown.returncode == 0, shown.stderr
    [results] = [line for line in shown.stdout.splitlines() if "evaluation" in line]
    assert re.fullmatch(rf"  evaluation results: eval-[0-9a-f]+: size_bytes={size}", results)
    [producer] = [line for line in shown.stdout.splitlines() if "run time" in line]
    assert re.search(r"; run time: \d+\.\d s$", producer), shown.stdout

    cache = config.parent / "cache"
    as_json = modelcache_here("cache", "show", key, "--cache-dir", cache, "--json",
                              connection_string=None)  # fmt: skip
    document = json.loads(as_json.stdout)
    [fingerprint] = document["evaluations"]
    assert document["metrics"] == {fingerprint: {"size_bytes": size}}


def test_the_report_counts_evaluations_as_the_plan_does(
    twice: tuple[Path, list[Any]],
) -> None:
    config, (first, second) = twice
    planned = json.loads(
        modelcache_here("plan", config, "--format", "json", connection_string=None).stdout
    )["totals"]
    assert (planned["evaluations"], planned["cached_evaluations"]) == (0, 1)
    assert (second["totals"]["evaluations"], second["totals"]["cached_evaluations"]) == (0, 1)
    assert (first["totals"]["evaluations"], first["totals"]["cached_evaluations"]) == (1, 0)
