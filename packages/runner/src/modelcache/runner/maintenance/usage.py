"""Run records: what the runs on a store add up to, and when each entry was last used.

Theory of operation
-------------------
When an entry was last used is not written on every hit: that would be a write per pass per
run, and would make every read a write. Instead each run writes one *run record*
(``runs/<time>-<random>.json``, create-only, :func:`record_run`) holding its
:class:`RunTally` and the keys of its chain, each with when the run ended. An entry's last
use is the latest of its creation and of the records that name it (:func:`last_use`).

Records only accumulate, so ``prune`` folds those older than its grace period into one
(:func:`fold_records`). The folded record is written *first*, and names in ``replaces`` the
records it stands for; readers ignore a replaced record from then on (:func:`current`). So a
fold that stops after its write and before its deletes counts nothing twice, and one that
stops before its write changed nothing. The folded record keeps the keys of live entries
only, so records do not grow with entries long gone.

Records are statistics, not cache state: one that this version cannot read (not JSON, another
format, a count that is not a whole number of zero or more, a key that is not a key, ...) is
skipped by :func:`parse_record`, never fatal. The wire format is in ``docs/storage-layout.md``
("Run records"); :mod:`._codec` writes and reads it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Container, Iterable, Mapping

from attrs import Attribute, field, frozen
from cattrs.gen import override

from modelcache.planner import canonical_json
from modelcache.store import MaintainedStore, StoredObject, is_key, run_record_name

from ._codec import (
    JsonObject,
    Timestamp,
    read_format,
    stamp,
    structure,
    unstructure,
    wire_format,
)

__all__ = [
    "MAX_RUN_RECORD",
    "RUN_RECORD_FORMAT",
    "RunRecord",
    "RunTally",
    "TierCounts",
    "current",
    "fold_records",
    "last_use",
    "parse_record",
    "record_run",
    "tier_counts",
]

RUN_RECORD_FORMAT = "modelcache-run/1"
#: The largest run record read; a record names one run's keys, or a fold's live entries.
MAX_RUN_RECORD = 16 << 20


def _count(_instance: object, attribute: Attribute[int], value: int) -> None:
    if type(value) is not int or value < 0:
        raise ValueError(f"{attribute.name} {value!r} is not a count")


def _seconds(_instance: object, attribute: Attribute[float], value: float) -> None:
    if type(value) not in (int, float) or not 0 <= value < math.inf:
        raise ValueError(f"{attribute.name} {value!r} is not a duration")


@frozen(kw_only=True)
class TierCounts:
    """A count per tier: the outputs found there (hits), or looked for and not (misses)."""

    local: int = field(default=0, validator=_count)
    cloud: int = field(default=0, validator=_count)

    def __add__(self, other: TierCounts) -> TierCounts:
        return TierCounts(local=self.local + other.local, cloud=self.cloud + other.cloud)


read_format(TierCounts)


def tier_counts(value: TierCounts | Mapping[str, int]) -> TierCounts:
    """``value`` as :class:`TierCounts`; a mapping may name the tiers ``local`` and ``cloud``."""
    if isinstance(value, TierCounts):
        return value
    unknown = set(value) - {"local", "cloud"}
    if unknown:
        raise ValueError(f"unknown tiers {sorted(unknown)}: the tiers are local and cloud")
    return TierCounts(local=value.get("local", 0), cloud=value.get("cloud", 0))


@frozen(kw_only=True)
class RunTally:
    """What runs add up to: hits and misses per tier, bytes moved and avoided, compute saved.

    ``hits`` and ``misses`` may be given as mappings (``{"local": 1, "cloud": 0}``).
    """

    runs: int = field(default=0, validator=_count)
    hits: TierCounts = field(factory=TierCounts, converter=tier_counts)
    misses: TierCounts = field(factory=TierCounts, converter=tier_counts)
    bytes_downloaded: int = field(default=0, validator=_count)
    bytes_uploaded: int = field(default=0, validator=_count)
    bytes_avoided: int = field(default=0, validator=_count)
    compute_seconds_saved: float = field(default=0.0, validator=_seconds)

    def __add__(self, other: RunTally) -> RunTally:
        return RunTally(
            runs=self.runs + other.runs,
            hits=self.hits + other.hits,
            misses=self.misses + other.misses,
            bytes_downloaded=self.bytes_downloaded + other.bytes_downloaded,
            bytes_uploaded=self.bytes_uploaded + other.bytes_uploaded,
            bytes_avoided=self.bytes_avoided + other.bytes_avoided,
            compute_seconds_saved=self.compute_seconds_saved + other.compute_seconds_saved,
        )

    def to_json(self) -> JsonObject:
        """The tally as run records and ``modelcache cache stats --json`` write it."""
        return unstructure(self)


def _milliseconds(seconds: float) -> float:
    return round(seconds, 3)


wire_format(RunTally, compute_seconds_saved=override(unstruct_hook=_milliseconds))
read_format(RunTally)


@frozen(kw_only=True)
class RunRecord:
    """A stored run record (or several folded into one): its tally and the keys it used."""

    name: str
    stored: StoredObject
    tally: RunTally
    last_used: Mapping[str, float]
    replaces: tuple[str, ...] = ()


def _format(_instance: object, _attribute: object, value: str) -> None:
    if value != RUN_RECORD_FORMAT:
        raise ValueError(f"format {value!r} is not {RUN_RECORD_FORMAT!r}")


def _keys(_instance: object, _attribute: object, value: Mapping[str, float]) -> None:
    for key in value:
        if not is_key(key):
            raise ValueError(f"{key!r} is not a key")


@frozen(kw_only=True)
class _Usage:
    """A record's fields beside its tally's (on the wire, one flat object holds both)."""

    format: str = field(default=RUN_RECORD_FORMAT, validator=_format)
    finished: Timestamp
    last_used: Mapping[str, Timestamp] = field(validator=_keys)
    replaces: tuple[str, ...] = ()


wire_format(_Usage, replaces=override(unstruct_hook=sorted))
read_format(_Usage)


def _record_bytes(tally: RunTally, usage: _Usage) -> bytes:
    return canonical_json({**unstructure(usage), **unstructure(tally)}).encode("utf-8")


def _create(store: MaintainedStore, finished: float, data: bytes) -> str:
    """Write a new record (create-only; a new random name if the first is taken)."""
    while True:
        name = run_record_name(stamp(finished), os.urandom(6).hex())
        if store.create_object(name, data):
            return name


def record_run(
    store: MaintainedStore, tally: RunTally, used: Iterable[str], *, finished: float
) -> str:
    """Store the record of one run that ended at ``finished`` (epoch seconds) and used the
    keys ``used``: one create-only write. :return: the record's name."""
    when = Timestamp(float(finished))
    usage = _Usage(finished=when, last_used=dict.fromkeys(used, when))
    return _create(store, when, _record_bytes(tally, usage))


