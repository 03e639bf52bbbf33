"""The config's ``signing`` and ``trust`` sections made real: keys read, stores wrapped.

Keys are read when a run (or a ``modelcache cache`` command) starts, not when the config is
parsed, so that ``modelcache plan`` and config checks need no secret. Every problem names
its JSON path, as the config's others do, and never quotes key material. The stores are
wrapped (``modelcache.store.TrustedStore``, ``TrustedLocalStore``) only when one of the two
sections is present; without them the local tier is left as it is, and the cloud tier only
learns to strip signatures from evaluation results (which it then does not check).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from attrs import evolve, frozen

from modelcache.store import (
    HmacKey,
    SigningKey,
    Trust,
    TrustedLocalStore,
    TrustedStore,
    VerifyingKey,
)

from .config import ConfigError, Problem, SignerConfig, SigningConfig, WorkflowConfig
from .signing import EcPrivateKey, EcPublicKey, read_pem

if TYPE_CHECKING:
    from .workflow import Prepared

__all__ = ["PlanTrust", "configured", "load_trust", "plan_trust", "trust_of", "with_trust"]

_T = TypeVar("_T")


def load_trust(config: WorkflowConfig, environ: Mapping[str, str] = os.environ) -> Trust:
    """The trust ``config`` describes, its keys read from files and the environment.

    :raises ConfigError: a key that cannot be read or is not of its kind, a secret not set,
        or signatures required while nothing is trusted; each problem at its JSON path.
    """
    problems: list[Problem] = []
    signing_key = None
    if config.signing is not None:
        signing_key = _collect(problems, "$.signing", _signing_key, config.signing,
                               config.base_dir, environ)  # fmt: skip
    signers: list[VerifyingKey] = []
    section = config.trust
    for index, signer in enumerate(() if section is None else section.signers):
        found = _collect(problems, f"$.trust.signers[{index}]", _signer, signer,
                         config.base_dir, environ)  # fmt: skip
        if found is not None:
            signers.append(found)
    required = section is not None and section.require_signatures
    if required and not (section and section.signers) and config.signing is None:
        problems.append(Problem(
            path="$.trust.signers",
            problem="signatures are required but no signer is trusted and this runner signs "
            "with no key, so every entry would be a miss: name the signers to trust",
        ))  # fmt: skip
    if problems:
        raise ConfigError.of(problems)
    return Trust(
        checking=section is not None,
        signers=tuple(signers),
        require_signatures=required,
        signing_key=signing_key,
    )


@frozen(kw_only=True)
class PlanTrust:
    """What ``modelcache plan`` can check of signatures with what it reads here: the trusted
    signers, the writer's own key's public half, whether signatures are required.

    :param unchecked: None when every key the run would trust was read. Otherwise why not
        (a key file missing here, a secret not in this environment, a Key Vault key without
        its ``public_key``): a signature by a key outside ``trust`` may then be one the run
        accepts, so the plan does not refuse it; the run checks it.
    """

    trust: Trust
    unchecked: str | None = None


def plan_trust(config: WorkflowConfig, environ: Mapping[str, str] = os.environ) -> PlanTrust | None:
    """The signatures a plan checks, None without a ``trust`` section (nothing is refused).

    Reads what :func:`load_trust` reads, except that it never calls a Key Vault and takes
    only the public half of the writer's key; what it cannot read is not an error here (the
    run reports it), only a reason some signatures stay unchecked.
    """
    section = config.trust
    if section is None:
        return None
    problems: list[Problem] = []
    keys: list[VerifyingKey] = []
    for index, signer in enumerate(section.signers):
        found = _collect(problems, f"$.trust.signers[{index}]", _signer, signer,
                         config.base_dir, environ)  # fmt: skip
        if found is not None:
            keys.append(found)
    unchecked = None
    if config.signing is not None:
        before = len(problems)
        own = _collect(problems, "$.signing", _own_verifier, config.signing,
                       config.base_dir, environ)  # fmt: skip
        if own is not None:
            keys.append(own)
        elif len(problems) == before:
            unchecked = "$.signing: a Key Vault key without public_key is not read by a plan"
    if problems:
        unchecked = f"{problems[0].path}: {problems[0].problem}"
    trust = Trust(checking=True, signers=tuple(keys),
                  require_signatures=section.require_signatures)  # fmt: skip
    return PlanTrust(trust=trust, unchecked=unchecked)


def _own_verifier(
    section: SigningConfig, base_dir: Path, environ: Mapping[str, str]
) -> VerifyingKey | None:
    """The public half of the writer's key; None for a Key Vault key given without one."""
    if section.key is not None:
        pem = read_pem(section.key, base_dir=base_dir, environ=environ)
        return EcPrivateKey.from_pem(pem).verifier()
    if section.azure_key_vault_key is not None:
        public = section.public_key
        if public is None:
            return None
        return EcPublicKey.from_pem(read_pem(public, base_dir=base_dir, environ=environ))
    return _hmac_key(section, environ)


