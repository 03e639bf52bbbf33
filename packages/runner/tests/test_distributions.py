"""The installed distributions' versions and entry points, read without importlib.metadata,
are exactly what it gives: for every distribution installed here, and every group."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

import pytest

from modelcache.runner import _distributions
from modelcache.runner._distributions import EntryPoint, entry_points, version


def test_every_installed_version_is_importlibs() -> None:
    names = {dist.metadata["Name"] for dist in metadata.distributions()}
    assert len(names) > 50, "the test environment's distributions"
    for name in sorted(names):
        assert version(name) == metadata.version(name), name
        assert version(name.upper().replace("-", ".")) == metadata.version(name), name
    assert version("modelcache-tests-never-installed") is None


def test_every_groups_entry_points_are_importlibs() -> None:
    groups = {point.group for dist in metadata.distributions() for point in dist.entry_points}
    assert {"console_scripts", "modelcache.passes"} <= groups
    for group in sorted(groups):
        theirs = {(p.name, p.value) for p in metadata.entry_points(group=group)}
        ours = {(p.name, p.value) for p in entry_points(group)}
        assert ours == theirs, group
    (modelcache,) = (p for p in entry_points("console_scripts") if p.name == "modelcache")
    assert modelcache.dist == f"modelcache-runner {metadata.version('modelcache-runner')}"
    assert callable(modelcache.load())


def test_a_folder_first_on_the_path_wins_and_an_archive_defers_to_importlib(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    info = tmp_path / "Attrs-0.0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: attrs\nVersion: 0.0.1\n\nVersion: 9\n"
    )
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    _distributions._listed.cache_clear()
    try:
        assert version("attrs") == "0.0.1" == metadata.version("attrs")
        archive = tmp_path / "archive.zip"
        archive.write_bytes(b"")
        monkeypatch.setattr(sys, "path", [str(archive), *sys.path])
        _distributions._listed.cache_clear()
        assert version("modelcache-tests-never-installed") is None  # importlib said so
    finally:
        _distributions._listed.cache_clear()


@pytest.mark.parametrize(
    ("value", "loaded"),
    [("os.path:join", "join"), ("os.path", "posixpath"), ("os : path.join [extra]", "join")],
)
def test_an_entry_point_loads_what_it_names(value: str, loaded: str) -> None:
    found = EntryPoint(name="x", value=value, group="g", dist="d").load()
    assert getattr(found, "__name__", None) == loaded


def test_an_entry_point_of_another_form_is_refused() -> None:
    with pytest.raises(ValueError, match="is not module or module:attribute"):
        EntryPoint(name="x", value="not a reference!", group="g", dist="d").load()
