"""When a run writes its record to the cloud: whenever it used the cloud's entries, and
otherwise once a day per set of keys; and when it lists the cloud: once a day, when its
local tier holds all it needs. A warm run from the local tier sends the cloud no request.

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

The same reasoning spares a warm run the cloud's listing. A run that listed the cloud notes
which of its keys the cloud held then (:data:`LISTINGS_FILE`, with what it uploaded); for a
day, a run whose local tier holds every key plans with that note instead of a listing, so it
sends the cloud nothing and never imports its SDK (:func:`held_in_cloud` says what it
cannot learn that way). ``--require-cloud`` always lists.

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
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Final

from modelcache.store import create_file

__all__ = [
    "INTERVAL",
    "LISTINGS_FILE",
    "NOTES_FILE",
    "cloud_record_due",
    "held_in_cloud",
    "note_cloud_listing",
    "note_cloud_record",
]

#: How often, at most, runs that used only the local tier write a record to the cloud.
INTERVAL: Final = 24 * 3600.0
#: In the local tier's folder, beside the layout: when this machine last wrote a cloud
#: record, by cloud and set of keys.
NOTES_FILE: Final = "cloud-records.json"
#: Beside it: which of a chain's keys the cloud held when this machine last listed them.
LISTINGS_FILE: Final = "cloud-listings.json"
_LARGEST_NOTES = 1 << 20


def _subject(cloud: str, keys: Iterable[str]) -> str:
    """The note's name of ``keys`` recorded in ``cloud`` (a store's ``repr``: where it is)."""
    text = "\n".join([cloud, *sorted(set(keys))])
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _notes(folder: Path) -> dict[str, float]:
    return {
        subject: float(when)
        for subject, when in _read(folder / NOTES_FILE).items()
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
    _write(folder / NOTES_FILE, notes)


def held_in_cloud(folder: Path, cloud: str, keys: Iterable[str], *, now: float) -> set[str] | None:
    """Which of ``keys`` ``cloud`` held when this machine last listed them there, if that was
    less than :data:`INTERVAL` ago (:func:`note_cloud_listing`); else None: list them.

    A warm run whose local tier holds every key plans with this instead of the cloud's
    listing, and never opens the cloud: what it does not learn is only that the cloud lost
    an entry since (pruned, deleted), which it would upload again; the first run a day
    later lists the cloud, and does. It never reads from the cloud on the strength of it:
    a run that needs the cloud lists it."""
    keys = set(keys)
    listing = _read(folder / LISTINGS_FILE).get(_subject(cloud, keys))
    if not isinstance(listing, dict):
        return None
    when, held = listing.get("at"), listing.get("held")
    if not isinstance(when, (int, float)) or not 0 <= now - when < INTERVAL:
        return None
    if not isinstance(held, list) or not all(isinstance(key, str) for key in held):
        return None
    return keys & set(held)


def note_cloud_listing(
    folder: Path, cloud: str, keys: Iterable[str], held: Iterable[str], *, now: float
) -> None:
    """Note that ``cloud`` held ``held`` of ``keys`` at ``now`` (its listing, and what the run
    then uploaded); notes older than a day are dropped. Best effort, as the records' notes."""
    keys = set(keys)
    notes = {
        subject: listing
        for subject, listing in _read(folder / LISTINGS_FILE).items()
        if isinstance(listing, dict)
        and isinstance(listing.get("at"), (int, float))
        and 0 <= now - listing["at"] < INTERVAL
    }
    notes[_subject(cloud, keys)] = {"at": now, "held": sorted(keys & set(held))}
    _write(folder / LISTINGS_FILE, notes)


def _read(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as file:
            document = json.loads(file.read(_LARGEST_NOTES))
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def _write(path: Path, notes: Mapping[str, object]) -> None:
    if not path.parent.is_dir():  # no local tier: nothing to note, nor a folder to make
        return
    with contextlib.suppress(OSError):
        create_file(path, [json.dumps(notes, sort_keys=True).encode("utf-8")], replace=True)
