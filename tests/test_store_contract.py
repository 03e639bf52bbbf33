"""Every store passes the store contract (``modelcache.store.testing``).

The contract is a Hypothesis state machine checked against a model of what a store holds,
hostile manifests planted straight into the store, and transfer progress. This module only
says which stores run it: the in-memory store, a local directory, an Azure container on
Azurite, and layered stores (a local directory in front of an in-memory cloud, and, for the
state machine only, in front of an Azure container).
"""

from __future__ import annotations

import datetime
import http.client
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas
from hypothesis import settings

from modelcache.azure import AzureBlobStore
from modelcache.azure.testing import ACCOUNT_KEY, ACCOUNT_NAME
from modelcache.store.testing import (
    StoreContract,
    Subject,
    SubjectFactory,
    local_subject,
    memory_subject,
    run_contract,
)


def azure_subject(azurite: Any) -> SubjectFactory:
    """Subjects in a new container each of the session's Azurite, removed on close.

    The subject's raw reads (the machine checks every object it touches) are plain GETs with
    a read-only container SAS on one kept-alive connection: through the SDK, each costs a
    hundred times the CPU, a fifth of the machine's, and tests nothing of the store.
    """

    def make(_scratch: Path) -> Subject:
        service = BlobServiceClient.from_connection_string(azurite.connection_string)
        name = f"contract-{uuid.uuid4().hex[:20]}"
        container = service.create_container(name)
        store = AzureBlobStore.from_connection_string(azurite.connection_string, name)
        reader = _RawReader(azurite, name)

        def put_object(blob: str, data: bytes) -> None:
            container.upload_blob(blob, data, overwrite=True)

        def close() -> None:
            reader.close()
            store.close()
            service.delete_container(name)
            service.close()

        return Subject(store=store, get_object=reader.get, put_object=put_object, close=close)

    return make


class _RawReader:
    """GETs of a container's blobs by name, unchecked: their bytes, or None if absent."""

    def __init__(self, azurite: Any, container: str) -> None:
        now = datetime.datetime.now(datetime.UTC)
        self._sas = generate_container_sas(
            account_name=ACCOUNT_NAME,
            container_name=container,
            account_key=ACCOUNT_KEY,
            permission=ContainerSasPermissions(read=True),
            start=now - datetime.timedelta(minutes=5),
            expiry=now + datetime.timedelta(hours=2),
        )
        assert azurite.scheme == "http", "the session's Azurite speaks plain HTTP"
        self._path = f"/{ACCOUNT_NAME}/{container}/"
        self._connection = http.client.HTTPConnection("127.0.0.1", azurite.port)

    def get(self, blob: str) -> bytes | None:
        url = f"{self._path}{quote(blob)}?{self._sas}"
        try:
            self._connection.request("GET", url)
            response = self._connection.getresponse()
        except (http.client.RemoteDisconnected, ConnectionError):
            # Node closes a connection idle for five seconds: once more, on a new one.
            self._connection.close()
            self._connection.request("GET", url)
            response = self._connection.getresponse()
        data = response.read()
        if response.status == 404:
            return None
        assert response.status == 200, (response.status, blob, data[:300])
        return data

    def close(self) -> None:
        self._connection.close()


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def make_subject(self) -> SubjectFactory:
        return memory_subject


class TestLocalStore(StoreContract):
    @pytest.fixture
    def make_subject(self) -> SubjectFactory:
        return local_subject


class TestAzureBlobStore(StoreContract):
    fuzzed_manifests = 25

    @pytest.fixture
    def make_subject(self, azurite: Any) -> SubjectFactory:
        return azure_subject(azurite)


class TestLayeredStoreOverMemory(StoreContract):
    """Evaluation results written through to the cloud tier (not so over Azure, below)."""

    @pytest.fixture
    def make_subject(self) -> SubjectFactory:
        return lambda scratch: Subject.layered(
            local_subject(scratch), memory_subject(scratch), write_through=True
        )


def test_a_layered_store_over_azure_agrees_with_the_model(azurite: Any) -> None:
    """The machine only, and fewer runs: the layered store and Azure pass the rest above."""
    cloud = azure_subject(azurite)
    run_contract(
        lambda scratch: Subject.layered(local_subject(scratch), cloud(scratch)),
        settings=settings(max_examples=15, stateful_step_count=30),
    )
