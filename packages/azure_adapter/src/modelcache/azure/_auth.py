"""Which credential a store signs in with, and the container client built with it.

Theory of operation
-------------------
The first row that applies decides; explicit configuration beats the environment.

====================================================  =========================================
given                                                 the store signs in with
====================================================  =========================================
``account_url`` carrying a SAS (``?...&sig=...``)     that SAS; the URL may name the container
a ``credential`` object                               it, at ``account_url`` (required)
a connection string (the argument, else               its account key or SAS; an
``AZURE_STORAGE_CONNECTION_STRING``)                  ``account_url`` given beside it must name
                                                      the same endpoint, as with the az CLI
``account_url`` alone                                 ``DefaultAzureCredential`` (``az login``,
                                                      managed identity, a service principal in
                                                      the environment); https only
nothing                                               nothing: ``StoreConfigError``
====================================================  =========================================

No message built here holds a key or a signature: URLs are shown through
:func:`~modelcache.azure._errors.public_url`, connection strings never. The client is built
without ``logging_enable`` (which would log request headers), and a filter on urllib3's
connection log masks SAS signatures in the request lines it writes at DEBUG level.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from urllib3.util.retry import Retry

from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential, TokenCredential
from azure.core.pipeline.transport import RequestsTransport
from azure.storage.blob import BlobServiceClient, ContainerClient, ExponentialRetry
from modelcache.store import StoreConfigError

from ._errors import public_url
from ._settings import TransferSettings

__all__ = ["CONNECTION_STRING_VARIABLE", "Credential", "open_container"]

CONNECTION_STRING_VARIABLE = "AZURE_STORAGE_CONNECTION_STRING"
Credential = TokenCredential | AzureNamedKeyCredential | AzureSasCredential
# Azure's rule: 3-63 characters, lowercase letters, digits and single hyphens inside.
_CONTAINER = re.compile(r"[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62}")
# What the storage SDK's own transport reads from a socket at a time (requests reads 4 KiB).
_READ_SIZE = 256 * 1024
_SIGNATURE = re.compile(r"(?i)(sig=)[^&\s\"']+")


class _MaskSignatures(logging.Filter):
    """urllib3 logs each request line, query string included, at DEBUG level."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple) and any(
            isinstance(arg, str) and "sig=" in arg.lower() for arg in record.args
        ):
            record.args = tuple(
                _SIGNATURE.sub(r"\1REDACTED", arg) if isinstance(arg, str) else arg
                for arg in record.args
            )
        return True


def _mask_transport_logs() -> None:
    logger = logging.getLogger("urllib3.connectionpool")
    if not any(isinstance(existing, _MaskSignatures) for existing in logger.filters):
        logger.addFilter(_MaskSignatures())


def _client_options(
    settings: TransferSettings, options: Mapping[str, Any] | None
) -> dict[str, Any]:
    """SDK client keyword arguments: the settings, then the caller's ``options`` on top."""
    extra = dict(options or {})
    if "transport" not in extra:
        # requests keeps 10 connections per host by default; a larger window needs more, or
        # every request beyond the tenth opens (and then drops) a connection of its own.
        session = requests.Session()
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=4,
            pool_maxsize=settings.max_concurrency + 4,
            max_retries=Retry(total=False, redirect=False, raise_on_status=False),
        )
        session.mount("http://", adapter)
        session.mount("https://", adapter)
        transport_options: dict[str, Any] = {
            "connection_timeout": settings.connection_timeout,
            "read_timeout": settings.read_timeout,
            "connection_data_block_size": _READ_SIZE,
        }
        for name in (
            "connection_verify",
            "connection_cert",
            "use_env_settings",
            "connection_data_block_size",
        ):
            if name in extra:
                transport_options[name] = extra[name]
        extra["transport"] = RequestsTransport(session=session, **transport_options)
    return {
        "retry_policy": ExponentialRetry(
            initial_backoff=settings.retry_backoff,
            increment_base=2,
            retry_total=settings.retries,
            random_jitter_range=1,
        ),
        "connection_timeout": settings.connection_timeout,
        "read_timeout": settings.read_timeout,
        "max_single_put_size": settings.single_put_size,
        "max_block_size": settings.block_size,
        "max_single_get_size": settings.block_size,
        "max_chunk_get_size": settings.block_size,
        **extra,
    }


def _check_container(name: str | None) -> str:
    if not name:
        raise StoreConfigError(
            "no container name given: set container_name (or give a SAS URL of the container)"
        )
    if not _CONTAINER.fullmatch(name):
        raise StoreConfigError(
            f"{name!r} is not a valid container name: use 3-63 lowercase letters, digits and "
            "single hyphens, starting and ending with a letter or digit"
        )
    return name


def _same_endpoint(a: str, b: str) -> bool:
    one, two = urlsplit(public_url(a)), urlsplit(public_url(b))
    default = {"http": 80, "https": 443}
    return (
        one.scheme.lower() == two.scheme.lower()
        and (one.hostname or "").lower() == (two.hostname or "").lower()
        and (one.port or default.get(one.scheme.lower()))
        == (two.port or default.get(two.scheme.lower()))
        and one.path.rstrip("/") == two.path.rstrip("/")
    )


