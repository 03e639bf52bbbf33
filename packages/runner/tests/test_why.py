"""``why``: the key inputs that make a pass miss, up the chain when its input changed."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from modelcache.planner import Chain, PassSpec, chain_keys, key_document
from modelcache.runner import maintenance
from modelcache.store import MemoryStore

from .maintenance_world import MODEL, publish, spec


def _why(store: MemoryStore, passes: list[PassSpec], name: str) -> maintenance.WhyReport:
    keys = list(chain_keys(Chain(model=MODEL, passes=tuple(passes))))
    documents = [key_document(MODEL if i == 0 else keys[i - 1], p) for i, p in enumerate(passes)]
    inventory = maintenance.take_inventory(store, now=time.time())
    return maintenance.explain_miss(inventory, [p.name for p in passes], documents, keys, name)


def _publish_chain(store: MemoryStore, scratch: Path, passes: list[PassSpec]) -> list[str]:
    keys = list(chain_keys(Chain(model=MODEL, passes=tuple(passes))))
    previous: Any = MODEL
    for pass_spec, key in zip(passes, keys, strict=True):
        publish(store, scratch, previous, pass_spec, {"w": key.encode()})
        previous = key
    return keys


def test_why_names_the_changed_config_field_and_package(tmp_path: Path) -> None:
    store = MemoryStore()
    keys = _publish_chain(
        store, tmp_path, [spec("convert", opset=17), spec("quantize", per_channel=True)]
    )
    changed = [
        spec("convert", opset=17),
        PassSpec(
            name="quantize",
            type="Typequantize",
            version="1",
            config={"per_channel": False},
            packages={"torch": "2.14.0"},
        ),
    ]
    report = _why(store, changed, "quantize")
    assert not report.cached
    assert report.nearest == keys[1]
    fields = {d.field: (d.cached, d.now) for d in report.differences}
    assert fields == {
        "pass.config.per_channel": (True, False),
        "pass.packages.torch": ("2.13.0", "2.14.0"),
    }
    assert _why(store, changed, "convert").cached

    upstream_changed = [spec("convert", opset=18), spec("quantize", per_channel=True)]
    report = _why(store, upstream_changed, "quantize")
    assert [d.field for d in report.differences] == ["input"]
    assert report.upstream is not None
    assert report.upstream.pass_name == "convert"
    assert [d.field for d in report.upstream.differences] == ["pass.config.opset"]
    assert "convert" in report.note


def test_why_says_when_a_pass_type_never_ran() -> None:
    report = _why(MemoryStore(), [spec("convert")], "convert")
    assert not report.cached
    assert report.nearest is None
    assert "never ran" in report.note


def test_the_why_report_in_json_nests_the_pass_before(tmp_path: Path) -> None:
    store = MemoryStore()
    keys = _publish_chain(store, tmp_path, [spec("convert", opset=17), spec("quantize", bits=8)])
    changed = [spec("convert", opset=18, layers=[1, 2]), spec("quantize", bits=8)]
    new_keys = list(chain_keys(Chain(model=MODEL, passes=tuple(changed))))
    document = _why(store, changed, "quantize").to_json()
    assert document == {
        "pass": "quantize",
        "key": new_keys[1],
        "cached": False,
        "nearest": keys[1],
        "candidates": 1,
        "differences": [{"field": "input", "cached": keys[0], "now": new_keys[0]}],
        "note": "its input differs: the output of pass 'convert' is not the one the cached "
        "entry was made from",
        "upstream": {
            "pass": "convert",
            "key": new_keys[0],
            "cached": False,
            "nearest": keys[0],
            "candidates": 1,
            "differences": [
                {"field": "pass.config.layers", "cached": "<absent>", "now": [1, 2]},
                {"field": "pass.config.opset", "cached": 17, "now": 18},
            ],
            "note": "",
            "upstream": None,
        },
    }
