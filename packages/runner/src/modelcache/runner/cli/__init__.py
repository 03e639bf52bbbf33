"""The ``modelcache`` command.

Exit statuses: 0 success; 2 an error the user must fix (config, credentials, missing model);
1 any other failure (an unreachable cloud, a full disk, damage ``cache verify`` left). Both
failures end in one line on stderr, never a traceback: tracebacks are for bugs.
:data:`~.exit.EXIT_STATUS` is the one table that chooses.

The subcommands live in :mod:`.run` (``run``, ``plan``, ``passes``) and :mod:`.cache`
(``cache ...``); each registers its parser with a ``handler`` that :func:`main` calls.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from importlib.metadata import PackageNotFoundError, version
from types import FrameType
from typing import NoReturn

from rich.console import Console

from .cache import add_cache_commands
from .exit import report_error
from .run import add_run_commands

__all__ = ["main"]

#: What a subcommand's parser sets as ``handler``: runs the command, returns the exit status.
Handler = Callable[[argparse.Namespace], int]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="modelcache",
        description="Run model-optimization workflows whose pass outputs are cached in the cloud.",
    )
    parser.add_argument("--version", action="version", version=f"modelcache {_version()}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_run_commands(commands)
    add_cache_commands(commands)
    return parser


def _version() -> str:
    try:
        return version("modelcache-runner")
    except PackageNotFoundError:  # pragma: no cover - run from a source tree not installed
        return "(not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``modelcache`` console script: run the command ``argv`` (default
    ``sys.argv[1:]``) names and return its exit status."""
    args = _parser().parse_args(argv)
    handler: Handler = args.handler
    err = Console(stderr=True, highlight=False)
    _quiet_libraries()
    try:
        with _terminate_like_ctrl_c():
            return handler(args)
    except (Exception, KeyboardInterrupt) as error:
        status = report_error(err, error)
        if status is None:
            raise  # a bug: its traceback is what a maintainer needs
        return status


@contextlib.contextmanager
def _terminate_like_ctrl_c() -> Iterator[None]:
    """Make SIGTERM (``kill``, a CI time-out, a container stopping) end the command the way
    Ctrl-C does: every ``finally`` runs, so the scratch folder, claims and half-delivered
    outputs are cleaned up, and the command ends with one line and exit status 1."""
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupt(_number: int, _frame: FrameType | None) -> NoReturn:
    raise KeyboardInterrupt


def _quiet_libraries() -> None:
    """Keep third-party chatter (progress bars, advice, deprecations) off the user's screen;
    modelcache reports what matters itself."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("TORCH_LOGS", "-all")
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="torch")
    logging.getLogger().setLevel(logging.ERROR)
    for name in ("torch", "torch.onnx", "onnxscript", "onnx_ir", "azure"):
        logging.getLogger(name).setLevel(logging.ERROR)
