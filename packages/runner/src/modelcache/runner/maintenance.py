"""Cache maintenance: what ``modelcache cache ls|show|stats|verify|prune|why`` do.

Theory of operation
-------------------
Everything here works on a :class:`~modelcache.store.MaintainedStore` through the
layout's object names, so one implementation serves the local directory and the blob
container alike. :func:`take_inventory` reads the store once (four listings, then every
manifest and run record, concurrently) into an :class:`Inventory`; the commands are
functions of an inventory, and only :func:`verify` (hashing) and the deleting ones go back
to the store.

When an entry was last used is not written on every hit (that would be a write per pass per
run). Instead each run writes one *run record* (``runs/<time>-<random>.json``, see
:func:`record_run`) naming the keys it used, with its hit and miss counts; an entry's last
use is the latest of its creation and the records that name it. :func:`prune` folds records
older than the grace period into one, so reading them stays cheap.

Deleting is safe while other runners publish (see ``MaintainedStore``): deletes are
conditional on the version listed, publishers refresh the blobs they reuse, and nothing
written or refreshed within the grace period is deleted, which covers a publish whose
manifest is not written yet.
"""

from __future__ import annotations

import datetime as _dt
import json
import random
import secrets
from collections.abc import Iterable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from attrs import Factory, define, field, frozen

from modelcache.planner import canonical_json
from modelcache.store import (
    BLOBS_PREFIX,
    ENTRIES_PREFIX,
    EVALUATIONS_PREFIX,
    MAX_MANIFEST_SIZE,
    RUNS_PREFIX,
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
    run_record_name,
)

__all__ = [
    "DEFAULT_GRACE",
    "RUN_RECORD_FORMAT",
    "Difference",
    "EntryInfo",
    "Inventory",
    "PruneReport",
    "RunTally",
    "VerifyReport",
    "WhyReport",
    "describe_input",
    "explain_miss",
    "lineage",
    "parse_duration",
    "parse_size",
    "prune",
    "record_run",
    "resolve_key",
    "stats",
    "take_inventory",
    "verify",
]

RUN_RECORD_FORMAT = "modelcache-run/1"
MAX_RUN_RECORD = 16 << 20
#: Objects written or refreshed more recently than this are never deleted by a prune.
DEFAULT_GRACE = 24 * 3600.0
_WORKERS = 16


# -- run records -----------------------------------------------------------------------------


@define(kw_only=True)
class RunTally:
    """Counts that runs add up: hits and misses per tier, bytes, compute saved."""

    runs: int = 0
    hits: dict[str, int] = Factory(lambda: {"local": 0, "cloud": 0})
    misses: dict[str, int] = Factory(lambda: {"local": 0, "cloud": 0})
    bytes_downloaded: int = 0
    bytes_uploaded: int = 0
    bytes_avoided: int = 0
    compute_seconds_saved: float = 0.0

    def add(self, other: RunTally) -> None:
        self.runs += other.runs
        for tier in ("local", "cloud"):
            self.hits[tier] += other.hits[tier]
            self.misses[tier] += other.misses[tier]
        self.bytes_downloaded += other.bytes_downloaded
        self.bytes_uploaded += other.bytes_uploaded
        self.bytes_avoided += other.bytes_avoided
        self.compute_seconds_saved += other.compute_seconds_saved

    def to_json(self) -> dict[str, Any]:
        return {
            "runs": self.runs,
            "hits": dict(self.hits),
            "misses": dict(self.misses),
            "bytes_downloaded": self.bytes_downloaded,
            "bytes_uploaded": self.bytes_uploaded,
            "bytes_avoided": self.bytes_avoided,
            "compute_seconds_saved": round(self.compute_seconds_saved, 3),
        }


@frozen(kw_only=True)
class RunRecord:
    """A stored run record (or several folded into one): its tally and the keys it used."""

    name: str
    stored: StoredObject
    tally: RunTally
    last_used: Mapping[str, float]
    replaces: tuple[str, ...] = ()


def _stamp(when: float) -> str:
    return _dt.datetime.fromtimestamp(when, _dt.UTC).strftime("%Y%m%dT%H%M%SZ")


def _iso(when: float) -> str:
    return _dt.datetime.fromtimestamp(when, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_iso(text: str) -> float | None:
    try:
        when = _dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.UTC)
    except (TypeError, ValueError):
        return None
    return when.timestamp()


