"""The Azurite helper: found, started, stopped; and the traffic counter."""

from __future__ import annotations

from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient

from modelcache.azure.testing import Azurite, AzuriteNotFound, TrafficCounter

pytestmark = pytest.mark.azurite


def test_a_missing_azurite_says_to_run_dev_setup(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MODELCACHE_AZURITE", str(tmp_path / "azurite-blob"))

    with pytest.raises(AzuriteNotFound, match=r"\./dev setup"):
        Azurite.start()


def test_an_azurite_serves_blobs_dies_when_killed_and_leaves_nothing_when_stopped() -> None:
    server = Azurite.start()
    try:
        counter = TrafficCounter()
        with BlobServiceClient.from_connection_string(
            server.connection_string, **counter.client_options
        ) as service:
            service.create_container("models").upload_blob("a", b"12345")
            assert service.get_container_client("models").download_blob("a").readall() == b"12345"
        assert counter.methods == {"PUT": 2, "GET": 1}
        assert counter.bytes_sent == 5
        assert counter.bytes_received == 5
        data = server.data_directory
        assert data.is_dir()
        assert server.running

        server.kill()

        assert not server.running
    finally:
        server.stop()
    assert not data.exists()


def test_a_crashed_azurite_restarts_on_its_port_with_every_acknowledged_write() -> None:
    server = Azurite.start()
    try:
        port = server.port
        with BlobServiceClient.from_connection_string(server.connection_string) as service:
            service.create_container("models").upload_blob("a", b"12345")

        server.crash()  # at once after the write: kill() alone could lose it
        assert not server.running
        server.restart()

        assert server.running
        assert server.port == port
        with BlobServiceClient.from_connection_string(server.connection_string) as service:
            assert service.get_container_client("models").download_blob("a").readall() == b"12345"
    finally:
        server.stop()
