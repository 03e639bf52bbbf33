"""Every pass output is loaded before it is published (``passes.check_output``, issue 12:
never publish a broken model)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from modelcache.runner.passes import BrokenOutput, PassError, check_output

pytestmark = pytest.mark.slow


def assert_broken(model_type: str, directory: Path, pass_type: str, fragment: str) -> None:
    with pytest.raises(BrokenOutput) as caught:
        check_output(model_type, directory, pass_type=pass_type)
    message = str(caught.value)
    assert isinstance(caught.value, PassError)
    assert caught.value.fault == "environment"
    assert message.startswith(f"pass {pass_type} wrote a model that does not load")
    assert "nothing was cached" in message
    assert fragment in message
    assert "\n" not in message


def test_good_outputs_pass(tiny_bert: Path, tiny_onnx: Path, tiny_onnx_external: Path) -> None:
    check_output("hf", tiny_bert, pass_type="TorchDtypeCast")
    check_output("onnx", tiny_onnx, pass_type="OnnxConversion")
    check_output("onnx", tiny_onnx_external, pass_type="OnnxConversion")


def test_a_quantized_float16_graph_is_refused(
    tiny_bert: Path, run_pass: Callable[..., Path]
) -> None:
    """The issue's chain: TorchDtypeCast(fp16) -> OnnxConversion -> OnnxDynamicQuantization
    exits normally and writes a graph onnxruntime will not load (at opset 18: at 20, the
    default since, the same chain's output loads)."""
    half = run_pass("TorchDtypeCast", tiny_bert, dtype="float16")
    check_output("hf", half, pass_type="TorchDtypeCast")
    converted = run_pass("OnnxConversion", half, target_opset=18)
    check_output("onnx", converted, pass_type="OnnxConversion")
    quantized = run_pass("OnnxDynamicQuantization", converted)
    assert_broken("onnx", quantized, "OnnxDynamicQuantization", "onnxruntime cannot load it")


def test_a_damaged_graph_is_refused_by_the_checker(tiny_onnx: Path, tmp_path: Path) -> None:
    damaged = shutil.copytree(tiny_onnx, tmp_path / "damaged")
    graph = (damaged / "model.onnx").read_bytes()
    (damaged / "model.onnx").write_bytes(graph[: len(graph) // 2])
    assert_broken("onnx", damaged, "OrtGraphOptimization", "does not load")


def test_missing_external_data_is_refused(tiny_onnx_external: Path, tmp_path: Path) -> None:
    damaged = shutil.copytree(tiny_onnx_external, tmp_path / "damaged")
    (damaged / "model.onnx.data").unlink()
    assert_broken("onnx", damaged, "OnnxDynamicQuantization", "does not load")


def test_damaged_weights_are_refused(tiny_bert: Path, tmp_path: Path) -> None:
    damaged = shutil.copytree(tiny_bert, tmp_path / "damaged")
    weights = (damaged / "model.safetensors").read_bytes()
    (damaged / "model.safetensors").write_bytes(weights[: len(weights) // 2])
    assert_broken("hf", damaged, "MagnitudePruning", "does not load")


def test_weights_lacking_tensors_are_refused(tiny_bert: Path, tmp_path: Path) -> None:
    from safetensors.torch import load_file, save_file

    damaged = shutil.copytree(tiny_bert, tmp_path / "damaged")
    tensors = load_file(str(damaged / "model.safetensors"))
    del tensors[next(name for name in tensors if name.startswith("pooler"))]
    save_file(tensors, str(damaged / "model.safetensors"), metadata={"format": "pt"})
    assert_broken("hf", damaged, "MagnitudePruning", "pooler")


@pytest.mark.parametrize(
    ("declared", "files"),
    [("onnx", "hf"), ("hf", "onnx"), ("hf", "nothing")],
)
def test_an_output_of_another_type_is_refused(
    tiny_bert: Path, tiny_onnx: Path, tmp_path: Path, declared: str, files: str
) -> None:
    source = {"hf": tiny_bert, "onnx": tiny_onnx}.get(files)
    output = shutil.copytree(source, tmp_path / "out") if source else tmp_path
    assert_broken(declared, output, "SomePlugin", "does not load")
