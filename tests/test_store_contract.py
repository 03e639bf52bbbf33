"""Every store passes the store contract (``modelcache.store.testing``).

The contract is a Hypothesis state machine checked against a model of what a store holds,
hostile manifests planted straight into the store, and transfer progress. This module only
says which stores run it: the in-memory store, a local directory, an Azure container on
Azurite, and layered stores (a local directory in front of an in-memory cloud, and, for the
state machine only, in front of an Azure container).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient
from hypothesis import settings

from modelcache.azure import AzureBlobStore
from modelcache.store.testing import (
    StoreContract,
    Subject,
    SubjectFactory,
    local_subject,
    memory_subject,
    run_contract,
)


def azure_subject(azurite: Any) -> SubjectFactory:
    """Subjects in a new container each of the session's Azurite, removed on close."""

    def make(_scratch: Path) -> Subject:
        service = BlobServiceClient.from_connection_string(azurite.connection_string)
        name = f"contract-{uuid.uuid4().hex[:20]}"
        container = service.create_container(name)
        store = AzureBlobStore.from_connection_string(azurite.connection_string, name)

        def get_object(blob: str) -> bytes | None:
            try:
                return container.download_blob(blob).readall()
            except ResourceNotFoundError:
                return None

        def put_object(blob: str, data: bytes) -> None:
            container.upload_blob(blob, data, overwrite=True)

        def close() -> None:
            store.close()
            service.delete_container(name)
            service.close()

        return Subject(store=store, get_object=get_object, put_object=put_object, close=close)

    return make


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
