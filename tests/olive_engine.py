"""Olive 0.13's own engine, run on a workflow config in this process: what a test compares
modelcache's outputs with. Its telemetry heartbeat is stubbed (Olive sends one before it
reads ``OLIVE_DISABLE_TELEMETRY``, then waits at exit for it), as the project's guide says.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest

__all__ = ["olive_run"]


def olive_run(document: dict[str, Any], folder: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``olive run`` of ``document`` (left as it is) in ``folder``, the current directory
    while it runs, as Olive's examples are run from theirs."""
    from olive.telemetry.telemetry import Telemetry

    monkeypatch.setattr(Telemetry, "_log_heartbeat", lambda *args, **kwargs: None)
    monkeypatch.chdir(folder)
    from olive.workflows import run

    run(copy.deepcopy(document))
