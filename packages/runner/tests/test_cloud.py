"""Opening the cloud tier: transfer settings from MODELCACHE_AZURE_TRANSFER; a store opened
on its first use where its place is known without the SDK."""

from __future__ import annotations

import pytest

from modelcache.runner.cloud import (
    TRANSFER_VARIABLE,
    DeferredStore,
    defer_cloud_store,
    open_cloud_store,
)
from modelcache.runner.config import CloudCacheConfig
from modelcache.store import MaintainedStore, StoreConfigError

# Azurite's well-known development key, at a port nothing listens on: no request is made.
CONNECTION_STRING = (
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
    "BlobEndpoint=http://127.0.0.1:9/devstoreaccount1;"
)


def _open(transfer: str | None) -> object:
    environ = {"AZURE_STORAGE_CONNECTION_STRING": CONNECTION_STRING}
    if transfer is not None:
        environ[TRANSFER_VARIABLE] = transfer
    return open_cloud_store(CloudCacheConfig(container_name="models"), environ=environ)


def test_transfer_settings_are_the_defaults_unless_the_environment_overrides_some() -> None:
    from modelcache.azure import AzureBlobStore, TransferSettings

    default = _open(None)
    tuned = _open(" retries=0, read_timeout=2.5 ,block_size=65536,")

    assert isinstance(default, AzureBlobStore)
    assert isinstance(tuned, AzureBlobStore)
    assert default.settings == TransferSettings()
    assert tuned.settings == TransferSettings(retries=0, read_timeout=2.5, block_size=65536)


@pytest.mark.parametrize(
    ("transfer", "problem"),
    [
        ("retry=1", "unknown transfer setting 'retry'; known: max_concurrency, "),
        ("retries=many", "retries must be a whole number, got 'many'"),
        ("retries=1.5", "retries must be a whole number, got '1.5'"),
        ("read_timeout=nan", "read_timeout must be a number, got 'nan'"),
        ("retries=-1", "retries=-1 must be a whole number from 0 to 100"),
        ("read_timeout=0", "read_timeout=0.0 must be positive"),
    ],
)
def test_a_bad_transfer_setting_is_one_line_naming_the_variable(
    transfer: str, problem: str
) -> None:
    with pytest.raises(StoreConfigError) as raised:
        _open(transfer)

    message = str(raised.value)
    assert message.startswith(f"{TRANSFER_VARIABLE}: ")
    assert problem in message
    assert "\n" not in message


def test_a_store_whose_place_is_known_opens_on_its_first_use() -> None:
    from modelcache.azure import AzureBlobStore

    environ = {"AZURE_STORAGE_CONNECTION_STRING": CONNECTION_STRING}
    deferred = defer_cloud_store(CloudCacheConfig(container_name="models"), environ=environ)
    assert isinstance(deferred, DeferredStore)
    assert repr(deferred) == (
        "DeferredStore(container 'models' at http://127.0.0.1:9/devstoreaccount1)"
    )
    assert "a2V5" not in repr(deferred), "never the key"
    assert isinstance(deferred, MaintainedStore)
    assert deferred.tier == "cloud"
    assert deferred._store is None, "nothing opened yet"
    assert isinstance(deferred.opened(), AzureBlobStore)
    assert deferred.opened() is deferred.opened()

    with_url = CloudCacheConfig(
        account_url="https://acct.blob.core.windows.net/?sv=2024&sig=secret",
        container_name="models",
    )
    assert repr(defer_cloud_store(with_url, environ={})) == (
        "DeferredStore(container 'models' at https://acct.blob.core.windows.net)"
    )


def test_a_store_whose_place_only_the_sdk_can_tell_is_opened_at_once() -> None:
    from modelcache.azure import AzureBlobStore

    environ = {"AZURE_STORAGE_CONNECTION_STRING": CONNECTION_STRING, TRANSFER_VARIABLE: "retries=0"}
    tuned = defer_cloud_store(CloudCacheConfig(container_name="models"), environ=environ)
    assert isinstance(tuned, AzureBlobStore)
    # No account anywhere: the mistake is said now, before any work, as it always was.
    with pytest.raises(StoreConfigError, match="AZURE_STORAGE_CONNECTION_STRING"):
        defer_cloud_store(CloudCacheConfig(container_name="models"), environ={})
    with pytest.raises(StoreConfigError, match="placeholder"):
        defer_cloud_store(
            CloudCacheConfig(account_url="https://<account>.blob.core.windows.net",
                             container_name="models"), environ={}
        )  # fmt: skip
