"""The delivered model's provenance: an OpenSSF model-signing signature in ``output_dir``.

Theory of operation
-------------------
Signed cache entries protect modelcache's readers; a deployment that takes the model out of
``output_dir`` has no cache to ask. So when the writer signs with a key pair, the delivered
folder gets a signature in the OpenSSF model-signing format (a Sigstore bundle holding a
DSSE envelope of an in-toto statement that lists every file's SHA-256), which their command
line checks without modelcache::

    model_signing verify key out/tiny --signature out/tiny/model.sig --public_key ci.pub.pem

The signature is the file :data:`SIGNATURE_FILE` inside the delivered folder, so the folder
travels with it; it covers every other file there (the model, and modelcache's output marker,
which names the cache key) and, as in their own ``sign`` command, not itself. It is written
into the staged copy after the cache entry was copied out: the cache entry never holds it,
and the folder's other files stay what they were.

It is made with the writer's own :class:`~modelcache.store.SigningKey` (a PEM key, or an
Azure Key Vault key whose private half never leaves the vault): model-signing's key signer
only reads a PEM file, and the key must not be written to disk for it. The one module that
imports model-signing is :mod:`._openssf`.

``model-signing`` is optional (the ``signing`` extra). Without it, or with a shared secret
(model-signing has no HMAC mode, and a secret is no public key a deployment could check
with), the model is delivered unsigned and :func:`sign_model` says so in a note.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

from attrs import frozen

from modelcache.store import ECDSA_P256, SigningKey

from .signing import EcPublicKey

__all__ = ["INSTALL_HINT", "SIGNATURE_FILE", "Provenance", "sign_model"]

#: The signature's file name inside the delivered folder: model-signing's default.
SIGNATURE_FILE: Final = "model.sig"
INSTALL_HINT: Final = 'pip install "modelcache-runner[signing]"'


@frozen(kw_only=True)
class Provenance:
    """What :func:`sign_model` did: the ``signature`` file written, or a ``note`` (one line)
    saying why the delivered model is not signed."""

    signature: Path | None = None
    note: str | None = None


def sign_model(directory: Path, key: SigningKey) -> Provenance:
    """Sign the model folder ``directory`` with ``key`` in the OpenSSF model-signing format,
    writing ``directory / SIGNATURE_FILE``, which the signature does not cover.

    :param key: signs when it is ECDSA P-256 and its
        :meth:`~modelcache.store.SigningKey.verifier` an
        :class:`~modelcache.runner.signing.EcPublicKey`; a shared secret gets a note.
    :return: the signature written, or the note saying why there is none (also when the
        model itself holds a file named :data:`SIGNATURE_FILE`, which is left as it is).
    """
    public = key.verifier()
    if key.algorithm != ECDSA_P256 or not isinstance(public, EcPublicKey):
        return Provenance(
            note="the delivered model carries no OpenSSF model-signing signature: "
            "model-signing has no shared-secret (HMAC) mode; sign with an EC P-256 key pair "
            '("signing": {"key": ...}) for one'
        )
    try:
        from ._openssf import write_signature
    except ImportError as error:
        return Provenance(
            note="the delivered model is not signed: the model-signing package is not "
            f"installed ({error.name or 'model_signing'} is missing); {INSTALL_HINT}"
        )
    target = directory / SIGNATURE_FILE
    if target.exists() or target.is_symlink():
        return Provenance(
            note=f"the delivered model is not signed: the model holds a file named "
            f"{SIGNATURE_FILE} of its own, where its signature would go"
        )
    write_signature(directory, SIGNATURE_FILE, key.sign, public.pem())
    return Provenance(signature=target)
