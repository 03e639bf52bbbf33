"""How the Azure store moves bytes: concurrency, chunk sizes, timeouts, retries."""

from __future__ import annotations

from dataclasses import dataclass

from modelcache.store import StoreConfigError

__all__ = ["MiB", "TransferSettings"]

MiB = 1024 * 1024
# Service limits: a staged block holds at most 4000 MiB, a single Put Blob at most 5000 MiB.
_MAX_BLOCK = 4000 * MiB
_MAX_SINGLE_PUT = 5000 * MiB


@dataclass(frozen=True, kw_only=True)
class TransferSettings:
    """Tuning of an :class:`~modelcache.azure.AzureBlobStore`.

    A transfer keeps at most ``max_concurrency`` requests in flight, each carrying at most
    ``block_size`` bytes, so moving a model takes about ``(max_concurrency + 1) *
    block_size`` bytes of data in memory whatever its size (36 MiB with the defaults).

    :param max_concurrency: requests in flight at once, per store call.
    :param block_size: bytes per staged block when uploading and per ranged GET when
        downloading.
    :param single_put_size: files up to this size are uploaded with one request; larger
        ones in ``block_size`` blocks.
    :param connection_timeout: seconds to wait for a connection to the account.
    :param read_timeout: seconds to wait for the next bytes of an answer.
    :param retries: retries of a failed request (throttling, a 5xx, a timeout, a dropped
        connection) before the store gives up with ``StoreUnavailable``.
    :param retry_backoff: seconds before the first retry; the wait then grows
        exponentially (``retry_backoff + 2**n``, with jitter).

    ``connection_timeout``, ``read_timeout`` and the retries apply to clients the store
    builds itself (:meth:`AzureBlobStore.from_config` and the other named constructors).
    """

    max_concurrency: int = 8
    # 4 MiB, not more: buffers of 8 MiB, freed by one thread and taken by another, leave the
    # C allocator holding about twice the memory (measured: a fetch peaks at 120 MiB of RSS
    # with 4 MiB blocks, 220 MiB with 8 MiB), for no gain in speed.
    block_size: int = 4 * MiB
    single_put_size: int = 4 * MiB
    connection_timeout: float = 10.0
    read_timeout: float = 60.0
    retries: int = 4
    retry_backoff: int = 1

    def __post_init__(self) -> None:
        checks = (
            ("max_concurrency", self.max_concurrency, 1, 256),
            ("block_size", self.block_size, 1, _MAX_BLOCK),
            ("single_put_size", self.single_put_size, 1, _MAX_SINGLE_PUT),
            ("retries", self.retries, 0, 100),
            ("retry_backoff", self.retry_backoff, 0, 3600),
        )
        for name, value, low, high in checks:
            if type(value) is not int or not low <= value <= high:
                raise StoreConfigError(
                    f"transfer setting {name}={value!r} must be a whole number from {low} to {high}"
                )
        for name, seconds in (
            ("connection_timeout", self.connection_timeout),
            ("read_timeout", self.read_timeout),
        ):
            if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds <= 0:
                raise StoreConfigError(f"transfer setting {name}={seconds!r} must be positive")
