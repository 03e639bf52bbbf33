"""Olive's parameters on the two built-ins Olive also has (issue 13): an Olive config means
what it means in Olive, with Olive's defaults; spellings that mean the same are one cache
key; what the built-ins cannot honour is a one-line error naming the parameter.

The configuration tests are fast and import nothing heavy; those that run a pass use the
tiny BERT of ``conftest.py`` and are marked slow.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelcache.planner import LocalModel, PassSpec, pass_key
from modelcache.runner import olive
from modelcache.runner.passes import (
    OnnxConversion,
    OnnxDynamicQuantization,
    PassConfigError,
    PassConfigProblems,
)

CONVERSION = "OnnxConversion"
QUANTIZATION = "OnnxDynamicQuantization"
IMPLEMENTATIONS = {CONVERSION: OnnxConversion(), QUANTIZATION: OnnxDynamicQuantization()}
needs_olive = pytest.mark.skipif(olive.olive_version() is None, reason="needs olive-ai")


def validated(type_name: str, config: dict[str, Any]) -> dict[str, Any]:
    return IMPLEMENTATIONS[type_name].validate(config)


def key(type_name: str, config: dict[str, Any]) -> str:
    version = IMPLEMENTATIONS[type_name].version
    spec = PassSpec(name="p", type=type_name, version=version, config=validated(type_name, config))
    return pass_key(LocalModel(digest="0" * 64), spec)


# --- the same meaning is the same configuration -------------------------------------------

#: Olive's parameters at Olive's defaults, as Olive's configs may spell them all out.
OLIVE_CONVERSION_DEFAULTS = {
    "user_script": None,
    "script_dir": None,
    "save_as_external_data": False,
    "all_tensors_to_one_file": True,
    "external_data_name": None,
    "size_threshold": 1024,
    "convert_attribute": False,
    "target_opset": 20,
    "use_dynamo_exporter": True,  # Olive's default is false: the TorchScript exporter
    "past_key_value_name": "past_key_values",
    "device": None,
    "torch_dtype": None,
    "parallel_jobs": None,
    "merge_adapter_weights": False,
    "save_metadata_for_token_generation": False,
    "optimize": True,
    "dynamic": True,
}
OLIVE_QUANTIZATION_DEFAULTS = {
    "quant_mode": "dynamic",
    "precision": "int8",
    "op_types_to_quantize": None,
    "op_types_to_exclude": None,
    "nodes_to_quantize": None,
    "nodes_to_exclude": None,
    "per_channel": False,
    "reduce_range": False,
    "quant_preprocess": True,
    "activation_symmetric": False,
    "weight_symmetric": None,
    "extra_options": None,
    "save_as_external_data": False,
    "all_tensors_to_one_file": True,
    "external_data_name": None,
    "size_threshold": 1024,
    "convert_attribute": False,
}

SYMMETRIC_ACTIVATIONS = {"ActivationSymmetric": True}
# Each case: configs that mean the same, so must validate alike and share a key.
SAME = [
    (CONVERSION, [{}, OLIVE_CONVERSION_DEFAULTS, {"dynamic": True}, {"device": "cpu"}]),
    (CONVERSION, [{"dynamic": False}, {"dynamic_axes": {}}, {"dynamic": False, "dynamic_axes": {}},
                  {"dynamic_axes": {"input_ids": {}}}]),
    (CONVERSION, [{"target_opset": 17}, {"use_dynamo_exporter": True, "target_opset": 17}]),
    (CONVERSION, [{"torch_dtype": "float16"}, {"torch_dtype": "torch.float16"},
                  {"torch_dtype": "half"}, {"torch_dtype": "fp16"}]),
    (CONVERSION, [{"torch_dtype": "bfloat16"}, {"torch_dtype": "torch.bfloat16"}]),
    (CONVERSION, [{}, {"torch_dtype": None}, {"external_data_name": "model.onnx.data"}]),
    # What Olive's OnnxConversion reads only for a PyTorch model changes nothing, as in Olive.
    (CONVERSION, [{}, {"all_tensors_to_one_file": False}, {"size_threshold": 0},
                  {"convert_attribute": True}, {"parallel_jobs": 4}]),
    (QUANTIZATION, [{}, OLIVE_QUANTIZATION_DEFAULTS, {"per_channel": False},
                    {"precision": "int8"}, {"weight_type": "QInt8"}, {"weight_symmetric": True},
                    {"extra_options": {"MatMulConstBOnly": True, "EnableSubgraph": False}},
                    {"extra_options": {"ActivationSymmetric": False}},
                    {"op_types_to_exclude": []}, {"nodes_to_quantize": []},
                    {"nodes_to_exclude": None}, {"op_types_to_quantize": []}]),
    (QUANTIZATION, [{"precision": "uint8"}, {"weight_type": "QUInt8"},
                    {"precision": "uint8", "weight_type": "uint8"},
                    {"weight_type": "QUInt8", "weight_symmetric": False}]),
    (QUANTIZATION, [{"weight_symmetric": False}, {"extra_options": {"WeightSymmetric": False}},
                    {"weight_symmetric": False, "extra_options": {"WeightSymmetric": False}}]),
    (QUANTIZATION, [{"activation_symmetric": True},
                    {"activation_symmetric": True, "extra_options": SYMMETRIC_ACTIVATIONS}]),
    (QUANTIZATION, [{"extra_options": {"MinimumRealRange": 1e-4}},
                    {"extra_options": {"MinimumRealRange": 0.0001, "MatMulConstBOnly": True}}]),
]  # fmt: skip


@pytest.mark.parametrize(("type_name", "configs"), SAME)
def test_spellings_that_mean_the_same_validate_alike_and_share_a_key(
    type_name: str, configs: list[dict[str, Any]]
) -> None:
    first = validated(type_name, configs[0])
    assert IMPLEMENTATIONS[type_name].validate(first) == first  # idempotent
    for config in configs[1:]:
        assert validated(type_name, config) == first, config
        assert key(type_name, config) == key(type_name, configs[0])


# Each case: a config that means something else than the defaults: another key.
DIFFERENT = [
    (CONVERSION, {"torch_dtype": "float16"}),
    (CONVERSION, {"torch_dtype": "float32"}),  # Olive casts a float16 model back to float32
    (CONVERSION, {"dynamic": False}),
    (CONVERSION, {"target_opset": 18}),
    (QUANTIZATION, {"per_channel": True}),
    (QUANTIZATION, {"quant_preprocess": False}),
    (QUANTIZATION, {"weight_symmetric": False}),
    (QUANTIZATION, {"activation_symmetric": True}),
    (QUANTIZATION, {"op_types_to_exclude": ["Gather"]}),
    (QUANTIZATION, {"nodes_to_quantize": ["node_MatMul_1"]}),
    (QUANTIZATION, {"extra_options": {"MatMulConstBOnly": False}}),
    (QUANTIZATION, {"save_as_external_data": True}),
]


@pytest.mark.parametrize(("type_name", "config"), DIFFERENT)
def test_what_changes_the_output_changes_the_key(type_name: str, config: dict[str, Any]) -> None:
    assert key(type_name, config) != key(type_name, {})


def test_only_what_the_output_depends_on_is_in_the_validated_configuration() -> None:
    assert set(validated(CONVERSION, OLIVE_CONVERSION_DEFAULTS)) == {
        "target_opset",
        "dynamic_axes",
        "save_as_external_data",
        "torch_dtype",
    }
    assert "precision" not in validated(QUANTIZATION, {"precision": "uint8"})
    assert "quant_mode" not in validated(QUANTIZATION, OLIVE_QUANTIZATION_DEFAULTS)


@pytest.mark.slow
@needs_olive
@pytest.mark.parametrize(
    ("type_name", "module", "olive_class", "overrides"),
    [
        (CONVERSION, "olive.passes.onnx.conversion", "OnnxConversion",
         {"use_dynamo_exporter": True}),
        (QUANTIZATION, "olive.passes.onnx.quantization", "OnnxDynamicQuantization", {}),
    ],
)  # fmt: skip
def test_every_olive_parameter_is_taken_and_olives_defaults_are_the_defaults(
    type_name: str, module: str, olive_class: str, overrides: dict[str, Any]
) -> None:
    import importlib

    from olive.hardware import DEFAULT_CPU_ACCELERATOR

    cls = getattr(importlib.import_module(module), olive_class)
    config = cls.generate_config(DEFAULT_CPU_ACCELERATOR, {}, disable_search=True).model_dump()
    defaults = json.loads(json.dumps({**config, **overrides}, default=str))
    names = {parameter.name for parameter in IMPLEMENTATIONS[type_name].parameters}
    assert set(defaults) <= names
    assert validated(type_name, defaults) == validated(type_name, {})


# --- what the built-ins cannot honour -----------------------------------------------------

# Each case: a config, the parameter the error names, and a fragment of the problem.
REFUSED = [
    (CONVERSION, {"use_dynamo_exporter": False}, "use_dynamo_exporter",
     '"use_dynamo_exporter": true, or use olive:OnnxConversion'),
    (CONVERSION, {"device": "cuda"}, "device", "exports on the CPU"),
    (CONVERSION, {"dynamic": True, "dynamic_axes": {}}, "dynamic", "keep one of the two"),
    (CONVERSION, {"dynamic": False, "dynamic_axes": None}, "dynamic", "keep one of the two"),
    (CONVERSION, {"dynamic": "no"}, "dynamic", "true or false"),
    (CONVERSION, {"torch_dtype": "float64"}, "torch_dtype", "'float16', 'bfloat16', 'float32'"),
    (CONVERSION, {"torch_dtype": 16}, "torch_dtype", "must be one of"),
    (CONVERSION, {"size_threshold": "1024"}, "size_threshold", "an integer"),
    (CONVERSION, {"external_data_name": "weights.bin"}, "external_data_name",
     "use olive:OnnxConversion"),
    (CONVERSION, {"merge_adapter_weights": True}, "merge_adapter_weights",
     "use olive:OnnxConversion"),
    (CONVERSION, {"save_metadata_for_token_generation": True},
     "save_metadata_for_token_generation", "use olive:OnnxConversion"),
    (CONVERSION, {"past_key_value_name": "past"}, "past_key_value_name",
     'takes only "past_key_values"'),
    (CONVERSION, {"optimize": False}, "optimize", "use olive:OnnxConversion"),
    (CONVERSION, {"user_script": "user_script.py"}, "user_script", "use olive:OnnxConversion"),
    (CONVERSION, {"script_dir": "scripts"}, "script_dir", "use olive:OnnxConversion"),
    (QUANTIZATION, {"precision": "int4"}, "precision", "use olive:OnnxDynamicQuantization"),
    (QUANTIZATION, {"precision": "uint8", "weight_type": "QInt8"}, "precision",
     "contradicts weight_type"),
    (QUANTIZATION, {"quant_mode": "static"}, "quant_mode", "OnnxStaticQuantization"),
    (QUANTIZATION, {"op_types_to_exclude": "Gather"}, "op_types_to_exclude", "list of strings"),
    (QUANTIZATION, {"nodes_to_quantize": [1]}, "nodes_to_quantize", "non-empty strings"),
    (QUANTIZATION, {"weight_symmetric": "yes"}, "weight_symmetric", "true or false"),
    (QUANTIZATION, {"quant_preprocess": None}, "quant_preprocess", "true or false"),
    (QUANTIZATION, {"extra_options": ["MatMulConstBOnly"]}, "extra_options", "an object"),
    (QUANTIZATION, {"extra_options": {"MatMulConstBonly": False}}, "extra_options",
     "did you mean 'MatMulConstBOnly'?"),
    (QUANTIZATION, {"extra_options": {"TensorQuantOverrides": {}}}, "extra_options",
     "use olive:OnnxDynamicQuantization"),
    (QUANTIZATION, {"extra_options": {"EnableSubgraph": 1}}, "extra_options",
     "EnableSubgraph: must be true or false"),
    (QUANTIZATION, {"extra_options": {"ActivationSymmetric": True}}, "extra_options",
     'set "activation_symmetric"'),
    (QUANTIZATION, {"weight_symmetric": True, "extra_options": {"WeightSymmetric": False}},
     "extra_options", "WeightSymmetric contradicts weight_symmetric"),
    (QUANTIZATION, {"all_tensors_to_one_file": False}, "all_tensors_to_one_file",
     "use olive:OnnxDynamicQuantization"),
    (QUANTIZATION, {"external_data_name": "weights.bin"}, "external_data_name",
     "use olive:OnnxDynamicQuantization"),
    (QUANTIZATION, {"size_threshold": 0}, "size_threshold", "takes only 1024"),
    (QUANTIZATION, {"convert_attribute": True}, "convert_attribute", "takes only false"),
]  # fmt: skip


@pytest.mark.parametrize(("type_name", "config", "field", "fragment"), REFUSED)
def test_what_the_builtin_cannot_honour_is_one_line_naming_the_parameter(
    type_name: str, config: dict[str, Any], field: str, fragment: str
) -> None:
    with pytest.raises(PassConfigError) as caught:
        validated(type_name, config)
    error = caught.value
    assert not isinstance(error, PassConfigProblems)
    assert (error.pass_type, error.field) == (type_name, field)
    assert fragment in error.problem
    assert str(error).startswith(f"{type_name}.{field}: ")
    assert "\n" not in str(error)


def test_unhonoured_names_what_only_olives_pass_of_the_same_name_honours() -> None:
    conversion = OnnxConversion()
    config = {"use_dynamo_exporter": False, "all_tensors_to_one_file": False,
              "save_metadata_for_token_generation": True, "target_opset": 17}  # fmt: skip
    assert conversion.unhonoured(config) == (
        "use_dynamo_exporter",
        "save_metadata_for_token_generation",
    )
    assert conversion.unhonoured({"use_dynamo_exporter": True, "device": "cpu"}) == ()
    quantization = OnnxDynamicQuantization()
    assert quantization.unhonoured({"external_data_name": "w.bin"}) == ("external_data_name",)
    assert quantization.unhonoured({"quant_mode": "static"}) == ()  # Olive's is dynamic too


def test_every_contradiction_of_a_config_is_reported_at_once() -> None:
    config = {
        "precision": "int8",
        "weight_type": "QUInt8",
        "extra_options": {"ActivationSymmetric": True},
    }
    with pytest.raises(PassConfigProblems) as caught:
        validated(QUANTIZATION, config)
    assert [error.field for error in caught.value.errors] == ["precision", "extra_options"]


def test_validation_imports_nothing_heavy() -> None:
    script = (
        "import sys\n"
        "from modelcache.runner.passes import OnnxConversion, OnnxDynamicQuantization\n"
        "OnnxConversion().validate({'torch_dtype': 'float16', 'dynamic': False})\n"
        "OnnxDynamicQuantization().validate({'precision': 'uint8', 'quant_preprocess': True})\n"
        "print(sorted(m for m in ('torch', 'onnx', 'onnxruntime', 'transformers', 'olive')"
        " if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


# --- the parameters mean what they mean in Olive ------------------------------------------


def _graph(model_dir: Path) -> tuple[Any, ...]:
    """What a model computes: nodes, initializers (name, dtype, bytes), inputs, outputs and
    opsets, without the shape annotations a serializer may add or leave out."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(model_dir / "model.onnx"))
    graph = model.graph
    arrays = [(i.name, numpy_helper.to_array(i)) for i in graph.initializer]
    return (
        [node.SerializeToString() for node in graph.node],
        sorted((name, array.dtype.str, array.tobytes()) for name, array in arrays),
        [value.SerializeToString() for value in (*graph.input, *graph.output)],
        sorted((opset.domain, opset.version) for opset in model.opset_import),
    )


