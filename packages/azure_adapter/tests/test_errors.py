"""SDK exceptions become store errors that say what to do, and never hold a secret."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    IncompleteReadError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.identity import CredentialUnavailableError

from modelcache.azure import AzureBlobStore, TransferSettings
from modelcache.azure._errors import Place, public_url, store_error, translated
from modelcache.azure.testing import Azurite
from modelcache.store import (
    AccessDenied,
    CorruptEntry,
    EntryNotFound,
    StoreConfigError,
    StoreError,
    StoreUnavailable,
)

from .model_dirs import key_of

PLACE = Place(
    account_url="https://acct.blob.core.windows.net", account_name="acct", container="models"
)
SECRET = "sig=c2VjcmV0IHNpZ25hdHVyZQ%3D%3D"
QUICK = TransferSettings(connection_timeout=1, read_timeout=1, retries=0, retry_backoff=0)


def answered(kind: type[HttpResponseError], status: int, code: str | None) -> AzureError:
    """An exception as the storage SDK raises it for an HTTP answer (its text quotes the
    request, secrets and all)."""
    error = kind(message=f"failed: https://acct.blob.core.windows.net/models?{SECRET}")
    error.status_code = status
    error.error_code = code  # type: ignore[attr-defined]
    return error


def refused_connection() -> AzureError:
    try:
        raise ConnectionRefusedError(111, "Connection refused")
    except ConnectionRefusedError as cause:
        return ServiceRequestError(
            f"HTTPConnectionPool: Max retries exceeded with url: /models?{SECRET}", error=cause
        )


# (what the SDK raised, the store error expected, phrases its message must hold)
CASES: dict[str, tuple[AzureError, type[StoreError], tuple[str, ...]]] = {
    "no credential to sign in with": (
        CredentialUnavailableError(f"DefaultAzureCredential failed {SECRET}"),
        StoreConfigError,
        ("no usable Azure credential", "az login", "AZURE_STORAGE_CONNECTION_STRING"),
    ),
    "token request failed": (
        ClientAuthenticationError(f"AADSTS700016 {SECRET}"),
        StoreConfigError,
        ("az login",),
    ),
    "bad signature": (
        answered(ClientAuthenticationError, 403, "AuthenticationFailed"),
        StoreConfigError,
        ("rejected the credential", "HTTP 403 AuthenticationFailed", "renew an expired SAS"),
    ),
    "401": (
        answered(ClientAuthenticationError, 401, "InvalidAuthenticationInfo"),
        StoreConfigError,
        ("rejected the credential",),
    ),
    "missing permission": (
        answered(HttpResponseError, 403, "AuthorizationPermissionMismatch"),
        AccessDenied,
        ("may not read the manifest", "Storage Blob Data Contributor", "write"),
    ),
    "firewall": (
        answered(HttpResponseError, 403, "AuthorizationSourceIPMismatch"),
        AccessDenied,
        ("firewall",),
    ),
    "refused, no reason given": (
        answered(HttpResponseError, 403, "AuthorizationFailure"),
        AccessDenied,
        ("refused", "unexpired", "firewall"),
    ),
    "403 without a code": (answered(HttpResponseError, 403, None), AccessDenied, ("HTTP 403",)),
    "no container": (
        answered(ResourceNotFoundError, 404, "ContainerNotFound"),
        StoreConfigError,
        ("az storage container create --name models --account-name acct",),
    ),
    "no blob": (
        answered(ResourceNotFoundError, 404, "BlobNotFound"),
        EntryNotFound,
        ("HTTP 404 BlobNotFound",),
    ),
    "connection refused": (
        refused_connection(),
        StoreUnavailable,
        ("cannot reach https://acct.blob.core.windows.net", "(Connection refused)", "retry"),
    ),
    "read timed out": (
        ServiceResponseError(f"Read timed out {SECRET}", error=TimeoutError("timed out")),
        StoreUnavailable,
        ("did not answer in full", "read_timeout"),
    ),
    "answer cut off": (
        IncompleteReadError(f"incomplete {SECRET}"),
        StoreUnavailable,
        ("did not answer in full",),
    ),
    "busy": (
        answered(HttpResponseError, 503, "ServerBusy"),
        StoreUnavailable,
        ("HTTP 503 ServerBusy", "retry later"),
    ),
    "throttled": (answered(HttpResponseError, 429, None), StoreUnavailable, ("HTTP 429",)),
    "conflict": (
        answered(ResourceExistsError, 409, "LeaseIdMissing"),
        StoreError,
        ("HTTP 409 LeaseIdMissing",),
    ),
    "anything else": (AzureError(f"odd {SECRET}"), StoreError, ("AzureError",)),
}


@pytest.mark.parametrize(("raised", "expected", "phrases"), CASES.values(), ids=CASES.keys())
def test_an_sdk_exception_becomes_a_store_error_that_says_what_to_do(
    raised: AzureError, expected: type[StoreError], phrases: tuple[str, ...]
) -> None:
    error = store_error(raised, PLACE, "read the manifest of entry k")

    assert type(error) is expected
    for phrase in phrases:
        assert phrase in str(error)
    assert "c2VjcmV0" not in str(error)
    assert "\n" not in str(error)


def test_translated_raises_the_callers_error_for_a_missing_blob_only() -> None:
    def missing() -> StoreError:
        return CorruptEntry("the blob of 'a' is missing")

    with pytest.raises(CorruptEntry), translated(PLACE, "download", missing=missing):
        raise answered(ResourceNotFoundError, 404, "BlobNotFound")
    with pytest.raises(StoreConfigError), translated(PLACE, "download", missing=missing):
        raise answered(ResourceNotFoundError, 404, "ContainerNotFound")


def test_translated_hides_the_sdk_exception() -> None:
    with pytest.raises(StoreUnavailable) as raised, translated(PLACE, "list"):
        raise refused_connection()

    assert raised.value.__cause__ is None
    assert raised.value.__suppress_context__


def test_translated_lets_other_exceptions_through() -> None:
    with pytest.raises(KeyError), translated(PLACE, "list"):
        raise KeyError("not from the SDK")


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://acct.blob.core.windows.net/c?sv=1&sig=abc", "https://acct.blob.core.windows.net/c"),
        ("http://user:pw@127.0.0.1:10000/devstoreaccount1/", "http://127.0.0.1:10000/devstoreaccount1"),
        ("https://acct.blob.core.windows.net#sig=abc", "https://acct.blob.core.windows.net"),
    ],
)  # fmt: skip
def test_a_url_is_shown_without_query_fragment_or_user(url: str, shown: str) -> None:
    assert public_url(url) == shown


# -- against real endpoints


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_an_unreachable_endpoint_is_unavailable_at_once() -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}/devstoreaccount1/models?sv=2024-01-01&{SECRET}"
    store = AzureBlobStore.from_sas_url(url, settings=QUICK)
    started = time.monotonic()

    with pytest.raises(StoreUnavailable) as raised:
        store.snapshot([key_of("any")[0]])

    assert time.monotonic() - started < 5
    assert f"cannot reach http://127.0.0.1:{port}/devstoreaccount1" in str(raised.value)
    assert "c2VjcmV0" not in str(raised.value)


@pytest.fixture
def silent_endpoint() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(16)
        yield server.getsockname()[1]


def test_an_endpoint_that_never_answers_is_unavailable_after_the_read_timeout(
    silent_endpoint: int,
) -> None:
    url = f"http://127.0.0.1:{silent_endpoint}/devstoreaccount1/models?sv=2024-01-01&{SECRET}"
    store = AzureBlobStore.from_sas_url(url, settings=QUICK)
    started = time.monotonic()

    with pytest.raises(StoreUnavailable, match="did not answer") as raised:
        store.read_manifest(key_of("any")[0])

    assert 0.9 < time.monotonic() - started < 5
    assert "c2VjcmV0" not in str(raised.value)


@pytest.mark.azurite
def test_a_paused_service_is_unavailable_and_recovers(
    azurite: Azurite, azure_container: tuple[str, str]
) -> None:
    connection_string, name = azure_container
    store = AzureBlobStore.from_connection_string(connection_string, name, settings=QUICK)
    key = key_of("paused")[0]
    store.write_evaluation(key, "accuracy-v1", {"accuracy": 1})

    azurite.pause()
    try:
        with pytest.raises(StoreUnavailable):
            store.read_evaluation(key, "accuracy-v1")
    finally:
        azurite.resume()

    assert store.read_evaluation(key, "accuracy-v1") == {"accuracy": 1}