def _collect(
    problems: list[Problem], path: str, read: Callable[..., _T], *args: object
) -> _T | None:
    try:
        return read(*args)
    except ValueError as error:
        problems.append(Problem(path=path, problem=str(error)))
        return None


def _secret(variable: str, environ: Mapping[str, str]) -> bytes:
    value = environ.get(variable)
    if not value:
        raise ValueError(f"the environment variable {variable} holding the secret is not set")
    return value.encode("utf-8")


def _hmac_key(section: SigningConfig | SignerConfig, environ: Mapping[str, str]) -> HmacKey:
    variable, key_id = section.hmac_secret_env, section.key_id
    assert variable is not None  # the parser checked: one of the key pair and the secret
    assert key_id is not None
    return HmacKey(key_id, _secret(variable, environ))


def _signing_key(section: SigningConfig, base_dir: Path, environ: Mapping[str, str]) -> SigningKey:
    if section.key is not None:
        return EcPrivateKey.from_pem(read_pem(section.key, base_dir=base_dir, environ=environ))
    if section.azure_key_vault_key is not None:
        from .keyvault import open_key_vault_key  # cryptography, and the Azure SDK when called

        public = section.public_key
        pem = None if public is None else read_pem(public, base_dir=base_dir, environ=environ)
        return open_key_vault_key(section.azure_key_vault_key, pem)
    return _hmac_key(section, environ)


def _signer(section: SignerConfig, base_dir: Path, environ: Mapping[str, str]) -> VerifyingKey:
    if section.public_key is not None:
        return EcPublicKey.from_pem(read_pem(section.public_key, base_dir=base_dir,
                                             environ=environ))  # fmt: skip
    return _hmac_key(section, environ)


def configured(config: WorkflowConfig) -> bool:
    """Whether the config signs or checks anything."""
    return config.signing is not None or config.trust is not None


def with_trust(
    prepared: Prepared, environ: Mapping[str, str] = os.environ
) -> tuple[Prepared, str | None]:
    """``prepared`` with its stores signing and checking as its config says, and a note for
    the run if that turned uploads off (signatures required, and no key to sign with: every
    reader would refuse what this runner uploads). Already wrapped: returned as it is.

    :raises ConfigError: see :func:`load_trust`.
    """
    if isinstance(prepared.local, TrustedLocalStore):
        return prepared, None
    config = prepared.config
    if not configured(config):
        cloud = None if prepared.cloud is None else TrustedStore(prepared.cloud, Trust())
        return evolve(prepared, cloud=cloud), None
    trust = load_trust(config, environ)
    local = TrustedLocalStore(prepared.local.root, trust=trust, tier=prepared.local.tier)
    cloud = None if prepared.cloud is None else TrustedStore(prepared.cloud, trust)
    policy, note = prepared.policy, None
    if trust.require_signatures and trust.signing_key is None and policy.uploads:
        policy = evolve(policy, upload_to_cloud=False)
        note = (
            "uploads are off: signatures are required and this runner has no signing key "
            '(configure "signing" to publish)'
        )
    return evolve(prepared, local=local, cloud=cloud, policy=policy), note


def trust_of(store: object) -> Trust | None:
    """The trust a store applies, None if it is not a trusted store."""
    return store.trust if isinstance(store, (TrustedStore, TrustedLocalStore)) else None
