"""Starting or joining the Ray cluster a sweep runs on, this process kept its own meanwhile.

Theory of operation
-------------------
Without an address, :func:`connect` starts a Ray cluster of this machine
(``ray.init(address="local")``: ``RAY_ADDRESS`` is not read, ``--address auto`` is how to
reach a running one), for the caller to stop at the end; with one it joins that cluster,
which it leaves running. A process already connected to Ray (an embedder that called
``ray.init``) is used as it is, and stays connected.

Ray is kept off the user's terminal: no dashboard, the workers' output not copied to this
process (``log_to_driver=False``), Ray's Python logging at errors only, no usage statistics
sent, and what its core writes to standard error while it tries to join a cluster kept aside
(read for the one line that says why it could not). Ray still writes its session's logs
under its temporary folder (``/tmp/ray``), and a token under ``~/.ray``, as it always does.

An address nobody answers at is refused at once, in one line, rather than after Ray's
minute of retries. A cluster that asks for a token gets this machine's only in Ray's token
mode (``RAY_AUTH_MODE=token``), which Ray leaves to the user for an address given: the line
says so. ``ray.init`` puts its own handlers of SIGTERM and SIGINT in place of the command's;
the command's are put back, so that a sweep on Ray ends as any command does when stopped.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import sys
import tempfile
import threading
from collections.abc import Iterator, Mapping
from typing import IO, Any, ClassVar

import ray
from ray.exceptions import RayError

from modelcache.runner.errors import RunnerError
from modelcache.store import Fault

__all__ = ["RayUnavailable", "connect", "nodes"]

#: How long an address is given to answer before the engine says nobody does.
_PROBE_SECONDS = 5.0
#: What ``ray.init`` raises when it cannot start or join a cluster.
_INIT_ERRORS = (RayError, ConnectionError, RuntimeError, TimeoutError, ValueError)


class RayUnavailable(RunnerError):
    """The Ray cluster could not be started or joined."""

    fault: ClassVar[Fault] = "environment"


def connect(address: str | None) -> bool:
    """Connect this process to Ray, starting a cluster of this machine when ``address`` is
    None; whether this call started one (and the sweep should stop it)."""
    if ray.is_initialized():
        return False
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    quiet: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.ERROR}
    if address is None:
        try:
            with _signals_kept():
                ray.init(address="local", include_dashboard=False, **quiet)
        except _INIT_ERRORS as error:
            raise RayUnavailable(
                f"cannot start a Ray cluster on this machine: {_first_line(error)}"
            ) from None
        return True
    _answers(address)
    with tempfile.TemporaryFile() as said:
        try:
            with _stderr_to(said), _signals_kept():
                ray.init(address=address, **quiet)
        except _INIT_ERRORS as error:
            said.seek(0)
            raise RayUnavailable(_not_joined(address, error, said.read())) from None
    return False


@contextlib.contextmanager
def _signals_kept() -> Iterator[None]:
    """Keep this process's handlers of SIGTERM and SIGINT: ``ray.init`` puts its core's in
    their place, which print a stack and end the process at once, where the command's end
    it as Ctrl-C does (every ``finally`` run, the scratch folder and claims cleaned up)."""
    if threading.current_thread() is not threading.main_thread():
        yield  # handlers can only be set from the main thread, and Ray's were not
        return
    kept = {number: signal.getsignal(number) for number in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for number, handler in kept.items():
            if handler is not None:  # None: not set from Python, nothing to put back
                signal.signal(number, handler)


@contextlib.contextmanager
def _stderr_to(sink: IO[bytes]) -> Iterator[None]:
    """The process's standard error (file 2) into ``sink`` meanwhile: Ray's core writes its
    attempts to reach a cluster there, a line a second, for as long as it tries."""
    sys.stderr.flush()
    saved = os.dup(2)
    os.dup2(sink.fileno(), 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _not_joined(address: str, error: BaseException, said: bytes) -> str:
    """Why the cluster at ``address`` could not be joined, and what to do, in one line."""
    why = f"cannot join the Ray cluster at {address}: {_first_line(error)}"
    if b"InvalidAuthToken" in said:
        # Ray sends this machine's token to an address given only in token mode: its choice,
        # so that a token never goes to a server named by mistake.
        why += (
            "; it asks for a token: set RAY_AUTH_MODE=token, and RAY_AUTH_TOKEN (or "
            "~/.ray/auth_token) to its token (`ray get-auth-token` on its head)"
        )
    return why


def _answers(address: str) -> None:
    """Refuse a ``host:port`` where nothing listens, in one line, before Ray retries it for
    minutes; other forms (``auto``, ``ray://...``) are Ray's to find."""
    host, colon, port = address.rpartition(":")
    if not colon or not port.isdigit() or "/" in address:
        return
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=_PROBE_SECONDS):
            return
    except OSError as error:
        why = error.strerror or str(error) or type(error).__name__
    raise RayUnavailable(
        f"no Ray cluster answers at {address} ({why}): start one there with `ray start "
        f"--head --port {port}`, or give its head's address"
    )


def nodes() -> list[Mapping[str, float]]:
    """Each live node's resources (``CPU``, ``GPU``, ``memory`` in bytes...)."""
    nodes: list[dict[str, Any]] = ray.nodes()  # type: ignore[no-untyped-call]
    return [node["Resources"] for node in nodes if node.get("Alive")]


def _first_line(error: BaseException) -> str:
    return next(iter(str(error).strip().splitlines()), type(error).__name__)
