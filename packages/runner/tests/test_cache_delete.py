"""``modelcache cache delete`` (Olive's ``olive shared-cache --delete``): the entries named go,
manifest first, then the blobs only they named (by prune's rules); it asks first unless
``-y``, and an unknown key deletes nothing."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from modelcache.runner import maintenance
from modelcache.runner.cli import main
from modelcache.store import LocalStore, MemoryStore, StoredObject, blob_name, manifest_name

from .maintenance_world import DAY, MODEL, Clock, publish, sha, spec

USER_ERROR = 2


def test_delete_removes_the_entries_and_only_the_blobs_no_other_entry_names(
    tmp_path: Path,
) -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    doomed = publish(store, tmp_path, MODEL, spec("a"), {"w": b"doomed", "t": b"shared"})
    kept = publish(store, tmp_path, MODEL, spec("b"), {"w": b"kept", "t": b"shared"})
    store.write_evaluation(doomed.key, "ev", {"size": 1})
    inventory = maintenance.take_inventory(store, now=clock.now + 2 * DAY)

    report = maintenance.delete_entries(store, inventory, [doomed.key], grace=DAY)

    assert report.entries == [doomed.key]
    assert report.evaluations == 1
    assert report.blobs == [sha(b"doomed")]
    after = maintenance.take_inventory(store, now=clock.now + 2 * DAY)
    assert set(after.entries) == {kept.key}
    assert set(after.blobs) == {sha(b"kept"), sha(b"shared")}
    assert not after.evaluations.get(doomed.key)


def test_delete_keeps_blobs_inside_the_grace_period_for_a_later_prune(tmp_path: Path) -> None:
    clock = Clock()
    store = MemoryStore(clock=clock)
    entry = publish(store, tmp_path, MODEL, spec("a"), {"w": b"fresh"})
    inventory = maintenance.take_inventory(store, now=clock.now + 60)

    report = maintenance.delete_entries(store, inventory, [entry.key], grace=DAY)

    assert report.entries == [entry.key]
    assert (report.blobs, report.kept_fresh) == ([], 1)
    assert not maintenance.take_inventory(store, now=clock.now).entries


class _Recording(MemoryStore):
    """A memory store that records what it deletes, in order."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock=clock)
        self.deleted: list[str] = []

    def delete_object(self, stored: StoredObject) -> bool:
        self.deleted.append(stored.name)
        return super().delete_object(stored)


def test_the_manifest_goes_first_so_an_entry_is_never_half_visible(tmp_path: Path) -> None:
    clock = Clock()
    store = _Recording(clock)
    entry = publish(store, tmp_path, MODEL, spec("a"), {"w": b"weights", "t": b"tokens"})
    store.write_evaluation(entry.key, "ev", {"size": 1})
    inventory = maintenance.take_inventory(store, now=clock.now + 2 * DAY)

    maintenance.delete_entries(store, inventory, [entry.key], grace=DAY)

    assert store.deleted[0] == manifest_name(entry.key)
    assert set(store.deleted[1:]) >= {blob_name(sha(b"weights")), blob_name(sha(b"tokens"))}


# -- the command -------------------------------------------------------------------------------


@pytest.fixture
def cache(tmp_path: Path) -> tuple[Path, list[str]]:
    """A local cache holding two entries; its folder and their keys."""
    store = LocalStore(tmp_path / "cache")
    keys = [publish(store, tmp_path, MODEL, spec(name), {"w": name.encode()}).key for name in "ab"]
    return tmp_path / "cache", keys


def _keys(folder: Path) -> set[str]:
    import time

    return set(maintenance.take_inventory(LocalStore(folder), now=time.time()).entries)


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_delete_with_yes_deletes_the_entry_a_prefix_names(
    cache: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    folder, (first, second) = cache
    assert main(["cache", "delete", "--cache-dir", str(folder), first[:12], "-y"]) == 0
    out = capsys.readouterr().out
    assert "deleted 1 entries" in out
    assert first in out
    assert _keys(folder) == {second}


def test_delete_all_deletes_every_entry(
    cache: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    folder = cache[0]
    assert main(["cache", "delete", "--cache-dir", str(folder), "--all", "--yes"]) == 0
    assert "deleted 2 entries" in capsys.readouterr().out
    assert _keys(folder) == set()


def test_an_unknown_key_is_an_error_and_deletes_nothing(
    cache: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    folder, keys = cache
    code = main(["cache", "delete", "--cache-dir", str(folder), keys[0], "abcdef0123", "-y"])
    assert code == USER_ERROR
    assert "no entry whose key starts with 'abcdef0123'" in capsys.readouterr().err
    assert _keys(folder) == set(keys)


@pytest.mark.parametrize(
    "argv", [[], ["--all", "KEY"]], ids=["neither keys nor --all", "keys and --all"]
)
def test_delete_needs_keys_or_all(
    cache: tuple[Path, list[str]], capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    folder, keys = cache
    assert main(["cache", "delete", "--cache-dir", str(folder), *argv, "-y"]) == USER_ERROR
    assert "say which entries to delete" in capsys.readouterr().err
    assert _keys(folder) == set(keys)


def test_delete_asks_first_and_a_no_deletes_nothing(
    cache: tuple[Path, list[str]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder, keys = cache
    monkeypatch.setattr("sys.stdin", _Terminal("n\n"))
    assert main(["cache", "delete", "--cache-dir", str(folder), keys[0]]) == 0
    captured = capsys.readouterr()
    assert "delete 1 entries" in captured.out  # the question
    assert "nothing deleted" in captured.out
    assert _keys(folder) == set(keys)
    monkeypatch.setattr("sys.stdin", _Terminal("yes\n"))
    assert main(["cache", "delete", "--cache-dir", str(folder), keys[0]]) == 0
    assert _keys(folder) == {keys[1]}


def test_delete_without_a_terminal_needs_yes(
    cache: tuple[Path, list[str]],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    folder, keys = cache
    monkeypatch.setattr("sys.stdin", io.StringIO("y\n"))
    assert main(["cache", "delete", "--cache-dir", str(folder), keys[0]]) == USER_ERROR
    assert "give -y" in capsys.readouterr().err
    assert _keys(folder) == set(keys)
