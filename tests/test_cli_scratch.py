"""A run never leaves a mess: SIGTERM cleans up like Ctrl-C, and the scratch folder of a run
that was killed outright is swept by the next run, while a live run's is left alone.

Each run is the real command over the tiny model, without a cloud. A run that is signalled
is a subprocess: to stop it at a known moment, it patches the reporter's ``step_started`` hook
to signal its own process when the first step starts: the scratch folder exists then, and the
signal goes through the real handler (or, for ``SIGKILL``, through none). The run that sweeps
runs in this process (``e2e.modelcache_here``): the live scratch folder this process holds is
locked with ``flock``, which another descriptor of the same file cannot take either.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from modelcache.runner.workflow._scratch import OWNER_FILE, scratch_folder

from .e2e import TINY_PASSES, environment, modelcache_here, write_config

_SIGNAL_AT_FIRST_STEP = """
import os, sys
from modelcache.runner import reporting
from modelcache.runner.cli import main

def step_started(self, **_details):
    os.kill(os.getpid(), {signal})

reporting.Reporter.step_started = step_started
sys.exit(main(["run", sys.argv[1], "--quiet"]))
"""


def _run_until_signalled(config: Path, number: int) -> subprocess.CompletedProcess[str]:
    script = _SIGNAL_AT_FIRST_STEP.format(signal=number)
    return subprocess.run(
        [sys.executable, "-c", script, str(config)],
        capture_output=True,
        text=True,
        env=environment(None),
        timeout=600,
        check=False,
    )


def _leftovers(cache: Path) -> list[str]:
    return sorted(path.name for path in cache.iterdir() if path.name != "modelcache-v1")


@pytest.fixture
def config(tmp_path: Path, tiny_model: Path) -> Path:
    return write_config(tmp_path, tiny_model, TINY_PASSES)


def test_sigterm_is_handled_like_ctrl_c(config: Path) -> None:
    result = _run_until_signalled(config, signal.SIGTERM)
    assert result.returncode == 1, result.stderr
    assert result.stderr.strip().splitlines() == ["interrupted; the cache holds only whole entries"]
    assert _leftovers(config.parent / "cache") == []  # the scratch folder is gone
    assert not (config.parent / "out").exists()


def test_the_next_run_sweeps_a_killed_run_s_scratch_but_not_a_live_one_s(config: Path) -> None:
    cache = config.parent / "cache"
    killed = _run_until_signalled(config, signal.SIGKILL)
    assert killed.returncode == -signal.SIGKILL
    [left] = _leftovers(cache)
    assert left.startswith("run-")
    assert (cache / left / OWNER_FILE).is_file()

    with scratch_folder(cache) as live:  # a runner still at work, sharing the cache
        (live / "half-done.bin").write_bytes(b"in use")
        result = modelcache_here("run", config, "--quiet", connection_string=None)
        assert result.returncode == 0, result.stderr
        assert _leftovers(cache) == [live.name]
        assert (live / "half-done.bin").read_bytes() == b"in use"
    assert _leftovers(cache) == []
    assert os.listdir(config.parent / "out")