def _float_weight_types(model_dir: Path) -> set[int]:
    """The ``onnx.TensorProto`` types of the floating-point initializers."""
    import onnx

    graph = onnx.load(str(model_dir / "model.onnx")).graph
    return {i.data_type for i in graph.initializer if i.data_type in (1, 10, 16)}


@pytest.mark.slow
@pytest.mark.parametrize(("dtype", "onnx_type"), [("float16", 10), ("bfloat16", 16)])
def test_torch_dtype_casts_the_model_before_the_export(
    tiny_bert: Path,
    run_pass: Callable[..., Path],
    hf_hidden: Callable[[Path], Any],
    onnx_hidden: Callable[..., Any],
    dtype: str,
    onnx_type: int,
) -> None:
    import numpy as np

    converted = run_pass(CONVERSION, tiny_bert, torch_dtype=dtype)
    assert _float_weight_types(converted) == {onnx_type}  # no float32 weight is left
    if dtype == "float16":  # onnxruntime's CPU provider has no bfloat16 kernels for BERT
        actual, expected = onnx_hidden(converted), hf_hidden(tiny_bert)
        assert actual.dtype == np.float16
        assert np.abs(actual.astype(np.float32) - expected).max() < 5e-3 * np.abs(expected).max()


@pytest.mark.slow
def test_dynamic_false_exports_static_axes(
    tiny_bert: Path, run_pass: Callable[..., Path], onnx_hidden: Callable[..., Any],
    static_batch: dict[str, Any],
) -> None:  # fmt: skip
    import onnx

    static = run_pass(CONVERSION, tiny_bert, dynamic=False)
    graph = onnx.load(str(static / "model.onnx")).graph
    for value in graph.input:
        assert [d.dim_value for d in value.type.tensor_type.shape.dim] == [2, 16]
    assert onnx_hidden(static, static_batch).shape[:2] == (2, 16)


