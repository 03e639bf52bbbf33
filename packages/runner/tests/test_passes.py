"""The passes and their registry.

Registry and configuration tests are fast and import nothing heavy. The tests that run a
pass use the tiny BERT of ``conftest.py`` (each ONNX export costs a few seconds, so the
converted models are session fixtures) and are marked slow.
"""

from __future__ import annotations

import json
import shutil
import sys
import tomllib
import types
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from modelcache.planner import PassSpec, canonical_json
from modelcache.runner._distributions import EntryPoint
from modelcache.runner.models import model_digest, model_type
from modelcache.runner.olive import OlivePass
from modelcache.runner.passes import (
    BUILTIN_PASSES,
    ENTRY_POINT_GROUP,
    OnnxConversion,
    Pass,
    PassConfigError,
    PassInputError,
    PassRegistryError,
    PassUnavailable,
    TorchDtypeCast,
    UnknownPassType,
    _registry,
    available_passes,
    linear_layers,
    load_pass,
)

RUNNER_PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"
BUILTIN_TYPES = {
    "MagnitudePruning",
    "OnnxConversion",
    "OnnxDynamicQuantization",
    "OrtGraphOptimization",
    "TorchDtypeCast",
}
RIDE_ALONG = ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt")

# --- the registry -------------------------------------------------------------------------


def test_every_builtin_pass_is_available_and_satisfies_the_protocol() -> None:
    passes = available_passes()
    # Olive's passes follow when olive-ai is installed (test_olive_passes.py).
    assert list(passes)[: len(BUILTIN_TYPES)] == sorted(BUILTIN_TYPES)
    for name, implementation in list(passes.items())[: len(BUILTIN_TYPES)]:
        assert isinstance(implementation, Pass)
        assert implementation.type == name
        assert implementation.version
        assert implementation.output_type in {"hf", "onnx"}
        assert implementation.input_types <= {"hf", "onnx"}


def test_unknown_pass_type_is_the_users_to_fix_and_lists_the_available_types() -> None:
    with pytest.raises(UnknownPassType) as caught:
        load_pass("OnnxConverter")
    assert not isinstance(caught.value, KeyError)  # whose str() would be a quoted repr
    assert caught.value.fault == "user"
    assert caught.value.type_name == "OnnxConverter"
    message = str(caught.value)
    assert "'OnnxConverter'" in message
    for name in BUILTIN_TYPES:
        assert name in message


def test_pyproject_registers_exactly_the_builtin_passes() -> None:
    document = tomllib.loads(RUNNER_PYPROJECT.read_text(encoding="utf-8"))
    assert document["project"]["entry-points"][ENTRY_POINT_GROUP] == dict(BUILTIN_PASSES)


class EchoPass:
    """A minimal third-party pass: copies its input."""

    type = "Echo"
    version = "1"
    input_types = frozenset({"hf", "onnx"})
    output_type = "hf"

    def packages(self) -> dict[str, str]:
        return {}

    def validate(self, config: Any) -> dict[str, Any]:
        return dict(config)

    def run(self, input_dir: Path, output_dir: Path, config: Any) -> None:
        raise NotImplementedError


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """``plugins(Name="module:attr", ...)``: pretend those entry points are installed, with
    a module ``fake_plugin`` holding ``EchoPass``, ``echo`` (an instance) and ``nothing``."""
    module = types.ModuleType("fake_plugin")
    module.EchoPass = EchoPass  # type: ignore[attr-defined]
    module.echo = EchoPass()  # type: ignore[attr-defined]
    module.nothing = object()  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "fake_plugin", module)

    def install(**entry_points: str) -> None:
        found = [
            EntryPoint(name=name, value=value, group=ENTRY_POINT_GROUP, dist="fake-plugin 1.0")
            for name, value in entry_points.items()
        ]
        monkeypatch.setattr(_registry, "_entry_points", lambda: found)

    return install


def _registered(passes: dict[str, Pass]) -> dict[str, Pass]:
    """The built-in and plugin passes of a listing, without Olive's (test_olive_passes.py)."""
    return {name: p for name, p in passes.items() if not isinstance(p, OlivePass)}


