"""Transfer settings: defaults that bound memory, and clear refusals of nonsense."""

from __future__ import annotations

from typing import Any

import pytest

from modelcache.azure import MiB, TransferSettings
from modelcache.store import StoreConfigError


def test_the_defaults_keep_a_transfer_under_100_mib_of_buffers() -> None:
    settings = TransferSettings()
    assert (settings.max_concurrency + 1) * settings.block_size <= 100 * MiB
    assert settings.single_put_size <= settings.block_size


@pytest.mark.parametrize(
    "change",
    [
        {"max_concurrency": 0},
        {"max_concurrency": 2.5},
        {"block_size": 0},
        {"block_size": 4001 * MiB},
        {"single_put_size": -1},
        {"retries": -1},
        {"retries": True},
        {"retry_backoff": 1.5},
        {"connection_timeout": 0},
        {"read_timeout": -1},
        {"read_timeout": True},
    ],
    ids=repr,
)
def test_a_setting_out_of_range_is_refused_by_name(change: dict[str, Any]) -> None:
    (name,) = change
    with pytest.raises(StoreConfigError, match=name):
        TransferSettings(**change)
