"""``modelcache cache verify``: re-hash content, find the entries it breaks, and repair.

A blob is corrupt when its bytes do not hash to its name, missing when an entry names it and
the listing lacks it (found from the listings alone, even when only a sample is hashed). An
entry is broken when it names a corrupt or missing blob, invalid when its manifest cannot be
trusted, or lists a file's size other than its blob's (the listing gives sizes, so this too
is found without hashing; such a blob is always hashed, to tell a damaged blob from a lying
manifest). A symbolic link in a local cache is reported apart (:mod:`._links`). Given a
:class:`~modelcache.store.Trust` that checks signatures, an entry or evaluation result that
no trusted signer vouches for is *untrusted* (:mod:`._signatures`).

Repair removes the links (never what they point to), broken, invalid and untrusted
entries, untrusted evaluation results, and corrupt blobs: a corrupt blob left in place would
be reused by the next publish, which trusts a blob of the right name and size. Every delete
is conditional on the version listed, so what changed meanwhile is kept.
"""

from __future__ import annotations

import random
from concurrent.futures import ThreadPoolExecutor

from attrs import Factory, define
from cattrs.gen import override

from modelcache.store import MaintainedStore, Trust

from ._codec import JsonObject, unstructure, wire_format
from ._links import remove_link
from ._signatures import untrusted_entries, untrusted_evaluations
from .inventory import Inventory, remove_entry

__all__ = ["VerifyReport", "verify"]

#: Blobs hashed at once: hashing is bound by reading, and a few streams keep a link busy.
_STREAMS = 4


@define(kw_only=True)
class VerifyReport:
    """What :func:`verify` found and, with ``repair``, did."""

    checked_blobs: int = 0
    checked_bytes: int = 0
    sampled: bool = False
    corrupt_blobs: list[str] = Factory(list)
    missing_blobs: list[str] = Factory(list)
    invalid_entries: dict[str, str] = Factory(dict)
    broken_entries: dict[str, list[str]] = Factory(dict)
    #: Entries, and evaluation results by object name, that no trusted signer vouches for.
    untrusted_entries: dict[str, str] = Factory(dict)
    untrusted_evaluations: dict[str, str] = Factory(dict)
    removed_entries: list[str] = Factory(list)
    removed_blobs: list[str] = Factory(list)
    removed_evaluations: list[str] = Factory(list)
    kept_changed: list[str] = Factory(list)
    #: Symbolic links in a local cache, by layout name (a manifest, a blob, a folder).
    links: list[str] = Factory(list)
    removed_links: list[str] = Factory(list)

    @property
    def clean(self) -> bool:
        return not (
            self.corrupt_blobs
            or self.missing_blobs
            or self.invalid_entries
            or self.links
            or self.untrusted_entries
            or self.untrusted_evaluations
        )

    @property
    def repaired(self) -> bool:
        broken = set(self.broken_entries) | set(self.invalid_entries) | set(self.untrusted_entries)
        return (
            broken <= set(self.removed_entries)
            and set(self.untrusted_evaluations) <= set(self.removed_evaluations)
            and not self.kept_changed
            and set(self.corrupt_blobs) <= set(self.removed_blobs)
            and set(self.links) <= set(self.removed_links)
        )

    def to_json(self) -> JsonObject:
        """The report as ``modelcache cache verify --json`` prints it."""
        return unstructure(self)


def _sorted_problems(problems: dict[str, str]) -> dict[str, str]:
    return dict(sorted(problems.items()))


def _sorted_breakage(broken: dict[str, list[str]]) -> dict[str, list[str]]:
    return {key: sorted(digests) for key, digests in sorted(broken.items())}


def _verdict(report: VerifyReport) -> JsonObject:
    return {"clean": report.clean}


wire_format(
    VerifyReport,
    extra=_verdict,
    corrupt_blobs=override(unstruct_hook=sorted),
    missing_blobs=override(unstruct_hook=sorted),
    invalid_entries=override(unstruct_hook=_sorted_problems),
    broken_entries=override(unstruct_hook=_sorted_breakage),
    # Only with signatures checked: a report without them reads as it always has.
    untrusted_entries=override(unstruct_hook=_sorted_problems, omit_if_default=True),
    untrusted_evaluations=override(unstruct_hook=_sorted_problems, omit_if_default=True),
    removed_evaluations=override(unstruct_hook=sorted, omit_if_default=True),
    removed_entries=override(unstruct_hook=sorted),
    removed_blobs=override(unstruct_hook=sorted),
    kept_changed=override(unstruct_hook=sorted),
    links=override(unstruct_hook=sorted),
    removed_links=override(unstruct_hook=sorted),
)


