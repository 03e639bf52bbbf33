"""What a store holds, read once: entries, blobs, evaluations and run records (``ls`` and
``stats`` are views of it).

:func:`take_inventory` lists the store (four listings), then reads every manifest and run
record, 16 at a time. Everything here goes through the layout's object names on a
:class:`~modelcache.store.MaintainedStore`, so one implementation serves the local directory
and the blob container alike. An entry whose manifest cannot be trusted is kept, with its
``problem``, so that ``verify --repair`` can remove it. So are the symbolic links a local
cache holds (:mod:`._links`): what lies under a linked folder is left out, never followed.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor

from attrs import Factory, define, frozen
from cattrs.gen import override

from modelcache.planner import JsonMap, canonical_json
from modelcache.store import (
    BLOBS_PREFIX,
    ENTRIES_PREFIX,
    EVALUATIONS_PREFIX,
    MAX_MANIFEST_SIZE,
    RUNS_PREFIX,
    CorruptEntry,
    InvalidManifest,
    MaintainedStore,
    Manifest,
    StoreConfigError,
    StoredObject,
    StoreError,
    StoreUnavailable,
    parse_blob_name,
    parse_evaluation_name,
    parse_manifest_name,
    parse_run_record_name,
    signer_of,
)

from ._codec import JsonObject, Timestamp, parse_iso, unstructure, wire_format
from ._links import find_links, under_link
from .usage import MAX_RUN_RECORD, RunRecord, RunTally, current, last_use, parse_record

__all__ = [
    "CacheStats",
    "EntryInfo",
    "EntrySummary",
    "Inventory",
    "blob_sizes",
    "describe_input",
    "list_prefix",
    "read_entries",
    "remove_entry",
    "stats",
    "take_inventory",
]

_WORKERS = 16


@frozen(kw_only=True)
class EntrySummary:
    """An entry as ``modelcache cache ls --json`` lists it."""

    key: str
    pass_type: str
    input: str | None
    model_type: str | None
    size: int
    files: int
    created: Timestamp
    last_used: Timestamp
    problem: str | None = None
    #: The key id the entry's signature names (not checked here: ``verify`` checks).
    signed_by: str | None = None


wire_format(
    EntrySummary,
    pass_type=override(rename="pass"),
    problem=override(omit_if_default=True),
    signed_by=override(omit_if_default=True),
)


@frozen(kw_only=True)
class EntryInfo:
    """One cache entry as listed: its manifest (None if it cannot be trusted, with the
    reason in ``problem``), the stored manifest object, and when it was last used."""

    key: str
    stored: StoredObject
    manifest: Manifest | None
    problem: str | None
    last_used: float

    @property
    def pass_type(self) -> str:
        return str(self._pass().get("type", "?"))

    @property
    def input(self) -> str | JsonMap | None:
        """The key of the entry this one was made from, or the input model's identity."""
        if self.manifest is None:
            return None
        value = self.manifest.key_inputs.get("input")
        return value if isinstance(value, (str, JsonMap)) else None

    @property
    def size(self) -> int:
        return 0 if self.manifest is None else self.manifest.size

    @property
    def created(self) -> float:
        return created(self.manifest, self.stored)

    def _pass(self) -> JsonMap:
        value = None if self.manifest is None else self.manifest.key_inputs.get("pass")
        return value if isinstance(value, JsonMap) else JsonMap()

    def summary(self) -> EntrySummary:
        return EntrySummary(
            key=self.key,
            pass_type=self.pass_type,
            input=describe_input(self.input),
            model_type=None if self.manifest is None else self.manifest.model_type,
            size=self.size,
            files=0 if self.manifest is None else len(self.manifest.files),
            created=Timestamp(self.created),
            last_used=Timestamp(self.last_used),
            problem=self.problem or None,
            signed_by=signer_of(self.manifest),
        )

    def to_json(self) -> JsonObject:
        return unstructure(self.summary())


def describe_input(value: str | Mapping[str, object] | None) -> str | None:
    """An entry's input for a listing: ``entry <key>`` or the model it was made from."""
    if value is None:
        return None
    if isinstance(value, str):
        return f"entry {value}"
    if value.get("kind") == "hf_hub":
        return f"{value.get('repo_id')}@{str(value.get('revision'))[:12]}"
    if "digest" in value:
        return f"local model {str(value.get('digest'))[:12]}"
    return canonical_json(dict(value))


