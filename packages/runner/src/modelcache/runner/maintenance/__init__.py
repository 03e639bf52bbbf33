"""Cache maintenance: what ``modelcache cache ls|show|stats|verify|prune|delete|why`` do.

Every command is a function of an :class:`Inventory` (:mod:`.inventory`, one read of the
store); only ``verify`` (hashing) and the deleting ones go back to the store. Run records
(:mod:`.usage`) tell when entries were last used; :mod:`.lineage`, :mod:`.verify`,
:mod:`.prune`, :mod:`.delete` and :mod:`.why` are one command each; :mod:`.repair` is
verify's repair for the few entries a run found damaged; :mod:`._links` sees the symbolic
links of a local cache; :mod:`._codec` is the wire format. See ``docs/operations.md``.
"""

from .delete import delete_entries
from .inventory import EntryInfo, Inventory, describe_input, stats, take_inventory
from .lineage import UnknownEntry, lineage, resolve_key
from .prune import DEFAULT_GRACE, PruneReport, parse_duration, parse_size, prune
from .repair import repair_entries
from .usage import MAX_RUN_RECORD, RUN_RECORD_FORMAT, RunRecord, RunTally, TierCounts, record_run
from .verify import VerifyReport, verify
from .why import Difference, WhyReport, explain_miss

__all__ = [
    "DEFAULT_GRACE",
    "MAX_RUN_RECORD",
    "RUN_RECORD_FORMAT",
    "Difference",
    "EntryInfo",
    "Inventory",
    "PruneReport",
    "RunRecord",
    "RunTally",
    "TierCounts",
    "UnknownEntry",
    "VerifyReport",
    "WhyReport",
    "delete_entries",
    "describe_input",
    "explain_miss",
    "lineage",
    "parse_duration",
    "parse_size",
    "prune",
    "record_run",
    "repair_entries",
    "resolve_key",
    "stats",
    "take_inventory",
    "verify",
]