def _record_document(
    tally: RunTally, last_used: Mapping[str, float], finished: float, replaces: Iterable[str]
) -> bytes:
    document = {
        "format": RUN_RECORD_FORMAT,
        "finished": _iso(finished),
        **tally.to_json(),
        "last_used": {key: _iso(when) for key, when in sorted(last_used.items())},
        "replaces": sorted(replaces),
    }
    return canonical_json(document).encode("utf-8")


def record_run(
    store: MaintainedStore, tally: RunTally, used: Iterable[str], *, finished: float
) -> str:
    """Store the record of one run that ended at ``finished`` (epoch seconds) and used the
    keys ``used``: one create-only write. :return: the record's name."""
    when = float(finished)
    data = _record_document(tally, dict.fromkeys(used, when), when, ())
    while True:
        name = run_record_name(_stamp(when), secrets.token_hex(6))
        if store.create_object(name, data):
            return name


def _parse_record(stored: StoredObject, data: bytes) -> RunRecord | None:
    """A run record, or None if it is not one this version reads (records are statistics:
    a bad one is skipped, never fatal)."""
    try:
        document = json.loads(data)
        if not isinstance(document, dict) or document.get("format") != RUN_RECORD_FORMAT:
            return None
        tally = RunTally(
            runs=_count(document["runs"]),
            hits={tier: _count(document["hits"][tier]) for tier in ("local", "cloud")},
            misses={tier: _count(document["misses"][tier]) for tier in ("local", "cloud")},
            bytes_downloaded=_count(document["bytes_downloaded"]),
            bytes_uploaded=_count(document["bytes_uploaded"]),
            bytes_avoided=_count(document["bytes_avoided"]),
            compute_seconds_saved=float(document["compute_seconds_saved"]),
        )
        last_used = {}
        for key, text in document["last_used"].items():
            when = _parse_iso(text)
            if parse_manifest_name(f"{ENTRIES_PREFIX}{key}.json") is None or when is None:
                return None
            last_used[key] = when
        replaces = tuple(str(name) for name in document["replaces"])
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        return None
    return RunRecord(
        name=stored.name, stored=stored, tally=tally, last_used=last_used, replaces=replaces
    )


def _count(value: Any) -> int:
    if type(value) is not int or value < 0:
        raise ValueError(f"{value!r} is not a count")
    return value


# -- the inventory ---------------------------------------------------------------------------


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
    def input(self) -> str | Mapping[str, Any] | None:
        """The key of the entry this one was made from, or the input model's identity."""
        if self.manifest is None:
            return None
        value = self.manifest.key_inputs.get("input")
        return value if isinstance(value, (str, Mapping)) else None

    @property
    def size(self) -> int:
        return 0 if self.manifest is None else self.manifest.size

    @property
    def created(self) -> float:
        return _created(self.manifest, self.stored)

    def _pass(self) -> Mapping[str, Any]:
        if self.manifest is None:
            return {}
        value = self.manifest.key_inputs.get("pass")
        return value if isinstance(value, Mapping) else {}

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "pass": self.pass_type,
            "input": describe_input(self.input),
            "model_type": None if self.manifest is None else self.manifest.model_type,
            "size": self.size,
            "files": 0 if self.manifest is None else len(self.manifest.files),
            "created": _iso(self.created),
            "last_used": _iso(self.last_used),
            **({"problem": self.problem} if self.problem else {}),
        }


def describe_input(value: str | Mapping[str, Any] | None) -> str | None:
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

    def referenced(self) -> dict[str, int]:
        """Every blob digest a trustworthy entry names, with its size."""
        return _blob_sizes(self.entries.values())

    def tally(self) -> RunTally:
        total = RunTally()
        for record in self.records:
            total.add(record.tally)
        return total


def _read_all(
    store: MaintainedStore, objects: list[StoredObject], limit: int
) -> list[bytes | StoreError | None]:
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


