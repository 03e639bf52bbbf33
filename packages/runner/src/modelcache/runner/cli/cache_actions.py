"""``modelcache cache ls|show|stats|verify|prune|delete``: a store's inventory listed, summed
up, checked, pruned and deleted from. Each action gets the store and its inventory from
:func:`modelcache.runner.cli.cache.cache_command`; the work is done by
:mod:`modelcache.runner.maintenance`.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

from rich.console import Console
from rich.table import Table
from rich.text import Text

from modelcache.store import MaintainedStore, StoreError, Trust, manifest_problem, signer_of

from .. import maintenance
from ..errors import UserError
from ..maintenance import EntryInfo, Inventory
from .exit import EXIT_STATUS
from .render import format_metric
from .render import format_size as _size

__all__ = ["ACTIONS", "DAMAGED", "print_json"]

_T = TypeVar("_T")
#: An action of ``cache`` that reads a store's inventory.
Action = Callable[[argparse.Namespace, MaintainedStore, Inventory, Console], int]

#: Exit status of ``verify`` when it found damage it did not repair: the environment's
#: failure, as a :class:`~modelcache.store.CorruptEntry` is.
DAMAGED: Final = EXIT_STATUS["environment"]


def _argument(parse: Callable[[str], _T], value: str) -> _T:
    """``parse(value)``, its ``ValueError`` made a ``UserError``."""
    try:
        return parse(value)
    except ValueError as error:
        raise UserError(str(error)) from None


def print_json(document: Mapping[str, Any]) -> None:
    """``document`` on stdout as indented JSON, keys sorted."""
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True) + "\n")


def _when(epoch: float) -> str:
    return _dt.datetime.fromtimestamp(epoch, _dt.UTC).strftime("%Y-%m-%d %H:%M")


# -- ls, show, stats -------------------------------------------------------------------------


def _ls(
    args: argparse.Namespace, _store: MaintainedStore, inventory: Inventory, out: Console
) -> int:
    entries = sorted(inventory.entries.values(), key=lambda e: (-e.last_used, e.key))
    if args.json:
        print_json({"entries": [entry.to_json() for entry in entries]})
        return 0
    table = Table(box=None, pad_edge=False)
    columns = ("key", "pass", "input", "type", "size", "created", "last used", "signed by")
    for column in columns:
        table.add_column(column, justify="right" if column == "size" else "left")
    for entry in entries:
        described = entry.to_json()
        table.add_row(
            entry.key[:12],
            Text(entry.pass_type if entry.problem is None else f"{entry.pass_type} (invalid)"),
            Text(_short_input(described["input"])),
            Text(described["model_type"] or "?"),
            _size(entry.size),
            _when(entry.created),
            _when(entry.last_used),
            Text(_signer(entry, getattr(args, "trust", None))),
        )
    out.print(table)
    out.print(f"{len(entries)} entries, {_size(sum(e.size for e in entries))} of models")
    return 0


def _signer(entry: EntryInfo, trust: Trust | None) -> str:
    """Who signed the entry: its key id, marked when the config's trust refuses it."""
    signer = signer_of(entry.manifest) or "-"
    manifest = entry.manifest
    if manifest is not None and trust is not None and manifest_problem(manifest, trust):
        return f"{signer} (untrusted)"
    return signer


def _short_input(text: str | None) -> str:
    if text is None:
        return "?"
    return f"entry {text[6:18]}" if text.startswith("entry ") else text


def _show(
    args: argparse.Namespace, store: MaintainedStore, inventory: Inventory, out: Console
) -> int:
    key = maintenance.resolve_key(inventory, args.key)
    entry = inventory.entries[key]
    chain = maintenance.lineage(inventory, key)
    metrics = _metrics(store, inventory, key)
    manifest = None if entry.manifest is None else json.loads(entry.manifest.to_json())
    if args.json:
        print_json(
            {
                "entry": entry.to_json(),
                "manifest": manifest,
                "lineage": chain,
                "evaluations": sorted(metrics),
                "metrics": metrics,
            }
        )
        return 0
    summary = entry.to_json()
    out.print(Text(f"entry {key}"))
    for name in ("pass", "model_type", "files", "created", "last_used", "problem"):
        if name in summary:
            out.print(Text(f"  {name}: {summary[name]}"))
    out.print(Text(f"  signed by: {_signer(entry, getattr(args, 'trust', None))}"))
    out.print(Text(f"  size: {_size(entry.size)} ({entry.size} bytes)"))
    if manifest is not None:
        _print_manifest(manifest, out)
    for fingerprint, values in sorted(metrics.items()):
        shown = values if isinstance(values, str) else _metric_values(values)
        out.print(Text(f"  evaluation results: {fingerprint}: {shown}"))
    out.print("  lineage (newest first):")
    for depth, link in enumerate(chain):
        indent = "    " + "  " * depth
        if "model" in link:
            model = link["model"]
            label = maintenance.describe_input(model) or json.dumps(model, sort_keys=True)
            out.print(Text(f"{indent}input model {label}"))
        elif link.get("missing"):
            out.print(Text(f"{indent}{link['key'][:12]} (no longer in this cache)"))
        else:
            out.print(Text(f"{indent}{link['key'][:12]} {link['pass']} {_size(link['size'])}"))
    return 0


