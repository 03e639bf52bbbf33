"""What a pass's key holds beyond its configuration (issue 12): the machine facts and the
environment variables its output depends on (``passes._environment``), and equal keys for
configurations that mean the same."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from modelcache.planner import LocalModel, PassSpec, pass_key
from modelcache.runner.config import parse_config
from modelcache.runner.passes import (
    EnvironmentDependentPass,
    MachineDependentPass,
    _environment,
    cpu_features,
    key_packages,
    load_pass,
)

MODEL = LocalModel(digest="0" * 64)


def key(type_name: str, config: dict[str, Any], environ: dict[str, str] | None = None) -> str:
    implementation = load_pass(type_name)
    validated = implementation.validate(config)
    packages = key_packages(implementation, validated, environ or {})
    spec = PassSpec(name="p", type=type_name, version="1", config=validated, packages=packages)
    return pass_key(MODEL, spec)


@pytest.fixture
def cpu(monkeypatch: pytest.MonkeyPatch) -> Any:
    """``cpu(text)``: pretend ``/proc/cpuinfo`` says ``text``."""

    def pretend(text: str) -> None:
        monkeypatch.setattr(_environment, "_CPUINFO", _Info(text))

    return pretend


class _Info:
    def __init__(self, text: str) -> None:
        self.text = text

    def read_text(self, **_: Any) -> str:
        return self.text


AVX2 = (
    "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma f16c\n\nprocessor\t: 1\nflags\t: avx avx2\n"
)
AVX512 = "flags\t\t: fpu sse2 avx avx2 fma f16c avx512f avx512bw avx512vl avx512_vnni\n"


def test_the_cpu_is_described_by_its_layout_relevant_features(cpu: Any) -> None:
    cpu(AVX2)
    machine = cpu_features().split()[0]
    assert cpu_features() == f"{machine} avx avx2 f16c fma"  # sorted; fpu, sse2 do not matter
    cpu("Features\t: fp asimd asimdhp asimddp i8mm crc32\n")
    assert cpu_features() == f"{machine} asimd asimddp asimdhp i8mm"


def test_level_all_is_keyed_by_the_cpu_and_only_level_all(cpu: Any) -> None:
    cpu(AVX2)
    on_avx2 = {level: key("OrtGraphOptimization", {"level": level}) for level in ("basic",
               "extended", "all")}  # fmt: skip
    implementation = load_pass("OrtGraphOptimization")
    assert isinstance(implementation, MachineDependentPass)
    assert key_packages(implementation, {"level": "all"}, {})["machine:cpu"] == cpu_features()
    cpu(AVX512)
    assert key("OrtGraphOptimization", {"level": "all"}) != on_avx2["all"]
    for level in ("basic", "extended"):
        assert key("OrtGraphOptimization", {"level": level}) == on_avx2[level]
        assert key_packages(implementation, {"level": level}, {}) == implementation.packages()


def test_torch_onnx_flags_are_keyed_for_the_export() -> None:
    implementation = load_pass("OnnxConversion")
    assert isinstance(implementation, EnvironmentDependentPass)
    plain = key("OnnxConversion", {})
    draft = key("OnnxConversion", {}, {"TORCH_ONNX_ENABLE_DRAFT_EXPORT": "1"})
    assert draft != plain
    assert key("OnnxConversion", {}, {"TORCH_ONNX_ENABLE_DRAFT_EXPORT": "0"}) not in {plain, draft}
    # Variables the export does not read change nothing.
    assert key("OnnxConversion", {}, {"TORCH_LOGS": "+dynamo", "HOME": "/x"}) == plain
    packages = key_packages(implementation, implementation.validate({}),
                            {"TORCH_ONNX_ENABLE_OPTIMIZATION": "1"})  # fmt: skip
    assert packages["env:TORCH_ONNX_ENABLE_OPTIMIZATION"] == "1"


def test_key_packages_reads_the_process_environment_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    implementation = load_pass("OnnxConversion")
    monkeypatch.setenv("TORCH_ONNX_PREFER_DEFERRED_RUNTIME_ASSERTS_OVER_GUARDS", "1")
    packages = key_packages(implementation, implementation.validate({}))
    assert packages["env:TORCH_ONNX_PREFER_DEFERRED_RUNTIME_ASSERTS_OVER_GUARDS"] == "1"


@pytest.mark.parametrize(
    ("type_name", "config"),
    [
        ("MagnitudePruning", {"sparsity": 0.5}),
        ("OnnxConversion", {}),
        ("OnnxDynamicQuantization", {}),
        ("OrtGraphOptimization", {}),
        ("TorchDtypeCast", {}),
    ],
)
def test_a_pass_keeps_its_key_where_no_machine_fact_or_variable_applies(
    cpu: Any, type_name: str, config: dict[str, Any]
) -> None:
    implementation = load_pass(type_name)
    validated = implementation.validate(config)
    environ = {"TORCH_LOGS": "+dynamo", "ORT_LOGGING_LEVEL": "0"}
    assert key_packages(implementation, validated, environ) == implementation.packages()
    cpu(AVX512)
    assert key_packages(implementation, validated, environ) == implementation.packages()


class PlainPlugin:
    """A third-party pass that declares neither machine facts nor environment variables."""

    type = "Plain"
    version = "1"
    input_types = frozenset({"hf"})
    output_type = "hf"

    def packages(self) -> dict[str, str]:
        return {"plain": "1.0"}

    def validate(self, config: Any) -> dict[str, Any]:
        return dict(config)

    def run(self, input_dir: Path, output_dir: Path, config: Any) -> None:
        raise NotImplementedError


def test_a_pass_declaring_nothing_is_keyed_by_its_packages_alone() -> None:
    plugin = PlainPlugin()
    assert not isinstance(plugin, (MachineDependentPass, EnvironmentDependentPass))
    assert key_packages(plugin, {}, {"TORCH_ONNX_ENABLE_DRAFT_EXPORT": "1"}) == {"plain": "1.0"}


def test_the_runner_puts_machine_facts_and_variables_into_the_chain(
    tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``prepare`` builds each PassSpec's packages with :func:`key_packages`."""
    from modelcache.runner.workflow import prepare

    monkeypatch.setenv("MODELCACHE_DIGEST_CACHE", str(tmp_path / "digests"))
    monkeypatch.setenv("TORCH_ONNX_ENABLE_DRAFT_EXPORT", "1")
    config = parse_config(
        {
            "input_model": {"type": "HfModel", "model_path": str(tiny_bert)},
            "passes": {
                "convert": {"type": "OnnxConversion"},
                "tuned": {"type": "OrtGraphOptimization", "level": "all"},
                "portable": {"type": "OrtGraphOptimization", "level": "basic"},
            },
        },
        base_dir=tmp_path,
    )
    convert, tuned, portable = prepare(config).chain.passes
    assert convert.packages["env:TORCH_ONNX_ENABLE_DRAFT_EXPORT"] == "1"
    assert tuned.packages["machine:cpu"] == cpu_features()
    assert dict(portable.packages) == load_pass("OrtGraphOptimization").packages()