@pytest.mark.parametrize("reference", ["fake_plugin:EchoPass", "fake_plugin:echo"])
def test_an_entry_point_adds_a_pass_given_as_class_or_object(
    plugins: Callable[..., None], reference: str
) -> None:
    plugins(Echo=reference)
    implementation = load_pass("Echo")
    assert isinstance(implementation, EchoPass)
    assert set(_registered(available_passes())) == BUILTIN_TYPES | {"Echo"}


def test_an_entry_point_repeating_a_builtin_is_the_same_registration(
    plugins: Callable[..., None],
) -> None:
    plugins(OnnxConversion=BUILTIN_PASSES["OnnxConversion"])
    assert load_pass("OnnxConversion").type == "OnnxConversion"


def test_two_registrations_of_one_type_are_an_error_naming_both(
    plugins: Callable[..., None],
) -> None:
    plugins(TorchDtypeCast="fake_plugin:EchoPass")
    with pytest.raises(PassRegistryError, match="more than once") as caught:
        load_pass("TorchDtypeCast")
    assert "fake_plugin:EchoPass" in str(caught.value)
    assert BUILTIN_PASSES["TorchDtypeCast"] in str(caught.value)
    assert load_pass("OnnxConversion").type == "OnnxConversion"  # other types unaffected


@pytest.mark.parametrize(
    ("name", "reference", "problem"),
    [
        ("Broken", "fake_plugin:nothing", "is not a pass: it has no type, version"),
        ("Broken", "fake_plugin:missing", "cannot load fake_plugin:missing"),
        ("Broken", "no_such_plugin_module:Pass", "ModuleNotFoundError"),
        ("Other", "fake_plugin:EchoPass", "registered as 'Other' but its type is 'Echo'"),
    ],
)
def test_a_broken_entry_point_is_an_error_naming_it(
    plugins: Callable[..., None], name: str, reference: str, problem: str
) -> None:
    plugins(**{name: reference})
    with pytest.raises(PassRegistryError, match=problem):
        load_pass(name)
    with pytest.raises(PassRegistryError, match=problem):
        available_passes()


# --- configuration ------------------------------------------------------------------------

DEFAULTS = {
    "OnnxConversion": {
        "target_opset": 20,
        "dynamic_axes": None,
        "save_as_external_data": False,
        "torch_dtype": None,
    },
    "OnnxDynamicQuantization": {
        "weight_type": "QInt8",
        "per_channel": False,
        "reduce_range": False,
        "op_types_to_quantize": None,
        "op_types_to_exclude": [],
        "nodes_to_quantize": None,
        "nodes_to_exclude": [],
        "weight_symmetric": True,
        "activation_symmetric": False,
        "extra_options": {},
        "quant_preprocess": True,
        "save_as_external_data": False,
    },
    "OrtGraphOptimization": {"level": "extended"},
    "TorchDtypeCast": {"dtype": "float16"},
}


@pytest.mark.parametrize(("type_name", "expected"), sorted(DEFAULTS.items()))
def test_an_empty_config_validates_to_every_default(
    type_name: str, expected: dict[str, Any]
) -> None:
    assert load_pass(type_name).validate({}) == expected


# Each case: a config and its canonical form. Equal meaning must give an equal cache key.
CANONICAL = [
    ("MagnitudePruning", {"sparsity": 1 / 2}, {"sparsity": 0.5, "exclude": []}),
    ("MagnitudePruning", {"sparsity": 0}, {"sparsity": 0.0, "exclude": []}),
    (
        "MagnitudePruning",
        {"sparsity": 0.25, "exclude": ["pooler.*", "encoder.layer.0.*", "pooler.*"]},
        {"sparsity": 0.25, "exclude": ["encoder.layer.0.*", "pooler.*"]},
    ),
    ("TorchDtypeCast", {"dtype": "fp16"}, {"dtype": "float16"}),
    ("TorchDtypeCast", {"dtype": "bf16"}, {"dtype": "bfloat16"}),
    (
        "OnnxDynamicQuantization",
        {"weight_type": "uint8"},
        # onnxruntime quantizes unsigned weights asymmetrically unless told otherwise.
        {**DEFAULTS["OnnxDynamicQuantization"], "weight_type": "QUInt8", "weight_symmetric": False},
    ),
    (
        "OnnxDynamicQuantization",
        {"op_types_to_quantize": ["MatMul", "Gather", "MatMul"]},
        {**DEFAULTS["OnnxDynamicQuantization"], "op_types_to_quantize": ["Gather", "MatMul"]},
    ),
    # quantize_dynamic reads an empty list as "the default set", as it reads null.
    ("OnnxDynamicQuantization", {"op_types_to_quantize": []}, DEFAULTS["OnnxDynamicQuantization"]),
    (
        "OnnxConversion",
        {"dynamic_axes": {"input_ids": {"1": "sequence", "0": "batch"}}},
        {
            **DEFAULTS["OnnxConversion"],
            "dynamic_axes": {"input_ids": {"0": "batch", "1": "sequence"}},
        },
    ),
]


