"""``modelcache cache prune``: remove entries by last use, then the blobs nothing needs.

Theory of operation
-------------------
A prune removes entries (manifest first, then their evaluation results), then the blobs no
remaining entry names, then folds old run records (:func:`.usage.fold_records`). Other
runners may be publishing into the same store meanwhile; a publish sends its blobs, then
writes its manifest, and reuses a blob it finds present. Three rules keep every live entry
whole all the same (``docs/operations.md``, "Pruning safely while others publish"):

1. *Grace period*: nothing written, refreshed or used less than ``grace`` seconds before
   the inventory was taken is removed. It must exceed the longest publish, so that the
   blobs of a manifest not yet written are not taken.
2. *Conditional deletes*: every delete names the version it listed
   (``MaintainedStore.delete_object``) and does nothing if the object changed since.
3. *Publishers refresh what they reuse*: a blob found present gets a new version, so a
   prune that listed it before cannot delete it; if the prune deleted it first, the refresh
   finds it gone and the publisher sends it after all, before its manifest.

And the blobs to remove are chosen against a listing of the manifests taken *after* the
entries were removed (blobs listed first, then manifests), so an entry published meanwhile
protects its blobs: a blob it reused was refreshed after the blob listing and the
conditional delete spares it.

In a local cache, a prune also sweeps the scratch folders that killed runs left beside the
layout; a live run holds a lock on its own, which the sweep respects (the runner's
``workflow._scratch``).
"""

from __future__ import annotations

from collections.abc import Set

from attrs import Factory, define
from cattrs.gen import override

from modelcache.store import (
    BLOBS_PREFIX,
    ENTRIES_PREFIX,
    LocalStore,
    MaintainedStore,
    parse_blob_name,
    parse_manifest_name,
)

from ._codec import JsonObject, unstructure, wire_format
from ._links import under_link
from .inventory import (
    EntryInfo,
    Inventory,
    blob_sizes,
    list_prefix,
    read_entries,
    remove_entry,
)
from .usage import fold_records

__all__ = [
    "DEFAULT_GRACE",
    "PruneReport",
    "parse_duration",
    "parse_size",
    "prune",
    "relist",
    "remove_blobs",
]

#: Objects written or refreshed more recently than this are never deleted by a prune.
DEFAULT_GRACE = 24 * 3600.0


@define(kw_only=True)
class PruneReport:
    """What :func:`prune` removed (or, dry, would remove) and what it kept."""

    dry_run: bool
    entries: list[str] = Factory(list)
    entry_bytes: int = 0
    blobs: list[str] = Factory(list)
    blob_bytes: int = 0
    evaluations: int = 0
    records_folded: int = 0
    kept_fresh: int = 0
    kept_changed: list[str] = Factory(list)
    stored_bytes_before: int = 0
    stored_bytes_after: int = 0
    notes: list[str] = Factory(list)
    #: Scratch folders of killed runs removed from a local cache (or, dry, to remove).
    scratch: list[str] = Factory(list)

    def to_json(self) -> JsonObject:
        """The report as ``modelcache cache prune --json`` prints it."""
        return unstructure(self)


wire_format(
    PruneReport,
    entries=override(rename="removed_entries", unstruct_hook=sorted),
    entry_bytes=override(rename="removed_entry_bytes"),
    blobs=override(rename="removed_blobs", unstruct_hook=len),
    blob_bytes=override(rename="freed_bytes"),
    evaluations=override(rename="removed_evaluations"),
    records_folded=override(rename="run_records_folded"),
    kept_changed=override(unstruct_hook=sorted),
    scratch=override(rename="removed_scratch", unstruct_hook=sorted),
)


