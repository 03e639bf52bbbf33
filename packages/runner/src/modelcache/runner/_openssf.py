"""The one module importing model-signing: a model folder hashed and signed as their key
signer (``model_signing._signing.sign_ec_key.Signer``) does, with the signature made by a
callable instead of a private key read from a PEM file.

It reproduces that signer's ``sign`` from the package's internal modules, pinned by the
``signing`` extra; the tests check what it writes with model-signing's command line, so a
change of their format shows there. Importing this module raises ``ImportError`` when the
package (or pyOpenSSL, which it imports) is missing; :mod:`.provenance` turns that into a
note.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from google.protobuf import json_format  # type: ignore[import-untyped]
from model_signing import hashing
from model_signing._signing import sign_sigstore_pb, signing
from sigstore_models import intoto
from sigstore_models.bundle import v1 as bundle_pb
from sigstore_models.common import v1 as common_pb

__all__ = ["write_signature"]


def write_signature(
    directory: Path, signature_file: str, sign: Callable[[bytes], bytes], public_pem: bytes
) -> None:
    """Hash ``directory`` (every file but ``signature_file`` and git's) and write the
    signature bundle to ``directory / signature_file``.

    :param sign: ECDSA P-256 with SHA-256 over the bytes given, DER-encoded, as
        ``cryptography``'s ``EllipticCurvePrivateKey.sign`` returns it.
    :param public_pem: the signer's public key, SPKI PEM: verifiers compare its SHA-256
        with the key they are given before they check the signature.
    """
    config = hashing.Config()  # type: ignore[no-untyped-call]
    manifest = config.set_ignored_paths(paths=[signature_file]).hash(directory)
    statement = json_format.MessageToJson(signing.Payload(manifest).statement.pb)
    raw = statement.encode("utf-8")
    envelope = intoto.Envelope(
        payload=base64.b64encode(raw),
        payload_type=signing._IN_TOTO_JSON_PAYLOAD_TYPE,
        signatures=[
            intoto.Signature(sig=base64.b64encode(sign(sign_sigstore_pb.pae(raw))), keyid="")
        ],
    )
    material = bundle_pb.VerificationMaterial(
        public_key=common_pb.PublicKeyIdentifier(hint=hashlib.sha256(public_pem).hexdigest()),
        tlog_entries=[],
    )
    media_type: Any = sign_sigstore_pb._BUNDLE_MEDIA_TYPE  # a str; the model wants a Literal
    bundle = bundle_pb.Bundle(
        media_type=media_type,
        verification_material=material,
        dsse_envelope=envelope,
    )
    sign_sigstore_pb.Signature(bundle).write(directory / signature_file)
