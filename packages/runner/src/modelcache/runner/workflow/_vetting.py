"""Signatures checked before a plan is drawn, so that ``modelcache plan`` shows what a run
with a ``trust`` section will do.

Theory of operation
-------------------
A run refuses an entry, or a cached evaluation result, that its trusted signers do not vouch
for, and recomputes around it (:mod:`._steps`). A plan made from the listing alone would show
the download of an entry the run then refuses. So the plan reads what it would have the run
read: the manifest of each entry it downloads, or takes from the local tier without making
it, and each cached result it reads instead of evaluating (one request each in the cloud;
nothing else). An entry or result refused is left out of the snapshot and the plan made
again, until everything the plan reads is accepted. Each (tier, key) is read at most once and
every round leaves one more out, so the rounds end.

The plan reads no secret it was not given (:func:`~modelcache.runner.trust.plan_trust`): a
signature by a key it could not read is let through, with one note, and left to the run.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Literal, TypeAlias, TypeVar

from attrs import evolve, frozen

from modelcache.planner import (
    CachePolicy,
    Download,
    Evaluate,
    Plan,
    Run,
    Snapshot,
    SnapshotEntry,
    Step,
    Upload,
    make_plan,
)
from modelcache.store import (
    CorruptEntry,
    EntryNotFound,
    Manifest,
    Store,
    Tier,
    UntrustedEntry,
    check_evaluation,
    manifest_problem,
)

from ._prepare import Prepared, listings, needs_nothing_of_the_cloud, remembered_listings

if TYPE_CHECKING:
    from ..trust import PlanTrust

__all__ = ["Listings", "Read", "checked", "checked_plan", "plan_workflow", "reads_of", "vetted"]

_P = TypeVar("_P")
#: Each tier's listing for the keys planned: the snapshot is made of both.
Listings: TypeAlias = Mapping[Tier, list[SnapshotEntry]]


@frozen
class Read:
    """Something a plan has the run read from the cache: an entry of a tier, or (with a
    ``fingerprint``) a stored evaluation result, from whichever tier holds it."""

    tier: Literal["local", "cloud", "result"]
    key: str
    fingerprint: str | None = None


def plan_workflow(prepared: Prepared) -> Plan:
    """The dry run: what :func:`~modelcache.runner.workflow.run_workflow` would do now.
    Reads the cache, writes nothing; :func:`checked_plan` also gives its notes."""
    return checked_plan(prepared)[0]


def checked_plan(
    prepared: Prepared,
    *,
    cloud: bool = True,
    policy: CachePolicy | None = None,
    environ: Mapping[str, str] = os.environ,
) -> tuple[Plan, list[str]]:
    """The plan of the cache's contents now (without the cloud if not ``cloud``), with what
    the config's ``trust`` refuses left out, and a note for each thing left out.

    :raises StoreError: a store did not answer (the listing, or a manifest read).
    """
    chosen = prepared.policy if policy is None else policy
    fingerprint = prepared.evaluation.fingerprint

    def plan(snapshot: Snapshot) -> Plan:
        return make_plan(prepared.chain, prepared.evaluation, snapshot, chosen)

    def reads(made: Plan) -> list[Read]:
        finals = [] if made.final_key is None else [made.final_key]
        return reads_of(((step, fingerprint) for step in made.steps), finals)

    if cloud:  # as the run does: a warm-local run plans without the cloud's listing
        remembered = remembered_listings(prepared, chosen)
        if remembered is not None:
            made, notes = checked(prepared, remembered, plan, reads, environ=environ)
            if needs_nothing_of_the_cloud(made):
                return made, notes
    found = listings(prepared, cloud=cloud)
    return checked(prepared, found, plan, reads, environ=environ)


def checked(
    prepared: Prepared,
    found: Listings,
    plan: Callable[[Snapshot], _P],
    reads: Callable[[_P], list[Read]],
    *,
    environ: Mapping[str, str] = os.environ,
) -> tuple[_P, list[str]]:
    """``plan`` of the listings ``found`` in ``prepared``'s stores, through :func:`vetted`
    if ``prepared``'s config has a ``trust`` section."""
    if prepared.config.trust is None:
        return plan(Snapshot.from_listing(e for tier in found.values() for e in tier)), []
    from ..trust import plan_trust  # the key classes import cryptography

    trust = plan_trust(prepared.config, environ)
    assert trust is not None  # there is a trust section
    stores: dict[str, Store] = {"local": prepared.local}
    if "cloud" in found and prepared.cloud is not None:
        stores["cloud"] = prepared.cloud
    return vetted(found, plan, reads, stores=stores, trust=trust)