@pytest.mark.slow
def test_the_default_quantization_is_per_tensor_after_preprocessing(
    tiny_onnx: Path, run_pass: Callable[..., Path]
) -> None:
    import onnx

    default = run_pass(QUANTIZATION, tiny_onnx)
    plain = run_pass(QUANTIZATION, tiny_onnx, quant_preprocess=False)
    per_channel = run_pass(QUANTIZATION, tiny_onnx, per_channel=True)
    assert _graph(default) != _graph(per_channel)

    def marks(model_dir: Path) -> set[str]:
        return {p.key for p in onnx.load(str(model_dir / "model.onnx")).metadata_props}

    assert "onnx.quant.pre_process" in marks(default)  # onnxruntime marks what it preprocessed
    assert "onnx.quant.pre_process" not in marks(plain)
    # A per-tensor scale is a scalar; per channel, the MatMul weights' scales are vectors.
    for model_dir, vectors in ((default, False), (per_channel, True)):
        graph = onnx.load(str(model_dir / "model.onnx")).graph
        scales = [i.dims for i in graph.initializer if i.name.endswith("_scale")]
        assert len(scales) > 10
        assert any(len(dims) == 1 and dims[0] > 1 for dims in scales) is vectors


@pytest.mark.slow
def test_op_types_to_exclude_leaves_those_operators_in_float(
    tiny_onnx: Path, run_pass: Callable[..., Path]
) -> None:
    import onnx

    def quantized_gathers(model_dir: Path) -> int:
        graph = onnx.load(str(model_dir / "model.onnx")).graph
        int8 = {i.name for i in graph.initializer if i.data_type in (2, 3)}  # uint8, int8
        return sum(1 for n in graph.node if n.op_type == "Gather" and n.input[0] in int8)

    assert quantized_gathers(run_pass(QUANTIZATION, tiny_onnx)) > 0
    assert quantized_gathers(run_pass(QUANTIZATION, tiny_onnx, op_types_to_exclude=["Gather"])) == 0