@pytest.mark.parametrize(("type_name", "config", "expected"), CANONICAL)
def test_validation_gives_the_canonical_form_and_is_idempotent(
    type_name: str, config: dict[str, Any], expected: dict[str, Any]
) -> None:
    implementation = load_pass(type_name)
    validated = implementation.validate(config)
    assert canonical_json(validated) == canonical_json(expected)
    assert implementation.validate(validated) == validated
    spec = PassSpec(name="p", type=type_name, version="1", config=validated)
    assert json.loads(canonical_json(spec.config)) == expected
    assert implementation.validate(spec.config) == validated  # frozen JSON is accepted too


# Each case: a bad config, the parameter the error must name, and a fragment of the problem.
BAD_CONFIGS = [
    ("OnnxConversion", {"opset": 17}, "opset", "did you mean 'target_opset'?"),
    ("OnnxConversion", {"target_opset": "18"}, "target_opset", "must be an integer"),
    ("OnnxConversion", {"target_opset": True}, "target_opset", "must be an integer"),
    ("OnnxConversion", {"target_opset": 3}, "target_opset", "at least 7"),
    ("OnnxConversion", {"dynamic_axes": ["batch"]}, "dynamic_axes", "must be null"),
    ("OnnxConversion", {"dynamic_axes": {"pixels": {}}}, "dynamic_axes", "is not an input"),
    ("OnnxConversion", {"dynamic_axes": {"input_ids": {"2": "x"}}}, "dynamic_axes", '"0" or "1"'),
    ("OnnxConversion", {"dynamic_axes": {"input_ids": {"0": "a b"}}}, "dynamic_axes",
     "identifier"),
    ("OnnxConversion", {"save_as_external_data": "yes"}, "save_as_external_data",
     "true or false"),
    ("OnnxDynamicQuantization", {"weight_type": "int4"}, "weight_type", "'QInt8', 'QUInt8'"),
    ("OnnxDynamicQuantization", {"nodes_to_exclude": "node_1"}, "nodes_to_exclude",
     "list of strings"),
    ("OrtGraphOptimization", {"level": 99}, "level", "'basic', 'extended', 'all'"),
    ("OrtGraphOptimization", {"optimization_level": "all"}, "optimization_level",
     "did you mean 'level'?"),
    ("TorchDtypeCast", {"dtype": "float8"}, "dtype", "'float16', 'bfloat16'"),
    ("MagnitudePruning", {}, "sparsity", "missing; give the fraction"),
    ("MagnitudePruning", {"sparsity": 1.0}, "sparsity", "below 1.0"),
    ("MagnitudePruning", {"sparsity": -0.1}, "sparsity", "at least 0.0"),
    ("MagnitudePruning", {"sparsity": 0.5, "exclude": [3]}, "exclude", "non-empty strings"),
]  # fmt: skip


@pytest.mark.parametrize(("type_name", "config", "field", "fragment"), BAD_CONFIGS)
def test_a_bad_config_is_an_error_naming_the_parameter(
    type_name: str, config: dict[str, Any], field: str, fragment: str
) -> None:
    with pytest.raises(PassConfigError) as caught:
        load_pass(type_name).validate(config)
    error = caught.value
    assert (error.pass_type, error.field) == (type_name, field)
    assert fragment in error.problem
    assert str(error).startswith(f"{type_name}.{field}: ")
    assert "\n" not in str(error)


