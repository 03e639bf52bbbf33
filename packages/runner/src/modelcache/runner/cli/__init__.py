"""The ``modelcache`` command.

Exit statuses: 0 success; 2 an error the user must fix (config, credentials, missing model);
1 any other failure (an unreachable cloud, a full disk, damage ``cache verify`` left). Both
failures end in one line on stderr, never a traceback: tracebacks are for bugs.
:data:`~.exit.EXIT_STATUS` is the one table that chooses.

The parser (:mod:`.commands`) imports only the standard library; each command names its
handler, in :mod:`.run` (``run``, ``plan``, ``passes``), :mod:`.sweep` (``sweep``) or
:mod:`.cache` (``cache ...``), and :func:`main` imports it once the command is chosen. So a
command pays for what it uses only: ``run`` of a warm cache never imports rich,
cryptography, the maintenance code or the passes' libraries (``tests/test_cli_imports.py``).
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
from importlib import import_module
from types import FrameType
from typing import NoReturn

from .commands import Handler, parser

__all__ = ["main"]


def _version() -> str:
    from .._distributions import version

    return version("modelcache-runner") or "(not installed)"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``modelcache`` console script: run the command ``argv`` (default
    ``sys.argv[1:]``) names and return its exit status."""
    args = parser(_version).parse_args(argv)
    _quiet_libraries()
    try:
        with _terminate_like_ctrl_c():
            return _handler(args.handler)(args)
    except (Exception, KeyboardInterrupt) as error:
        from rich.console import Console

        from .exit import report_error

        status = report_error(Console(stderr=True, highlight=False), error)
        if status is None:
            raise  # a bug: its traceback is what a maintainer needs
        return status


def _handler(named: Handler) -> Callable[[argparse.Namespace], int]:
    """The function ``named`` (module of this package, name): imported now, not before."""
    module, function = named
    handler: Callable[[argparse.Namespace], int] = getattr(
        import_module(f".{module}", __name__), function
    )
    return handler


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