def prune(
    store: MaintainedStore,
    inventory: Inventory,
    *,
    older_than: float | None = None,
    max_size: int | None = None,
    grace: float = DEFAULT_GRACE,
    dry_run: bool = False,
) -> PruneReport:
    """Remove entries by last use, then the blobs no remaining entry names.

    :param older_than: remove entries not used for this many seconds.
    :param max_size: then remove the least recently used entries until the blobs the rest
        need take at most this many bytes.
    :param grace: never remove an entry, blob or record written or refreshed less than this
        many seconds before the inventory was taken.

    Blobs are chosen against a listing of the manifests made *after* the entries were
    deleted, so an entry published meanwhile keeps its blobs; see the module's docstring.
    """
    if older_than is None and max_size is None:
        raise ValueError("prune needs older_than or max_size")
    fresh_since = inventory.taken - grace
    report = PruneReport(dry_run=dry_run)
    report.stored_bytes_before = sum(blob.size for blob in inventory.blobs.values())
    doomed = _by_age_and_size(inventory, older_than, max_size)
    _remove_entries(store, inventory, doomed, fresh_since, report)
    removed = set(report.entries)
    if not dry_run:
        inventory = relist(store, inventory)
    remove_blobs(store, inventory, removed, fresh_since, report)
    _remove_orphan_evaluations(store, inventory, removed, fresh_since, report)
    report.records_folded = fold_records(
        store, inventory.records, live=inventory.entries, before=fresh_since, dry_run=dry_run
    )
    report.stored_bytes_after = report.stored_bytes_before - report.blob_bytes
    _sweep_scratch(store, report)
    if max_size is not None and report.stored_bytes_after > max_size:
        report.notes.append(
            f"the cache still takes {report.stored_bytes_after} bytes, more than "
            f"{max_size}: what remains was used or written within the grace period"
        )
    return report


def _by_age_and_size(
    inventory: Inventory, older_than: float | None, max_size: int | None
) -> list[EntryInfo]:
    """The entries to remove, grace period aside: those not used for ``older_than``, then
    the least recently used until the rest need at most ``max_size`` bytes of blobs."""
    by_use = sorted(inventory.entries.values(), key=lambda entry: (entry.last_used, entry.key))
    doomed = [
        entry
        for entry in by_use
        if older_than is not None and entry.last_used < inventory.taken - older_than
    ]
    if max_size is not None:
        chosen = {entry.key for entry in doomed}
        remaining = [entry for entry in by_use if entry.key not in chosen]
        while remaining and sum(blob_sizes(remaining).values()) > max_size:
            doomed.append(remaining.pop(0))
    return doomed


def _remove_entries(
    store: MaintainedStore,
    inventory: Inventory,
    doomed: list[EntryInfo],
    fresh_since: float,
    report: PruneReport,
) -> None:
    for entry in doomed:
        if max(entry.stored.modified, entry.last_used) >= fresh_since:
            report.kept_fresh += 1
        elif report.dry_run or remove_entry(store, inventory, entry.key):
            report.entries.append(entry.key)
            report.entry_bytes += entry.size
            report.evaluations += len(inventory.evaluations.get(entry.key, ()))
        else:
            report.kept_changed.append(entry.stored.name)


def relist(store: MaintainedStore, inventory: Inventory) -> Inventory:
    """``inventory`` with the blobs listed again, then the manifests (reading new ones
    only): a blob refreshed or written after this blob listing has a new version, so the
    conditional delete spares it, and an entry published meanwhile is in the manifests."""
    links = inventory.links
    blobs = {
        digest: stored
        for stored in list_prefix(store, BLOBS_PREFIX)
        if (digest := parse_blob_name(stored.name)) is not None
        and not under_link(stored.name, links)
    }
    listed = [
        (key, stored)
        for stored in list_prefix(store, ENTRIES_PREFIX)
        if (key := parse_manifest_name(stored.name)) and not under_link(stored.name, links)
    ]
    return Inventory(
        taken=inventory.taken,
        entries=read_entries(store, listed, {}, known=inventory.entries),
        blobs=blobs,
        evaluations=inventory.evaluations,
        records=inventory.records,
        others=inventory.others,
        links=links,
    )


