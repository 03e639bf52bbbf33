"""Azure SDK exceptions become the planner's ``StoreError`` family here, and only here.

Theory of operation
-------------------
Every call into the SDK runs inside :func:`translated`, which hands any
``azure.core.exceptions.AzureError`` to :func:`store_error`. The rules, first match wins:

=====================================================  ==================================
SDK exception                                          store error
=====================================================  ==================================
``ClientAuthenticationError`` without an HTTP answer   ``StoreConfigError``: no credential
(a token credential found nothing to sign in with)     (run ``az login``, ...)
HTTP 403 ``AuthenticationFailed`` and kin              ``StoreConfigError``: credential
                                                       rejected (wrong key, expired SAS)
any other HTTP 401/403                                 ``AccessDenied``: not allowed
HTTP 404 ``ContainerNotFound``                         ``StoreConfigError``: create it
HTTP 404 otherwise                                     the caller's ``missing`` error, else
                                                       ``EntryNotFound``
no connection, no answer in time, a cut-off answer,    ``StoreUnavailable``: retry later
HTTP 408, 429, 5xx
anything else                                          ``StoreError``
=====================================================  ==================================

Messages are built only from what is known to be safe: the account URL without its query
string, the container, the HTTP status, the service's error code and an operating-system
reason such as "Connection refused". The SDK's own text is never copied: a connection
error quotes the request URL, SAS signature included. For the same reason the SDK exception
is not chained (``from None``); its status and error code are in the message.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit, urlunsplit

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    DecodeError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from modelcache.store import (
    AccessDenied,
    EntryNotFound,
    StoreConfigError,
    StoreError,
    StoreUnavailable,
)

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient

__all__ = ["Place", "error_code", "public_url", "store_error", "translated"]

# What a refusal (HTTP 401/403) means, by the service's error code, and what to do about it.
# {url}, {place}, {doing} and {answer} are filled in; other codes get the last entry's advice.
_REJECTED = (
    "{url} rejected the credential ({answer}) when trying to {doing}: check the account key "
    "or connection string, renew an expired SAS, or run `az login` again"
)
_NOT_ALLOWED = (
    "the credential may not {doing} in {place} ({answer}): grant it the 'Storage Blob Data "
    "Contributor' role on the container, or use a SAS with read, add, create, write and list "
    "permissions"
)
_NOT_FROM_HERE = (
    "{place} refuses this machine or protocol ({answer}) when trying to {doing}: check the "
    "SAS's allowed IP range and protocol, or the storage account's firewall"
)
_REFUSED = (
    "{place} refused to let the credential {doing} ({answer}): check that the key or SAS is "
    "right and unexpired and grants read, add, create, write and list (with `az login`: the "
    "'Storage Blob Data Contributor' role), and that the account's firewall admits this machine"
)
_REFUSALS: dict[str, tuple[type[StoreConfigError], str]] = {
    "AuthenticationFailed": (StoreConfigError, _REJECTED),
    "InvalidAuthenticationInfo": (StoreConfigError, _REJECTED),
    "NoAuthenticationInformation": (StoreConfigError, _REJECTED),
    "AuthorizationPermissionMismatch": (AccessDenied, _NOT_ALLOWED),
    "AuthorizationResourceTypeMismatch": (AccessDenied, _NOT_ALLOWED),
    "AuthorizationServiceMismatch": (AccessDenied, _NOT_ALLOWED),
    "AuthorizationSourceIPMismatch": (AccessDenied, _NOT_FROM_HERE),
    "AuthorizationProtocolMismatch": (AccessDenied, _NOT_FROM_HERE),
    # Azure: a firewall or policy said no. Azurite: also a wrong key or SAS signature.
    "AuthorizationFailure": (AccessDenied, _REFUSED),
}
_TRANSIENT_STATUS = frozenset({408, 429})


def public_url(url: str) -> str:
    """``url`` without its query string or fragment (where a SAS lives) or user info."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    netloc = f"[{host}]" if ":" in host else host
    if parts.port is not None:
        netloc = f"{netloc}:{parts.port}"
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


