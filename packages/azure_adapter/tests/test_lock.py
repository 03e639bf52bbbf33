"""BlobLeaseLocks against Azurite: single flight through blob leases on lock blobs.

Leases last 15 s at least (the service's bound), so only the expiry test waits that long;
every other test holds a lease and lets go of it explicitly.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from azure.storage.blob import ContainerClient

from modelcache.azure import AzureBlobStore, BlobLeaseLocks, LeaseClaim, TransferSettings
from modelcache.azure.testing import TrafficCounter
from modelcache.store import StoreConfigError, StoreUnavailable, lock_name, manifest_name

from .model_dirs import SMALL

pytestmark = pytest.mark.azurite

KEY = "a" * 64
OTHER_KEY = "b" * 64


@pytest.fixture
def make_locks(
    make_store: Callable[..., AzureBlobStore],
) -> Callable[..., BlobLeaseLocks]:
    """``make_locks(**options)``: locks on the test's container, each through its own store
    (as two runners would have), polling fast."""

    def make(counter: TrafficCounter | None = None, **options: float) -> BlobLeaseLocks:
        options.setdefault("poll_seconds", 0.2)
        return BlobLeaseLocks.of(make_store(counter=counter), **options)  # type: ignore[arg-type]

    return make


@pytest.fixture
def locks(make_locks: Callable[..., BlobLeaseLocks]) -> BlobLeaseLocks:
    return make_locks()


def publish_manifest(raw: ContainerClient, key: str) -> None:
    """What a holder does last: the entry's manifest appears (its content does not matter
    to the lock, which only looks for the name)."""
    raw.upload_blob(manifest_name(key), b"{}")


def lease_state(raw: ContainerClient, key: str) -> str:
    return str(raw.get_blob_client(lock_name(key)).get_blob_properties().lease.state)


def test_a_free_entry_is_held_and_nobody_else_gets_it_until_released(
    make_locks: Callable[..., BlobLeaseLocks], raw: ContainerClient
) -> None:
    first, second = make_locks(), make_locks()

    held = first.claim(KEY, max_wait=0)
    assert (held.outcome, held.waited, held.held) == ("held", 0.0, True)
    assert lease_state(raw, KEY) == "leased"
    refused = second.claim(KEY, max_wait=0)
    assert (refused.outcome, refused.held) == ("timed-out", False)
    other = second.claim(OTHER_KEY, max_wait=0)
    assert other.outcome == "held"  # one lock per entry
    other.release()

    held.release()
    held.release()  # idempotent
    assert not held.held
    assert lease_state(raw, KEY) == "available"
    again = second.claim(KEY, max_wait=0)
    assert (again.outcome, again.waited) == ("held", 0.0)
    again.release()
    # The lock blob is empty and stays: it is never deleted, so no claimer races a delete.
    assert raw.get_blob_client(lock_name(KEY)).get_blob_properties().size == 0


def test_claimers_in_parallel_hold_an_entry_one_at_a_time(
    make_locks: Callable[..., BlobLeaseLocks],
) -> None:
    inside: list[int] = []
    overlaps: list[int] = []
    outcomes: list[str] = []
    guard = threading.Lock()

    def claimer(number: int) -> None:
        claim = make_locks().claim(KEY, max_wait=30)
        outcomes.append(claim.outcome)
        with claim:
            with guard:
                inside.append(number)
                if len(inside) > 1:
                    overlaps.append(number)
            time.sleep(0.3)
            with guard:
                inside.remove(number)

    threads = [threading.Thread(target=claimer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert outcomes == ["held"] * 4
    assert overlaps == []


def test_release_lets_a_waiting_claimer_in_within_a_poll(
    make_locks: Callable[..., BlobLeaseLocks],
) -> None:
    holder = make_locks().claim(KEY, max_wait=0)
    result: list[LeaseClaim] = []
    waiter = threading.Thread(target=lambda: result.append(make_locks().claim(KEY, max_wait=20)))
    waiter.start()
    time.sleep(1.0)
    assert result == []  # still waiting
    holder.release()
    waiter.join()
    (claim,) = result
    assert claim.outcome == "held"
    assert 0.9 < claim.waited < 3.0
    claim.release()


def test_a_manifest_published_while_waiting_ends_the_wait(
    make_locks: Callable[..., BlobLeaseLocks], raw: ContainerClient
) -> None:
    holder = make_locks().claim(KEY, max_wait=0)
    result: list[LeaseClaim] = []
    waiter = threading.Thread(target=lambda: result.append(make_locks().claim(KEY, max_wait=20)))
    waiter.start()
    time.sleep(1.0)
    publish_manifest(raw, KEY)
    waiter.join()
    (claim,) = result
    assert claim.outcome == "published"
    assert not claim.held
    assert holder.held  # the waiter did not need the lease, and did not take it
    holder.release()


def test_a_late_claimer_finds_the_published_entry_and_gives_the_lease_back(
    locks: BlobLeaseLocks, raw: ContainerClient
) -> None:
    holder = locks.claim(KEY, max_wait=0)
    publish_manifest(raw, KEY)  # publish, then release: what a holder does
    holder.release()

    late = locks.claim(KEY, max_wait=10)
    assert (late.outcome, late.waited) == ("published", 0.0)
    assert lease_state(raw, KEY) == "available"


def test_waiting_for_a_live_holder_is_bounded(make_locks: Callable[..., BlobLeaseLocks]) -> None:
    holder = make_locks().claim(KEY, max_wait=0)
    started = time.monotonic()
    claim = make_locks().claim(KEY, max_wait=2)
    elapsed = time.monotonic() - started
    assert claim.outcome == "timed-out"
    assert 2.0 <= claim.waited <= elapsed < 4.0
    assert holder.held
    holder.release()


_CRASHING_HOLDER = textwrap.dedent(
    """
    import os, sys, time
    from modelcache.azure import AzureBlobStore, BlobLeaseLocks
    store = AzureBlobStore.from_connection_string(sys.argv[1], sys.argv[2])
    claim = BlobLeaseLocks.of(store, lease_seconds=15).claim(sys.argv[3], max_wait=0)
    print(claim.outcome, flush=True)
    time.sleep(600)
    """
)


def test_a_renewed_lease_outlives_its_duration_and_a_crashed_holders_lease_expires(
    azure_container: tuple[str, str], make_locks: Callable[..., BlobLeaseLocks]
) -> None:
    connection_string, container = azure_container
    crashing = subprocess.Popen(
        [sys.executable, "-c", _CRASHING_HOLDER, connection_string, container, OTHER_KEY],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert crashing.stdout is not None
        assert crashing.stdout.readline().strip() == "held"
        renewed = make_locks(lease_seconds=15, renew_seconds=2).claim(KEY, max_wait=0)
        crashing.kill()  # SIGKILL: no release, no more renewals
        crashing.wait()
        killed = time.monotonic()

        claim = make_locks().claim(OTHER_KEY, max_wait=25)
        expired_after = time.monotonic() - killed
        assert claim.outcome == "held"
        assert expired_after < 17.0  # the 15-second lease, and a poll
        claim.release()

        # The same time has passed for the renewed lease: past its 15 s, and still held.
        assert time.monotonic() - killed > 10.0
        time.sleep(max(0.0, 16.0 - (time.monotonic() - killed)))
        assert make_locks().claim(KEY, max_wait=0).outcome == "timed-out"
        assert renewed.held
        assert not renewed.lost
        renewed.release()
    finally:
        crashing.kill()
        crashing.wait()


def test_a_holder_that_lost_the_service_lets_go_at_once() -> None:
    from modelcache.azure.testing import Azurite

    with Azurite.start() as service:
        ContainerClient.from_connection_string(service.connection_string, "lost").create_container()
        store = AzureBlobStore.from_connection_string(service.connection_string, "lost")
        claim = BlobLeaseLocks.of(store).claim(KEY, max_wait=0)
        assert claim.outcome == "held"
        service.kill()
        started = time.monotonic()
        claim.release()  # not retried: the lease expires by itself anyway
        assert time.monotonic() - started < 2.0
        store.close()


def test_a_claim_costs_two_requests_and_four_the_first_time(
    make_locks: Callable[..., BlobLeaseLocks],
) -> None:
    counter = TrafficCounter()
    locks = make_locks(counter=counter)
    locks.claim(KEY, max_wait=0).release()
    # No lock blob yet: acquire (404), create it, acquire, HEAD the manifest; release.
    assert counter.requests == 4 + 1
    counter.reset()
    locks.claim(KEY, max_wait=0).release()
    assert counter.requests == 2 + 1  # acquire, HEAD; release


def test_a_missing_container_is_a_config_error(azurite: object) -> None:
    store = AzureBlobStore.from_connection_string(
        azurite.connection_string,
        "no-such-container",
        settings=SMALL,
    )
    with store, pytest.raises(StoreConfigError, match="does not exist"):
        BlobLeaseLocks.of(store).claim(KEY, max_wait=0)


def test_an_unreachable_account_is_unavailable(unreachable: AzureBlobStore) -> None:
    with pytest.raises(StoreUnavailable, match="cannot reach"):
        BlobLeaseLocks.of(unreachable).claim(KEY, max_wait=0)


@pytest.mark.parametrize(
    "options",
    [{"lease_seconds": 14}, {"lease_seconds": 61}, {"renew_seconds": 30}, {"poll_seconds": 0}],
)
def test_settings_outside_the_services_bounds_are_refused(
    store: AzureBlobStore, options: dict[str, float]
) -> None:
    with pytest.raises(ValueError, match="must be"):
        BlobLeaseLocks.of(store, **options)  # type: ignore[arg-type]


@pytest.fixture
def unreachable() -> Iterator[AzureBlobStore]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    connection_string = (
        "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
        f"BlobEndpoint=http://127.0.0.1:{port}/devstoreaccount1;"
    )
    settings = TransferSettings(retries=0, connection_timeout=2, read_timeout=2)
    with AzureBlobStore.from_connection_string(
        connection_string, "unreachable", settings=settings
    ) as store:
        yield store