def created(manifest: Manifest | None, stored: StoredObject) -> float:
    """When an entry was made: its manifest's timestamp, else its manifest's write time."""
    when = None if manifest is None else parse_iso(manifest.created)
    return stored.modified if when is None else when


def blob_sizes(entries: Iterable[EntryInfo]) -> dict[str, int]:
    """Every blob digest the trustworthy ones of ``entries`` name, with its size."""
    return {
        item.sha256: item.size
        for entry in entries
        if entry.manifest is not None
        for item in entry.manifest.files
    }


@frozen(kw_only=True)
class Inventory:
    """What a store holds, read at one time (``taken``, epoch seconds)."""

    taken: float
    entries: Mapping[str, EntryInfo]
    blobs: Mapping[str, StoredObject]
    evaluations: Mapping[str, tuple[StoredObject, ...]]
    records: tuple[RunRecord, ...]
    #: Objects under the layout prefix that are none of the above (left alone).
    others: tuple[StoredObject, ...] = ()
    #: Symbolic links in a local cache's layout, by name: none of the above, and nothing
    #: under a linked folder is either (``verify --repair`` removes the links).
    links: tuple[str, ...] = ()

    def referenced(self) -> dict[str, int]:
        """Every blob digest a trustworthy entry names, with its size."""
        return blob_sizes(self.entries.values())

    def tally(self) -> RunTally:
        """What the recorded runs add up to."""
        return sum((record.tally for record in self.records), RunTally())


@define
class _Listing:
    """A store's objects, sorted by kind as the layout names them."""

    manifests: list[tuple[str, StoredObject]] = Factory(list)
    blobs: dict[str, StoredObject] = Factory(dict)
    evaluations: dict[str, list[StoredObject]] = Factory(dict)
    records: list[StoredObject] = Factory(list)
    others: list[StoredObject] = Factory(list)

    @classmethod
    def of(cls, store: MaintainedStore, links: tuple[str, ...] = ()) -> _Listing:
        """The objects under each prefix, but those in or under one of ``links``."""
        listing = cls()
        for prefix in (ENTRIES_PREFIX, BLOBS_PREFIX, EVALUATIONS_PREFIX, RUNS_PREFIX):
            for stored in list_prefix(store, prefix):
                if not under_link(stored.name, links):
                    listing._add(prefix, stored)
        return listing

    def _add(self, prefix: str, stored: StoredObject) -> None:
        if prefix == ENTRIES_PREFIX and (key := parse_manifest_name(stored.name)):
            self.manifests.append((key, stored))
        elif prefix == BLOBS_PREFIX and (digest := parse_blob_name(stored.name)):
            self.blobs[digest] = stored
        elif prefix == EVALUATIONS_PREFIX and (parsed := parse_evaluation_name(stored.name)):
            self.evaluations.setdefault(parsed[0], []).append(stored)
        elif prefix == RUNS_PREFIX and parse_run_record_name(stored.name):
            self.records.append(stored)
        else:
            self.others.append(stored)


def list_prefix(store: MaintainedStore, prefix: str) -> list[StoredObject]:
    """``store.list_objects(prefix)``; nothing where a local cache's folder on the way is a
    symbolic link (which :func:`find_links` reports)."""
    try:
        return list(store.list_objects(prefix))
    except CorruptEntry:
        return []


def take_inventory(store: MaintainedStore, *, now: float) -> Inventory:
    """Read what ``store`` holds: four listings, then every manifest and run record (up to
    16 at a time). ``now`` (epoch seconds) is recorded as when it was taken."""
    links = find_links(store)
    listing = _Listing.of(store, links)
    datas = _read_all(store, listing.records, MAX_RUN_RECORD)
    parsed = [
        parse_record(stored, data)
        for stored, data in zip(listing.records, datas, strict=True)
        if isinstance(data, bytes)
    ]
    records = current(record for record in parsed if record is not None)
    return Inventory(
        taken=now,
        entries=read_entries(store, listing.manifests, last_use(records)),
        blobs=listing.blobs,
        evaluations={key: tuple(items) for key, items in listing.evaluations.items()},
        records=records,
        others=tuple(listing.others),
        links=links,
    )


