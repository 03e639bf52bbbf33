"""Fixtures of the Azure adapter's tests: stores on a fresh container, raw container access.

The Azurite emulator and a fresh container per test (``azurite``, ``azure_container``) come
from the workspace's root ``conftest.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from azure.storage.blob import ContainerClient

from modelcache.azure import AzureBlobStore, TransferSettings
from modelcache.azure.testing import TrafficCounter

from .model_dirs import SMALL


@pytest.fixture
def make_store(
    azure_container: tuple[str, str],
) -> Iterator[Callable[..., AzureBlobStore]]:
    """Stores on the test's container: ``make_store(settings=..., counter=...)``."""
    connection_string, name = azure_container
    stores: list[AzureBlobStore] = []

    def make(
        settings: TransferSettings = SMALL, counter: TrafficCounter | None = None
    ) -> AzureBlobStore:
        store = AzureBlobStore.from_connection_string(
            connection_string,
            name,
            settings=settings,
            client_options=counter.client_options if counter else None,
        )
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


@pytest.fixture
def store(make_store: Callable[..., AzureBlobStore]) -> AzureBlobStore:
    return make_store()


@pytest.fixture
def raw(azure_container: tuple[str, str]) -> Iterator[ContainerClient]:
    """The test's container through the plain SDK, to plant and damage blobs."""
    connection_string, name = azure_container
    with ContainerClient.from_connection_string(connection_string, name) as client:
        yield client
