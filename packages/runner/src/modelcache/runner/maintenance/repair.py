"""Repairing a few entries in the middle of a run: what ``verify --repair`` does, for the keys
of one chain instead of a whole store.

A run that finds an entry of its local tier unusable (a blob damaged or missing, a manifest
it cannot trust, a symbolic link where the cache never makes one) must not meet it again:
the local tier never replaces an entry, so the damaged one would hide the recomputed output
and fail every later run. :func:`repair_entries` reads just those entries (their manifests,
the blobs they name, their evaluation results, the links on the way), verifies them as
:func:`~.verify.verify` does, and removes what is damaged. The cost is a hash of the
entries' blobs, paid only when damage was found.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from modelcache.store import (
    MaintainedStore,
    StoredObject,
    Trust,
    blob_name,
    evaluations_prefix,
    manifest_name,
    parse_blob_name,
)

from ._links import links_on_the_way, under_link

if TYPE_CHECKING:
    from .verify import VerifyReport

__all__ = ["repair_entries"]


def repair_entries(
    store: MaintainedStore, keys: Iterable[str], *, now: float, trust: Trust | None = None
) -> VerifyReport:
    """Verify the entries ``keys`` of ``store`` and remove what is damaged: symbolic links on
    the way to them, entries that are invalid or name a corrupt or missing blob, and corrupt
    blobs; with ``trust``, the entries and results it refuses too. Every blob those entries
    name is hashed.

    :return: what was found and removed, as ``verify --repair`` reports it.
    """
    # Every run imports this module, and only a run that found damage calls this function.
    from .inventory import Inventory, list_prefix, read_entries
    from .verify import verify

    wanted = list(dict.fromkeys(keys))
    links = links_on_the_way(store, [manifest_name(key) for key in wanted])
    manifests = [
        (key, stored)
        for key in wanted
        for stored in _exactly(store, manifest_name(key))
        if not under_link(stored.name, links)
    ]
    entries = read_entries(store, manifests, {})
    digests = sorted(
        {
            item.sha256
            for entry in entries.values()
            if entry.manifest
            for item in entry.manifest.files
        }
    )
    links = tuple(sorted({*links, *links_on_the_way(store, map(blob_name, digests))}))
    blobs = {
        digest: stored
        for digest in digests
        for stored in _exactly(store, blob_name(digest))
        if not under_link(stored.name, links) and parse_blob_name(stored.name) == digest
    }
    inventory = Inventory(
        taken=now,
        entries=entries,
        blobs=blobs,
        evaluations={key: tuple(list_prefix(store, evaluations_prefix(key))) for key in entries},
        records=(),
        links=links,
    )
    return verify(store, inventory, repair=True, trust=trust)


def _exactly(store: MaintainedStore, name: str) -> list[StoredObject]:
    """The object ``name`` as listed: one element, or none if absent."""
    from .inventory import list_prefix

    return [stored for stored in list_prefix(store, name) if stored.name == name]