def test_unknown_parameter_error_lists_the_parameters_the_pass_takes() -> None:
    with pytest.raises(PassConfigError) as caught:
        load_pass("TorchDtypeCast").validate({"precision": "fp16"})
    assert caught.value.problem == "unknown parameter; TorchDtypeCast takes: dtype"


def test_a_config_that_is_not_an_object_names_no_field() -> None:
    with pytest.raises(PassConfigError) as caught:
        load_pass("OrtGraphOptimization").validate(["extended"])  # type: ignore[arg-type]
    assert caught.value.field is None
    assert str(caught.value).startswith("OrtGraphOptimization: ")


def test_packages_reports_installed_versions_of_what_affects_the_output() -> None:
    for implementation in _registered(available_passes()).values():
        versions = implementation.packages()
        assert versions
        for name, version in versions.items():
            assert version == metadata.version(name)
    assert set(load_pass("OnnxConversion").packages()) >= {"torch", "transformers", "onnxscript"}
    assert set(load_pass("OrtGraphOptimization").packages()) >= {"onnxruntime"}


def test_a_missing_package_makes_the_pass_unavailable() -> None:
    class Unlucky(TorchDtypeCast):
        package_names = ("torch", "surely-not-installed-modelcache-package")

    with pytest.raises(PassUnavailable, match="pip install 'modelcache-runner\\[ml\\]'"):
        Unlucky().packages()


# --- running: checks every pass makes ------------------------------------------------------


@pytest.fixture
def hf_lookalike(tmp_path: Path) -> Path:
    """A directory that passes for a Hugging Face model until something loads it."""
    model = tmp_path / "lookalike"
    model.mkdir()
    (model / "config.json").write_text("{}")
    (model / "model.safetensors").write_bytes(b"")
    return model


@pytest.mark.parametrize("type_name", ["OnnxDynamicQuantization", "OrtGraphOptimization"])
def test_a_pass_refuses_an_input_of_the_wrong_type(
    hf_lookalike: Path, tmp_path: Path, type_name: str
) -> None:
    with pytest.raises(PassInputError, match=r"takes onnx models, but .* holds an hf model"):
        load_pass(type_name).run(hf_lookalike, tmp_path, {})


def test_a_pass_refuses_a_directory_holding_no_model(tmp_path: Path) -> None:
    (tmp_path / "in").mkdir()
    (tmp_path / "out").mkdir()
    with pytest.raises(PassInputError, match="holds no model"):
        load_pass("TorchDtypeCast").run(tmp_path / "in", tmp_path / "out", {})


def test_a_pass_refuses_an_output_directory_that_is_not_empty(
    hf_lookalike: Path, tmp_path: Path
) -> None:
    with pytest.raises(ValueError, match="must exist and be empty"):  # it holds the input
        load_pass("TorchDtypeCast").run(hf_lookalike, tmp_path, {})


