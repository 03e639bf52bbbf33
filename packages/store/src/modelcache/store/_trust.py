"""Trust: which signatures a reader accepts, and how a writer signs what it publishes.

The rules, in the order they are applied to an entry (or an evaluation result) read:

=====================================  ==========================  =========================
the stored object                      signatures optional         signatures required
=====================================  ==========================  =========================
no checking (no trust configured)      served                      (not possible)
unsigned                               served                      a miss
signed by a key not trusted            a miss                      a miss
signed by a trusted key, not matching  a miss                      a miss
signed by a trusted key, matching      served                      served
=====================================  ==========================  =========================

A miss is :class:`~modelcache.store.UntrustedEntry`, a ``CorruptEntry``: the callers that
already recompute around damaged entries recompute around untrusted ones, and say why. The
writer's own signing key is always trusted by that writer: whoever holds it could sign
anything anyway. This module does no IO.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from attrs import evolve, field, frozen

from ._errors import InvalidManifest, UntrustedEntry
from ._manifest import Manifest, manifest_bytes
from ._signature import Signature, SigningKey, VerifyingKey, evaluation_message

__all__ = [
    "Trust",
    "check_evaluation",
    "check_manifest",
    "manifest_problem",
    "sign_evaluation",
    "sign_manifest",
    "signer_of",
]

#: The member of a stored evaluation result that holds its signature.
SIGNATURE_MEMBER = "signature"


def _keys(value: Any) -> tuple[VerifyingKey, ...]:
    return tuple(value)


@frozen(kw_only=True)
class Trust:
    """What a store wrapper checks and signs with (:class:`~modelcache.store.TrustedStore`).

    :param checking: whether signatures are checked at all. Off (the default), every entry
        is served as before signing existed, and signatures are only carried along.
    :param signers: the keys whose signatures are accepted (several during a rotation).
    :param require_signatures: whether an unsigned entry is a miss.
    :param signing_key: this writer's key: it signs every unsigned entry and evaluation
        result published, and is trusted too. None: a read-only role, signing nothing.
    """

    checking: bool = False
    signers: tuple[VerifyingKey, ...] = field(default=(), converter=_keys)
    require_signatures: bool = False
    signing_key: SigningKey | None = None

    def key_for(self, signature: Signature) -> VerifyingKey | None:
        """The trusted key a signature names, if any."""
        own = self.signing_key
        candidates = [*self.signers, *([] if own is None else [own.verifier()])]
        for key in candidates:
            if (key.algorithm, key.key_id) == (signature.algorithm, signature.key_id):
                return key
        return None


def _problem(signature: Signature | None, message: bytes, trust: Trust) -> str | None:
    """Why an object signed (or not) so is refused under ``trust``; None if it is accepted."""
    if not trust.checking:
        return None
    if signature is None:
        return "unsigned, and signatures are required" if trust.require_signatures else None
    key = trust.key_for(signature)
    if key is None:
        return (
            f"signed by key {signature.key_id} ({signature.algorithm}), which this reader "
            "does not trust"
        )
    if not key.verify(message, bytes.fromhex(signature.value)):
        return (
            f"its signature by key {signature.key_id} does not match it "
            "(tampered with, or copied from another entry)"
        )
    return None


def manifest_problem(manifest: Manifest, trust: Trust) -> str | None:
    """Why ``manifest`` is not to be used under ``trust`` (one line); None if it is."""
    return _problem(manifest.signature, manifest.signed_message(), trust)


def check_manifest(manifest: Manifest, trust: Trust) -> Manifest:
    """``manifest`` if ``trust`` accepts it, else :class:`UntrustedEntry` saying why."""
    problem = manifest_problem(manifest, trust)
    if problem is not None:
        raise UntrustedEntry(f"entry {manifest.key} is untrusted: {problem}")
    return manifest


def sign_manifest(manifest: Manifest, trust: Trust) -> Manifest:
    """``manifest`` signed with the writer's key, if it has one and the manifest is unsigned.

    A manifest already signed keeps its signature: it says who computed the entry (an
    entry fetched from the cloud keeps its signer in the local tier). The manifest is first
    read back as a reader will read it, so that the bytes signed are the bytes checked.

    :raises InvalidManifest: a manifest readers would refuse.
    """
    key = trust.signing_key
    if key is None or manifest.signature is not None:
        return manifest
    unsigned = Manifest.from_json(manifest_bytes(manifest), key=manifest.key)
    value = key.sign(unsigned.signed_message()).hex()
    signature = Signature(key_id=key.key_id, algorithm=key.algorithm, value=value)
    return evolve(unsigned, signature=signature)


def signer_of(manifest: Manifest | None) -> str | None:
    """The key id a manifest names as its signer (not checked), None if unsigned."""
    if manifest is None or manifest.signature is None:
        return None
    return manifest.signature.key_id


def sign_evaluation(
    key: str, fingerprint: str, result: Mapping[str, Any], trust: Trust
) -> Mapping[str, Any]:
    """``result`` as stored: with a ``signature`` member if the writer has a key."""
    signing = trust.signing_key
    metrics = {name: value for name, value in result.items() if name != SIGNATURE_MEMBER}
    if signing is None:
        return metrics
    value = signing.sign(evaluation_message(key, fingerprint, metrics)).hex()
    signature = Signature(key_id=signing.key_id, algorithm=signing.algorithm, value=value)
    return {**metrics, SIGNATURE_MEMBER: signature.to_json()}


def check_evaluation(
    key: str, fingerprint: str, stored: Mapping[str, Any], trust: Trust
) -> dict[str, Any]:
    """The metrics of a stored result, its signature removed, if ``trust`` accepts it.

    :raises UntrustedEntry: the result is refused; the message says why.
    """
    metrics = {name: value for name, value in stored.items() if name != SIGNATURE_MEMBER}
    what = f"evaluation result {fingerprint} of entry {key}"
    try:
        signature = (
            Signature.from_json(stored[SIGNATURE_MEMBER]) if SIGNATURE_MEMBER in stored else None
        )
    except InvalidManifest as error:
        if not trust.checking:
            return metrics
        raise UntrustedEntry(f"{what} is untrusted: {error}") from None
    problem = _problem(signature, evaluation_message(key, fingerprint, metrics), trust)
    if problem is not None:
        raise UntrustedEntry(f"{what} is untrusted: {problem}")
    return metrics
