"""Session fixtures of the end-to-end tests: workflows published once, and copies of them.

A cold run (publishing every output) costs a command's start-up and its passes; most tests
only need what it leaves behind. So each workflow is published once per session, into a
container of the session's Azurite, and a test that needs a warm cache works on a copy of
that container (and, if it needs one, of the run's local cache). The published containers
are checked, at the end of the session, to be exactly as their cold run left them.

The tiny model (``tiny_model``) and Azurite (``azurite``) are in the root ``conftest.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .e2e import TINY_PASSES, Publish, Published, blobs, new_container, run_ok, write_config


@pytest.fixture(scope="session")
def publish(
    azurite: Any, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Publish]:
    """``publish(passes)``: the :class:`~e2e.Published` cold run of ``passes`` over the tiny
    model, run on the first call and the same object on every later one."""
    connection_string = azurite.connection_string
    done: dict[str, tuple[Published, dict[str, str]]] = {}

    def published(passes: dict[str, dict[str, Any]]) -> Published:
        name = repr(sorted(passes.items()))
        if name not in done:
            folder = tmp_path_factory.mktemp("published")
            container = new_container(connection_string, "published")
            config = write_config(folder, tiny_model, passes, container=container)
            report = run_ok(config, connection_string)
            cold = Published(
                passes=passes,
                connection_string=connection_string,
                container=container,
                folder=folder,
                report=report,
            )
            done[name] = (cold, blobs(connection_string, container))
        return done[name][0]

    yield published
    for cold, etags in done.values():
        assert blobs(connection_string, cold.container) == etags, "a test changed it"


@pytest.fixture(scope="session")
def published(publish: Publish) -> Published:
    """The standard tiny workflow (:data:`~e2e.TINY_PASSES`), published once."""
    return publish(TINY_PASSES)


@pytest.fixture
def warm_container(published: Published) -> str:
    """A new container holding a copy of everything :func:`published`'s cold run uploaded."""
    return published.copy_container()