def take_inventory(store: MaintainedStore, *, now: float) -> Inventory:
    """Read what ``store`` holds: four listings, then every manifest and run record (up to
    16 at a time). ``now`` (epoch seconds) is recorded as when it was taken."""
    manifests: list[tuple[str, StoredObject]] = []
    blobs: dict[str, StoredObject] = {}
    evaluations: dict[str, list[StoredObject]] = {}
    record_objects: list[StoredObject] = []
    others: list[StoredObject] = []
    for prefix in (ENTRIES_PREFIX, BLOBS_PREFIX, EVALUATIONS_PREFIX, RUNS_PREFIX):
        for stored in store.list_objects(prefix):
            if prefix == ENTRIES_PREFIX and (key := parse_manifest_name(stored.name)):
                manifests.append((key, stored))
            elif prefix == BLOBS_PREFIX and (digest := parse_blob_name(stored.name)):
                blobs[digest] = stored
            elif prefix == EVALUATIONS_PREFIX and (parsed := parse_evaluation_name(stored.name)):
                evaluations.setdefault(parsed[0], []).append(stored)
            elif prefix == RUNS_PREFIX and parse_run_record_name(stored.name):
                record_objects.append(stored)
            else:
                others.append(stored)
    records = []
    for stored, data in zip(
        record_objects, _read_all(store, record_objects, MAX_RUN_RECORD), strict=True
    ):
        record = _parse_record(stored, data) if isinstance(data, bytes) else None
        if record is not None:
            records.append(record)
    replaced = {name for record in records for name in record.replaces}
    records = [record for record in records if record.name not in replaced]
    last_used: dict[str, float] = {}
    for record in records:
        for key, when in record.last_used.items():
            last_used[key] = max(when, last_used.get(key, when))
    entries = _read_entries(store, manifests, last_used)
    return Inventory(
        taken=now,
        entries=entries,
        blobs=blobs,
        evaluations={key: tuple(items) for key, items in evaluations.items()},
        records=tuple(records),
        others=tuple(others),
    )


def _created(manifest: Manifest | None, stored: StoredObject) -> float:
    """When an entry was made: its manifest's timestamp, else its manifest's write time."""
    created = None if manifest is None else _parse_iso(manifest.created)
    return stored.modified if created is None else created


def _blob_sizes(entries: Iterable[EntryInfo]) -> dict[str, int]:
    """Every blob digest the trustworthy ones of ``entries`` name, with its size."""
    return {
        item.sha256: item.size
        for entry in entries
        if entry.manifest is not None
        for item in entry.manifest.files
    }


