"""The ``modelcache`` parser: every command, its arguments and its help.

It imports nothing but the standard library, so that ``--help``, ``--version`` and a usage
error answer at once, and a command pays only for what it uses: each command names its
handler as ``(module, function)`` of this package (:data:`Handler`), and
:func:`modelcache.runner.cli.main` imports that module once the command is chosen. A check
an argument needs (an account name's) is imported when that argument is given.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from importlib import import_module
from pathlib import Path
from typing import Final

__all__ = ["PLAN_FORMATS", "Handler", "parser"]

#: ``(module of this package, function)``: the function runs the command and returns its
#: exit status.
Handler = tuple[str, str]
#: ``plan --format``: ``text``, a table for people, then the drawings for other programs.
PLAN_FORMATS: Final = ("text", "json", "mermaid", "dot")
_Commands = argparse._SubParsersAction  # the type argparse gives no public name


def parser(version: Callable[[], str]) -> argparse.ArgumentParser:
    """The ``modelcache`` parser; ``version()`` is called for ``--version`` only."""
    top = argparse.ArgumentParser(
        prog="modelcache",
        description="Run model-optimization workflows whose pass outputs are cached in the cloud.",
    )
    top.add_argument("--version", action=_Version, version=version)  # type: ignore[arg-type]
    commands = top.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_run_commands(commands)
    _add_cache_commands(commands)
    return top


class _Version(argparse._VersionAction):
    """argparse's ``--version``, the version looked up only when asked for: reading the
    installed distributions' metadata costs more than parsing a command line."""

    def __call__(self, parser: argparse.ArgumentParser, *args: object, **kwargs: object) -> None:
        lookup: Callable[[], str] = self.version  # type: ignore[assignment]
        self.version = f"modelcache {lookup()}"
        super().__call__(parser, *args, **kwargs)  # type: ignore[arg-type]


# -- run, plan, passes -----------------------------------------------------------------------


def _add_run_commands(commands: _Commands[argparse.ArgumentParser]) -> None:
    run = commands.add_parser("run", help="plan and run a workflow")
    run.add_argument("config", type=Path, help="workflow config (JSON, or YAML: .yaml/.yml)")
    run.add_argument("--report", type=Path, help="write a JSON report of every step here")
    run.add_argument("--quiet", action="store_true", help="no progress bars or summary")
    _cache_switches(run)
    run.set_defaults(handler=("run", "run_command"))

    plan = commands.add_parser("plan", help="show what a run would do; moves nothing")
    plan.add_argument("config", type=Path, help="workflow config (JSON, or YAML: .yaml/.yml)")
    plan.add_argument("--format", choices=PLAN_FORMATS, default="text")
    _cache_switches(plan)
    plan.set_defaults(handler=("run", "plan_command"))

    passes = commands.add_parser("passes", help="list the passes available")
    passes.set_defaults(handler=("run", "passes_command"))

    from . import sweep as sweep_command  # the standard library only, as this module

    sweep = commands.add_parser("sweep", help="plan and run many workflows over one cache")
    sweep_command.add_arguments(sweep)
    sweep.set_defaults(handler=("sweep", "handle"))


def _cache_switches(command: argparse.ArgumentParser) -> None:
    cloud_switches(command, no_cache=True)


def cloud_switches(command: argparse.ArgumentParser, *, no_cache: bool = False) -> None:
    """The switches over the caches that ``run``, ``plan`` and ``sweep`` share; ``--no-cache``
    with ``no_cache`` (a sweep shares its work through the cache, so it has none)."""
    command.add_argument("--no-cloud", action="store_true",
                         help="do not use the cloud cache for this run")  # fmt: skip
    command.add_argument("--no-upload", action="store_true",
                         help="read the cloud cache but upload nothing this run")  # fmt: skip
    if no_cache:
        command.add_argument("--no-cache", action="store_true",
                             help="use no cache at all: every pass runs")  # fmt: skip
    command.add_argument("--require-cloud", action="store_true",
                         help="fail if the cloud is lost mid-run")  # fmt: skip
    # Olive's spellings (olive run --account_name), and the usual ones.
    command.add_argument("--account_name", "--account-name", dest="account_name",
                         type=_checked("check_account_name"), metavar="NAME",
                         help="the cloud cache's storage account, over the config's")  # fmt: skip
    command.add_argument("--container_name", "--container-name", dest="container_name",
                         type=_checked("check_container_name"), metavar="NAME",
                         help="the cloud cache's container, over the config's")  # fmt: skip


def _checked(check: str) -> Callable[[str], str]:
    """The config's ``check`` (a function of :mod:`modelcache.runner.config`, imported when an
    argument is given) as an argparse ``type``: its ``ValueError`` is argparse's usage error."""

    def argument(text: str) -> str:
        checked: Callable[[str], str] = getattr(import_module("..config", __package__), check)
        try:
            return checked(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return argument


# -- cache -----------------------------------------------------------------------------------


def _add_cache_commands(commands: _Commands[argparse.ArgumentParser]) -> None:
    cache = commands.add_parser("cache", help="inspect, verify and prune a cache")
    cache.set_defaults(handler=("cache", "cache_command"))
    actions = cache.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    ls = actions.add_parser("ls", help="list entries, most recently used first")
    _store_options(ls)
    show = actions.add_parser("show", help="an entry's manifest and lineage")
    show.add_argument("key", help="the entry's key, or a unique prefix of it")
    _store_options(show)
    stats = actions.add_parser("stats", help="size, deduplication, hits and misses")
    _store_options(stats)
    verify = actions.add_parser("verify", help="re-hash content, find broken entries")
    verify.add_argument("--sample", type=int, metavar="N", help="check N blobs at random")
    verify.add_argument(
        "--repair", action="store_true", help="remove broken entries and corrupt blobs"
    )
    _store_options(verify)
    _add_prune(actions.add_parser("prune", help="remove entries by last use"))
    _add_delete(
        actions.add_parser("delete", help="remove entries by key (olive shared-cache --delete)")
    )
    why = actions.add_parser("why", help="why a pass of a workflow misses the cache")
    why.add_argument("workflow", type=Path, metavar="CONFIG", help="workflow config (JSON)")
    why.add_argument("pass_name", metavar="PASS", help="the pass's name in the workflow")
    why.add_argument(
        "--tier",
        choices=("local", "cloud"),
        help="which tier to compare with (default: cloud if configured)",
    )
    why.add_argument("--json", action="store_true", help="print JSON")


def _store_options(command: argparse.ArgumentParser) -> None:
    where = command.add_mutually_exclusive_group()
    where.add_argument("--config", type=Path, help="the cache a workflow config names")
    where.add_argument("--cache-dir", type=Path, help="a local cache directory")
    command.add_argument(
        "--tier",
        choices=("local", "cloud"),
        help="with --config: the tier (default: cloud if configured)",
    )
    command.add_argument("--json", action="store_true", help="print JSON")


def _add_prune(prune: argparse.ArgumentParser) -> None:
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
    _store_options(prune)


def _add_delete(delete: argparse.ArgumentParser) -> None:
    delete.add_argument("keys", nargs="*", metavar="KEY", help="an entry's key, or a unique prefix")
    delete.add_argument("--all", action="store_true", help="delete every entry")
    delete.add_argument("-y", "--yes", action="store_true", help="delete without asking")
    delete.add_argument(
        "--grace",
        metavar="DURATION",
        default="24h",
        help="keep blobs written or used this recently, for a later prune (default 24h)",
    )
    _store_options(delete)
