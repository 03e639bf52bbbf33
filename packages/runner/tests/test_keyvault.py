"""Azure Key Vault keys (``modelcache.runner.keyvault``) signing through a double of the
vault's ``CryptographyClient`` (``vault_double.py``): there is no Key Vault emulator, so the
key is untested against a real vault. What it signs verifies with its public key as a PEM
key pair's does; a wrong public key, a refusing vault and a malformed answer are one line
each; and the ``signing`` section names a vault key, one problem per mistake, with a clear
line when azure-keyvault-keys is missing."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from modelcache.runner.config import ConfigError, parse_config
from modelcache.runner.keyvault import KeyVaultError, KeyVaultSigningKey
from modelcache.runner.signing import EcPublicKey, ec_key_id
from modelcache.runner.trust import load_trust
from modelcache.store import ECDSA_P256, Trust, UntrustedEntry, check_evaluation, sign_evaluation

from .vault_double import VaultDouble

URL = "https://team-vault.vault.azure.net/keys/ci/0123456789abcdef0123456789abcdef"
ENTRY = "ab" * 32


@pytest.fixture
def vault() -> VaultDouble:
    return VaultDouble(ec.generate_private_key(ec.SECP256R1()))


def public_of(vault: VaultDouble) -> EcPublicKey:
    return EcPublicKey(vault.key.public_key())


def vault_key(vault: VaultDouble, **options: Any) -> KeyVaultSigningKey:
    return KeyVaultSigningKey(vault, public_of(vault), url=URL, **options)


def test_what_a_vault_key_signs_verifies_with_its_public_key(vault: VaultDouble) -> None:
    key = vault_key(vault)
    assert (key.algorithm, key.key_id) == (ECDSA_P256, ec_key_id(vault.key.public_key()))
    stored = sign_evaluation(ENTRY, "fp", {"size_bytes": 5}, Trust(signing_key=key))
    pem = public_of(vault).pem()
    reader = Trust(checking=True, signers=(EcPublicKey.from_pem(pem),), require_signatures=True)
    assert check_evaluation(ENTRY, "fp", stored, reader) == {"size_bytes": 5}
    with pytest.raises(UntrustedEntry, match="does not match"):
        check_evaluation(ENTRY, "fp", {**stored, "size_bytes": 6}, reader)


def test_the_vault_is_sent_only_the_sha256_digest(vault: VaultDouble) -> None:
    vault_key(vault).sign(b"what is signed")
    assert vault.requests == [("ES256", hashlib.sha256(b"what is signed").digest())]


def test_a_public_key_that_is_not_the_vault_keys_is_caught_at_the_first_signature(
    vault: VaultDouble,
) -> None:
    other = EcPublicKey(ec.generate_private_key(ec.SECP256R1()).public_key())
    key = KeyVaultSigningKey(vault, other, url=URL)
    with pytest.raises(KeyVaultError) as caught:
        key.sign(b"m")
    assert str(caught.value) == (
        f"Azure Key Vault key {URL}: its signature does not match the public_key configured: "
        "give that key's (and that version's) public half"
    )


def test_a_refusing_vault_is_one_line_naming_the_key(vault: VaultDouble) -> None:
    vault.failure = PermissionError(
        "(Forbidden) The user does not have keys sign permission on key vault 'team-vault'\n"
        "Code: Forbidden\nInner error: {...}"
    )
    with pytest.raises(KeyVaultError) as caught:
        vault_key(vault, errors=(PermissionError,)).sign(b"m")
    assert caught.value.fault == "environment"
    assert str(caught.value) == (
        f"Azure Key Vault key {URL}: cannot sign: (Forbidden) The user does not have keys sign "
        "permission on key vault 'team-vault'; check the URL and that this identity may sign "
        "with it (keys/sign)"
    )


def test_an_error_the_vault_does_not_raise_is_a_bug_and_propagates(vault: VaultDouble) -> None:
    vault.failure = TypeError("a bug")
    with pytest.raises(TypeError):
        vault_key(vault, errors=(PermissionError,)).sign(b"m")


def test_an_answer_that_is_not_es256_is_refused(
    vault: VaultDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(vault, "sign", lambda algorithm, digest: SimpleNamespace(signature=b"x"))
    with pytest.raises(KeyVaultError, match="not an ES256"):
        vault_key(vault).sign(b"m")


def test_a_vault_keys_repr_names_it_by_id_and_url(vault: VaultDouble) -> None:
    key = vault_key(vault)
    assert repr(key) == f"KeyVaultSigningKey(key_id={key.key_id!r}, url={URL!r})"


# -- the signing section ------------------------------------------------------------------


def config(tmp_path: Path, signing: dict[str, Any]) -> Any:
    document = {
        "input_model": {"type": "HfModel", "model_path": "m"},
        "passes": {"half": {"type": "TorchDtypeCast"}},
        "signing": signing,
    }
    return parse_config(document, base_dir=tmp_path)


@pytest.fixture
def public_pem(tmp_path: Path, vault: VaultDouble) -> Path:
    path = tmp_path / "ci.pub.pem"
    path.write_bytes(
        vault.key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def test_the_signing_section_names_a_vault_key_by_its_url(tmp_path: Path) -> None:
    section = {"azure_key_vault_key": URL, "public_key": "ci.pub.pem"}
    signing = config(tmp_path, section).signing
    assert (signing.azure_key_vault_key, signing.public_key) == (URL, "ci.pub.pem")


def test_a_vault_key_with_its_public_key_opens_without_asking_the_vault(
    tmp_path: Path, public_pem: Path, vault: VaultDouble
) -> None:
    pytest.importorskip("azure.keyvault.keys")
    section = {"azure_key_vault_key": URL, "public_key": public_pem.name}
    trust = load_trust(config(tmp_path, section), {})
    key = trust.signing_key
    assert isinstance(key, KeyVaultSigningKey)
    assert (key.key_id, key.url) == (public_of(vault).key_id, URL)


def vault_answers(monkeypatch: pytest.MonkeyPatch, answer: Any) -> None:
    """The SDK's ``KeyClient.get_key`` answering ``answer`` (raised if an exception)."""

    def get_key(_client: Any, name: str, version: str | None = None) -> Any:
        assert (name, version) == ("ci", "0123456789abcdef0123456789abcdef")
        if isinstance(answer, Exception):
            raise answer
        return SimpleNamespace(key=answer)

    monkeypatch.setattr("azure.keyvault.keys.KeyClient.get_key", get_key)


