"""Which credential the store signs in with, and what it says when none works."""

from __future__ import annotations

import base64
import datetime
import json
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote

import pytest
from azure.core.credentials import AccessToken, AzureNamedKeyCredential
from azure.identity import CredentialUnavailableError, DefaultAzureCredential
from azure.storage.blob import (
    AccountSasPermissions,
    BlobServiceClient,
    ContainerSasPermissions,
    ResourceTypes,
    generate_account_sas,
    generate_container_sas,
)

from modelcache.azure import CONNECTION_STRING_VARIABLE, AzureBlobStore
from modelcache.azure.testing import ACCOUNT_KEY, ACCOUNT_NAME, Azurite
from modelcache.store import AccessDenied, StoreConfigError, StoreError

from .model_dirs import SMALL, key_of, read_tree, write_entry

pytestmark = pytest.mark.azurite

KEY = key_of("auth")[0]


def container_sas(container: str, **permissions: bool) -> str:
    return generate_container_sas(
        ACCOUNT_NAME,
        container,
        account_key=ACCOUNT_KEY,
        permission=ContainerSasPermissions(**permissions),
        expiry=datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1),
    )


ALL = {"read": True, "add": True, "create": True, "write": True, "list": True}


def signature(sas: str) -> str:
    return parse_qs(sas)["sig"][0]


def works(store: AzureBlobStore) -> None:
    """The store can write, list and read (one evaluation result)."""
    store.write_evaluation(KEY, "accuracy-v1", {"accuracy": 1})
    assert [item.key for item in store.snapshot([KEY])] == [KEY]
    assert store.read_evaluation(KEY, "accuracy-v1") == {"accuracy": 1}


def test_a_connection_string_in_the_environment_supplies_the_credential(
    azure_container: tuple[str, str],
) -> None:
    connection_string, name = azure_container
    environ = {CONNECTION_STRING_VARIABLE: connection_string}

    works(AzureBlobStore.from_config(container_name=name, environ=environ, settings=SMALL))


def test_an_account_url_beside_the_connection_string_may_name_the_same_endpoint(
    azurite: Azurite, azure_container: tuple[str, str]
) -> None:
    connection_string, name = azure_container
    environ = {CONNECTION_STRING_VARIABLE: connection_string}

    works(
        AzureBlobStore.from_config(
            account_url=azurite.account_url + "/", container_name=name, environ=environ
        )
    )


def test_an_account_url_naming_another_endpoint_than_the_connection_string_is_refused(
    azurite: Azurite, azure_container: tuple[str, str]
) -> None:
    connection_string, name = azure_container
    other = "https://elsewhere.blob.core.windows.net"
    environ = {CONNECTION_STRING_VARIABLE: connection_string}

    with pytest.raises(StoreConfigError) as raised:
        AzureBlobStore.from_config(account_url=other, container_name=name, environ=environ)

    message = str(raised.value)
    assert azurite.account_url in message
    assert "https://elsewhere.blob.core.windows.net" in message
    assert CONNECTION_STRING_VARIABLE in message
    assert ACCOUNT_KEY not in message


def test_a_container_sas_url_works_and_beats_a_connection_string_in_the_environment(
    azurite: Azurite, azure_container: tuple[str, str], tmp_path: Path
) -> None:
    _, name = azure_container
    url = f"{azurite.account_url}/{name}?{container_sas(name, **ALL)}"
    environ = {CONNECTION_STRING_VARIABLE: "AccountName=other;AccountKey=b3RoZXI=;"}
    store = AzureBlobStore.from_config(account_url=url, environ=environ, settings=SMALL)
    entry = write_entry(tmp_path / "source", {"model.onnx": b"x" * 100_000, "a.json": b"{}"})

    assert store.publish(entry.source, entry.manifest) is True
    store.fetch(entry.key, tmp_path / "fetched")
    assert read_tree(tmp_path / "fetched") == entry.files
    works(AzureBlobStore.from_sas_url(url))


def test_an_account_sas_url_works_with_a_container_name(
    azurite: Azurite, azure_container: tuple[str, str]
) -> None:
    _, name = azure_container
    sas = generate_account_sas(
        ACCOUNT_NAME,
        ACCOUNT_KEY,
        ResourceTypes(container=True, object=True),
        AccountSasPermissions(read=True, write=True, list=True, add=True, create=True),
        expiry=datetime.datetime.now(datetime.UTC) + datetime.timedelta(hours=1),
    )

    works(AzureBlobStore.from_sas_url(f"{azurite.account_url}?{sas}", container_name=name))