def _sweep_scratch(store: MaintainedStore, report: PruneReport) -> None:
    """Remove (dry: name) the scratch folders of killed runs in a local cache's root."""
    if not isinstance(store, LocalStore):
        return
    # Imported here: the workflow imports maintenance, and the scratch rules are its own.
    from ..workflow._scratch import SCRATCH_PREFIX, STARTING_PREFIX, abandoned, sweep_abandoned

    if report.dry_run:
        try:
            folders = sorted(store.root.iterdir())
        except OSError:  # no cache yet: nothing to sweep
            return
        prefixes = (SCRATCH_PREFIX, STARTING_PREFIX)
        gone = [f for f in folders if f.name.startswith(prefixes) and abandoned(f)]
    else:
        gone = sweep_abandoned(store.root)
    report.scratch = [folder.name for folder in gone]


def remove_blobs(
    store: MaintainedStore,
    inventory: Inventory,
    removed: Set[str],
    fresh_since: float,
    report: PruneReport,
) -> None:
    """Remove the blobs of ``inventory`` no entry but the ``removed`` ones names, unless
    written or refreshed since ``fresh_since`` (or changed since listed)."""
    needed = blob_sizes(e for key, e in inventory.entries.items() if key not in removed)
    for digest, stored in sorted(inventory.blobs.items()):
        if digest in needed:
            continue
        if stored.modified >= fresh_since:
            report.kept_fresh += 1
        elif report.dry_run or store.delete_object(stored):
            report.blobs.append(digest)
            report.blob_bytes += stored.size
        else:
            report.kept_changed.append(stored.name)


def _remove_orphan_evaluations(
    store: MaintainedStore,
    inventory: Inventory,
    removed: Set[str],
    fresh_since: float,
    report: PruneReport,
) -> None:
    """Remove evaluation results of entries that are gone (those of entries removed by this
    prune went with them)."""
    for key, items in inventory.evaluations.items():
        if key in inventory.entries or key in removed:
            continue
        for stored in items:
            if stored.modified < fresh_since and (report.dry_run or store.delete_object(stored)):
                report.evaluations += 1


# -- command-line values ---------------------------------------------------------------------

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_SIZES = {
    "": 1,
    "b": 1,
    "k": 1 << 10,
    "kb": 1 << 10,
    "kib": 1 << 10,
    "m": 1 << 20,
    "mb": 1 << 20,
    "mib": 1 << 20,
    "g": 1 << 30,
    "gb": 1 << 30,
    "gib": 1 << 30,
    "t": 1 << 40,
    "tb": 1 << 40,
    "tib": 1 << 40,
}


def parse_duration(text: str) -> float:
    """Seconds in ``30d``, ``12h``, ``90m``, ``45s``, ``2w`` (a number and one unit)."""
    value = text.strip().lower()
    try:
        number = float(value[:-1])
        unit = _UNITS[value[-1:]]
    except (KeyError, ValueError):
        raise ValueError(
            f"{text!r} is not a duration: give a number and a unit, as in 30d, 12h, 90m, 45s"
        ) from None
    if not 0 <= number < float("inf"):
        raise ValueError(f"{text!r} is not a duration: it must be zero or more")
    return number * unit


def parse_size(text: str) -> int:
    """Bytes in ``500GB``, ``20GiB``, ``750M``, ``1024`` (binary units: 1 GB = 2**30)."""
    value = text.strip().lower().replace(" ", "")
    digits = value.rstrip("abcdefghijklmnopqrstuvwxyz")
    try:
        number = float(digits)
        unit = _SIZES[value[len(digits) :]]
    except (KeyError, ValueError):
        raise ValueError(
            f"{text!r} is not a size: give a number and a unit, as in 500GB, 750MB, 1024"
        ) from None
    if not 0 <= number < float("inf"):
        raise ValueError(f"{text!r} is not a size: it must be zero or more")
    return int(number * unit)