@pytest.mark.slow
def test_a_model_that_does_not_load_is_an_input_error(hf_lookalike: Path, tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    with pytest.raises(PassInputError, match="cannot load the Hugging Face model"):
        load_pass("TorchDtypeCast").run(hf_lookalike, tmp_path / "out", {})


def assert_rides_along(source: Path, output: Path, names: tuple[str, ...] = RIDE_ALONG) -> None:
    for name in names:
        assert (output / name).read_bytes() == (source / name).read_bytes(), name


def cosine(a: Any, b: Any) -> float:
    import numpy as np

    a, b = np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


# --- OnnxConversion -----------------------------------------------------------------------


@pytest.mark.slow
def test_conversion_matches_the_hugging_face_model_on_a_new_batch_shape(
    tiny_bert: Path, tiny_onnx: Path, hf_hidden: Callable[..., Any], onnx_hidden: Callable[..., Any]
) -> None:
    import numpy as np
    import onnx

    assert model_type(tiny_onnx) == "onnx"
    assert sorted(p.name for p in tiny_onnx.iterdir()) == sorted([*RIDE_ALONG, "model.onnx"])
    assert_rides_along(tiny_bert, tiny_onnx)
    graph = onnx.load(str(tiny_onnx / "model.onnx"))
    assert [i.name for i in graph.graph.input] == ["input_ids", "attention_mask", "token_type_ids"]
    assert [o.name for o in graph.graph.output] == ["last_hidden_state", "pooler_output"]
    assert {o.domain or "": o.version for o in graph.opset_import}[""] == 20
    input_dims = [d.dim_param for d in graph.graph.input[0].type.tensor_type.shape.dim]
    assert input_dims == ["batch", "sequence"]
    # The trace saw a 2 x 16 batch; the tiny batch is 3 rows of another length.
    expected, actual = hf_hidden(tiny_bert), onnx_hidden(tiny_onnx)
    assert actual.shape == expected.shape
    assert np.abs(actual - expected).max() < 1e-4


@pytest.mark.slow
def test_conversion_is_deterministic_and_carries_no_machine_paths(
    tiny_bert: Path, tiny_onnx: Path, run_pass: Callable[..., Path], tmp_path: Path
) -> None:
    elsewhere = shutil.copytree(tiny_bert, tmp_path / "somewhere" / "else")
    again = run_pass("OnnxConversion", elsewhere)
    assert model_digest(again) == model_digest(tiny_onnx)
    graph = (tiny_onnx / "model.onnx").read_bytes()
    assert b"site-packages" not in graph
    assert str(tiny_bert).encode() not in graph


@pytest.mark.slow
def test_conversion_honours_opset_static_axes_and_external_data(
    tiny_bert: Path,
    tiny_onnx_external: Path,
    onnx_hidden: Callable[..., Any],
    hf_hidden: Callable[..., Any],
    tiny_batch: dict[str, Any],
    static_batch: dict[str, Any],
) -> None:
    import numpy as np
    import onnx

    assert (tiny_onnx_external / "model.onnx.data").stat().st_size > 50_000
    assert (tiny_onnx_external / "model.onnx").stat().st_size < 50_000
    graph = onnx.load(str(tiny_onnx_external / "model.onnx"))
    assert {o.domain or "": o.version for o in graph.opset_import}[""] == 17
    dims = [d.dim_value for d in graph.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [2, 16]
    actual = onnx_hidden(tiny_onnx_external, static_batch)
    expected = hf_hidden(tiny_bert)[:2]
    length = tiny_batch["input_ids"].shape[1]
    mask = static_batch["attention_mask"][:, :length, None].astype(bool)
    assert np.abs(np.where(mask, actual[:, :length] - expected, 0)).max() < 1e-4


@pytest.mark.slow
def test_conversion_below_the_reachable_opset_names_target_opset(
    tiny_bert: Path, tmp_path: Path
) -> None:
    implementation = load_pass("OnnxConversion")
    with pytest.raises(PassConfigError) as caught:
        implementation.run(tiny_bert, tmp_path, {"target_opset": 14})
    assert caught.value.field == "target_opset"
    assert "use a higher target_opset (18 always works)" in caught.value.problem


def test_conversion_rejects_dynamic_axes_for_an_input_the_model_lacks() -> None:
    # A DistilBERT, say: its forward takes no token_type_ids. Checked before any export.
    with pytest.raises(PassConfigError, match="has no input 'token_type_ids'"):
        OnnxConversion()._axes({"token_type_ids": {"0": "batch"}}, ["input_ids", "attention_mask"])


@pytest.mark.slow
def test_real_minilm_converts_exactly_and_quantizes_faithfully(
    run_pass: Callable[..., Path],
) -> None:
    import numpy as np
    import onnxruntime
    import torch
    from transformers import AutoModel, AutoTokenizer

    from modelcache.runner.models import bundled_minilm_path

    source = bundled_minilm_path()
    converted = run_pass("OnnxConversion", source)
    ride_along = (
        "config.json",
        "tokenizer.json",
        "vocab.txt",
        "modules.json",
        "1_Pooling/config.json",
    )
    assert_rides_along(source, converted, ride_along)
    tokenizer = AutoTokenizer.from_pretrained(str(source))
    sentences = ["A cache for optimized models.", "Colleagues share models.", "Hello"]
    batch = tokenizer(sentences, padding=True, return_tensors="np")
    mask = batch["attention_mask"][:, :, None].astype(np.float32)

    def embeddings(model_dir: Path) -> Any:
        session = onnxruntime.InferenceSession(
            str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"]
        )
        hidden = session.run(None, {k: v.astype(np.int64) for k, v in batch.items()})[0]
        return (hidden * mask).sum(axis=1) / mask.sum(axis=1)

    model = AutoModel.from_pretrained(str(source)).eval()
    with torch.no_grad():
        hidden = model(**{k: torch.from_numpy(v) for k, v in batch.items()})[0].numpy()
    expected = (hidden * mask).sum(axis=1) / mask.sum(axis=1)
    assert np.abs(embeddings(converted) - expected).max() < 1e-4
    # Per-tensor scales (the default, as in Olive) keep a cosine of only about 0.96 here.
    quantized = run_pass("OnnxDynamicQuantization", converted, per_channel=True)
    assert (quantized / "model.onnx").stat().st_size < 0.3 * (
        converted / "model.onnx"
    ).stat().st_size
    for actual, wanted in zip(embeddings(quantized), expected, strict=True):
        assert cosine(actual, wanted) > 0.98


# --- OnnxDynamicQuantization and OrtGraphOptimization --------------------------------------


@pytest.mark.slow
def test_quantization_shrinks_the_model_and_keeps_its_outputs(
    tiny_onnx: Path, run_pass: Callable[..., Path], onnx_hidden: Callable[..., Any]
) -> None:
    import onnx

    quantized = run_pass("OnnxDynamicQuantization", tiny_onnx)
    assert model_type(quantized) == "onnx"
    assert_rides_along(tiny_onnx, quantized)
    size = (quantized / "model.onnx").stat().st_size
    assert size < 0.6 * (tiny_onnx / "model.onnx").stat().st_size
    ops = {node.op_type for node in onnx.load(str(quantized / "model.onnx")).graph.node}
    assert {"DynamicQuantizeLinear", "MatMulInteger"} <= ops
    assert cosine(onnx_hidden(quantized), onnx_hidden(tiny_onnx)) > 0.99
    assert model_digest(run_pass("OnnxDynamicQuantization", tiny_onnx)) == model_digest(quantized)


@pytest.mark.slow
def test_quantization_options_change_the_output(
    tiny_onnx: Path, run_pass: Callable[..., Path]
) -> None:
    default = run_pass("OnnxDynamicQuantization", tiny_onnx)
    per_channel = run_pass("OnnxDynamicQuantization", tiny_onnx, per_channel=True)
    assert (default / "model.onnx").read_bytes() != (per_channel / "model.onnx").read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("level", ["basic", "extended", "all"])
def test_graph_optimization_keeps_the_outputs(
    tiny_onnx: Path, run_pass: Callable[..., Path], onnx_hidden: Callable[..., Any], level: str
) -> None:
    import numpy as np
    import onnx

    optimized = run_pass("OrtGraphOptimization", tiny_onnx, level=level)
    assert model_type(optimized) == "onnx"
    assert_rides_along(tiny_onnx, optimized)
    before = len(onnx.load(str(tiny_onnx / "model.onnx")).graph.node)
    after = onnx.load(str(optimized / "model.onnx")).graph.node
    if level != "basic":  # basic only folds constants and may even add nodes
        assert len(after) < before
        assert "SkipLayerNormalization" in {node.op_type for node in after}
    assert np.abs(onnx_hidden(optimized) - onnx_hidden(tiny_onnx)).max() < 1e-4
    again = run_pass("OrtGraphOptimization", tiny_onnx, level=level)
    assert model_digest(again) == model_digest(optimized)


@pytest.mark.slow
def test_convert_quantize_optimize_chain_stays_close_to_the_hf_model(
    tiny_bert: Path,
    tiny_onnx: Path,
    run_pass: Callable[..., Path],
    hf_hidden: Callable[..., Any],
    onnx_hidden: Callable[..., Any],
) -> None:
    quantized = run_pass("OnnxDynamicQuantization", tiny_onnx)
    optimized = run_pass("OrtGraphOptimization", quantized)
    assert model_type(optimized) == "onnx"
    assert_rides_along(tiny_bert, optimized)
    assert (optimized / "model.onnx").stat().st_size < (tiny_onnx / "model.onnx").stat().st_size
    assert cosine(onnx_hidden(optimized), hf_hidden(tiny_bert)) > 0.99


@pytest.mark.slow
def test_external_data_is_kept_through_the_onnx_passes(
    tiny_onnx_external: Path,
    run_pass: Callable[..., Path],
    onnx_hidden: Callable[..., Any],
    static_batch: dict[str, Any],
) -> None:
    expected = onnx_hidden(tiny_onnx_external, static_batch)
    quantized = run_pass("OnnxDynamicQuantization", tiny_onnx_external)
    optimized = run_pass("OrtGraphOptimization", quantized)
    for output in (quantized, optimized):
        assert sorted(p.name for p in output.iterdir() if p.name.startswith("model")) == [
            "model.onnx",
            "model.onnx.data",
        ]
        assert cosine(onnx_hidden(output, static_batch), expected) > 0.99


# --- TorchDtypeCast -----------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("dtype", "tolerance"), [("float16", 5e-3), ("bfloat16", 5e-2)])
def test_cast_saves_a_hugging_face_model_in_the_new_dtype(
    tiny_bert: Path,
    run_pass: Callable[..., Path],
    hf_hidden: Callable[..., Any],
    dtype: str,
    tolerance: float,
) -> None:
    import numpy as np
    import torch
    from transformers import AutoModel

    cast = run_pass("TorchDtypeCast", tiny_bert, dtype=dtype)
    assert model_type(cast) == "hf"
    assert_rides_along(tiny_bert, cast, ("tokenizer.json", "tokenizer_config.json", "vocab.txt"))
    assert json.loads((cast / "config.json").read_text())["dtype"] == dtype
    model = AutoModel.from_pretrained(str(cast))
    assert {p.dtype for p in model.parameters()} == {getattr(torch, dtype)}
    expected = hf_hidden(tiny_bert)
    assert np.abs(hf_hidden(cast) - expected).max() < tolerance * np.abs(expected).max()
    assert (cast / "model.safetensors").stat().st_size < 0.6 * (
        tiny_bert / "model.safetensors"
    ).stat().st_size
    assert model_digest(run_pass("TorchDtypeCast", tiny_bert, dtype=dtype)) == model_digest(cast)


# --- MagnitudePruning ---------------------------------------------------------------------


def _sparsities(model_dir: Path) -> dict[str, float]:
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_dir))
    return {name: float((layer.weight == 0).float().mean()) for name, layer in linear_layers(model)}