def test_a_sas_url_naming_another_container_is_refused(azurite: Azurite) -> None:
    url = f"{azurite.account_url}/models?{container_sas('models', **ALL)}"

    with pytest.raises(StoreConfigError, match=r"'models'.*'other'"):
        AzureBlobStore.from_sas_url(url, container_name="other")


def test_a_url_without_a_sas_is_not_a_sas_url(azurite: Azurite) -> None:
    with pytest.raises(StoreConfigError, match="no SAS"):
        AzureBlobStore.from_sas_url(f"{azurite.account_url}/models")


def test_a_sas_without_write_permission_is_access_denied_without_revealing_it(
    azurite: Azurite, azure_container: tuple[str, str]
) -> None:
    _, name = azure_container
    sas = container_sas(name, read=True, list=True)
    store = AzureBlobStore.from_sas_url(f"{azurite.account_url}/{name}?{sas}", settings=SMALL)

    assert store.snapshot([KEY]) == []
    with pytest.raises(AccessDenied) as raised:
        store.write_evaluation(KEY, "accuracy-v1", {"accuracy": 1})

    assert "write" in str(raised.value)
    assert signature(sas) not in str(raised.value)
    assert sas not in str(raised.value)


def test_a_tampered_sas_is_refused_without_revealing_it(
    azurite: Azurite, azure_container: tuple[str, str]
) -> None:
    _, name = azure_container
    sas = container_sas(name, **ALL)
    genuine = sas.split("sig=")[1].split("&")[0]
    forged = quote(base64.b64encode(b"a forged signature, of 32 bytes").decode(), safe="")
    url = f"{azurite.account_url}/{name}?{sas.replace(genuine, forged)}"

    with pytest.raises(StoreConfigError) as raised:
        AzureBlobStore.from_sas_url(url, settings=SMALL).snapshot([KEY])

    assert forged not in str(raised.value)
    assert unquote(forged) not in str(raised.value)
    assert "SAS" in str(raised.value)


def test_a_wrong_account_key_is_refused_without_revealing_it(
    azure_container: tuple[str, str],
) -> None:
    connection_string, name = azure_container
    wrong = base64.b64encode(b"not the key" * 6).decode()
    store = AzureBlobStore.from_connection_string(
        connection_string.replace(ACCOUNT_KEY, wrong), name, settings=SMALL
    )

    with pytest.raises(StoreConfigError) as raised:
        store.snapshot([KEY])

    assert wrong not in str(raised.value)
    assert ACCOUNT_KEY not in str(raised.value)
    assert "key" in str(raised.value)


def test_a_named_key_credential_works(azurite: Azurite, azure_container: tuple[str, str]) -> None:
    _, name = azure_container
    credential = AzureNamedKeyCredential(ACCOUNT_NAME, ACCOUNT_KEY)

    works(
        AzureBlobStore.from_config(
            account_url=azurite.account_url, container_name=name, credential=credential
        )
    )


def test_a_missing_container_says_how_to_create_it(azurite: Azurite) -> None:
    store = AzureBlobStore.from_connection_string(azurite.connection_string, "no-such-container")

    with pytest.raises(StoreConfigError) as raised:
        store.snapshot([KEY])

    assert "az storage container create --name no-such-container" in str(raised.value)
    assert ACCOUNT_KEY not in str(raised.value)


# -- Azure AD tokens: Azurite checks a bearer token's claims (not its signature), over https.


def _segment(document: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()


class UnsignedToken:
    """A token credential handing out JWTs with the claims Azure AD would put in one."""

    def __init__(self) -> None:
        self.scopes: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **_options: Any) -> AccessToken:
        self.scopes.append(scopes)
        now = int(time.time())
        claims = {
            "aud": "https://storage.azure.com",
            "iss": "https://sts.windows.net/00000000-0000-0000-0000-000000000000/",
            "iat": now - 60,
            "nbf": now - 60,
            "exp": now + 3600,
        }
        header = {"alg": "HS256", "typ": "JWT"}
        return AccessToken(f"{_segment(header)}.{_segment(claims)}.c2ln", now + 3600)


class NoSignIn:
    """A token credential that finds nothing to sign in with, as after no `az login`."""

    def get_token(self, *_scopes: str, **_options: Any) -> AccessToken:
        raise CredentialUnavailableError("no credential here")


