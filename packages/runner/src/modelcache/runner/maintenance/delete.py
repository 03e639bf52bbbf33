"""``modelcache cache delete``: remove the entries a user names (Olive's ``olive shared-cache
--delete --model_hash``), then their blobs that no other entry names.

An entry goes manifest first (then its evaluation results), as a prune removes it: once the
manifest is gone no reader sees the entry, so nothing is ever half visible, and a delete cut
short leaves at worst blobs nothing names, which ``cache prune`` removes. Blobs go by
prune's rules (``prune``'s theory of operation): only those listed again after the
manifests were deleted, named by no remaining entry, and older than the grace period, since
a runner publishing meanwhile may be reusing one; the rest stay for a later prune.
"""

from __future__ import annotations

from collections.abc import Iterable

from attrs import evolve

from modelcache.store import MaintainedStore

from .inventory import Inventory, remove_entry
from .prune import DEFAULT_GRACE, PruneReport, relist, remove_blobs

__all__ = ["delete_entries"]


def delete_entries(
    store: MaintainedStore,
    inventory: Inventory,
    keys: Iterable[str],
    *,
    grace: float = DEFAULT_GRACE,
) -> PruneReport:
    """Delete the entries ``keys`` (each one of ``inventory``'s), however recently used,
    then the blobs only they named, as :func:`~.prune.prune` removes blobs.

    :return: what was removed and kept, as ``prune`` reports it (``kept_changed``: entries
        rewritten since listed, left alone; ``kept_fresh``: blobs inside the grace period).
    """
    report = PruneReport(dry_run=False)
    report.stored_bytes_before = sum(blob.size for blob in inventory.blobs.values())
    theirs: set[str] = set()
    for key in dict.fromkeys(keys):
        entry = inventory.entries[key]
        if remove_entry(store, inventory, key):
            report.entries.append(key)
            report.entry_bytes += entry.size
            report.evaluations += len(inventory.evaluations.get(key, ()))
            if entry.manifest is not None:
                theirs.update(item.sha256 for item in entry.manifest.files)
        else:
            report.kept_changed.append(entry.stored.name)
    listed = relist(store, inventory)
    only_theirs = evolve(
        listed, blobs={digest: blob for digest, blob in listed.blobs.items() if digest in theirs}
    )
    remove_blobs(store, only_theirs, set(report.entries), inventory.taken - grace, report)
    report.stored_bytes_after = report.stored_bytes_before - report.blob_bytes
    return report
