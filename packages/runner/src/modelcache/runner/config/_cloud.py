"""Olive's shared-cache settings, in every form Olive has shipped, read into one
``cloud_cache_config`` and one local ``cache_dir``.

Theory of operation
-------------------
The forms are ``cloud_cache_config`` (Olive's 2024 form, and modelcache's own), ``cache_dir``
as a folder, an Azure container URL (``https://<account>.blob.core.windows.net/<container>``)
or ``[folder, URL]``, ``cache_config`` (``account_name``, ``container_name``,
``enable_shared_cache``, ``update_shared_cache``, its own ``cache_dir``...) and a top-level
``enable_shared_cache``. Each form *claims* some of four settings: the account, the
container, whether the cloud cache is on, and whether to upload. Claims are taken in that
order; one that differs from an earlier claim of the same setting is a problem naming both
paths. The command line's ``--account_name`` and ``--container_name`` then override the
claims. The result is written as ``cloud_cache_config`` (the values other forms claimed
filled in, their origins recorded), for the converter to check as it always has.

A URL is never a local folder: ``cache_dir: "https://..."`` once became a folder named
``https:``.
"""

from __future__ import annotations

import re
from typing import Any, Final
from urllib.parse import urlsplit

from attrs import frozen

from ._reading import Reading, json_type, quote

__all__ = ["NO_OVERRIDES", "CloudOverrides", "account_url_of", "check_account_name", "read_cloud"]

_ACCOUNT_NAME = re.compile(r"[a-z0-9]{3,24}")
_AZURE_HOST = re.compile(r"([a-z0-9]{3,24})\.blob\.core\.windows\.net")
#: A scheme and a slash: what no local folder starts with (a drive letter is one letter).
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]+:/")
_CACHE_CONFIG_FIELDS: Final = frozenset({
    "cache_dir", "account_name", "container_name", "enable_shared_cache",
    "update_shared_cache", "clean_cache", "clean_evaluation_cache",
})  # fmt: skip
#: Each claimed setting, and its field in ``cloud_cache_config``.
_FIELDS: Final = {
    "account": "account_url",
    "container": "container_name",
    "upload": "upload_to_cloud",
    "enabled": "enable_cloud_cache",
}
_CONTAINER_URL = "https://<account>.blob.core.windows.net/<container>"
_NO_CONTAINER = (
    "true names no container to cache in: in Olive it meant Microsoft's public "
    "olivecachemodels container, which holds Olive's cache, not modelcache's; name your own "
    "container (container_name, or a cache_dir of " + _CONTAINER_URL + ")"
)


@frozen(kw_only=True)
class CloudOverrides:
    """The command line's ``--account_name`` and ``--container_name``: they replace what
    the config says of the account and container, and turn the cloud cache on."""

    account_name: str | None = None
    container_name: str | None = None


NO_OVERRIDES: Final = CloudOverrides()


def check_account_name(name: str) -> str:
    """``name`` if it can be a storage account's name, else ``ValueError`` saying why."""
    if not _ACCOUNT_NAME.fullmatch(name):
        raise ValueError(
            f"{quote(name)} is not a storage account name: use 3-24 lowercase letters and digits"
        )
    return name


def account_url_of(name: str) -> str:
    """The blob endpoint of the storage account ``name``."""
    return f"https://{name}.blob.core.windows.net"


@frozen
class _Claim:
    value: Any
    path: str
    #: What the setting becomes in ``cloud_cache_config`` (an account's URL).
    written: Any = None


def read_cloud(reading: Reading, overrides: CloudOverrides) -> None:
    """Rewrite every cache form of ``reading.document`` into ``cloud_cache_config`` and
    ``cache_dir``; see the module's docstring."""
    claims: dict[str, _Claim] = {}
    disabled_by: list[str] = []  # Olive's enable_shared_cache: false, which names win over
    _claim_cloud_cache_config(reading, claims)
    cache_config = _pop_cache_config(reading)
    _read_cache_dirs(reading, cache_config, claims)
    for source, path in ((cache_config, "$.cache_config"), (reading.document, "$")):
        _claim_shared_cache(reading, source, reading.where(path), claims, disabled_by)
    _override(claims, overrides)
    _write_cloud(reading, claims, disabled_by)