def jwk(key: ec.EllipticCurvePrivateKey, curve: str = "P-256") -> SimpleNamespace:
    numbers = key.public_key().public_numbers()
    size = (key.curve.key_size + 7) // 8
    return SimpleNamespace(crv=curve, x=numbers.x.to_bytes(size, "big"),
                           y=numbers.y.to_bytes(size, "big"))  # fmt: skip


def test_without_a_public_key_it_is_fetched_from_the_vault(
    tmp_path: Path, vault: VaultDouble, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("azure.keyvault.keys")
    vault_answers(monkeypatch, jwk(vault.key))
    key = load_trust(config(tmp_path, {"azure_key_vault_key": URL}), {}).signing_key
    assert key is not None
    assert key.key_id == public_of(vault).key_id


def test_a_vault_key_that_is_not_p256_is_a_problem_at_its_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("azure.keyvault.keys")
    vault_answers(monkeypatch, jwk(ec.generate_private_key(ec.SECP384R1()), "P-384"))
    with pytest.raises(ConfigError, match=r"\$\.signing: the Key Vault key is not an EC P-256"):
        load_trust(config(tmp_path, {"azure_key_vault_key": URL}), {})


def test_a_vault_that_will_not_show_the_public_key_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exceptions = pytest.importorskip("azure.core.exceptions")
    vault_answers(monkeypatch, exceptions.HttpResponseError("(Forbidden) no keys/get\nCode: 403"))
    with pytest.raises(KeyVaultError) as caught:
        load_trust(config(tmp_path, {"azure_key_vault_key": URL}), {})
    assert str(caught.value) == (
        f"Azure Key Vault key {URL}: cannot read its public key: (Forbidden) no keys/get; "
        "give it as signing.public_key, or allow this identity keys/get"
    )


def test_without_azure_keyvault_keys_a_vault_key_is_one_clear_problem(
    tmp_path: Path, public_pem: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "azure.keyvault.keys", None)
    section = {"azure_key_vault_key": URL, "public_key": public_pem.name}
    with pytest.raises(ConfigError) as caught:
        load_trust(config(tmp_path, section), {})
    assert [(problem.path, problem.problem) for problem in caught.value.problems] == [
        (
            "$.signing",
            "an Azure Key Vault key needs the azure-keyvault-keys package; "
            'pip install "modelcache-runner[keyvault]"',
        )
    ]


@pytest.mark.parametrize(
    ("section", "words"),
    [
        ({"azure_key_vault_key": "http://v.vault.azure.net/keys/ci"}, "must be a key's URL"),
        ({"azure_key_vault_key": "https://v.vault.azure.net/secrets/ci"}, "must be a key's URL"),
        ({"azure_key_vault_key": URL, "key": "ci.pem"}, 'exactly one of "key", "hmac_secret'),
        ({"azure_key_vault_key": URL, "key_id": "ci"}, "key_id is derived"),
        ({"azure_key_vault_key": URL, "public_key": "env:1X"}, "environment variable"),
        ({"key": "ci.pem", "public_key": "ci.pub.pem"}, "beside azure_key_vault_key only"),
    ],
)
def test_a_malformed_vault_section_is_one_problem(
    tmp_path: Path, section: dict[str, Any], words: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        config(tmp_path, section)
    assert [problem.path for problem in caught.value.problems] == ["$.signing"]
    assert words in caught.value.problems[0].problem