def parse_record(stored: StoredObject, data: bytes) -> RunRecord | None:
    """The run record ``stored`` holds (``data``), or None if it is not one this version
    reads: records are statistics, and a bad one is skipped, never fatal."""
    try:
        document = json.loads(data)
        tally = structure(document, RunTally)
        usage = structure(document, _Usage)
    except (ValueError, RecursionError):  # RecursionError: JSON nested thousands deep
        return None
    return RunRecord(
        name=stored.name,
        stored=stored,
        tally=tally,
        last_used=dict(usage.last_used),
        replaces=usage.replaces,
    )


def current(records: Iterable[RunRecord]) -> tuple[RunRecord, ...]:
    """The records that count: those that no other record (a fold) replaces."""
    records = tuple(records)
    replaced = {name for record in records for name in record.replaces}
    return tuple(record for record in records if record.name not in replaced)


def last_use(records: Iterable[RunRecord]) -> dict[str, float]:
    """When each key that ``records`` name was last used: the latest record naming it."""
    last_used: dict[str, float] = {}
    for record in records:
        for key, when in record.last_used.items():
            last_used[key] = max(when, last_used.get(key, when))
    return last_used


def fold_records(
    store: MaintainedStore,
    records: Iterable[RunRecord],
    *,
    live: Container[str],
    before: float,
    dry_run: bool = False,
) -> int:
    """Fold the ``records`` stored before ``before`` (epoch seconds) into one, keeping the
    last use of the keys in ``live`` only; see the module's docstring for why this is safe.

    :return: how many records were (or, with ``dry_run``, would be) folded; none unless
        there are two or more.
    """
    old = [record for record in records if record.stored.modified < before]
    if len(old) < 2:
        return 0
    if dry_run:
        return len(old)
    finished = Timestamp(max(record.stored.modified for record in old))
    usage = _Usage(
        finished=finished,
        last_used={key: Timestamp(when) for key, when in last_use(old).items() if key in live},
        replaces=tuple(sorted(record.name for record in old)),
    )
    _create(store, finished, _record_bytes(sum((r.tally for r in old), RunTally()), usage))
    for record in old:
        store.delete_object(record.stored)
    return len(old)