def _claim(reading: Reading, claims: dict[str, _Claim], setting: str, claim: _Claim) -> None:
    earlier = claims.get(setting)
    if earlier is None:
        claims[setting] = claim
    elif earlier.value != claim.value:
        reading.problem(claim.path, (
            f"says the {setting} is {quote(claim.value)}, but {earlier.path} says "
            f"{quote(earlier.value)}; keep one of the two"
        ))  # fmt: skip


def _claim_cloud_cache_config(reading: Reading, claims: dict[str, _Claim]) -> None:
    value = reading.document.get("cloud_cache_config")
    where = reading.where("$.cloud_cache_config")
    if isinstance(value, bool):
        claims["enabled"] = _Claim(value, where)
    if not isinstance(value, dict):
        return
    url = value.get("account_url")
    host = _host(url) if isinstance(url, str) else None
    if host is not None:
        claims["account"] = _Claim(host, f"{where}.account_url", url)
    for setting in ("container", "enabled", "upload"):
        field = _FIELDS[setting]
        if isinstance(value.get(field), str | bool):
            claims[setting] = _Claim(value[field], f"{where}.{field}")


def _host(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:
        return None  # the converter says what is wrong with it


def _pop_cache_config(reading: Reading) -> dict[str, Any]:
    value = reading.document.pop("cache_config", None)
    where = reading.where("$.cache_config")
    if value is None:
        return {}
    if not isinstance(value, dict):
        reading.problem(where, f"expected an object, got {json_type(value)}")
        return {}
    unknown = sorted(name for name in value if name not in _CACHE_CONFIG_FIELDS)
    if unknown:
        reading.problem(where, f"unknown field(s) {unknown}; remove or rename them")
    for name in ("clean_cache", "clean_evaluation_cache"):
        if name in value:
            reading.note(
                f"{where}.{name} is ignored: cache entries and evaluation results are keyed "
                "by content, so none is ever stale; `modelcache cache prune` removes old ones"
            )
    return value


def _read_cache_dirs(
    reading: Reading, cache_config: dict[str, Any], claims: dict[str, _Claim]
) -> None:
    """The local folder and the shared container of ``cache_dir`` (top-level, or
    ``cache_config``'s): the folder stays as ``cache_dir``, the container is claimed."""
    document = reading.document
    top = reading.where("$.cache_dir")
    if "cache_dir" in cache_config:
        inner = reading.where("$.cache_config") + ".cache_dir"
        if "cache_dir" not in document:
            document["cache_dir"] = cache_config["cache_dir"]
            reading.moved("$.cache_dir", inner)
            top = inner
        elif document["cache_dir"] != cache_config["cache_dir"]:
            reading.problem(inner, f"differs from {top}; keep one of the two")
    if "cache_dir" not in document:
        return
    value = document.pop("cache_dir")
    entries = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
    if len(entries) > 2:
        reading.problem(top, f"at most two: a local folder and {_CONTAINER_URL}")
        return
    local: list[tuple[str, Any]] = []
    for index, entry in entries:
        path = top if index is None else f"{top}[{index}]"
        if isinstance(entry, str) and _URL.match(entry):
            _claim_container_url(reading, entry, path, claims)
        else:
            local.append((path, entry))
    if len(local) > 1:
        reading.note(f"{local[1][0]} is ignored: a cache has one local folder, {local[0][0]}")
    if local:
        document["cache_dir"] = local[0][1]
        reading.moved("$.cache_dir", local[0][0])


def _claim_container_url(reading: Reading, url: str, path: str, claims: dict[str, _Claim]) -> None:
    # No message quotes the URL: it may carry a SAS.
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        parts, host = None, ""
    account = _AZURE_HOST.fullmatch(host)
    if parts is None or parts.scheme != "https" or account is None:
        reading.problem(path, (
            "a URL is not a local folder: cache_dir is a folder, an Azure Blob container "
            f"URL ({_CONTAINER_URL}) or a list of one of each; for another endpoint, such "
            "as Azurite, write cloud_cache_config's account_url and container_name"
        ))  # fmt: skip
        return
    container = parts.path.strip("/")
    if not container or "/" in container or parts.fragment:
        problem = f"a container URL names the container and nothing below it: {_CONTAINER_URL}"
        reading.problem(path, problem)
        return
    written = f"https://{host}/{container}?{parts.query}" if parts.query else f"https://{host}"
    _claim(reading, claims, "account", _Claim(host, path, written))
    _claim(reading, claims, "container", _Claim(container, path))


def _claim_shared_cache(
    reading: Reading,
    source: dict[str, Any],
    where: str,
    claims: dict[str, _Claim],
    disabled_by: list[str],
) -> None:
    """Claims of Olive's ``account_name``, ``container_name``, ``enable_shared_cache`` and
    ``update_shared_cache`` in ``source`` (``cache_config``, or the document itself)."""
    top = where == "$"
    fields = ("enable_shared_cache",) if top else (
        "account_name", "container_name", "enable_shared_cache", "update_shared_cache")  # fmt: skip
    for field in fields:
        value = source.pop(field, None) if top else source.get(field)
        path = reading.where(f"$.{field}") if top else f"{where}.{field}"
        flag = field.endswith("_cache")
        if value is None:
            continue
        if type(value) is not (bool if flag else str):
            expected = "true or false" if flag else "a string"
            reading.problem(path, f"expected {expected}, got {json_type(value)}")
        elif field == "enable_shared_cache" and not value:
            disabled_by.append(path)
        else:
            _claim_shared_setting(reading, claims, field, value, path)


def _claim_shared_setting(
    reading: Reading, claims: dict[str, _Claim], field: str, value: Any, path: str
) -> None:
    if field == "account_name":
        try:
            check_account_name(value)
        except ValueError as error:
            reading.problem(path, str(error))
            return
        claim = _Claim(f"{value}.blob.core.windows.net", path, account_url_of(value))
        _claim(reading, claims, "account", claim)
    else:
        setting = {"container_name": "container", "update_shared_cache": "upload"}
        _claim(reading, claims, setting.get(field, "enabled"), _Claim(value, path))


def _override(claims: dict[str, _Claim], overrides: CloudOverrides) -> None:
    flag = "the command line"
    if overrides.account_name is not None:
        host = f"{overrides.account_name}.blob.core.windows.net"
        kept = claims.get("account")
        if kept is None or kept.value != host:  # the config's URL may carry a SAS: keep it
            claims["account"] = _Claim(host, flag, account_url_of(overrides.account_name))
    if overrides.container_name is not None:
        claims["container"] = _Claim(overrides.container_name, flag)
    if overrides.account_name is not None or overrides.container_name is not None:
        claims["enabled"] = _Claim(True, flag)


def _write_cloud(reading: Reading, claims: dict[str, _Claim], disabled_by: list[str]) -> None:
    document = reading.document
    current = document.get("cloud_cache_config")
    where = reading.where("$.cloud_cache_config")
    if not isinstance(current, dict | bool | None):
        return  # the converter says what it must be
    named = "container" in claims
    enabled = claims.get("enabled")
    if not named:
        if enabled is not None and enabled.value and enabled.path != where:
            reading.problem(enabled.path, _NO_CONTAINER)
        elif "account" in claims and claims["account"].path != f"{where}.account_url":
            reading.note(f"{claims['account'].path} names an account but no container, so no "
                         "shared cache is used, as in Olive")  # fmt: skip
        return
    section = dict(current) if isinstance(current, dict) else {}
    if current is False:
        section["enable_cloud_cache"] = False
    for setting, field in _FIELDS.items():
        claim = claims.get(setting)
        if claim is None or claim.path.startswith(f"{where}."):
            continue  # written there already, or not claimed
        section[field] = claim.value if claim.written is None else claim.written
        if claim.path != "the command line":
            reading.moved(f"$.cloud_cache_config.{field}", claim.path)
    document["cloud_cache_config"] = section
    for path in disabled_by:
        reading.note(
            f"{path} is false, but {claims['container'].path} names a shared cache, which "
            "Olive uses all the same; so does modelcache (--no-cloud runs without it)"
        )