def _read_entries(
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
        if data is None:
            continue
        manifest, problem = None, None
        if isinstance(data, bytes):
            try:
                manifest = Manifest.from_json(data, key=key)
            except InvalidManifest as error:
                problem = f"invalid manifest: {error}"
        else:
            problem = str(data)
        used = max(_created(manifest, stored), stored.modified, last_used.get(key, 0.0))
        entries[key] = EntryInfo(
            key=key, stored=stored, manifest=manifest, problem=problem, last_used=used
        )
    return entries


# -- ls, show, stats ---------------------------------------------------------------------------


def resolve_key(inventory: Inventory, text: str) -> str:
    """The key of the entry ``text`` (a key, or a unique prefix of at least 6 hex digits)
    names; ``KeyError`` with a message if none or several do."""
    text = text.strip().lower()
    if text in inventory.entries:
        return text
    if len(text) < 6:
        raise KeyError(f"{text!r} is too short to name an entry: give at least 6 hex digits")
    matches = [key for key in inventory.entries if key.startswith(text)]
    if not matches:
        raise KeyError(f"no entry whose key starts with {text!r} in this cache")
    if len(matches) > 1:
        raise KeyError(f"{len(matches)} entries' keys start with {text!r}: give more digits")
    return matches[0]


def lineage(inventory: Inventory, key: str) -> list[dict[str, Any]]:
    """The chain of entries ``key`` was made from, back to the input model: the entry
    first, then its input, and so on; an input no longer in the cache ends the chain."""
    chain: list[dict[str, Any]] = []
    seen: set[str] = set()
    current: str | Mapping[str, Any] | None = key
    while isinstance(current, str) and current not in seen:
        seen.add(current)
        entry = inventory.entries.get(current)
        if entry is None:
            chain.append({"key": current, "missing": True})
            return chain
        chain.append({"key": current, "pass": entry.pass_type, "size": entry.size})
        current = entry.input
    if isinstance(current, Mapping):
        chain.append({"model": dict(current)})
    return chain


def stats(inventory: Inventory) -> dict[str, Any]:
    """Entries, logical bytes (what the entries' files add up to) against stored bytes
    (what the blobs take), and what the recorded runs add up to."""
    valid = [entry for entry in inventory.entries.values() if entry.manifest is not None]
    logical = sum(entry.size for entry in valid)
    stored = sum(blob.size for blob in inventory.blobs.values())
    referenced = inventory.referenced()
    unreferenced = [d for d in inventory.blobs if d not in referenced]
    return {
        "entries": len(inventory.entries),
        "invalid_entries": len(inventory.entries) - len(valid),
        "blobs": len(inventory.blobs),
        "logical_bytes": logical,
        "stored_bytes": stored,
        "deduplication_ratio": round(logical / stored, 3) if stored else None,
        "unreferenced_blobs": len(unreferenced),
        "unreferenced_bytes": sum(inventory.blobs[d].size for d in unreferenced),
        "evaluation_results": sum(len(items) for items in inventory.evaluations.values()),
        "run_records": len(inventory.records),
        **inventory.tally().to_json(),
    }


# -- verify ------------------------------------------------------------------------------------


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
    removed_entries: list[str] = Factory(list)
    removed_blobs: list[str] = Factory(list)
    kept_changed: list[str] = Factory(list)

    @property
    def clean(self) -> bool:
        return not (self.corrupt_blobs or self.missing_blobs or self.invalid_entries)

    @property
    def repaired(self) -> bool:
        broken = set(self.broken_entries) | set(self.invalid_entries)
        return (
            broken <= set(self.removed_entries)
            and not self.kept_changed
            and set(self.corrupt_blobs) <= set(self.removed_blobs)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "checked_blobs": self.checked_blobs,
            "checked_bytes": self.checked_bytes,
            "sampled": self.sampled,
            "corrupt_blobs": sorted(self.corrupt_blobs),
            "missing_blobs": sorted(self.missing_blobs),
            "invalid_entries": dict(sorted(self.invalid_entries.items())),
            "broken_entries": {k: sorted(v) for k, v in sorted(self.broken_entries.items())},
            "removed_entries": sorted(self.removed_entries),
            "removed_blobs": sorted(self.removed_blobs),
            "kept_changed": sorted(self.kept_changed),
            "clean": self.clean,
        }


def verify(
    store: MaintainedStore,
    inventory: Inventory,
    *,
    sample: int | None = None,
    repair: bool = False,
    rng: random.Random | None = None,
) -> VerifyReport:
    """Re-hash every content blob (or ``sample`` of them, chosen at random), find blobs that
    entries name but the store lacks, and the entries those break.

    With ``repair``, broken and invalid entries are removed (manifest and evaluation
    results) and corrupt blobs deleted, so the next run recomputes and republishes them;
    each delete is conditional on the version listed, and an object that changed since is
    kept and reported in ``kept_changed``.
    """
    report = VerifyReport()
    digests = sorted(inventory.blobs)
    if sample is not None and sample < len(digests):
        digests = sorted((rng or random.Random()).sample(digests, sample))
        report.sampled = True

    def check(digest: str) -> tuple[str, str | None]:
        return digest, store.hash_object(inventory.blobs[digest].name)

    with ThreadPoolExecutor(max_workers=min(4, max(1, len(digests)))) as pool:
        for digest, got in pool.map(check, digests):
            if got is None:
                report.missing_blobs.append(digest)
                continue
            report.checked_blobs += 1
            report.checked_bytes += inventory.blobs[digest].size
            if got != digest:
                report.corrupt_blobs.append(digest)
    missing = set(report.missing_blobs) | {
        digest for digest in inventory.referenced() if digest not in inventory.blobs
    }
    report.missing_blobs = sorted(missing)
    bad = missing | set(report.corrupt_blobs)
    for entry in inventory.entries.values():
        if entry.manifest is None:
            report.invalid_entries[entry.key] = entry.problem or "unreadable"
            continue
        broken = sorted({item.sha256 for item in entry.manifest.files} & bad)
        if broken:
            report.broken_entries[entry.key] = broken
    if repair:
        for key in sorted(set(report.broken_entries) | set(report.invalid_entries)):
            if _remove_entry(store, inventory, key):
                report.removed_entries.append(key)
            else:
                report.kept_changed.append(inventory.entries[key].stored.name)
        for digest in report.corrupt_blobs:
            if store.delete_object(inventory.blobs[digest]):
                report.removed_blobs.append(digest)
            else:
                report.kept_changed.append(inventory.blobs[digest].name)
    return report


def _remove_entry(store: MaintainedStore, inventory: Inventory, key: str) -> bool:
    """Delete an entry's manifest (if unchanged), then its evaluation results."""
    if not store.delete_object(inventory.entries[key].stored):
        return False
    for stored in inventory.evaluations.get(key, ()):
        store.delete_object(stored)
    return True


# -- prune -------------------------------------------------------------------------------------


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

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "removed_entries": sorted(self.entries),
            "removed_entry_bytes": self.entry_bytes,
            "removed_blobs": len(self.blobs),
            "freed_bytes": self.blob_bytes,
            "removed_evaluations": self.evaluations,
            "run_records_folded": self.records_folded,
            "kept_fresh": self.kept_fresh,
            "kept_changed": sorted(self.kept_changed),
            "stored_bytes_before": self.stored_bytes_before,
            "stored_bytes_after": self.stored_bytes_after,
            "notes": list(self.notes),
        }


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
    now = inventory.taken
    fresh_since = now - grace
    report = PruneReport(dry_run=dry_run)
    report.stored_bytes_before = sum(blob.size for blob in inventory.blobs.values())
    by_use = sorted(inventory.entries.values(), key=lambda entry: (entry.last_used, entry.key))
    doomed: list[EntryInfo] = []
    for entry in by_use:
        if older_than is not None and entry.last_used < now - older_than:
            doomed.append(entry)
    if max_size is not None:
        remaining = [entry for entry in by_use if entry not in doomed]
        while remaining and sum(_blob_sizes(remaining).values()) > max_size:
            doomed.append(remaining.pop(0))
    for entry in list(doomed):
        if max(entry.stored.modified, entry.last_used) >= fresh_since:
            doomed.remove(entry)
            report.kept_fresh += 1
    for entry in doomed:
        if dry_run or _remove_entry(store, inventory, entry.key):
            report.entries.append(entry.key)
            report.entry_bytes += entry.size
            report.evaluations += len(inventory.evaluations.get(entry.key, ()))
        else:
            report.kept_changed.append(entry.stored.name)
    removed = set(report.entries)
    if not dry_run:
        # Blobs listed before the manifests: a blob refreshed or written after this listing
        # has a new version (and is fresh), so the conditional delete below spares it.
        blobs = {parse_blob_name(b.name): b for b in store.list_objects(BLOBS_PREFIX)}
        inventory = _relist_entries(store, inventory, blobs)
    needed = _blob_sizes(e for key, e in inventory.entries.items() if key not in removed)
    for digest, stored in sorted(inventory.blobs.items()):
        if digest in needed:
            continue
        if stored.modified >= fresh_since:
            report.kept_fresh += 1
            continue
        if dry_run or store.delete_object(stored):
            report.blobs.append(digest)
            report.blob_bytes += stored.size
        else:
            report.kept_changed.append(stored.name)
    for key, items in inventory.evaluations.items():
        if key in inventory.entries or key in removed:
            continue  # results of live entries; those of removed ones went with them
        for stored in items:
            if stored.modified < fresh_since and (dry_run or store.delete_object(stored)):
                report.evaluations += 1
    report.records_folded = _fold_records(store, inventory, fresh_since, dry_run)
    report.stored_bytes_after = report.stored_bytes_before - report.blob_bytes
    if max_size is not None and report.stored_bytes_after > max_size:
        report.notes.append(
            f"the cache still takes {report.stored_bytes_after} bytes, more than "
            f"{max_size}: what remains was used or written within the grace period"
        )
    return report