@pytest.mark.slow
@pytest.mark.parametrize("sparsity", [0.3, 0.5, 0.9])
def test_pruning_reaches_the_target_sparsity_in_every_linear_layer(
    tiny_bert: Path, run_pass: Callable[..., Path], sparsity: float
) -> None:
    from safetensors.numpy import load_file

    pruned = run_pass("MagnitudePruning", tiny_bert, sparsity=sparsity)
    assert model_type(pruned) == "hf"
    assert_rides_along(tiny_bert, pruned)  # config.json included: the architecture is unchanged
    measured = _sparsities(pruned)
    assert len(measured) == 2 * 6 + 1  # per layer: q, k, v, attention out, intermediate, out
    for name, value in measured.items():
        assert value == pytest.approx(sparsity, abs=0.01), name
    before = load_file(str(tiny_bert / "model.safetensors"))
    after = load_file(str(pruned / "model.safetensors"))
    assert after.keys() == before.keys()
    for name in before:
        if "embeddings" in name or "LayerNorm" in name or name.endswith(".bias"):
            assert (after[name] == before[name]).all(), name
    again = run_pass("MagnitudePruning", tiny_bert, sparsity=sparsity)
    assert model_digest(again) == model_digest(pruned)


@pytest.mark.slow
def test_pruning_removes_the_smallest_weights_and_spares_excluded_layers(
    tiny_bert: Path, run_pass: Callable[..., Path]
) -> None:
    import numpy as np
    from safetensors.numpy import load_file

    pruned = run_pass("MagnitudePruning", tiny_bert, sparsity=0.5, exclude=["pooler.*"])
    assert _sparsities(pruned)["pooler.dense"] == 0.0
    name = "encoder.layer.0.intermediate.dense.weight"
    before = np.abs(load_file(str(tiny_bert / "model.safetensors"))[name])
    kept = load_file(str(pruned / "model.safetensors"))[name] != 0
    assert before[~kept].max() <= before[kept].min()
