"""The link's measured speed: what the ``worthwhile`` upload policy prices moving an output
at, when the config gives no ``bandwidth``.

A run that moved at least :data:`MIN_BYTES` to or from a cloud records its transfers' bytes
over their seconds in the local tier's folder, beside the layout (:data:`SPEEDS_FILE`, by
cloud), averaged with the figure already there so that one slow transfer does not swing the
next plan. Best effort, as the cloud-record notes are: a figure not written costs only an
estimate (the policy then uploads, as the seed does), never a run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Final

from modelcache.store import create_file

from ..reporting import StepRecord

__all__ = ["MIN_BYTES", "SPEEDS_FILE", "cloud_name", "measured_speed", "note_speed"]

SPEEDS_FILE: Final = "link-speeds.json"
#: Transfers smaller than this say more about latency than about the link's speed.
MIN_BYTES: Final = 1 << 20
_LARGEST_FILE = 1 << 16


def cloud_name(store: object) -> str:
    """Where a cloud store is, the same whether or not it is wrapped (a trusted store)."""
    while hasattr(store, "inner"):
        store = store.inner
    return repr(store)


def _subject(cloud: str) -> str:
    """The file's name for ``cloud`` (a store's ``repr``: where it is, no credential)."""
    return hashlib.sha256(cloud.encode("utf-8")).hexdigest()[:32]


def _speeds(folder: Path) -> dict[str, float]:
    try:
        with (folder / SPEEDS_FILE).open("rb") as file:
            document = json.loads(file.read(_LARGEST_FILE))
    except (OSError, ValueError):
        return {}
    if not isinstance(document, dict):
        return {}
    return {
        subject: float(speed)
        for subject, speed in document.items()
        if isinstance(speed, int | float) and not isinstance(speed, bool) and speed > 0
    }


def measured_speed(folder: Path, cloud: str) -> float | None:
    """The bytes per second last measured between this machine and ``cloud``, if any."""
    return _speeds(folder).get(_subject(cloud))


def note_speed(folder: Path, cloud: str, steps: Iterable[StepRecord]) -> None:
    """Fold the speed of this run's finished transfers into the figure for ``cloud``."""
    moved = seconds = 0.0
    for step in steps:
        if step.kind in ("download", "upload") and step.outcome == "done" and step.bytes:
            moved += step.bytes
            seconds += step.seconds
    if moved < MIN_BYTES or seconds <= 0:
        return
    speeds = _speeds(folder)
    subject = _subject(cloud)
    now = moved / seconds
    speeds[subject] = now if subject not in speeds else (speeds[subject] + now) / 2
    with contextlib.suppress(OSError):
        document = json.dumps(speeds, sort_keys=True).encode("utf-8")
        create_file(folder / SPEEDS_FILE, [document], replace=True)
