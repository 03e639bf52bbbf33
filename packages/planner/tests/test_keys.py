"""Cache keys: pinned golden vectors, the documented derivation, and the chaining properties.

A key that changes invalidates every cache in the world. The vectors below are pinned on
purpose: if one of these tests fails, a change altered key derivation. Either undo it, or
bump ``KEY_SCHEMA`` and document the new derivation in ``docs/cache-keys.md``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

import pytest
from attrs import evolve
from hypothesis import assume, given
from hypothesis import strategies as st

from modelcache.planner import (
    KEY_SCHEMA,
    Chain,
    HubModel,
    InvalidConfig,
    LocalModel,
    PassSpec,
    canonical_json,
    chain_keys,
    key_document,
    pass_key,
)

from .strategies import chains, configs, json_values, models

MINILM = HubModel(
    repo_id="sentence-transformers/all-MiniLM-L6-v2",
    revision="c9745ed1d9f207416be6d2e6f8de32d1f16199bf",
)
CONVERT = PassSpec(
    name="convert",
    type="OnnxConversion",
    version="1",
    config={"target_opset": 17},
    packages={"torch": "2.13.0", "onnx": "1.17.0"},
)
QUANTIZE = PassSpec(
    name="quantize",
    type="OnnxDynamicQuantization",
    version="1",
    config={"weight_type": "QInt8", "per_channel": False},
    packages={"onnxruntime": "1.20.1"},
)
FP16 = PassSpec(name="fp16", type="OnnxFloatToFloat16", version="1")
ODD_CONFIG = PassSpec(
    name="odd",
    type="T",
    version="1",
    config={"é": [1, 2.5, None, True, {"b": "ü", "a": -0.0}]},
)

GOLDEN: list[tuple[str, Chain, list[str]]] = [
    (
        "hub model, three passes",
        Chain(model=MINILM, passes=[CONVERT, QUANTIZE, FP16]),
        [
            "9e70ab778865efc80ed975f23946b8e842263f763ca2b8e4f4c05be9dcc2e902",
            "15426cae66563ab2e7964af73d1a41105975a79c8151b1fa88583d231e4fae33",
            "f35c7cd901e47c8ede0a7f05000ed287d45ac3d0dee79b51f065aea3da160e0f",
        ],
    ),
    (
        "local model",
        Chain(model=LocalModel(digest="0" * 64), passes=[CONVERT]),
        ["933e145074a76373ad0d67ca6563a74b10ad8135ec65ab5ca3ae6fe1228d02a9"],
    ),
    (
        "non-ASCII, nested, negative zero",
        Chain(model=MINILM, passes=[ODD_CONFIG]),
        ["60f0b14b57868d0419a37232b7d33569684c3151d132224aae49088aaf58741a"],
    ),
]


@pytest.mark.parametrize(
    ("chain", "expected"), [case[1:] for case in GOLDEN], ids=[c[0] for c in GOLDEN]
)
def test_golden_keys_never_change(chain: Chain, expected: list[str]) -> None:
    assert list(chain_keys(chain)) == expected


def test_the_key_document_is_as_documented() -> None:
    assert KEY_SCHEMA == "modelcache-key/1"
    assert canonical_json(key_document(MINILM, CONVERT)) == (
        '{"input":{"kind":"hf_hub","repo_id":"sentence-transformers/all-MiniLM-L6-v2",'
        '"revision":"c9745ed1d9f207416be6d2e6f8de32d1f16199bf"},'
        '"pass":{"config":{"target_opset":17},"packages":{"onnx":"1.17.0","torch":"2.13.0"},'
        '"type":"OnnxConversion","version":"1"},"schema":"modelcache-key/1"}'
    )
    assert canonical_json(key_document(LocalModel(digest="0" * 64), FP16)) == (
        '{"input":{"digest":"' + "0" * 64 + '","kind":"local_dir"},'
        '"pass":{"config":{},"packages":{},"type":"OnnxFloatToFloat16","version":"1"},'
        '"schema":"modelcache-key/1"}'
    )


def plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [plain(item) for item in value]
    return value


def documented_key(input_: Any, spec: PassSpec) -> str:
    """The derivation as docs/cache-keys.md states it, written out with nothing but json."""
    if isinstance(input_, HubModel):
        input_ = {"kind": "hf_hub", "repo_id": input_.repo_id, "revision": input_.revision}
    elif isinstance(input_, LocalModel):
        input_ = {"kind": "local_dir", "digest": input_.digest}
    document = {
        "schema": "modelcache-key/1",
        "input": input_,
        "pass": {
            "type": spec.type,
            "version": spec.version,
            "config": plain(spec.config),
            "packages": plain(spec.packages),
        },
    }
    text = json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@given(chains(min_passes=1, max_passes=4))
def test_keys_follow_the_documented_derivation(chain: Chain) -> None:
    previous: Any = chain.model
    for spec, key in zip(chain.passes, chain_keys(chain), strict=True):
        assert key == documented_key(previous, spec)
        previous = key


def changed(spec: PassSpec, field: str, value: Any) -> PassSpec:
    return evolve(spec, **{field: value})


@st.composite
def pass_changes(draw: st.DrawFn) -> tuple[Chain, int, PassSpec]:
    """A chain, the index of one of its passes, and that pass changed in what its key hashes."""
    chain = draw(chains(min_passes=1, max_passes=4))
    index = draw(st.integers(0, len(chain.passes) - 1))
    spec = chain.passes[index]
    field = draw(st.sampled_from(["type", "version", "config", "packages"]))
    if field in ("type", "version"):
        value: Any = draw(st.text(min_size=1, max_size=8))
    elif field == "config":
        value = draw(configs())
    else:
        value = draw(st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2))
    new = changed(spec, field, value)
    assume(key_document("x", new) != key_document("x", spec))
    return chain, index, new


@given(pass_changes())
def test_changing_a_pass_changes_its_key_and_every_later_key_and_no_earlier_one(
    case: tuple[Chain, int, PassSpec],
) -> None:
    chain, index, new = case
    passes = list(chain.passes)
    passes[index] = new
    before, after = chain_keys(chain), chain_keys(evolve(chain, passes=passes))
    assert after[:index] == before[:index]
    assert all(a != b for a, b in zip(after[index:], before[index:], strict=True))


@given(chains(min_passes=1, max_passes=4), models())
def test_changing_the_model_changes_every_key(chain: Chain, model: Any) -> None:
    assume(model != chain.model)
    after = chain_keys(evolve(chain, model=model))
    assert all(a != b for a, b in zip(after, chain_keys(chain), strict=True))


@given(chains(min_passes=1, max_passes=4), st.data())
def test_renaming_a_pass_keeps_every_key(chain: Chain, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, len(chain.passes) - 1))
    passes = list(chain.passes)
    passes[index] = evolve(passes[index], name="renamed-" + passes[index].name)
    assert chain_keys(evolve(chain, passes=passes)) == chain_keys(chain)


@given(chains(min_passes=1, max_passes=4), st.data())
def test_a_prefix_of_a_chain_has_a_prefix_of_its_keys(chain: Chain, data: st.DataObject) -> None:
    length = data.draw(st.integers(0, len(chain.passes)))
    prefix = evolve(chain, passes=chain.passes[:length])
    assert chain_keys(prefix) == chain_keys(chain)[:length]


def reordered(value: Any, data: st.DataObject) -> Any:
    """The same JSON value with every object's keys in a drawn order."""
    if isinstance(value, dict):
        items = data.draw(st.permutations(list(value.items())))
        return {key: reordered(item, data) for key, item in items}
    if isinstance(value, list):
        return [reordered(item, data) for item in value]
    return value


@given(st.dictionaries(st.text(max_size=4), json_values, min_size=2, max_size=5), st.data())
def test_config_key_order_is_irrelevant(config: dict[str, Any], data: st.DataObject) -> None:
    shuffled = reordered(config, data)
    spec = PassSpec(name="p", type="T", version="1", config=config)
    other = PassSpec(name="p", type="T", version="1", config=shuffled)
    assert other.config == spec.config
    assert pass_key(MINILM, other) == pass_key(MINILM, spec)


@pytest.mark.parametrize(
    ("config", "path"),
    [
        ({"scale": float("nan")}, "$.scale"),
        ({"limits": [1, float("inf")]}, "$.limits[1]"),
        ({"nested": {1: "one"}}, "$.nested"),
        ({"blob": b"bytes"}, "$.blob"),
    ],
)
def test_a_config_json_cannot_carry_exactly_is_refused_with_its_path(
    config: dict[str, Any], path: str
) -> None:
    with pytest.raises(InvalidConfig) as raised:
        PassSpec(name="p", type="T", version="1", config=config)
    assert raised.value.path == path