def _read_all(
    store: MaintainedStore, objects: list[StoredObject], limit: int
) -> list[bytes | StoreError | None]:
    """Each object's bytes (None if it is gone), or the error that makes it unreadable; an
    error of the store itself (unreachable, misconfigured) propagates."""

    def read(stored: StoredObject) -> bytes | StoreError | None:
        try:
            return store.read_object(stored.name, limit)
        except (StoreUnavailable, StoreConfigError):
            raise
        except StoreError as error:  # this object is bad, not the store
            return error

    if not objects:
        return []
    with ThreadPoolExecutor(max_workers=min(_WORKERS, len(objects))) as pool:
        return list(pool.map(read, objects))


def read_entries(
    store: MaintainedStore,
    listed: list[tuple[str, StoredObject]],
    last_used: Mapping[str, float],
    known: Mapping[str, EntryInfo] | None = None,
) -> dict[str, EntryInfo]:
    """The entries whose manifests were ``listed``: those in ``known`` as they are, the rest
    read (up to 16 at a time) and parsed. A manifest deleted since the listing is left out;
    one that cannot be trusted is kept, with its ``problem``."""
    known = known or {}
    new = [(key, stored) for key, stored in listed if key not in known]
    entries = {key: known[key] for key, _ in listed if key in known}
    datas = _read_all(store, [stored for _, stored in new], MAX_MANIFEST_SIZE)
    for (key, stored), data in zip(new, datas, strict=True):
        if data is not None:
            entries[key] = _entry(key, stored, data, last_used.get(key, 0.0))
    return entries


def _entry(key: str, stored: StoredObject, data: bytes | StoreError, used: float) -> EntryInfo:
    manifest, problem = None, None
    if isinstance(data, bytes):
        try:
            manifest = Manifest.from_json(data, key=key)
        except InvalidManifest as error:
            problem = f"invalid manifest: {error}"
    else:
        problem = str(data)
    last_used = max(created(manifest, stored), stored.modified, used)
    return EntryInfo(
        key=key, stored=stored, manifest=manifest, problem=problem, last_used=last_used
    )


def remove_entry(store: MaintainedStore, inventory: Inventory, key: str) -> bool:
    """Delete an entry's manifest (if unchanged since listed), then its evaluation results.
    :return: whether the manifest was deleted."""
    if not store.delete_object(inventory.entries[key].stored):
        return False
    for stored in inventory.evaluations.get(key, ()):
        store.delete_object(stored)
    return True


# -- stats -------------------------------------------------------------------------------------


@frozen(kw_only=True)
class CacheStats:
    """What ``modelcache cache stats`` reports; on the wire, the tally's fields sit beside
    the others."""

    entries: int
    invalid_entries: int
    blobs: int
    logical_bytes: int
    stored_bytes: int
    deduplication_ratio: float | None
    unreferenced_blobs: int
    unreferenced_bytes: int
    evaluation_results: int
    run_records: int
    tally: RunTally


def _tally_fields(figures: CacheStats) -> JsonObject:
    return unstructure(figures.tally)


wire_format(CacheStats, tally=override(omit=True), extra=_tally_fields)


def stats(inventory: Inventory) -> JsonObject:
    """Entries, logical bytes (what the entries' files add up to) against stored bytes
    (what the blobs take), and what the recorded runs add up to, as
    ``modelcache cache stats --json`` prints them (:class:`CacheStats`)."""
    valid = [entry for entry in inventory.entries.values() if entry.manifest is not None]
    logical = sum(entry.size for entry in valid)
    stored = sum(blob.size for blob in inventory.blobs.values())
    referenced = inventory.referenced()
    unreferenced = [d for d in inventory.blobs if d not in referenced]
    figures = CacheStats(
        entries=len(inventory.entries),
        invalid_entries=len(inventory.entries) - len(valid),
        blobs=len(inventory.blobs),
        logical_bytes=logical,
        stored_bytes=stored,
        deduplication_ratio=round(logical / stored, 3) if stored else None,
        unreferenced_blobs=len(unreferenced),
        unreferenced_bytes=sum(inventory.blobs[d].size for d in unreferenced),
        evaluation_results=sum(len(items) for items in inventory.evaluations.values()),
        run_records=len(inventory.records),
        tally=inventory.tally(),
    )
    return unstructure(figures)
