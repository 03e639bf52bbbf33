"""Delivery: the final model copied to ``output_dir``, which modelcache alone writes."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from ..config import ConfigError
from ._prepare import Prepared
from ._state import PRODUCER, Execution

__all__ = ["OUTPUT_MARKER", "deliver", "output_dir"]

#: The file that marks a folder as a modelcache output, which a later run may replace.
OUTPUT_MARKER = ".modelcache-output.json"


def output_dir(prepared: Prepared) -> Path:
    """Where the final model goes; refused up front if it holds files of someone else's.

    :raises ConfigError: ``output_dir`` holds files and no :data:`OUTPUT_MARKER`.
    """
    output = prepared.config.resolve(prepared.config.output_dir)
    if output.exists() and any(output.iterdir()) and not (output / OUTPUT_MARKER).exists():
        raise ConfigError(
            path="$.output_dir",
            problem=f"{output} holds files modelcache did not write; "
            "choose an empty or new output_dir",
        )
    return output


def deliver(run: Execution, final_key: str) -> None:
    """Copy the final model to ``output_dir``, replacing an earlier modelcache output whole,
    and note where it went in the report."""
    output = output_dir(run.prepared)
    source = run.materialize(final_key)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.new-", dir=output.parent))
    aside = None
    try:
        shutil.copytree(source, staging, dirs_exist_ok=True)
        marker = {"key": final_key, "producer": PRODUCER}
        (staging / OUTPUT_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        if output.exists():
            # Renaming a folder onto an empty one replaces it; the old output waits there
            # until the new one is in place, so a failure leaves one or the other whole.
            aside = Path(tempfile.mkdtemp(prefix=f".{output.name}.old-", dir=output.parent))
            os.replace(output, aside)
        try:
            os.replace(staging, output)
        except BaseException:
            if aside is not None:
                os.replace(aside, output)
                aside = None
            raise
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
    run.report.final_key = final_key
    run.report.output_dir = str(output)
