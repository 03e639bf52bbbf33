"""Cache maintenance: what ``modelcache cache ls|show|stats|verify|prune|delete|why`` do.

Every command is a function of an :class:`Inventory` (:mod:`.inventory`, one read of the
store); only ``verify`` (hashing) and the deleting ones go back to the store. Run records
(:mod:`.usage`) tell when entries were last used; :mod:`.lineage`, :mod:`.verify`,
:mod:`.prune`, :mod:`.delete` and :mod:`.why` are one command each; :mod:`.repair` is
verify's repair for the few entries a run found damaged; :mod:`._links` sees the symbolic
links of a local cache; :mod:`._codec` is the wire format. See ``docs/operations.md``.

The names below are imported from their modules when first asked for (PEP 562), so a run,
which needs only :mod:`.usage` to write its record, does not import prune, verify or why.
"""

from __future__ import annotations

import sys
from importlib import import_module
from types import ModuleType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .delete import delete_entries
    from .inventory import EntryInfo, Inventory, describe_input, stats, take_inventory
    from .lineage import UnknownEntry, lineage, resolve_key
    from .prune import DEFAULT_GRACE, PruneReport, parse_duration, parse_size, prune
    from .repair import repair_entries
    from .usage import (
        MAX_RUN_RECORD,
        RUN_RECORD_FORMAT,
        RunRecord,
        RunTally,
        TierCounts,
        record_run,
    )
    from .verify import VerifyReport, verify
    from .why import Difference, WhyReport, explain_miss

#: The module of this package each name of ``__all__`` comes from.
_MODULES = {
    "delete": ("delete_entries",),
    "inventory": ("EntryInfo", "Inventory", "describe_input", "stats", "take_inventory"),
    "lineage": ("UnknownEntry", "lineage", "resolve_key"),
    "prune": ("DEFAULT_GRACE", "PruneReport", "parse_duration", "parse_size", "prune"),
    "repair": ("repair_entries",),
    "usage": (
        "MAX_RUN_RECORD",
        "RUN_RECORD_FORMAT",
        "RunRecord",
        "RunTally",
        "TierCounts",
        "record_run",
    ),
    "verify": ("VerifyReport", "verify"),
    "why": ("Difference", "WhyReport", "explain_miss"),
}
_MODULE_OF = {name: module for module, names in _MODULES.items() for name in names}

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


class _Package(ModuleType):
    """This package, whose functions ``prune``, ``verify`` and ``lineage`` share their
    module's name: the import system binds a submodule to its package's attribute when it
    first loads it (a sibling's ``from .verify import ...`` does), and here the function
    wins, as when this package imported every module at once."""

    def __setattr__(self, name: str, value: object) -> None:
        if isinstance(value, ModuleType) and name in _MODULE_OF:
            value = getattr(value, name)
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package


def __getattr__(name: str) -> object:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
