"""When a run writes its record to the cloud: whenever it used the cloud's entries, and
otherwise once a day per set of keys, so that a warm run from the local tier sends the
cloud one request (its snapshot), not two.

Theory of operation
-------------------
A run record is how ``cache prune`` and ``cache ls`` know an entry's last use (:mod:`.usage`).
A run that downloaded an entry from the cloud or uploaded one writes its record there as it
always did: those are the uses a prune of the cloud must see at once. A run that found what
it needed in its local tier did not touch the cloud's entries (skipping an intermediate that
only the cloud holds, because nothing needs it, is not a use of it); its use matters to the
cloud only as "this workflow is still alive", so that a prune does not remove entries other
machines will want. For that, a record a day is enough: this machine notes in its local
tier's folder (:data:`NOTES_FILE`) when it last wrote a cloud record for each cloud and set
of keys, and writes another only once :data:`INTERVAL` has passed. The cloud's last use of
such entries is thus at most a day behind; no run that moved an entry is ever missing.

What a prune may remove is unchanged: an entry stays while it was used (or written)
within ``--older-than`` and the grace period, and every use a warm-local run skips
recording is within a day of one recorded. Integrity never depended on run records
(``docs/operations.md``, "Pruning safely while others publish"). The notes are a hint:
lost, unreadable or raced (two runs writing them at once), the run writes its record,
which costs a request and is never wrong.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Final

__all__ = ["INTERVAL", "NOTES_FILE", "cloud_record_due", "note_cloud_record"]

#: How often, at most, runs that used only the local tier write a record to the cloud.
INTERVAL: Final = 24 * 3600.0
#: In the local tier's folder, beside the layout: when this machine last wrote a cloud
#: record, by cloud and set of keys.
NOTES_FILE: Final = "cloud-records.json"
_LARGEST_NOTES = 1 << 20


def _subject(cloud: str, keys: Iterable[str]) -> str:
    """The note's name of ``keys`` recorded in ``cloud`` (a store's ``repr``: where it is)."""
    text = "\n".join([cloud, *sorted(set(keys))])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _notes(folder: Path) -> dict[str, float]:
    try:
        with (folder / NOTES_FILE).open("rb") as file:
            document = json.loads(file.read(_LARGEST_NOTES))
    except (OSError, ValueError):
        return {}
    if not isinstance(document, dict):
        return {}
    return {
        subject: float(when)
        for subject, when in document.items()
        if isinstance(when, (int, float)) and not isinstance(when, bool)
    }


def cloud_record_due(
    folder: Path, cloud: str, keys: Iterable[str], *, used_cloud: bool, now: float
) -> bool:
    """Whether a run that ends at ``now`` writes its record to ``cloud``: yes if it
    ``used_cloud`` (downloaded or uploaded an entry), else only if this machine (its local
    tier's ``folder``) has not recorded ``keys`` there for a day."""
    if used_cloud:
        return True
    last = _notes(folder).get(_subject(cloud, keys))
    return last is None or not 0 <= now - last < INTERVAL


def note_cloud_record(folder: Path, cloud: str, keys: Iterable[str], *, now: float) -> None:
    """Note that a record naming ``keys`` was written to ``cloud`` at ``now``; notes older
    than a day are dropped. Best effort: a note not written costs a record, never more."""
    notes = {
        subject: when for subject, when in _notes(folder).items() if 0 <= now - when < INTERVAL
    }
    notes[_subject(cloud, keys)] = now
    temporary = folder / f".{NOTES_FILE}.{os.urandom(6).hex()}"
    try:
        temporary.write_text(json.dumps(notes, sort_keys=True), encoding="utf-8")
        os.replace(temporary, folder / NOTES_FILE)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()
