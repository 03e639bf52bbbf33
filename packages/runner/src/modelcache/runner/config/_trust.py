"""The ``signing`` and ``trust`` sections: who this runner signs as, and whom it believes.

::

    "signing": {"key": "keys/ci.pem"}                          an EC P-256 private key (PEM)
    "signing": {"key": "env:MODELCACHE_SIGNING_KEY"}           ... its PEM text in a variable
    "signing": {"hmac_secret_env": "TEAM_SECRET", "key_id": "team"}    a shared secret
    "signing": {"azure_key_vault_key": "https://v.vault.azure.net/keys/ci/0123...",
                "public_key": "keys/ci.pub.pem"}         a Key Vault key; public_key optional
    "trust": {
      "signers": [
        {"public_key": "keys/ci.pub.pem"},                     a key pair's public half
        {"hmac_secret_env": "TEAM_SECRET", "key_id": "team"}   a shared secret, by its name
      ],
      "require_signatures": true
    }

Secrets are never written in the config: an HMAC secret only comes from the environment,
and a private key from a file or the environment. Here the shapes are checked (each problem
at its JSON path); the keys are read when a run starts (``modelcache.runner.trust``), with
the same paths in their errors. ``docs/security.md`` is the guide.
"""

from __future__ import annotations

import re
from typing import Any

from attrs import frozen
from cattrs import Converter
from cattrs.errors import ClassValidationError, IterableValidationError, IterableValidationNote
from cattrs.gen import make_dict_structure_fn

from modelcache.store import check_key_id

from ._reading import json_type

__all__ = ["SignerConfig", "SigningConfig", "TrustConfig", "register_trust_hooks"]

_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")
# A Key Vault key's URL: https://VAULT.vault.azure.net/keys/NAME, a version after it if pinned.
_VAULT_KEY = re.compile(
    r"https://[A-Za-z0-9-]{3,24}\.[a-z0-9.-]+(?::[0-9]{1,5})?/keys/[A-Za-z0-9-]{1,127}"
    r"(?:/[A-Za-z0-9]{1,64})?/?"
)
_HMAC_SHAPE = '{"hmac_secret_env": "VARIABLE", "key_id": "team"}'


@frozen(kw_only=True)
class SigningConfig:
    """``signing``: the key every entry this runner publishes is signed with. Exactly one of
    ``key`` (an EC P-256 private key: a PEM file, or ``env:VAR``), ``hmac_secret_env`` (with
    ``key_id``, the name readers know the secret by) and ``azure_key_vault_key`` (a P-256
    key's URL in Azure Key Vault, with its ``public_key`` optionally: else it is fetched)."""

    key: str | None = None
    hmac_secret_env: str | None = None
    key_id: str | None = None
    azure_key_vault_key: str | None = None
    public_key: str | None = None


@frozen(kw_only=True)
class SignerConfig:
    """One trusted signer: ``public_key`` (a PEM file, or ``env:VAR``; its id is derived
    from it), or ``hmac_secret_env`` with the ``key_id`` signatures name it by."""

    public_key: str | None = None
    hmac_secret_env: str | None = None
    key_id: str | None = None


@frozen(kw_only=True)
class TrustConfig:
    """``trust``: the signers whose entries are served, and whether unsigned entries are.
    With the section present, a signature that is not a trusted signer's is a miss."""

    signers: tuple[SignerConfig, ...] = ()
    require_signatures: bool = False