def reads_of(steps: Iterable[tuple[Step, str]], finals: Iterable[str]) -> list[Read]:
    """What the run of these steps (each with its workflow's evaluation fingerprint) reads
    from the cache, in order: the downloads, the local entries read (as input, to upload,
    evaluate or deliver) that no step makes, and the cached evaluation results."""
    steps = list(steps)
    made = {step.key for step, _ in steps if isinstance(step, Run | Download)}
    reads: list[Read] = []

    def local(key: str | None) -> None:
        if key is not None and key not in made and Read("local", key) not in reads:
            reads.append(Read("local", key))

    for step, fingerprint in steps:
        match step:
            case Run(input_key=key):
                local(key)
            case Download(key=key):
                reads.append(Read("cloud", key))
            case Evaluate(cached=True, key=key):
                reads.append(Read("result", key, fingerprint))
            case Evaluate(key=key) | Upload(key=key):
                local(key)
    for key in finals:
        local(key)
    return reads


def vetted(
    listings: Listings,
    plan: Callable[[Snapshot], _P],
    reads: Callable[[_P], list[Read]],
    *,
    stores: Mapping[str, Store],
    trust: PlanTrust,
) -> tuple[_P, list[str]]:
    """The plan of the snapshot ``listings`` make, less what ``trust`` refuses, and a note
    for each thing left out (and one for the signatures not checked).

    :param stores: the raw stores, by tier (``local``, and ``cloud`` if used).
    :raises StoreError: a store did not answer a read (unavailable, access denied).
    """
    current = {tier: list(entries) for tier, entries in listings.items()}
    judged: dict[Read, str | None] = {}
    notes: list[str] = []
    unchecked = 0
    while True:
        made = plan(Snapshot.from_listing(e for tier in current.values() for e in tier))
        refused = False
        for read in reads(made):
            if read in judged:
                continue
            problem, lenient = _judge(read, current, stores, trust)
            judged[read] = problem
            unchecked += lenient
            if problem is None:
                continue
            notes.append(_refusal(read, problem))
            current = _without(current, read)
            refused = True
        if not refused:
            break
    if unchecked:
        notes.append(
            f"{unchecked} signature(s) by keys this plan could not read were not checked "
            f"({trust.unchecked}); the run checks them"
        )
    return made, notes


def _judge(
    read: Read, listings: Listings, stores: Mapping[str, Store], trust: PlanTrust
) -> tuple[str | None, bool]:
    """Why the run would refuse ``read`` (None if it would not), and whether that was left
    to the run for want of a key."""
    if read.fingerprint is not None:
        return _judge_result(read.key, read.fingerprint, listings, stores, trust)
    store = stores.get(read.tier)
    if store is None:
        return None, False
    try:
        manifest = store.read_manifest(read.key)
    except EntryNotFound:
        return None, False  # gone since the listing: the run plans again then
    except CorruptEntry as error:
        return str(error), False
    if _lenient(manifest, trust):
        return None, True
    return manifest_problem(manifest, trust.trust), False


def _lenient(manifest: Manifest, trust: PlanTrust) -> bool:
    signature = manifest.signature
    return (
        trust.unchecked is not None
        and signature is not None
        and trust.trust.key_for(signature) is None
    )


def _judge_result(
    key: str, fingerprint: str, listings: Listings, stores: Mapping[str, Store], trust: PlanTrust
) -> tuple[str | None, bool]:
    """A cached result is read from the local tier first, then the cloud (as the run does):
    refused only if no tier holding it has one the run accepts."""
    problems: list[str] = []
    for tier in ("local", "cloud"):
        store = stores.get(tier)
        if store is None or not _holds(listings.get(tier, ()), key, fingerprint):
            continue
        try:
            stored = store.read_evaluation(key, fingerprint)
        except EntryNotFound:
            continue
        except CorruptEntry as error:  # damaged, or refused by a store that checks itself
            problems.append(str(error))
            continue
        try:
            check_evaluation(key, fingerprint, stored, trust.trust)
        except UntrustedEntry as error:
            if trust.unchecked is not None and "does not trust" in str(error):
                return None, True
            problems.append(str(error))
            continue
        return None, False
    return (problems[0] if problems else None), False


def _holds(entries: Iterable[SnapshotEntry], key: str, fingerprint: str) -> bool:
    return any(e.key == key and fingerprint in e.evaluations for e in entries)


def _without(listings: Listings, read: Read) -> dict[Tier, list[SnapshotEntry]]:
    """``listings`` less what ``read`` found refused: the entry of its tier, or the result
    from every tier."""
    out: dict[Tier, list[SnapshotEntry]] = {}
    for tier, entries in listings.items():
        kept = []
        for entry in entries:
            if entry.key != read.key:
                kept.append(entry)
            elif read.fingerprint is not None:
                kept.append(evolve(entry, evaluations=entry.evaluations - {read.fingerprint}))
            elif tier != read.tier:
                kept.append(entry)
        out[tier] = kept
    return out


def _refusal(read: Read, problem: str) -> str:
    if read.fingerprint is not None:
        return f"{problem}: the plan has it measured again, as the run will"
    what = f"{read.tier} entry {read.key[:12]}"
    return f"{what} refused ({problem}): planned without it, as the run will"
