"""Single flight on one machine: FileLocks between processes sharing a cache directory, and
which stores offer locks (the Azure leases are tested in
``packages/azure_adapter/tests/test_lock.py``; how the executor uses locks in
``packages/runner/tests/test_single_flight.py``)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from modelcache.store import (
    FileLocks,
    LayeredStore,
    LocalStore,
    MemoryStore,
    StoreError,
    lock_name,
    manifest_name,
)

KEY = "c" * 64

# -- FileLocks -------------------------------------------------------------------------------


def test_a_file_lock_is_exclusive_until_released(tmp_path: Path) -> None:
    locks = FileLocks(tmp_path)
    held = locks.claim(KEY, max_wait=0)
    assert (held.outcome, held.waited, held.held) == ("held", 0.0, True)
    # flock excludes every other open of the file, in this process too.
    assert FileLocks(tmp_path).claim(KEY, max_wait=0).outcome == "timed-out"
    with FileLocks(tmp_path).claim("d" * 64, max_wait=0) as other:
        assert other.outcome == "held"
    held.release()
    held.release()
    again = locks.claim(KEY, max_wait=0)
    assert again.outcome == "held"
    again.release()
    assert (tmp_path / lock_name(KEY)).stat().st_size == 0  # the lock file stays


def test_waiting_for_a_file_lock_is_bounded(tmp_path: Path) -> None:
    with FileLocks(tmp_path).claim(KEY, max_wait=0):
        started = time.monotonic()
        claim = FileLocks(tmp_path).claim(KEY, max_wait=0.5)
    assert claim.outcome == "timed-out"
    assert 0.5 <= claim.waited <= time.monotonic() - started < 1.5


def test_a_manifest_that_appears_ends_the_wait_for_a_file_lock(tmp_path: Path) -> None:
    with FileLocks(tmp_path).claim(KEY, max_wait=0):
        manifest = tmp_path / manifest_name(KEY)
        manifest.parent.mkdir(parents=True)
        manifest.write_text("{}")
        claim = FileLocks(tmp_path).claim(KEY, max_wait=10)
    assert (claim.outcome, claim.held) == ("published", False)
    assert claim.waited < 1.0


_HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from modelcache.store import FileLocks
    claim = FileLocks(Path(sys.argv[1])).claim(sys.argv[2], max_wait=0)
    print(claim.outcome, flush=True)
    time.sleep(600)
    """
)


def test_a_killed_holders_file_lock_is_free_at_once(tmp_path: Path) -> None:
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path), KEY], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "held"
        assert FileLocks(tmp_path).claim(KEY, max_wait=0).outcome == "timed-out"
        holder.kill()
        holder.wait()
        claim = FileLocks(tmp_path).claim(KEY, max_wait=5)
        assert (claim.outcome, claim.waited) == ("held", 0.0)
        claim.release()
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_file_that_cannot_be_made_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "modelcache-v1").write_text("a file where a folder should be")
    with pytest.raises(StoreError, match="lock file"):
        FileLocks(tmp_path).claim(KEY, max_wait=0)


def test_locks_go_with_the_stores_that_have_them(tmp_path: Path) -> None:
    from modelcache.azure import AzureBlobStore, BlobLeaseLocks
    from modelcache.azure.testing import ACCOUNT_KEY, ACCOUNT_NAME

    local = LocalStore(tmp_path).locks()
    assert isinstance(local, FileLocks)
    assert local.root == tmp_path
    assert MemoryStore().locks() is None
    layered = LayeredStore(LocalStore(tmp_path), MemoryStore()).locks()
    assert isinstance(layered, FileLocks)
    assert layered.root == tmp_path
    connection_string = (
        f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT_NAME};AccountKey={ACCOUNT_KEY};"
        f"BlobEndpoint=http://127.0.0.1:9/{ACCOUNT_NAME};"
    )  # no request is made
    with AzureBlobStore.from_connection_string(connection_string, "cache") as azure:
        assert isinstance(azure.locks(), BlobLeaseLocks)