def _is_ip_or_localhost(host: str) -> bool:
    # The SDK's own rule: such hosts are emulators and name the account in the path.
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host.lower() == "localhost"
    return True


def _from_sas_url(url: str, container_name: str | None, options: dict[str, Any]) -> ContainerClient:
    parts = urlsplit(url)
    segments = [segment for segment in parts.path.split("/") if segment]
    # A container SAS URL ends with the container: https://acct.blob.core.windows.net/c?...
    # (or, path-style, as on Azurite: http://127.0.0.1:10000/devstoreaccount1/c?...).
    path_style = _is_ip_or_localhost(parts.hostname or "")
    in_url = segments[-1] if len(segments) == (2 if path_style else 1) else None
    if in_url is not None:
        if container_name is not None and container_name != in_url:
            raise StoreConfigError(
                f"the SAS URL names container {in_url!r} but container_name is "
                f"{container_name!r}: drop one or make them agree"
            )
        _check_container(in_url)
        return ContainerClient.from_container_url(url, **options)
    name = _check_container(container_name)
    return ContainerClient(account_url=url, container_name=name, **options)


def _from_connection_string(
    connection_string: str,
    source: str,
    account_url: str | None,
    container_name: str | None,
    options: dict[str, Any],
) -> ContainerClient:
    try:
        service = BlobServiceClient.from_connection_string(connection_string)
        endpoint = public_url(service.url)
    except (ValueError, TypeError, KeyError):
        # The SDK's message may quote the connection string: it is not repeated.
        raise StoreConfigError(
            f"{source} is not a valid connection string: expected "
            "'DefaultEndpointsProtocol=https;AccountName=...;AccountKey=...' or "
            "'BlobEndpoint=...;SharedAccessSignature=...'"
        ) from None
    service.close()
    if account_url is not None and not _same_endpoint(account_url, endpoint):
        raise StoreConfigError(
            f"{source} is for {endpoint} but account_url is {public_url(account_url)}: "
            f"unset {source} or make account_url name the same account"
        )
    name = _check_container(container_name)
    return ContainerClient.from_connection_string(connection_string, name, **options)


def open_container(
    *,
    account_url: str | None,
    container_name: str | None,
    credential: Credential | None,
    connection_string: str | None,
    environ: Mapping[str, str],
    settings: TransferSettings,
    client_options: Mapping[str, Any] | None,
) -> ContainerClient:
    """The container client for this configuration (see the table above); no request is
    made. Raises ``StoreConfigError`` with what to do when the configuration is unusable."""
    _mask_transport_logs()
    options = _client_options(settings, client_options)
    if account_url is not None:
        parts = urlsplit(account_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise StoreConfigError(
                f"account_url {public_url(account_url)!r} is not an http(s) URL such as "
                "https://<account>.blob.core.windows.net"
            )
        if "sig=" in parts.query.lower():
            if credential is not None:
                raise StoreConfigError(
                    "account_url carries a SAS and a credential was given too: use one of them"
                )
            return _from_sas_url(account_url, container_name, options)
    if credential is not None:
        if account_url is None:
            raise StoreConfigError("a credential was given without account_url: set both")
        name = _check_container(container_name)
        _require_https_for_tokens(account_url, credential)
        return ContainerClient(account_url, name, credential=credential, **options)
    if connection_string is not None:
        return _from_connection_string(
            connection_string, "the connection string", account_url, container_name, options
        )
    from_environment = environ.get(CONNECTION_STRING_VARIABLE)
    if from_environment:
        return _from_connection_string(
            from_environment, CONNECTION_STRING_VARIABLE, account_url, container_name, options
        )
    if account_url is None:
        raise StoreConfigError(
            "no Azure storage account configured: set account_url "
            "(https://<account>.blob.core.windows.net) and run `az login`, or set "
            f"{CONNECTION_STRING_VARIABLE}, or give a SAS URL of the container"
        )
    name = _check_container(container_name)
    # azure.identity (msal, cryptography's x509) is imported only by a store that signs in
    # with it: a connection string or a SAS does without its tenth of a second.
    from azure.identity import DefaultAzureCredential

    default = DefaultAzureCredential()
    _require_https_for_tokens(account_url, default)
    return ContainerClient(account_url, name, credential=default, **options)


def _require_https_for_tokens(account_url: str, credential: Credential) -> None:
    # The SDK refuses to send a bearer token over plain http, but only at the first request
    # and with a message about TLS; say it up front, in the user's terms.
    bearer = not isinstance(credential, AzureNamedKeyCredential | AzureSasCredential)
    if urlsplit(account_url).scheme != "https" and bearer:
        raise StoreConfigError(
            f"signing in with Azure AD (az login, managed identity) needs an https "
            f"account_url, not {public_url(account_url)}; or use a connection string or SAS"
        )