@dataclass(frozen=True, kw_only=True)
class Place:
    """Where a store lives, as it may be shown to a user: never with a credential."""

    account_url: str
    account_name: str
    container: str

    @classmethod
    def of(cls, container: ContainerClient) -> Place:
        """Where ``container`` lives, its URL stripped of any SAS."""
        url = public_url(container.url)
        return cls(
            account_url=url.rsplit("/", 1)[0],
            account_name=container.account_name or "",
            container=container.container_name,
        )

    def __str__(self) -> str:
        return f"container {self.container!r} at {self.account_url}"


def _reason(error: BaseException) -> str:
    """A safe, short operating-system reason from the exception's causes, if there is one."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError) and current.strerror:
            return current.strerror
        if isinstance(current, TimeoutError):
            return "timed out"
        inner = getattr(current, "inner_exception", None)
        pending.extend(
            [
                current.__context__,
                current.__cause__,
                inner if isinstance(inner, BaseException) else None,
            ]
        )
        pending.extend(arg for arg in current.args if isinstance(arg, BaseException))
    return ""


def error_code(error: AzureError) -> str | None:
    """The service's error code; the SDK gives an enum member or a plain string."""
    code = getattr(error, "error_code", None)
    return None if code is None else str(getattr(code, "value", code))


def store_error(error: AzureError, place: Place, doing: str) -> StoreError:
    """The store error for ``error``, raised while trying to ``doing`` ("read the manifest
    of ...") in ``place``. 404s other than a missing container come out as
    ``EntryNotFound``; :func:`translated` lets a caller say what a 404 means instead."""
    status = getattr(error, "status_code", None)
    code = error_code(error)
    answer = f"HTTP {status}{f' {code}' if code else ''}"
    if isinstance(error, ClientAuthenticationError) and status is None:
        return StoreConfigError(
            f"no usable Azure credential for {place.account_url}: run `az login`, or set "
            "AZURE_STORAGE_CONNECTION_STRING, or configure a SAS URL for the container"
        )
    if status in (401, 403):
        kind, advice = _REFUSALS.get(code or "", (AccessDenied, _REFUSED))
        if status == 401:
            kind, advice = StoreConfigError, _REJECTED
        return kind(advice.format(url=place.account_url, place=place, doing=doing, answer=answer))
    if status == 404 and code == "ContainerNotFound":
        return StoreConfigError(
            f"{place} does not exist: create it with `az storage container create "
            f"--name {place.container} --account-name {place.account_name} "
            "--auth-mode login`, or fix the container name"
        )
    if status == 404:
        return EntryNotFound(f"not found ({answer}) when trying to {doing} in {place}")
    if isinstance(error, ServiceRequestError):
        reason = _reason(error)
        return StoreUnavailable(
            f"cannot reach {place.account_url} to {doing}{f' ({reason})' if reason else ''}: "
            "check the account URL and the network, then retry"
        )
    if isinstance(error, ServiceResponseError | DecodeError) and status is None:
        reason = _reason(error)
        return StoreUnavailable(
            f"{place.account_url} did not answer in full when trying to {doing}"
            f"{f' ({reason})' if reason else ''}: retry later, or raise read_timeout"
        )
    if isinstance(status, int) and (status >= 500 or status in _TRANSIENT_STATUS):
        return StoreUnavailable(
            f"{place.account_url} answered {answer} when trying to {doing}, even after "
            "retries: the service is busy or failing; retry later"
        )
    if isinstance(error, HttpResponseError) and status is not None:
        return StoreError(f"{place.account_url} answered {answer} when trying to {doing}")
    return StoreError(
        f"the Azure SDK failed ({type(error).__name__}) when trying to {doing} in {place}"
    )


@contextmanager
def translated(
    place: Place, doing: str, *, missing: Callable[[], StoreError] | None = None
) -> Iterator[None]:
    """Run the body, turning any SDK exception into a store error.

    :param doing: what the body does, as the end of "when trying to ...".
    :param missing: makes the error for a 404 other than a missing container (a missing
        blob is a corrupt entry in one place and a miss in another).
    """
    try:
        yield
    except AzureError as error:
        if (
            missing is not None
            and isinstance(error, ResourceNotFoundError | HttpResponseError)
            and getattr(error, "status_code", None) == 404
            and error_code(error) != "ContainerNotFound"
        ):
            raise missing() from None
        raise store_error(error, place, doing) from None