def _relist_entries(
    store: MaintainedStore, inventory: Inventory, blobs: Mapping[str | None, StoredObject]
) -> Inventory:
    """``inventory`` with the manifests listed again (reading only new ones) and ``blobs``."""
    listed = [
        (key, stored)
        for stored in store.list_objects(ENTRIES_PREFIX)
        if (key := parse_manifest_name(stored.name))
    ]
    entries = _read_entries(store, listed, {}, known=inventory.entries)
    return Inventory(
        taken=inventory.taken,
        entries=entries,
        blobs={digest: stored for digest, stored in blobs.items() if digest is not None},
        evaluations=inventory.evaluations,
        records=inventory.records,
        others=inventory.others,
    )


def _fold_records(
    store: MaintainedStore, inventory: Inventory, before: float, dry_run: bool
) -> int:
    """Fold the run records older than ``before`` into one: the new record is written
    first, naming those it replaces (readers ignore them from then on), then they are
    deleted. Keys of entries that are gone are dropped from it."""
    old = [record for record in inventory.records if record.stored.modified < before]
    if len(old) < 2:
        return 0
    if dry_run:
        return len(old)
    tally = RunTally()
    last_used: dict[str, float] = {}
    for record in old:
        tally.add(record.tally)
        for key, when in record.last_used.items():
            if key in inventory.entries:
                last_used[key] = max(when, last_used.get(key, when))
    finished = max(record.stored.modified for record in old)
    data = _record_document(tally, last_used, finished, (r.name for r in old))
    while not store.create_object(run_record_name(_stamp(finished), secrets.token_hex(6)), data):
        pass
    for record in old:
        store.delete_object(record.stored)
    return len(old)