@pytest.fixture(scope="module")
def https_azurite() -> Iterator[tuple[Azurite, str]]:
    """An Azurite serving https and accepting OAuth tokens, with a container ``models``."""
    server = Azurite.start(https=True)
    with BlobServiceClient(
        server.account_url, credential=UnsignedToken(), connection_verify=str(server.certificate)
    ) as service:
        service.create_container("models")
    yield server, "models"
    server.stop()


def test_a_token_credential_signs_in_over_https(
    https_azurite: tuple[Azurite, str], tmp_path: Path
) -> None:
    server, name = https_azurite
    credential = UnsignedToken()
    store = AzureBlobStore.from_config(
        account_url=server.account_url,
        container_name=name,
        credential=credential,
        settings=SMALL,
        client_options={"connection_verify": str(server.certificate)},
    )
    entry = write_entry(tmp_path / "source", {"model.onnx": b"y" * 200_000})

    assert store.publish(entry.source, entry.manifest) is True
    store.fetch(entry.key, tmp_path / "fetched")

    assert read_tree(tmp_path / "fetched") == entry.files
    assert ("https://storage.azure.com/.default",) in credential.scopes


def test_a_token_credential_that_finds_no_sign_in_says_to_run_az_login(
    https_azurite: tuple[Azurite, str],
) -> None:
    server, name = https_azurite
    store = AzureBlobStore.from_config(
        account_url=server.account_url,
        container_name=name,
        credential=NoSignIn(),
        settings=SMALL,
        client_options={"connection_verify": str(server.certificate)},
    )

    with pytest.raises(StoreConfigError, match="az login"):
        store.snapshot([KEY])


def test_a_token_credential_is_refused_up_front_over_http(azurite: Azurite) -> None:
    with pytest.raises(StoreConfigError, match="https"):
        AzureBlobStore.from_config(
            account_url=azurite.account_url, container_name="models", credential=UnsignedToken()
        )


def test_an_account_url_alone_signs_in_with_default_azure_credential() -> None:
    store = AzureBlobStore.from_config(
        account_url="https://example.blob.core.windows.net", container_name="models", environ={}
    )

    assert isinstance(store.container.credential, DefaultAzureCredential)
    assert store.container.account_name == "example"


# -- configuration mistakes, caught before any request


def test_no_configuration_says_what_to_set() -> None:
    with pytest.raises(StoreConfigError) as raised:
        AzureBlobStore.from_config(container_name="models", environ={})

    for advice in ("account_url", "az login", CONNECTION_STRING_VARIABLE, "SAS"):
        assert advice in str(raised.value)


def test_a_malformed_connection_string_is_refused_without_echoing_it() -> None:
    secret = "AccountKey=c2VjcmV0"
    with pytest.raises(StoreConfigError, match=CONNECTION_STRING_VARIABLE) as raised:
        AzureBlobStore.from_config(
            container_name="models", environ={CONNECTION_STRING_VARIABLE: f"garbage;{secret}"}
        )
    assert "c2VjcmV0" not in str(raised.value)


@pytest.mark.parametrize("name", ["ab", "Models", "my_models", "-models", "a--b", "x" * 64])
def test_an_invalid_container_name_is_refused(azurite: Azurite, name: str) -> None:
    with pytest.raises(StoreConfigError, match="not a valid container name"):
        AzureBlobStore.from_connection_string(azurite.connection_string, name)


def test_no_container_name_is_refused(azurite: Azurite) -> None:
    with pytest.raises(StoreConfigError, match="container_name"):
        AzureBlobStore.from_config(account_url=azurite.account_url, environ={})


@pytest.mark.parametrize("url", ["ftp://example.com", "example.blob.core.windows.net"])
def test_an_account_url_that_is_not_http_is_refused(url: str) -> None:
    with pytest.raises(StoreConfigError, match="not an http"):
        AzureBlobStore.from_config(account_url=url, container_name="models", environ={})


def test_debug_logs_hold_no_signature_or_key(
    azurite: Azurite, azure_container: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    connection_string, name = azure_container
    sas = container_sas(name, **ALL)
    caplog.set_level(logging.DEBUG)

    works(AzureBlobStore.from_sas_url(f"{azurite.account_url}/{name}?{sas}"))
    works(AzureBlobStore.from_connection_string(connection_string, name))
    with pytest.raises(StoreError):
        AzureBlobStore.from_sas_url(f"{azurite.account_url}/{name}?{sas}").read_manifest(
            key_of("absent")[0]
        )

    assert "sig=" in caplog.text  # the request lines were logged...
    assert signature(sas) not in caplog.text  # ...with the signature masked
    assert ACCOUNT_KEY not in caplog.text