def _source(value: Any, what: str) -> None:
    """A key source: a non-empty path, or ``env:VAR`` with a variable's name."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a PEM file's path or env:VARIABLE")
    if value.startswith("env:") and not _VARIABLE.fullmatch(value.removeprefix("env:")):
        raise ValueError(f"{what}: {value!r} does not name an environment variable")


def _hmac(secret_env: Any, key_id: Any) -> None:
    if not isinstance(secret_env, str) or not _VARIABLE.fullmatch(secret_env):
        raise ValueError(f"hmac_secret_env must name an environment variable, as {_HMAC_SHAPE}")
    if key_id is None:
        raise ValueError(f"a shared secret needs a key_id, its name for readers: {_HMAC_SHAPE}")
    check_key_id(key_id)


def _vault_key(value: dict[str, Any]) -> None:
    url = value["azure_key_vault_key"]
    if not isinstance(url, str) or not _VAULT_KEY.fullmatch(url):
        raise ValueError(
            "azure_key_vault_key must be a key's URL, "
            "https://VAULT.vault.azure.net/keys/NAME/VERSION (the version may be left out)"
        )
    if value.get("key_id") is not None:
        raise ValueError("key_id is derived from the Key Vault key's public key; remove it")
    if value.get("public_key") is not None:
        _source(value["public_key"], "public_key")


def _check_key(value: dict[str, Any], pair: str) -> None:
    """Exactly one of ``pair`` (a key pair's field), ``hmac_secret_env`` and, in ``signing``,
    ``azure_key_vault_key``; ``public_key`` in ``signing`` only beside a vault key."""
    kinds = [pair, "hmac_secret_env"] + (["azure_key_vault_key"] if pair == "key" else [])
    given = [kind for kind in kinds if value.get(kind) is not None]
    if len(given) != 1:
        *rest, last = [f'"{kind}"' for kind in kinds]
        raise ValueError(f"give exactly one of {', '.join(rest)} and {last}")
    if pair == "key" and given != ["azure_key_vault_key"] and value.get("public_key") is not None:
        raise ValueError("public_key goes beside azure_key_vault_key only (a private key's "
                         "public half is derived from it)")  # fmt: skip
    if given == ["azure_key_vault_key"]:
        _vault_key(value)
    elif given == [pair]:
        _source(value[pair], pair)
        if value.get("key_id") is not None:
            raise ValueError(
                f"key_id is derived from the {pair} (the SHA-256 of its public key); remove it"
            )
    else:
        _hmac(value["hmac_secret_env"], value.get("key_id"))


def _keyed(cls: type, pair: str, converter: Converter) -> Any:
    fields: Any = make_dict_structure_fn(cls, converter, _cattrs_forbid_extra_keys=True)

    def hook(value: Any, _type: Any) -> Any:
        if not isinstance(value, dict):
            raise TypeError(f"expected an object, got {json_type(value)}")
        structured = fields(value, cls)  # types and unknown fields first, each at its path
        _check_key(value, pair)
        return structured

    return hook


def _signers(value: Any, _type: Any, converter: Converter) -> tuple[SignerConfig, ...]:
    if not isinstance(value, list):
        raise TypeError(f"expected a list of signers, got {json_type(value)}")
    signers, errors = [], []
    for index, item in enumerate(value):
        try:
            signers.append(converter.structure(item, SignerConfig))
        except (ValueError, TypeError, ClassValidationError) as error:
            error.__notes__ = [*getattr(error, "__notes__", ()), _index_note(index)]
            errors.append(error)
    if errors:
        raise IterableValidationError("invalid signers", errors, list)
    return tuple(signers)


def _index_note(index: int) -> IterableValidationNote:
    return IterableValidationNote(f"Structuring item @ index {index}", index, SignerConfig)


def register_trust_hooks(converter: Converter) -> None:
    """Teach the config's converter the two sections (called once, by ``_structure``)."""
    converter.register_structure_hook(SigningConfig, _keyed(SigningConfig, "key", converter))
    converter.register_structure_hook(SignerConfig, _keyed(SignerConfig, "public_key", converter))
    converter.register_structure_hook_func(
        lambda kind: kind == tuple[SignerConfig, ...],
        lambda value, kind: _signers(value, kind, converter),
    )
    trust_fields = make_dict_structure_fn(TrustConfig, converter, _cattrs_forbid_extra_keys=True)

    def trust(value: Any, _type: Any) -> TrustConfig:
        if not isinstance(value, dict):
            raise TypeError(f"expected an object, got {json_type(value)}")
        return trust_fields(value, TrustConfig)

    converter.register_structure_hook(TrustConfig, trust)