@pytest.mark.slow
def test_a_model_preprocessing_fails_on_is_quantized_as_it_is(
    tiny_onnx: Path, run_pass: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    from onnxruntime.quantization import preprocess

    plain = run_pass(QUANTIZATION, tiny_onnx, quant_preprocess=False)

    def fails(*args: Any, **kwargs: Any) -> None:
        raise ValueError("symbolic shape inference failed")

    monkeypatch.setattr(preprocess, "quant_pre_process", fails)
    assert _graph(run_pass(QUANTIZATION, tiny_onnx)) == _graph(plain)  # as Olive does

    def no_memory(*args: Any, **kwargs: Any) -> None:
        raise MemoryError

    monkeypatch.setattr(preprocess, "quant_pre_process", no_memory)
    with pytest.raises(MemoryError):  # the machine's failure is never cached as the model's
        run_pass(QUANTIZATION, tiny_onnx)


@pytest.mark.slow
def test_save_as_external_data_puts_the_quantized_weights_beside_the_graph(
    tiny_onnx: Path, run_pass: Callable[..., Path]
) -> None:
    output = run_pass(QUANTIZATION, tiny_onnx, save_as_external_data=True)
    assert (output / "model.onnx.data").stat().st_size > 10_000
    assert _graph(output) == _graph(run_pass(QUANTIZATION, tiny_onnx))


@pytest.mark.slow
@needs_olive
@pytest.mark.parametrize(
    "config",
    [
        {},
        {"quant_preprocess": False, "activation_symmetric": True},
        {
            "precision": "uint8",
            "per_channel": True,
            "weight_symmetric": True,
            "op_types_to_exclude": ["Gather"],
            "extra_options": {"MatMulConstBOnly": False},
        },
    ],
)
def test_the_quantization_computes_what_olives_computes(
    tiny_onnx: Path,
    run_pass: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    config: dict[str, Any],
) -> None:
    from olive.hardware import DEFAULT_CPU_ACCELERATOR
    from olive.model import ONNXModelHandler
    from olive.passes.onnx import quantization
    from olive.telemetry.telemetry import Telemetry

    monkeypatch.setattr(Telemetry, "_log_heartbeat", lambda *args, **kwargs: None)
    cls = quantization.OnnxDynamicQuantization
    resolved = cls.generate_config(DEFAULT_CPU_ACCELERATOR, config, disable_search=True)
    theirs = cls(DEFAULT_CPU_ACCELERATOR, resolved).run(
        ONNXModelHandler(model_path=str(tiny_onnx / "model.onnx")), str(tmp_path / "model.onnx")
    )
    ours = run_pass(QUANTIZATION, tiny_onnx, **config)
    assert _graph(ours) == _graph(Path(theirs.model_path).parent)
