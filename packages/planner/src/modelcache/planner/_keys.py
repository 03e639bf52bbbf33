"""Cache keys.

Keys are chained. The key of pass *i* is the SHA-256 (lowercase hex) of the canonical JSON
of its *key document*::

    {"schema": "modelcache-key/1",
     "input": <key of pass i-1, or the input model's identity document for the first pass>,
     "pass": {"type": ..., "version": ..., "config": {...}, "packages": {...}}}

so a change to any pass changes its key and every later key, and no earlier one. The pass's
name is a label and is not hashed. ``docs/cache-keys.md`` documents this derivation; golden
vectors in the tests pin it.
"""

from __future__ import annotations

import hashlib
from typing import Any

from ._json import canonical_json, thaw
from ._model import Chain, HubModel, ModelIdentity, PassSpec

__all__ = ["KEY_SCHEMA", "chain_keys", "identity_document", "key_document", "pass_key"]

KEY_SCHEMA = "modelcache-key/1"


def identity_document(model: ModelIdentity) -> dict[str, str]:
    """The JSON form of an input model's identity, as hashed into the first key."""
    if isinstance(model, HubModel):
        return {"kind": "hf_hub", "repo_id": model.repo_id, "revision": model.revision}
    return {"kind": "local_dir", "digest": model.digest}


def key_document(input_: str | ModelIdentity, spec: PassSpec) -> dict[str, Any]:
    """Everything the key of ``spec`` applied to ``input_`` (a key or the model) depends on."""
    return {
        "schema": KEY_SCHEMA,
        "input": input_ if isinstance(input_, str) else identity_document(input_),
        "pass": {
            "type": spec.type,
            "version": spec.version,
            "config": thaw(spec.config),
            "packages": thaw(spec.packages),
        },
    }


def pass_key(input_: str | ModelIdentity, spec: PassSpec) -> str:
    """The key of ``spec``'s output when applied to ``input_`` (a key or the model)."""
    text = canonical_json(key_document(input_, spec))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chain_keys(chain: Chain) -> tuple[str, ...]:
    """The key of every pass's output, in chain order."""
    keys: list[str] = []
    previous: str | ModelIdentity = chain.model
    for spec in chain.passes:
        previous = pass_key(previous, spec)
        keys.append(previous)
    return tuple(keys)
