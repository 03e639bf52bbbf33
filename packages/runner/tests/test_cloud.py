"""Opening the cloud tier: transfer settings from MODELCACHE_AZURE_TRANSFER."""

from __future__ import annotations

import pytest

from modelcache.runner.cloud import TRANSFER_VARIABLE, open_cloud_store
from modelcache.runner.config import CloudCacheConfig
from modelcache.store import StoreConfigError

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