def _metrics(
    store: MaintainedStore, inventory: Inventory, key: str
) -> dict[str, Mapping[str, Any] | str]:
    """The entry's evaluation results by evaluator fingerprint; one that cannot be read is
    the reason why, which is worth showing rather than failing ``show`` over."""
    results: dict[str, Mapping[str, Any] | str] = {}
    for stored in inventory.evaluations.get(key, ()):
        fingerprint = stored.name.rsplit("/", 1)[1].removesuffix(".json")
        try:
            results[fingerprint] = dict(store.read_evaluation(key, fingerprint))
        except StoreError as error:
            results[fingerprint] = f"unreadable ({error})"
    return results


def _metric_values(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{name}={format_metric(value)}" for name, value in sorted(values.items()))


def _print_manifest(manifest: Mapping[str, Any], out: Console) -> None:
    run_seconds = manifest["run_seconds"]
    run_time = "unknown" if run_seconds is None else f"{run_seconds:.1f} s"
    out.print(Text(f"  producer: {manifest['producer']}; run time: {run_time}"))
    out.print(Text(f"  config: {json.dumps(manifest['key_inputs']['pass'], sort_keys=True)}"))
    out.print("  files:")
    for item in manifest["files"]:
        out.print(Text(f"    {item['path']}  {_size(item['size'])}  {item['sha256'][:16]}"))


def _stats(
    args: argparse.Namespace, _store: MaintainedStore, inventory: Inventory, out: Console
) -> int:
    figures = maintenance.stats(inventory)
    if args.json:
        print_json(figures)
        return 0
    ratio = figures["deduplication_ratio"]
    hits, misses = figures["hits"], figures["misses"]
    lines = [
        f"entries: {figures['entries']} ({figures['invalid_entries']} invalid), "
        f"evaluation results: {figures['evaluation_results']}",
        f"models: {_size(figures['logical_bytes'])} logical, stored in "
        f"{_size(figures['stored_bytes'])} ({figures['blobs']} blobs): deduplication ratio "
        f"{'n/a' if ratio is None else f'{ratio:.2f}'}",
        f"unreferenced: {figures['unreferenced_blobs']} blobs, "
        f"{_size(figures['unreferenced_bytes'])} (prune removes them)",
        f"runs recorded: {figures['runs']}; local {hits['local']} hits, {misses['local']} "
        f"misses; cloud {hits['cloud']} hits, {misses['cloud']} misses",
        f"moved: {_size(figures['bytes_downloaded'])} down, {_size(figures['bytes_uploaded'])} "
        f"up; {_size(figures['bytes_avoided'])} not downloaded; "
        f"~{figures['compute_seconds_saved']:.1f} s of compute saved",
    ]
    for line in lines:
        out.print(Text(line))
    return 0


# -- verify, prune ---------------------------------------------------------------------------


def _verify(
    args: argparse.Namespace, store: MaintainedStore, inventory: Inventory, out: Console
) -> int:
    if args.sample is not None and args.sample < 1:
        raise UserError(f"--sample {args.sample}: give a number of blobs of 1 or more")
    report = maintenance.verify(
        store, inventory, sample=args.sample, repair=args.repair, trust=getattr(args, "trust", None)
    )
    damaged = not report.clean and not (args.repair and report.repaired)
    if args.json:
        print_json(report.to_json())
        return DAMAGED if damaged else 0
    scope = "a sample of " if report.sampled else ""
    out.print(Text(f"checked {scope}{report.checked_blobs} blobs ({_size(report.checked_bytes)})"))
    for digest in report.corrupt_blobs:
        out.print(Text(f"corrupt blob {digest}: its bytes do not hash to its name"))
    for digest in report.missing_blobs:
        out.print(Text(f"missing blob {digest}"))
    for key, problem in sorted(report.invalid_entries.items()):
        out.print(Text(f"invalid entry {key}: {problem}"))
    for key, problem in sorted(report.untrusted_entries.items()):
        out.print(Text(f"untrusted entry {key}: {problem}"))
    for name, problem in sorted(report.untrusted_evaluations.items()):
        out.print(Text(f"untrusted evaluation result {name}: {problem}"))
    for key, digests in sorted(report.broken_entries.items()):
        out.print(Text(f"broken entry {key}: needs {len(digests)} bad blob(s)"))
    for name in report.links:
        out.print(
            Text(
                f"symbolic link {name}: the cache never makes one; "
                "--repair removes the link, not what it points to"
            )
        )
    if report.clean:
        out.print("no damage found")
    elif args.repair:
        out.print(
            Text(
                f"removed {len(report.removed_entries)} entries, "
                f"{len(report.removed_blobs)} corrupt blobs, "
                f"{len(report.removed_evaluations)} evaluation results and "
                f"{len(report.removed_links)} links; the next run recomputes them"
            )
        )
        for name in report.kept_changed:
            out.print(Text(f"kept {name}: it changed while verifying; run verify again"))
    else:
        out.print("damage found: run again with --repair to remove it")
    return DAMAGED if damaged else 0


def _prune(
    args: argparse.Namespace, store: MaintainedStore, inventory: Inventory, out: Console
) -> int:
    if args.older_than is None and args.max_size is None:
        raise UserError("prune needs --older-than DURATION or --max-size SIZE (or both)")
    report = maintenance.prune(
        store,
        inventory,
        older_than=None
        if args.older_than is None
        else _argument(maintenance.parse_duration, args.older_than),
        max_size=None
        if args.max_size is None
        else _argument(maintenance.parse_size, args.max_size),
        grace=_argument(maintenance.parse_duration, args.grace),
        dry_run=args.dry_run,
    )
    if args.json:
        print_json(report.to_json())
        return 0
    verb = "would remove" if args.dry_run else "removed"
    out.print(
        Text(
            f"{verb} {len(report.entries)} entries ({_size(report.entry_bytes)} of "
            f"models), {len(report.blobs)} blobs ({_size(report.blob_bytes)} freed), "
            f"{report.evaluations} evaluation results"
        )
    )
    out.print(
        Text(
            f"stored: {_size(report.stored_bytes_before)} before, "
            f"{_size(report.stored_bytes_after)} after; kept {report.kept_fresh} "
            f"objects newer than the grace period"
        )
    )
    for key in report.entries:
        out.print(Text(f"  {key}"))
    for name in report.scratch:
        out.print(Text(f"{verb} scratch of a killed run: {name}"))
    for name in report.kept_changed:
        out.print(Text(f"kept {name}: it changed while pruning"))
    for note in report.notes:
        out.print(Text(f"note: {note}"))
    return 0


# -- delete ----------------------------------------------------------------------------------


def _delete(
    args: argparse.Namespace, store: MaintainedStore, inventory: Inventory, out: Console
) -> int:
    grace = _argument(maintenance.parse_duration, args.grace)  # checked before anything goes
    if args.all == bool(args.keys):
        raise UserError("say which entries to delete: KEY... (keys or unique prefixes), or --all")
    if args.all:
        keys = sorted(inventory.entries)
    else:  # every key checked before anything is deleted
        keys = list(dict.fromkeys(maintenance.resolve_key(inventory, key) for key in args.keys))
    if not keys:
        out.print("the cache holds no entries: nothing to delete")
        return 0
    size = sum(inventory.entries[key].size for key in keys)
    if not args.yes and not _confirmed(f"delete {len(keys)} entries ({_size(size)} of models)"):
        out.print("nothing deleted")
        return 0
    report = maintenance.delete_entries(store, inventory, keys, grace=grace)
    if args.json:
        print_json(report.to_json())
        return 0
    out.print(
        Text(
            f"deleted {len(report.entries)} entries ({_size(report.entry_bytes)} of models), "
            f"{len(report.blobs)} blobs ({_size(report.blob_bytes)} freed), "
            f"{report.evaluations} evaluation results"
        )
    )
    for key in report.entries:
        out.print(Text(f"  {key}"))
    if report.kept_fresh:
        out.print(Text(f"kept {report.kept_fresh} blobs written within the grace period; "
                       "`modelcache cache prune` removes them later"))  # fmt: skip
    for name in report.kept_changed:
        out.print(Text(f"kept {name}: it changed while deleting; run delete again"))
    return 0


def _confirmed(question: str) -> bool:
    """Whether the user answers yes to ``question`` on the terminal.

    :raises UserError: stdin is not a terminal, so nobody can answer: ``-y`` is needed.
    """
    if not sys.stdin.isatty():
        raise UserError(f"{question}? cannot ask: stdin is not a terminal; give -y to delete")
    answer = input(f"{question}? [y/N] ")
    return answer.strip().lower() in ("y", "yes")


#: The actions that read a store's inventory, by name.
ACTIONS: Final[Mapping[str, Action]] = {
    "ls": _ls,
    "show": _show,
    "stats": _stats,
    "verify": _verify,
    "prune": _prune,
    "delete": _delete,
}
