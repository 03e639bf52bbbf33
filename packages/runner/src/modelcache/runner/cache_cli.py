"""``modelcache cache ls|show|stats|verify|prune|why``: the cache seen from the command line.

Every command reads one store: with ``--config CONFIG``, the cloud cache the config names
(or its local ``cache_dir`` with ``--tier local``, or when it names no cloud); with
``--cache-dir DIR``, that local directory. ``--json`` prints one JSON document instead of
tables. The work is done by :mod:`modelcache.runner.maintenance`; see ``docs/operations.md``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from modelcache.store import MaintainedStore

from . import maintenance
from .config import load_config
from .errors import UserError
from .render import format_size as _size

__all__ = ["add_cache_commands", "run_cache_command"]

#: Exit code of ``verify`` when it found damage it did not repair.
DAMAGED = 1


def add_cache_commands(commands: Any) -> None:
    """Add ``cache`` and its subcommands to the ``modelcache`` parser's subparsers."""
    cache = commands.add_parser("cache", help="inspect, verify and prune a cache")
    actions = cache.add_subparsers(dest="cache_command", required=True, metavar="ACTION")

    def store_options(command: argparse.ArgumentParser) -> None:
        where = command.add_mutually_exclusive_group()
        where.add_argument("--config", type=Path, help="the cache a workflow config names")
        where.add_argument("--cache-dir", type=Path, help="a local cache directory")
        command.add_argument(
            "--tier",
            choices=("local", "cloud"),
            help="with --config: the tier (default: cloud if configured)",
        )
        command.add_argument("--json", action="store_true", help="print JSON")

    ls = actions.add_parser("ls", help="list entries, most recently used first")
    store_options(ls)
    show = actions.add_parser("show", help="an entry's manifest and lineage")
    show.add_argument("key", help="the entry's key, or a unique prefix of it")
    store_options(show)
    stats = actions.add_parser("stats", help="size, deduplication, hits and misses")
    store_options(stats)
    verify = actions.add_parser("verify", help="re-hash content, find broken entries")
    verify.add_argument("--sample", type=int, metavar="N", help="check N blobs at random")
    verify.add_argument(
        "--repair", action="store_true", help="remove broken entries and corrupt blobs"
    )
    store_options(verify)
    prune = actions.add_parser("prune", help="remove entries by last use")
    prune.add_argument(
        "--older-than", metavar="DURATION", help="remove entries not used for this long (30d, 12h)"
    )
    prune.add_argument(
        "--max-size", metavar="SIZE", help="then remove the least used until the cache fits (500GB)"
    )
    prune.add_argument(
        "--grace",
        metavar="DURATION",
        default="24h",
        help="never remove what was written or used this recently (default 24h)",
    )
    prune.add_argument("--dry-run", action="store_true", help="say what would go; remove nothing")
    store_options(prune)
    why = actions.add_parser("why", help="why a pass of a workflow misses the cache")
    why.add_argument("workflow", type=Path, metavar="CONFIG", help="workflow config (JSON)")
    why.add_argument("pass_name", metavar="PASS", help="the pass's name in the workflow")
    why.add_argument(
        "--tier",
        choices=("local", "cloud"),
        help="which tier to compare with (default: cloud if configured)",
    )
    why.add_argument("--json", action="store_true", help="print JSON")


def run_cache_command(args: argparse.Namespace) -> int:
    """Run ``modelcache cache ...``; errors propagate to ``cli.main``'s handlers."""
    out = Console(highlight=False, soft_wrap=True)
    if not out.is_terminal:
        out.width = 200  # piped: keep keys and tables whole rather than folded at 80
    if args.cache_command == "why":
        return _why(args, out)
    store = _open_store(args)
    inventory = maintenance.take_inventory(store, now=time.time())
    handler = {"ls": _ls, "show": _show, "stats": _stats, "verify": _verify, "prune": _prune}[
        args.cache_command
    ]
    return handler(args, store, inventory, out)


def _argument(parse: Any, *values: Any) -> Any:
    """``parse(*values)``, its ``ValueError`` or ``KeyError`` made a ``UserError``."""
    try:
        return parse(*values)
    except (ValueError, KeyError) as error:
        raise UserError(str(error.args[0] if error.args else error)) from None


