"""Signing with an Azure Key Vault key: the private half never leaves the vault.

A :class:`KeyVaultSigningKey` is a :class:`~modelcache.store.SigningKey` like a PEM key pair
(:mod:`.signing`): ECDSA P-256 with SHA-256, DER-encoded, its key id derived from its public
key, so readers trust it by that public key as any other (``az keyvault key download
--encoding PEM`` writes it). It hashes what it signs and has the vault sign the digest
(``ES256``, the ``keys/sign`` permission), through the small :class:`KeyVaultClient` protocol
that azure-keyvault-keys' ``CryptographyClient`` satisfies.

The SDK is imported only by :func:`open_key_vault_key`, when the ``signing`` section names a
vault key, and only it talks to Azure: the credential is ``DefaultAzureCredential``, as the
Azure adapter's (``az login``, a managed identity, a service principal in the environment),
and the public key is read from the configured PEM, or else fetched from the vault (the
``keys/get`` permission). Not tested against a real vault: the tests sign through a double.
"""

from __future__ import annotations

import hashlib
from typing import Any, ClassVar, Final, Protocol

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from modelcache.store import ECDSA_P256, Fault

from .errors import RunnerError
from .signing import EcPublicKey

__all__ = ["INSTALL_HINT", "KeyVaultClient", "KeyVaultError", "KeyVaultSigningKey",
           "open_key_vault_key"]  # fmt: skip

INSTALL_HINT: Final = 'pip install "modelcache-runner[keyvault]"'
#: The vault's name of ECDSA P-256 with SHA-256 (``SignatureAlgorithm.es256``'s value).
ES256: Final = "ES256"
_P256_HALF = 32
_SIGN_HINT = "check the URL and that this identity may sign with it (keys/sign)"
_GET_HINT = "give it as signing.public_key, or allow this identity keys/get"
_MISMATCH = (
    "its signature does not match the public_key configured: "
    "give that key's (and that version's) public half"
)


class KeyVaultError(RunnerError):
    """The vault did not sign, or did not give the public key; ``reason`` says why."""

    fault: ClassVar[Fault] = "environment"

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(url, reason)
        self.url, self.reason = url, reason

    def __str__(self) -> str:
        return f"Azure Key Vault key {self.url}: {self.reason}"


class SignResult(Protocol):
    """What the vault answers: ``signature``, the raw ``r || s`` (64 bytes for P-256)."""

    @property
    def signature(self) -> bytes: ...


class KeyVaultClient(Protocol):
    """What a :class:`KeyVaultSigningKey` signs through: azure-keyvault-keys'
    ``CryptographyClient`` for one key, or a test double.

    ``sign(algorithm, digest)`` signs the 32-byte SHA-256 ``digest`` with the vault's key,
    one request to the vault per call (``algorithm`` is :data:`ES256`, or the SDK's
    ``SignatureAlgorithm.es256``, which equals it). It raises the SDK's errors: a missing
    permission, an unreachable vault, a credential that cannot sign in.
    """

    def sign(self, algorithm: Any, digest: bytes) -> SignResult: ...


class KeyVaultSigningKey:
    """A P-256 key held in Azure Key Vault (a ``modelcache.store.SigningKey``).

    :param client: signs digests with the vault's key (:class:`KeyVaultClient`).
    :param public: the key's public half; it names the key and checks every signature the
        vault returns, so a ``public_key`` that is not this key's is caught at once.
    :param url: the key's URL, for messages (it holds no secret).
    :param errors: the exceptions ``client`` raises that become :class:`KeyVaultError`
        (the SDK's ``AzureError``); others are bugs and propagate.
    """

    algorithm: Final = ECDSA_P256

    def __init__(
        self,
        client: KeyVaultClient,
        public: EcPublicKey,
        *,
        url: str,
        algorithm: Any = ES256,
        errors: tuple[type[Exception], ...] = (),
    ) -> None:
        self._client, self._public, self._es256 = client, public, algorithm
        self._errors = errors
        self.url = url
        self.key_id = public.key_id

    def __repr__(self) -> str:
        return f"KeyVaultSigningKey(key_id={self.key_id!r}, url={self.url!r})"

    def sign(self, message: bytes) -> bytes:
        """The DER ECDSA signature of ``message``, made by the vault.

        :raises KeyVaultError: the vault refused or could not be reached, or its signature
            does not match the public key configured.
        """
        digest = hashlib.sha256(message).digest()
        try:
            raw = self._client.sign(self._es256, digest).signature
        except self._errors as error:
            reason = f"cannot sign: {_first_line(error)}; {_SIGN_HINT}"
            raise KeyVaultError(self.url, reason) from None
        if len(raw) != 2 * _P256_HALF:
            raise KeyVaultError(self.url, "the vault's signature is not an ES256 (P-256) one")
        der = encode_dss_signature(
            int.from_bytes(raw[:_P256_HALF], "big"), int.from_bytes(raw[_P256_HALF:], "big")
        )
        if not self._public.verify(message, der):
            raise KeyVaultError(self.url, _MISMATCH)
        return der

    def verifier(self) -> EcPublicKey:
        return self._public


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _public_from_jwk(jwk: Any) -> EcPublicKey:
    """The public key of a vault's JSON web key; ``ValueError`` if it is no P-256 key."""
    if getattr(jwk, "crv", None) != "P-256":  # KeyCurveName.p_256 is a str equal to it
        raise ValueError("the Key Vault key is not an EC P-256 key (create it with --curve P-256)")
    x, y = int.from_bytes(jwk.x, "big"), int.from_bytes(jwk.y, "big")
    return EcPublicKey(ec.EllipticCurvePublicNumbers(x, y, ec.SECP256R1()).public_key())


def open_key_vault_key(url: str, public_pem: bytes | None) -> KeyVaultSigningKey:
    """The vault key at ``url`` (``https://VAULT.vault.azure.net/keys/NAME[/VERSION]``),
    signing as ``DefaultAzureCredential`` allows.

    :param public_pem: its public key, PEM; None: fetched from the vault (keys/get).
    :raises ValueError: azure-keyvault-keys is not installed, or a key is not P-256.
    :raises KeyVaultError: the public key could not be fetched.
    """
    try:
        from azure.core.exceptions import AzureError
        from azure.identity import DefaultAzureCredential
        from azure.keyvault.keys import KeyClient, KeyVaultKeyIdentifier
        from azure.keyvault.keys.crypto import CryptographyClient, SignatureAlgorithm
    except ImportError:
        raise ValueError(
            f"an Azure Key Vault key needs the azure-keyvault-keys package; {INSTALL_HINT}"
        ) from None
    credential = DefaultAzureCredential()
    if public_pem is not None:
        public = EcPublicKey.from_pem(public_pem)
    else:
        where = KeyVaultKeyIdentifier(url)
        try:
            fetched = KeyClient(where.vault_url, credential).get_key(where.name, where.version)
        except AzureError as error:
            reason = f"cannot read its public key: {_first_line(error)}; {_GET_HINT}"
            raise KeyVaultError(url, reason) from None
        public = _public_from_jwk(fetched.key)
    client = CryptographyClient(url, credential)
    return KeyVaultSigningKey(
        client, public, url=url, algorithm=SignatureAlgorithm.es256, errors=(AzureError,)
    )
