"""``modelcache cache ls|show|stats|verify|prune|delete|why``: the cache seen from the command
line.

Every command reads one store: with ``--config CONFIG``, the cloud cache the config names
(or its local ``cache_dir`` with ``--tier local``, or when it names no cloud); with
``--cache-dir DIR``, that local directory. ``--json`` prints one JSON document instead of
tables. This module opens the store and explains misses (``why``); :mod:`.cache_actions`
does the rest, and :mod:`.commands` parses the command. See ``docs/operations.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from modelcache.planner import ModelIdentity, key_document
from modelcache.store import LocalStore, MaintainedStore, Trust

from .. import cloud, maintenance
from ..config import WorkflowConfig, load_config, naming_config_file
from ..errors import UserError
from ..maintenance import WhyReport
from ..trust import configured, load_trust
from ..workflow import RunOptions, prepare
from .cache_actions import ACTIONS, print_json

__all__ = ["cache_command"]


def cache_command(args: argparse.Namespace) -> int:
    """``modelcache cache ACTION``: the action's exit status (``verify``'s is 1 when it found
    damage it left)."""
    out = Console(highlight=False, soft_wrap=True)
    if not out.is_terminal:
        out.width = 200  # piped: keep keys and tables whole rather than folded at 80
    if args.cache_command == "why":
        return _why(args, out)
    store = _open_store(args)
    # Signatures are checked (ls, show, verify) under the trust a --config describes.
    args.trust = _trust(args)
    inventory = maintenance.take_inventory(store, now=time.time())
    return ACTIONS[args.cache_command](args, store, inventory, out)


def _open_store(args: argparse.Namespace) -> MaintainedStore:
    if args.cache_dir is not None:
        if args.tier == "cloud":
            raise UserError("--cache-dir names a local cache; use --config for the cloud")
        return LocalStore(_existing_cache_dir(args.cache_dir))
    if args.config is None:
        raise UserError(
            "say which cache: --config WORKFLOW.json (its cloud cache or cache_dir) "
            "or --cache-dir DIR"
        )
    return _tier_store(load_config(args.config), args.tier)


def _trust(args: argparse.Namespace) -> Trust | None:
    """The trust of the config named by ``--config``; None without one (nothing checked)."""
    if args.config is None:
        return None
    config = load_config(args.config)
    return load_trust(config) if configured(config) else None


def _existing_cache_dir(folder: Path) -> Path:
    """``folder``, which must exist: a mistyped path is not an empty cache that ``verify``
    calls healthy."""
    if not folder.exists():
        raise UserError(f"--cache-dir {folder}: no such directory; name an existing cache")
    if not folder.is_dir():
        raise UserError(f"--cache-dir {folder}: not a directory; name a cache directory")
    return folder


def _tier_store(config: WorkflowConfig, tier: str | None) -> MaintainedStore:
    if tier is None:
        tier = "cloud" if config.cloud_enabled else "local"
    if tier == "local":
        return LocalStore(config.resolve(config.cache_dir))
    settings = config.cloud_cache_config
    if settings is None or not settings.enable_cloud_cache:
        raise UserError("the config names no cloud cache (cloud_cache_config)")
    store = cloud.open_cloud_store(settings)
    if not isinstance(store, MaintainedStore):  # pragma: no cover - every cloud store is
        raise UserError(f"{type(store).__name__} cannot be maintained")
    return store


# -- why -------------------------------------------------------------------------------------


def _why(args: argparse.Namespace, out: Console) -> int:
    with naming_config_file(args.workflow):
        config = load_config(args.workflow)
        names = [name for name, _ in config.passes]
        if args.pass_name not in names:
            raise UserError(
                f"no pass {args.pass_name!r} in {args.workflow}; its passes are {', '.join(names)}"
            )
        store = _tier_store(config, args.tier)
        prepared = prepare(config, RunOptions(no_cloud=True))
    chain = prepared.chain
    documents: list[Mapping[str, Any]] = []
    previous: str | ModelIdentity = chain.model
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
        print_json(report.to_json())
    else:
        _print_why(report, out)
    return 0


def _print_why(report: WhyReport, out: Console) -> None:
    """``report``, then the pass before it when that explains the miss, each indented."""
    depth = 0
    current: WhyReport | None = report
    while current is not None:
        indent = "  " * depth
        if current.cached:
            out.print(
                Text(f"{indent}pass {current.pass_name!r} hits: entry {current.key[:12]} is cached")
            )
        else:
            out.print(Text(f"{indent}pass {current.pass_name!r} misses (key {current.key[:12]})"))
            _print_nearest(current, indent, out)
        current = current.upstream
        depth += 1


def _print_nearest(report: WhyReport, indent: str, out: Console) -> None:
    if report.nearest is None:
        out.print(Text(f"{indent}  {report.note}"))
        return
    out.print(
        Text(
            f"{indent}  nearest cached entry of the same pass type: "
            f"{report.nearest[:12]} (of {report.candidates})"
        )
    )
    for difference in report.differences:
        if difference.field == "input" or difference.field.startswith("input."):
            continue
        out.print(
            Text(
                f"{indent}  {difference.field}: cached {json.dumps(difference.cached)}, "
                f"now {json.dumps(difference.now)}"
            )
        )
    if report.note:
        out.print(Text(f"{indent}  {report.note}"))