def _open_store(args: argparse.Namespace) -> MaintainedStore:
    from modelcache.store import LocalStore

    if args.cache_dir is not None:
        if args.tier == "cloud":
            raise UserError("--cache-dir names a local cache; use --config for the cloud")
        return LocalStore(args.cache_dir)
    if args.config is None:
        raise UserError(
            "say which cache: --config WORKFLOW.json (its cloud cache or cache_dir) "
            "or --cache-dir DIR"
        )
    return _tier_store(load_config(args.config), args.tier)


def _tier_store(config: Any, tier: str | None) -> MaintainedStore:
    from modelcache.store import LocalStore

    from .cloud import open_cloud_store

    if tier is None:
        tier = "cloud" if config.cloud_enabled else "local"
    if tier == "local":
        return LocalStore(config.resolve(config.cache_dir))
    if not config.cloud_enabled:
        raise UserError("the config names no cloud cache (cloud_cache_config)")
    store = open_cloud_store(config.cloud_cache_config)
    if not isinstance(store, MaintainedStore):  # pragma: no cover - every cloud store is
        raise UserError(f"{type(store).__name__} cannot be maintained")
    return store


def _print_json(document: Any) -> None:
    sys.stdout.write(json.dumps(document, indent=2, sort_keys=True) + "\n")


def _when(epoch: float) -> str:
    return _dt.datetime.fromtimestamp(epoch, _dt.UTC).strftime("%Y-%m-%d %H:%M")


# -- ls, show, stats -------------------------------------------------------------------------


def _ls(args: argparse.Namespace, _store: Any, inventory: Any, out: Console) -> int:
    entries = sorted(inventory.entries.values(), key=lambda e: (-e.last_used, e.key))
    if args.json:
        _print_json({"entries": [entry.to_json() for entry in entries]})
        return 0
    table = Table(box=None, pad_edge=False)
    for column in ("key", "pass", "input", "type", "size", "created", "last used"):
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
        )
    out.print(table)
    out.print(f"{len(entries)} entries, {_size(sum(e.size for e in entries))} of models")
    return 0


def _short_input(text: str | None) -> str:
    if text is None:
        return "?"
    return f"entry {text[6:18]}" if text.startswith("entry ") else text


def _show(args: argparse.Namespace, _store: Any, inventory: Any, out: Console) -> int:
    key = _argument(maintenance.resolve_key, inventory, args.key)
    entry = inventory.entries[key]
    chain = maintenance.lineage(inventory, key)
    evaluations = sorted(
        stored.name.rsplit("/", 1)[1].removesuffix(".json")
        for stored in inventory.evaluations.get(key, ())
    )
    manifest = None if entry.manifest is None else json.loads(entry.manifest.to_json())
    if args.json:
        _print_json(
            {
                "entry": entry.to_json(),
                "manifest": manifest,
                "lineage": chain,
                "evaluations": evaluations,
            }
        )
        return 0
    summary = entry.to_json()
    out.print(Text(f"entry {key}"))
    for name in ("pass", "model_type", "files", "created", "last_used", "problem"):
        if name in summary:
            out.print(Text(f"  {name}: {summary[name]}"))
    out.print(Text(f"  size: {_size(entry.size)} ({entry.size} bytes)"))
    if manifest is not None:
        out.print(
            Text(f"  producer: {manifest['producer']}; run time: {manifest['run_seconds']} s")
        )
        out.print(Text(f"  config: {json.dumps(manifest['key_inputs']['pass'], sort_keys=True)}"))
        out.print("  files:")
        for item in manifest["files"]:
            out.print(Text(f"    {item['path']}  {_size(item['size'])}  {item['sha256'][:16]}"))
    if evaluations:
        out.print(Text(f"  evaluation results: {', '.join(evaluations)}"))
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


def _stats(args: argparse.Namespace, _store: Any, inventory: Any, out: Console) -> int:
    figures = maintenance.stats(inventory)
    if args.json:
        _print_json(figures)
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


