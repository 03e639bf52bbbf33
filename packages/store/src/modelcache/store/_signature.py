"""Signatures of stored objects: the value a manifest carries, what is signed, and the keys.

Theory of operation
-------------------
A manifest's hashes prove that the files match the manifest, not who made it: anyone who
may write the container can publish a well-formed entry under any key. A writer holding a
signing key therefore signs each entry it publishes, and readers that name trusted signers
check the signature before they use the entry (``docs/security.md``).

What is signed is a domain tag and the *canonical bytes of the manifest without its
signature*; the manifest binds every file's SHA-256, the key and the key inputs, so a
signature fits exactly one entry under exactly one key and cannot be replayed onto another.
An evaluation result is signed over a tag and the canonical JSON of its key, evaluator
fingerprint and metrics, for the same reason. The tags keep one kind of signature from
passing for the other.

A :class:`Signature` names its key by ``key_id`` and ``algorithm``; a reader looks the pair
up among the keys it trusts, never in the object it is checking. Key material lives
behind two small protocols: :class:`HmacKey` (a shared secret, standard library only) is
here; key pairs (ECDSA P-256) need the ``cryptography`` package and live in the runner
(``modelcache.runner.signing``). This module does no IO.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any, Final, Protocol

from attrs import field, frozen

from modelcache.planner import canonical_json

from ._errors import InvalidManifest

__all__ = [
    "ECDSA_P256",
    "HMAC_SHA256",
    "HmacKey",
    "Signature",
    "SigningKey",
    "VerifyingKey",
    "check_key_id",
    "evaluation_message",
]

#: The algorithms a signature may name.
ECDSA_P256: Final = "ecdsa-p256-sha256"
HMAC_SHA256: Final = "hmac-sha256"
ALGORITHMS: Final = frozenset({ECDSA_P256, HMAC_SHA256})
#: Domain tags: a manifest's signature never verifies as an evaluation's, or the reverse.
MANIFEST_TAG: Final = b"modelcache-manifest-signature/1\n"
EVALUATION_TAG: Final = b"modelcache-evaluation-signature/1\n"
_KEY_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
# A DER ECDSA P-256 signature is at most 72 bytes, an HMAC-SHA256 32: room to spare.
_VALUE = re.compile(r"(?:[0-9a-f]{2}){16,256}")


def check_key_id(value: str) -> str:
    """``value`` if it can name a key (1-64 of ``A-Z a-z 0-9 . _ : -``, starting with a letter
    or digit), else :class:`ValueError` saying so."""
    if not isinstance(value, str) or not _KEY_ID.fullmatch(value):
        raise ValueError(
            f"key id {value!r} must be 1-64 letters, digits, '.', '_', ':' or '-', "
            "starting with a letter or digit"
        )
    return value


def _key_id(_instance: object, _attribute: object, value: str) -> None:
    try:
        check_key_id(value)
    except ValueError as error:
        raise InvalidManifest(f"signature: {error}") from None


def _algorithm(_instance: object, _attribute: object, value: str) -> None:
    if value not in ALGORITHMS:
        known = sorted(ALGORITHMS)
        raise InvalidManifest(f"signature: unknown algorithm {value!r}; known: {known}")


def _value(_instance: object, _attribute: object, value: str) -> None:
    if not isinstance(value, str) or not _VALUE.fullmatch(value):
        raise InvalidManifest("signature: value is not 32 to 512 lowercase hex digits")


@frozen(kw_only=True)
class Signature:
    """A signature as stored: which key (``key_id``, ``algorithm``) and the signature bytes
    in lowercase hex (``value``). It says who claims to have signed; only checking it with
    a trusted key says whether that is true."""

    key_id: str = field(validator=_key_id)
    algorithm: str = field(validator=_algorithm)
    value: str = field(validator=_value)

    def to_json(self) -> dict[str, str]:
        return {"algorithm": self.algorithm, "key_id": self.key_id, "value": self.value}

    @classmethod
    def from_json(cls, document: Any) -> Signature:
        """A stored signature object; :class:`InvalidManifest` naming what is wrong."""
        if not isinstance(document, Mapping):
            raise InvalidManifest("signature is not an object")
        if set(document) != {"algorithm", "key_id", "value"}:
            raise InvalidManifest("signature must have exactly algorithm, key_id and value")
        if not all(isinstance(value, str) for value in document.values()):
            raise InvalidManifest("signature fields must be strings")
        return cls(
            key_id=document["key_id"], algorithm=document["algorithm"], value=document["value"]
        )


class SigningKey(Protocol):
    """A key that signs: the writer's. Implementations never reveal the secret part, in
    ``repr`` or in errors."""

    @property
    def key_id(self) -> str:
        """The name a signature gives this key: derived from a public key, or configured."""
        ...

    @property
    def algorithm(self) -> str:
        """One of :data:`ALGORITHMS`."""
        ...

    def sign(self, message: bytes) -> bytes:
        """The signature of ``message`` (the bytes, not yet hex)."""
        ...

    def verifier(self) -> VerifyingKey:
        """The key that checks this key's signatures (the public half, or the secret)."""
        ...


class VerifyingKey(Protocol):
    """A key a reader trusts: a public key, or a shared secret."""

    @property
    def key_id(self) -> str:
        """As :attr:`SigningKey.key_id`: signatures naming it are checked with this key."""
        ...

    @property
    def algorithm(self) -> str:
        """One of :data:`ALGORITHMS`."""
        ...

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether ``signature`` is this key's signature of ``message``. Never raises for a
        malformed signature: that is simply False."""
        ...


class HmacKey:
    """A shared secret, for HMAC-SHA256: it signs and verifies. Everyone who holds the
    secret can sign, so it suits a small team that trusts all its members' machines alike.

    :param key_id: the name the configuration gives the secret (see :func:`check_key_id`).
    :param secret: the secret's bytes; at least 16, so a typo'd short value is refused.
    """

    algorithm: Final = HMAC_SHA256

    def __init__(self, key_id: str, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError(f"the HMAC secret of key {key_id!r} is shorter than 16 bytes")
        self.key_id = check_key_id(key_id)
        self._secret = secret

    def __repr__(self) -> str:
        return f"HmacKey(key_id={self.key_id!r})"  # never the secret

    def sign(self, message: bytes) -> bytes:
        return hmac.new(self._secret, message, hashlib.sha256).digest()

    def verify(self, message: bytes, signature: bytes) -> bool:
        return hmac.compare_digest(self.sign(message), signature)

    def verifier(self) -> HmacKey:
        return self


def evaluation_message(key: str, fingerprint: str, result: Mapping[str, Any]) -> bytes:
    """What an evaluation result's signature covers: the entry, the evaluator, the metrics."""
    document = {"fingerprint": fingerprint, "key": key, "result": dict(result)}
    return EVALUATION_TAG + canonical_json(document).encode("utf-8")
