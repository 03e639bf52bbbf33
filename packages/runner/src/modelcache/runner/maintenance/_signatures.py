"""Verify's signature checks: the entries and evaluation results no trusted signer vouches
for, under the trust a workflow config describes (``modelcache.store.Trust``).

Entries are judged from the manifests the inventory read already; evaluation results are
read here, one small object each, only when signatures are checked at all.
"""

from __future__ import annotations

from modelcache.store import (
    MAX_EVALUATION_SIZE,
    CorruptEntry,
    MaintainedStore,
    Trust,
    check_evaluation,
    manifest_problem,
    parse_evaluation,
    parse_evaluation_name,
)

from .inventory import Inventory

__all__ = ["untrusted_entries", "untrusted_evaluations"]


def untrusted_entries(inventory: Inventory, trust: Trust | None) -> dict[str, str]:
    """Each readable entry ``trust`` refuses, with why (one line)."""
    if trust is None or not trust.checking:
        return {}
    found = {}
    for entry in inventory.entries.values():
        if entry.manifest is None:
            continue  # invalid already, reported as such
        problem = manifest_problem(entry.manifest, trust)
        if problem is not None:
            found[entry.key] = problem
    return found


def untrusted_evaluations(
    store: MaintainedStore, inventory: Inventory, trust: Trust | None, skip: set[str]
) -> dict[str, str]:
    """Each evaluation result (by object name) ``trust`` refuses, with why; the results of
    the entries in ``skip`` (removed with their entry anyway) are not read."""
    if trust is None or not trust.checking:
        return {}
    found = {}
    for key, results in sorted(inventory.evaluations.items()):
        if key in skip:
            continue
        for stored in results:
            parsed = parse_evaluation_name(stored.name)
            if parsed is None:
                continue
            try:
                data = store.read_object(stored.name, MAX_EVALUATION_SIZE)
                if data is None:
                    continue  # gone since listed
                check_evaluation(parsed[0], parsed[1], parse_evaluation(data), trust)
            except CorruptEntry as error:
                found[stored.name] = str(error)
    return found