# -- why -----------------------------------------------------------------------------------


@frozen(kw_only=True)
class Difference:
    """One key input that differs from the nearest cached entry's."""

    field: str
    cached: Any
    now: Any


@frozen(kw_only=True)
class WhyReport:
    """Why a pass misses: the nearest cached entry of the same pass type and how its key
    inputs differ; ``upstream`` explains the pass before, when its output changed."""

    pass_name: str
    key: str
    cached: bool
    nearest: str | None = None
    differences: tuple[Difference, ...] = ()
    candidates: int = 0
    upstream: WhyReport | None = field(default=None)
    note: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "pass": self.pass_name,
            "key": self.key,
            "cached": self.cached,
            "nearest": self.nearest,
            "candidates": self.candidates,
            "differences": [
                {"field": d.field, "cached": d.cached, "now": d.now} for d in self.differences
            ],
            "note": self.note,
            "upstream": None if self.upstream is None else self.upstream.to_json(),
        }


_MISSING = "<absent>"


def _leaves(value: Any, path: str) -> Iterator[tuple[str, Any]]:
    if isinstance(value, Mapping) and value:
        for name in sorted(value):
            yield from _leaves(value[name], f"{path}.{name}" if path else str(name))
    else:
        yield path, value


def _diff(cached: Mapping[str, Any], now: Mapping[str, Any]) -> tuple[Difference, ...]:
    old = dict(_leaves(cached, ""))
    new = dict(_leaves(now, ""))
    return tuple(
        Difference(field=name, cached=old.get(name, _MISSING), now=new.get(name, _MISSING))
        for name in sorted(old.keys() | new.keys())
        if old.get(name, _MISSING) != new.get(name, _MISSING)
    )


def explain_miss(
    inventory: Inventory,
    pass_names: list[str],
    documents: list[Mapping[str, Any]],
    keys: list[str],
    pass_name: str,
) -> WhyReport:
    """Why the pass ``pass_name`` of a chain misses in ``inventory``.

    :param pass_names: the chain's pass names, in order.
    :param documents: each pass's key document (``modelcache.planner.key_document``).
    :param keys: each pass's key.
    """
    index = pass_names.index(pass_name)
    key = keys[index]
    document = json.loads(canonical_json(dict(documents[index])))
    if key in inventory.entries and inventory.entries[key].manifest is not None:
        return WhyReport(pass_name=pass_name, key=key, cached=True, note="cached: a hit")
    pass_type = document["pass"]["type"]
    candidates = [
        entry
        for entry in inventory.entries.values()
        if entry.manifest is not None and entry.pass_type == pass_type
    ]
    if not candidates:
        return WhyReport(
            pass_name=pass_name,
            key=key,
            cached=False,
            note=f"no entry of pass type {pass_type} in this cache: it never ran here, "
            "with any configuration",
        )

    def distance(entry: EntryInfo) -> tuple[int, float]:
        assert entry.manifest is not None
        cached = json.loads(canonical_json(entry.manifest.key_inputs))
        return len(_diff(cached, document)), -entry.last_used

    nearest = min(candidates, key=distance)
    assert nearest.manifest is not None
    differences = _diff(json.loads(canonical_json(nearest.manifest.key_inputs)), document)
    upstream = None
    note = ""
    if any(d.field == "input" or d.field.startswith("input.") for d in differences):
        if index == 0:
            note = "the input model differs from the one the cached entry was made from"
        else:
            upstream = explain_miss(inventory, pass_names, documents, keys, pass_names[index - 1])
            note = (
                f"its input differs: the output of pass {pass_names[index - 1]!r} is not "
                "the one the cached entry was made from"
            )
    return WhyReport(
        pass_name=pass_name,
        key=key,
        cached=False,
        nearest=nearest.key,
        differences=differences,
        candidates=len(candidates),
        upstream=upstream,
        note=note,
    )


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