def _verify(args: argparse.Namespace, store: Any, inventory: Any, out: Console) -> int:
    if args.sample is not None and args.sample < 1:
        raise UserError(f"--sample {args.sample}: give a number of blobs of 1 or more")
    report = maintenance.verify(store, inventory, sample=args.sample, repair=args.repair)
    damaged = not report.clean and not (args.repair and report.repaired)
    if args.json:
        _print_json(report.to_json())
        return DAMAGED if damaged else 0
    scope = "a sample of " if report.sampled else ""
    out.print(Text(f"checked {scope}{report.checked_blobs} blobs ({_size(report.checked_bytes)})"))
    for digest in report.corrupt_blobs:
        out.print(Text(f"corrupt blob {digest}: its bytes do not hash to its name"))
    for digest in report.missing_blobs:
        out.print(Text(f"missing blob {digest}"))
    for key, problem in sorted(report.invalid_entries.items()):
        out.print(Text(f"invalid entry {key}: {problem}"))
    for key, digests in sorted(report.broken_entries.items()):
        out.print(Text(f"broken entry {key}: needs {len(digests)} bad blob(s)"))
    if report.clean:
        out.print("no damage found")
    elif args.repair:
        out.print(
            Text(
                f"removed {len(report.removed_entries)} entries and "
                f"{len(report.removed_blobs)} corrupt blobs; the next run recomputes "
                "them"
            )
        )
        for name in report.kept_changed:
            out.print(Text(f"kept {name}: it changed while verifying; run verify again"))
    else:
        out.print("damage found: run again with --repair to remove it")
    return DAMAGED if damaged else 0


def _prune(args: argparse.Namespace, store: Any, inventory: Any, out: Console) -> int:
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
        _print_json(report.to_json())
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
    for name in report.kept_changed:
        out.print(Text(f"kept {name}: it changed while pruning"))
    for note in report.notes:
        out.print(Text(f"note: {note}"))
    return 0


# -- why -------------------------------------------------------------------------------------


def _why(args: argparse.Namespace, out: Console) -> int:
    from modelcache.planner import key_document

    from .workflow import RunOptions, prepare

    args.config = args.workflow  # names the file in a ConfigError (see cli.main)
    config = load_config(args.workflow)
    names = [name for name, _ in config.passes]
    if args.pass_name not in names:
        raise UserError(
            f"no pass {args.pass_name!r} in {args.workflow}; its passes are {', '.join(names)}"
        )
    store = _tier_store(config, args.tier)
    prepared = prepare(config, RunOptions(no_cloud=True))
    chain = prepared.chain
    documents: list[Any] = []
    previous: Any = chain.model
    for spec, key in zip(chain.passes, prepared.keys, strict=True):
        documents.append(key_document(previous, spec))
        previous = key
    inventory = maintenance.take_inventory(store, now=time.time())
    report = maintenance.explain_miss(
        inventory,
        [spec.name for spec in chain.passes],
        documents,
        list(prepared.keys),
        args.pass_name,
    )
    if args.json:
        _print_json(report.to_json())
        return 0
    depth = 0
    current: maintenance.WhyReport | None = report
    while current is not None:
        indent = "  " * depth
        if current.cached:
            out.print(
                Text(f"{indent}pass {current.pass_name!r} hits: entry {current.key[:12]} is cached")
            )
        else:
            out.print(Text(f"{indent}pass {current.pass_name!r} misses (key {current.key[:12]})"))
            if current.nearest is None:
                out.print(Text(f"{indent}  {current.note}"))
            else:
                out.print(
                    Text(
                        f"{indent}  nearest cached entry of the same pass type: "
                        f"{current.nearest[:12]} (of {current.candidates})"
                    )
                )
                for difference in current.differences:
                    if difference.field == "input" or difference.field.startswith("input."):
                        continue
                    out.print(
                        Text(
                            f"{indent}  {difference.field}: cached "
                            f"{json.dumps(difference.cached)}, now "
                            f"{json.dumps(difference.now)}"
                        )
                    )
                if current.note:
                    out.print(Text(f"{indent}  {current.note}"))
        current = current.upstream
        depth += 1
    return 0
