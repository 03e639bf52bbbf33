"""Key pairs for signed entries: ECDSA P-256 keys read from PEM, and their key ids.

The store defines what is signed and the shared-secret mode (``modelcache.store.HmacKey``);
key pairs need the ``cryptography`` package, so they live here. A key pair's id is derived
from its public key, so every reader computes the same id from the same public key file and
no one can name a key falsely: the first 32 hex digits (128 bits) of the SHA-256 of the DER
``SubjectPublicKeyInfo``. Errors are one-line ``ValueError``s that never quote key
material; :mod:`.trust` adds the config path.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Final

from modelcache.store import ECDSA_P256

# cryptography is imported where a key is read, used or checked, not with this module: a
# run without keys (and modelcache plan) never pays for it.
if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

__all__ = ["ENV_PREFIX", "EcPrivateKey", "EcPublicKey", "ec_key_id", "read_pem"]

#: A key source that names an environment variable holding PEM text: ``env:VAR``.
ENV_PREFIX: Final = "env:"
_KEY_ID_DIGITS = 32
_MAX_PEM = 64 << 10


def ec_key_id(public: ec.EllipticCurvePublicKey) -> str:
    """The id of a P-256 public key: 32 hex digits of the SHA-256 of its DER SPKI."""
    from cryptography.hazmat.primitives import serialization

    der = public.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()[:_KEY_ID_DIGITS]


def _p256(key: object, what: str) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    curve = getattr(key, "curve", None)
    if not isinstance(curve, ec.SECP256R1):
        raise ValueError(f"{what} is not an EC P-256 (prime256v1) key")


class EcPublicKey:
    """A trusted signer's public key (a ``modelcache.store.VerifyingKey``)."""

    algorithm: Final = ECDSA_P256

    def __init__(self, key: ec.EllipticCurvePublicKey) -> None:
        _p256(key, "the public key")
        self._key = key
        self.key_id = ec_key_id(key)

    def __repr__(self) -> str:
        return f"EcPublicKey(key_id={self.key_id!r})"

    @classmethod
    def from_pem(cls, data: bytes) -> EcPublicKey:
        """A public key from PEM (``-----BEGIN PUBLIC KEY-----``); ``ValueError`` if not one."""
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        try:
            key = serialization.load_pem_public_key(data)
        except (ValueError, UnsupportedAlgorithm):
            raise ValueError("not a PEM public key (-----BEGIN PUBLIC KEY-----)") from None
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError("the public key is not an EC P-256 (prime256v1) key")
        return cls(key)

    def pem(self) -> bytes:
        """The public key as PEM (``SubjectPublicKeyInfo``): not secret."""
        from cryptography.hazmat.primitives import serialization

        return self._key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    def verify(self, message: bytes, signature: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        try:
            self._key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except (InvalidSignature, ValueError):
            return False
        return True


class EcPrivateKey:
    """The writer's private key (a ``modelcache.store.SigningKey``). Its ``repr`` and errors
    name only the key id."""

    algorithm: Final = ECDSA_P256

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        _p256(key, "the private key")
        self._key = key
        self._public = EcPublicKey(key.public_key())
        self.key_id = self._public.key_id

    def __repr__(self) -> str:
        return f"EcPrivateKey(key_id={self.key_id!r})"

    @classmethod
    def from_pem(cls, data: bytes) -> EcPrivateKey:
        """A private key from unencrypted PEM; ``ValueError`` if not one."""
        from cryptography.exceptions import UnsupportedAlgorithm
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        try:
            key = serialization.load_pem_private_key(data, password=None)
        except TypeError:
            raise ValueError(
                "the private key is encrypted; give an unencrypted PEM (keep it in a secret "
                "store or a file only the runner can read)"
            ) from None
        except (ValueError, UnsupportedAlgorithm):
            raise ValueError("not a PEM private key (-----BEGIN ... PRIVATE KEY-----)") from None
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ValueError("the private key is not an EC P-256 (prime256v1) key")
        return cls(key)

    def sign(self, message: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        return self._key.sign(message, ec.ECDSA(hashes.SHA256()))

    def verifier(self) -> EcPublicKey:
        return self._public


def read_pem(source: str, *, base_dir: Path, environ: Mapping[str, str] = os.environ) -> bytes:
    """The PEM text ``source`` names: ``env:VAR`` (the variable's value) or a file path,
    relative to ``base_dir``. ``ValueError`` naming the variable or file, never its text."""
    if source.startswith(ENV_PREFIX):
        name = source.removeprefix(ENV_PREFIX)
        value = environ.get(name)
        if not value:
            raise ValueError(f"the environment variable {name} is not set or empty")
        return value.encode("utf-8")
    path = Path(source).expanduser()
    path = path if path.is_absolute() else base_dir / path
    try:
        with path.open("rb") as file:
            data = file.read(_MAX_PEM + 1)
    except OSError as error:
        raise ValueError(f"cannot read {path}: {error.strerror or error}") from None
    if len(data) > _MAX_PEM:
        raise ValueError(f"{path} is larger than a PEM key ({_MAX_PEM} bytes)")
    return data