def verify(
    store: MaintainedStore,
    inventory: Inventory,
    *,
    sample: int | None = None,
    repair: bool = False,
    rng: random.Random | None = None,
    trust: Trust | None = None,
) -> VerifyReport:
    """Re-hash every content blob (or ``sample`` of them, chosen at random, and every blob
    whose size an entry lists otherwise), find blobs that entries name but the store lacks,
    entries whose listed sizes are not their blobs', and the entries all these break.

    With ``repair``, the symbolic links of a local cache are removed (the links, not what
    they point to), broken and invalid entries are removed (manifest and evaluation results)
    and corrupt blobs deleted, so the next run recomputes and republishes them; each delete
    is conditional on the version listed, and an object that changed since is kept and
    reported in ``kept_changed``. With ``trust``, entries and evaluation results it refuses
    are reported (and, with ``repair``, removed) as untrusted.
    """
    report = VerifyReport(links=list(inventory.links))
    report.untrusted_entries = untrusted_entries(inventory, trust)
    report.untrusted_evaluations = untrusted_evaluations(
        store, inventory, trust, skip=set(report.untrusted_entries)
    )
    digests = sorted(inventory.blobs)
    mismatched = _size_mismatches(inventory)
    if sample is not None and sample < len(digests):
        chosen = (rng or random.Random()).sample(digests, sample)
        digests = sorted(set(chosen) | {digest for _, _, digest, _ in mismatched})
        report.sampled = True
    _hash(store, inventory, digests, report)
    missing = set(report.missing_blobs) | {
        digest for digest in inventory.referenced() if digest not in inventory.blobs
    }
    report.missing_blobs = sorted(missing)
    bad = missing | set(report.corrupt_blobs)
    for key, path, digest, listed in mismatched:
        if digest not in bad:  # the blob is whole: the manifest is what is wrong
            held = inventory.blobs[digest].size
            report.invalid_entries.setdefault(
                key, f"lists {path!a} as {listed} bytes, but its blob {digest} holds {held}"
            )
    for entry in inventory.entries.values():
        if entry.manifest is None:
            report.invalid_entries[entry.key] = entry.problem or "unreadable"
            continue
        broken = sorted({item.sha256 for item in entry.manifest.files} & bad)
        if broken:
            report.broken_entries[entry.key] = broken
    if repair:
        _repair(store, inventory, report)
    return report


def _size_mismatches(inventory: Inventory) -> list[tuple[str, str, str, int]]:
    """``(key, path, digest, listed size)`` for each file an entry lists at another size
    than its blob's, as the listing gives it."""
    found = []
    for entry in inventory.entries.values():
        for item in () if entry.manifest is None else entry.manifest.files:
            blob = inventory.blobs.get(item.sha256)
            if blob is not None and blob.size != item.size:
                found.append((entry.key, item.path, item.sha256, item.size))
    return found


def _hash(
    store: MaintainedStore, inventory: Inventory, digests: list[str], report: VerifyReport
) -> None:
    """Hash the blobs ``digests`` (a few at a time) into ``report``: checked, corrupt, and
    missing (deleted since the listing)."""

    def check(digest: str) -> tuple[str, str | None]:
        return digest, store.hash_object(inventory.blobs[digest].name)

    with ThreadPoolExecutor(max_workers=min(_STREAMS, max(1, len(digests)))) as pool:
        for digest, got in pool.map(check, digests):
            if got is None:
                report.missing_blobs.append(digest)
                continue
            report.checked_blobs += 1
            report.checked_bytes += inventory.blobs[digest].size
            if got != digest:
                report.corrupt_blobs.append(digest)


def _repair(store: MaintainedStore, inventory: Inventory, report: VerifyReport) -> None:
    """Remove the links (so that nothing is deleted through one), the broken and invalid
    entries, then the corrupt blobs, each if unchanged."""
    for name in report.links:
        if remove_link(store, name):
            report.removed_links.append(name)
    doomed = (
        set(report.broken_entries) | set(report.invalid_entries) | set(report.untrusted_entries)
    )
    for key in sorted(doomed):
        if remove_entry(store, inventory, key):
            report.removed_entries.append(key)
        else:
            report.kept_changed.append(inventory.entries[key].stored.name)
    _remove_evaluations(store, inventory, report)
    for digest in report.corrupt_blobs:
        if store.delete_object(inventory.blobs[digest]):
            report.removed_blobs.append(digest)
        else:
            report.kept_changed.append(inventory.blobs[digest].name)


def _remove_evaluations(store: MaintainedStore, inventory: Inventory, report: VerifyReport) -> None:
    """Delete the untrusted evaluation results, each if unchanged since listed."""
    listed = {
        stored.name: stored for results in inventory.evaluations.values() for stored in results
    }
    for name in sorted(report.untrusted_evaluations):
        if store.delete_object(listed[name]):
            report.removed_evaluations.append(name)
        else:
            report.kept_changed.append(name)
