"""A stand-in for Azure Key Vault's ``CryptographyClient``: it signs digests with a local P-256
key as the vault does (``ES256``: the raw ``r || s``), and records what it was asked."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, utils


class VaultDouble:
    """A :class:`~modelcache.runner.keyvault.KeyVaultClient` over ``key``; ``failure``, if
    set, is raised by every ``sign`` instead, as the SDK raises its errors."""

    def __init__(self, key: ec.EllipticCurvePrivateKey) -> None:
        self.key = key
        self.requests: list[tuple[Any, bytes]] = []
        self.failure: Exception | None = None

    def sign(self, algorithm: Any, digest: bytes) -> SimpleNamespace:
        self.requests.append((algorithm, digest))
        if self.failure is not None:
            raise self.failure
        der = self.key.sign(digest, ec.ECDSA(utils.Prehashed(hashes.SHA256())))
        r, s = utils.decode_dss_signature(der)
        return SimpleNamespace(signature=r.to_bytes(32, "big") + s.to_bytes(32, "big"))
