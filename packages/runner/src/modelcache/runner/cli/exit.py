"""How the command line ends: the one table from errors to exit statuses, and the one line
it prints instead of a traceback.

Theory of operation: every error family modelcache reports to a user carries ``fault``, the
hint of who can fix it (see :mod:`modelcache.runner.errors` and
:mod:`modelcache.store`); :data:`EXIT_STATUS` turns that into the exit status. The
operating system's own errors (:class:`OSError`: a full disk, a lost mount) count as the
environment's. Anything else, a planner error included (the runner checks what it hands
the planner, so one reaching the command line is the runner's bug), is a bug and keeps its
traceback.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Final

from rich.console import Console
from rich.text import Text

from modelcache.store import Fault, StoreError

from ..config import ConfigError
from ..errors import RunnerError

__all__ = ["EXIT_STATUS", "INTERRUPTED", "exit_status", "fault_of", "report_error", "say"]

#: The exit status for each fault: the only place the command line chooses one. 0 is success.
EXIT_STATUS: Final[Mapping[Fault, int]] = MappingProxyType({"user": 2, "environment": 1})
#: What an interrupted command prints; it exits as the environment's failure.
INTERRUPTED: Final = "interrupted; the cache holds only whole entries"
#: Messages longer than this are cut: a config can hold a megabyte-long value to quote.
_LONGEST_MESSAGE = 2000


def fault_of(error: BaseException) -> Fault | None:
    """Who can fix ``error``, or ``None`` if it is a bug (to be shown with its traceback)."""
    match error:
        case RunnerError() | StoreError():
            return error.fault
        case OSError() | KeyboardInterrupt():
            return "environment"
    return None


def exit_status(error: BaseException) -> int | None:
    """The exit status ``error`` ends the command with; ``None`` for a bug."""
    fault = fault_of(error)
    return None if fault is None else EXIT_STATUS[fault]


def report_error(console: Console, error: BaseException) -> int | None:
    """Print ``error`` on ``console`` as one line (one per problem of a config) and return the
    exit status; print nothing
    and return ``None`` if it is a bug, for the caller to raise again."""
    status = exit_status(error)
    if status is None:
        return None
    if isinstance(error, KeyboardInterrupt):
        console.print(INTERRUPTED)
        return status
    # A config can be wrong in several places at once: one line each, all of them.
    lines = error.lines() if isinstance(error, ConfigError) else (_message(error),)
    for line in lines:
        say(console, "error", "bold red", line)
    return status


def _message(error: BaseException) -> str:
    if isinstance(error, OSError) and not isinstance(error, RunnerError | StoreError):
        where = f": {error.filename}" if error.filename else ""
        return f"{error.strerror or error}{where}"
    return str(error)


def say(console: Console, label: str, style: str, message: str) -> None:
    """``label: message`` as one line. The message is plain text, never rich markup: it can
    quote a config's strings, and ``[/x]`` in one must neither style nor crash the output."""
    console.print(Text.assemble((f"{label}:", style), " ", one_line(message)), soft_wrap=True)


def one_line(message: str) -> str:
    """``message`` on one line, its control characters escaped (a config's strings must not
    move the cursor or recolour the terminal), cut to a readable length."""
    text = " ".join(message.split())
    text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
    if len(text) > _LONGEST_MESSAGE:
        cut = len(text) - _LONGEST_MESSAGE
        text = f"{text[:_LONGEST_MESSAGE]}... ({cut} more characters)"
    return text
