"""Olive's pass library through modelcache's pass port (``modelcache.runner.olive``): types
found as Olive finds them, keys covering Olive's resolved configuration and what it names,
and outputs identical to Olive's own."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from modelcache.runner import olive
from modelcache.runner.config import check_passes
from modelcache.runner.olive import OlivePass, OlivePassFailed, OliveUnsupported
from modelcache.runner.passes import (
    PassConfigError,
    PassContext,
    UnknownPassType,
    load_pass,
)

pytestmark = pytest.mark.skipif(olive.olive_version() is None, reason="needs olive-ai")


def bound(type_name: str, **context: Any) -> OlivePass:
    found = load_pass(type_name)
    assert isinstance(found, OlivePass)
    return found.in_context(PassContext(**context))


def test_types_are_found_as_olive_finds_them() -> None:
    assert load_pass("OrtTransformersOptimization").type == "olive:OrtTransformersOptimization"
    assert load_pass("orttransformersoptimization").type == "olive:OrtTransformersOptimization"
    assert load_pass("olive:onnxstaticquantization").type == "olive:OnnxStaticQuantization"


def test_names_olive_had_before_renaming_a_pass_find_it() -> None:
    assert load_pass("OrtPerfTuning").type == "olive:OrtSessionParamsTuning"
    assert load_pass("onnxmodeloptimizer").type == "olive:OnnxPeepholeOptimizer"
    assert load_pass("OnnxMatMul4Quantizer").type == "olive:OnnxBlockWiseRtnQuantization"


def test_builtin_names_stay_builtins_unless_olive_is_asked_for() -> None:
    assert load_pass("OnnxConversion").type == "OnnxConversion"
    assert load_pass("onnxdynamicquantization").type == "OnnxDynamicQuantization"
    assert load_pass("olive:OnnxConversion").type == "olive:OnnxConversion"


def test_an_unknown_type_lists_olive_types_among_those_available() -> None:
    with pytest.raises(UnknownPassType) as raised:
        load_pass("OrtTransformerOptimisation")
    assert "OrtTransformersOptimization" in raised.value.available
    assert "OnnxConversion" in raised.value.available


def test_without_olive_its_types_are_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    from modelcache.runner.olive import _library

    monkeypatch.setattr(_library, "olive_passes", lambda: {})
    monkeypatch.setattr(olive, "olive_passes", lambda: {})
    with pytest.raises(UnknownPassType):
        load_pass("OrtTransformersOptimization")
    assert load_pass("OnnxConversion").type == "OnnxConversion"


def test_validation_fills_in_olives_defaults_and_is_idempotent() -> None:
    quantize = bound("olive:OnnxDynamicQuantization", input_type="onnx")
    validated = quantize.validate({})
    assert validated["parameters"]["per_channel"] is False  # Olive's default
    assert validated["parameters"]["quant_preprocess"] is True
    assert quantize.validate(validated) == validated
    assert quantize.validate({"per_channel": False}) == validated
    assert quantize.validate({"per_channel": True}) != validated
    json.dumps(validated)  # JSON values only


def test_the_accelerator_is_keyed_only_where_olive_says_it_matters() -> None:
    agnostic = bound("olive:OnnxDynamicQuantization", input_type="onnx").validate({})
    assert "accelerator" not in agnostic
    optimize = bound("OrtTransformersOptimization", input_type="onnx")
    assert optimize.validate({"model_type": "bert"})["accelerator"] == {
        "device": "cpu",
        "execution_provider": "CPUExecutionProvider",
    }
    on_gpu = optimize.in_context(
        PassContext(input_type="onnx", device="gpu", execution_provider="CUDAExecutionProvider")
    )
    assert on_gpu.validate({"model_type": "bert"}) != optimize.validate({"model_type": "bert"})


def test_unknown_and_bad_parameters_are_named_each_with_its_fix() -> None:
    quantize = bound("olive:OnnxDynamicQuantization", input_type="onnx")
    with pytest.raises(PassConfigError) as raised:
        quantize.validate({"per_chanel": True})
    assert raised.value.field == "per_chanel"
    assert "per_channel" in raised.value.problem  # did you mean
    with pytest.raises(PassConfigError) as raised:
        quantize.validate({"precision": "int3", "per_channel": "yes please"})
    fields = {error.field for error in getattr(raised.value, "errors", (raised.value,))}
    assert fields == {"precision", "per_channel"}


def test_parameters_olive_ignores_are_left_to_olive_but_kept_in_the_key() -> None:
    quantize = bound("OnnxStaticQuantization", input_type="onnx")
    plain = quantize.validate({})
    older = quantize.validate({"weight_type": "QUInt8", "prepare_qnn_config": True})
    assert older["parameters"] == plain["parameters"]  # Olive 0.13 runs it as without them
    assert older["ignored"] == {"weight_type": "QUInt8", "prepare_qnn_config": True}
    assert "ignored" not in plain
    assert quantize.validate(older) == older
    assert quantize.validate({"weight_type": "QInt8"}) != older  # another value, another key
    with pytest.raises(PassConfigError) as raised:  # a misspelling is still one
        quantize.validate({"weight_typ": "QUInt8"})
    assert raised.value.field == "weight_typ"


def test_an_older_name_of_openvinos_model_name_is_left_to_olive_but_kept_in_the_key() -> None:
    convert = bound("OpenVINOConversion")
    older = convert.validate({"output_model": "vit_base"})
    assert older["parameters"] == convert.validate({})["parameters"]
    assert older["ignored"] == {"output_model": "vit_base"}


def test_named_files_are_keyed_by_content_and_written_as_given(tmp_path: Path) -> None:
    (tmp_path / "user_script.py").write_text("def load(model_path):\n    return None\n")
    convert = bound("olive:OnnxConversion", base_dir=tmp_path)
    validated = convert.validate({"user_script": "user_script.py"})
    assert validated["parameters"]["user_script"] == "user_script.py"
    assert str(tmp_path) not in json.dumps(validated)  # no host path in a key
    digest = hashlib.sha256((tmp_path / "user_script.py").read_bytes()).hexdigest()
    assert validated["files"] == {"user_script": f"sha256:{digest}"}
    (tmp_path / "user_script.py").write_text("def load(model_path):\n    return 1\n")
    assert convert.validate({"user_script": "user_script.py"})["files"] != validated["files"]
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    (moved / "user_script.py").write_bytes((tmp_path / "user_script.py").read_bytes())
    again = convert.in_context(PassContext(base_dir=moved))
    assert again.validate({"user_script": "user_script.py"}) == convert.validate(
        {"user_script": "user_script.py"}
    )


def test_files_named_inside_a_data_config_are_keyed_too(tmp_path: Path) -> None:
    (tmp_path / "data.py").write_text("# a data script\n")
    data_config = {
        "name": "calibration",
        "user_script": "data.py",
        "load_dataset_config": {"type": "dummy_dataset", "params": {"input_shapes": [[1, 8]]}},
    }
    quantize = bound("olive:OnnxStaticQuantization", input_type="onnx", base_dir=tmp_path)
    validated = quantize.validate({"data_config": data_config})
    assert validated["parameters"]["data_config"]["user_script"] == "data.py"
    assert set(validated["files"]) == {"data_config.user_script"}


def test_a_data_configs_paths_are_keyed_as_written_wherever_olive_moves_them(
    tmp_path: Path,
) -> None:
    # Olive moves a component's values into its params: the data_dir it resolves is the
    # one handed to it, made absolute; the key holds it as the config wrote it.
    data_config = {
        "name": "calibration",
        "load_dataset_config": {"type": "dummy_dataset", "data_dir": "data",
                                "input_shapes": [[1, 8]]},
    }  # fmt: skip
    validated = {}
    for project in ("here", "there"):
        (tmp_path / project / "data").mkdir(parents=True)
        (tmp_path / project / "data" / "rows.txt").write_text("1 2 3\n")
        quantize = bound("olive:OnnxStaticQuantization", input_type="onnx",
                         base_dir=tmp_path / project)  # fmt: skip
        validated[project] = quantize.validate({"data_config": data_config})
    params = validated["here"]["parameters"]["data_config"]["load_dataset_config"]["params"]
    assert params["data_dir"] == "data"
    assert str(tmp_path) not in json.dumps(validated["here"])  # no host path in a key
    assert validated["here"] == validated["there"]


def test_an_older_olives_calibration_data_is_read_into_a_data_config(tmp_path: Path) -> None:
    (tmp_path / "user_script.py").write_text("def reader(data_dir, batch_size):\n    pass\n")
    (tmp_path / "data").mkdir()
    quantize = bound("OnnxStaticQuantization", input_type="onnx", base_dir=tmp_path)
    older = {"user_script": "user_script.py", "data_dir": "data", "dataloader_func": "reader"}
    validated = quantize.validate(older)
    data_config = validated["parameters"]["data_config"]
    assert data_config["load_dataset_config"]["params"] == {
        **older, "batch_size": 1, "script_dir": None, "dataloader_func_kwargs": None,
    }  # fmt: skip
    assert "ignored" not in validated
    assert quantize.validate(validated) == validated  # idempotent
    with pytest.raises(PassConfigError) as raised:  # a function without its script
        quantize.validate({"dataloader_func": "reader"})
    assert raised.value.field == "user_script"


def test_a_hugging_face_data_config_without_datasets_is_a_missing_package(
    not_installed: Callable[..., None],
) -> None:
    from modelcache.runner.olive import OliveMissingPackage, _pass

    not_installed(_pass, "datasets")
    data_config = {"name": "glue", "type": "HuggingfaceContainer",
                   "load_dataset_config": {"data_name": "glue", "subset": "mrpc"}}  # fmt: skip
    quantize = bound("olive:OnnxStaticQuantization", input_type="onnx")
    with pytest.raises(OliveMissingPackage) as raised:  # before Olive's pass fails loading it
        quantize.validate({"data_config": data_config})
    assert raised.value.package == "datasets"
    assert raised.value.missing  # a plan shows the pass as unknown; a run refuses it
    assert "pip install datasets" in str(raised.value)
    dummy = {"name": "rows", "load_dataset_config": {"type": "dummy_dataset"}}
    assert quantize.validate({"data_config": dummy})  # Olive's own components need nothing


def test_a_missing_named_file_is_a_problem_of_its_parameter(tmp_path: Path) -> None:
    convert = bound("olive:OnnxConversion", base_dir=tmp_path)
    with pytest.raises(PassConfigError) as raised:
        convert.validate({"user_script": "nowhere.py"})
    assert raised.value.field == "user_script"
    assert "nowhere.py" in raised.value.problem


def test_input_model_settings_are_keyed_for_passes_that_read_the_hf_model() -> None:
    settings = {"task": "feature-extraction"}
    convert = bound("olive:OnnxConversion", input_type="hf", input_model=settings)
    assert convert.validate({"use_dynamo_exporter": True})["input_model"] == settings
    quantize = bound("olive:OnnxDynamicQuantization", input_type="onnx", input_model=settings)
    assert "input_model" not in quantize.validate({})


def test_passes_on_formats_modelcache_cannot_carry_are_refused_in_one_line() -> None:
    with pytest.raises(OliveUnsupported) as raised:
        bound("QNNConversion").validate({})
    assert "Olive itself" in str(raised.value)


def test_a_pass_whose_extra_is_missing_says_what_to_install() -> None:
    with pytest.raises(OliveUnsupported) as raised:
        bound("OnnxPeepholeOptimizer", input_type="onnx").validate({})
    assert "onnxoptimizer" in str(raised.value)
    assert "pip install" in str(raised.value)


def test_check_passes_binds_olive_passes_to_the_workflow(tmp_path: Path) -> None:
    passes = (
        ("convert", {"type": "OnnxConversion"}),
        ("optimize", {"type": "OrtTransformersOptimization", "model_type": "bert"}),
        ("peephole", {"type": "OnnxPeepholeOptimizer"}),
    )
    sound, problems = check_passes(passes, context=PassContext(base_dir=tmp_path))
    assert sound["optimize"][0].type == "olive:OrtTransformersOptimization"
    assert [p.path for p in problems] == ["$.passes.peephole"]
    # An ONNX pass after a Hugging Face input is still refused for its place in the chain.
    _, problems = check_passes((("optimize", {"type": "OrtTransformersOptimization"}),))
    assert any("reorder" in p.problem for p in problems)


@pytest.mark.slow
def test_an_olive_pass_gives_exactly_olives_output(tiny_onnx: Path, tmp_path: Path) -> None:
    from olive.hardware import DEFAULT_CPU_ACCELERATOR
    from olive.model import ONNXModelHandler
    from olive.passes.onnx.quantization import OnnxDynamicQuantization

    config = OnnxDynamicQuantization.generate_config(
        DEFAULT_CPU_ACCELERATOR, {}, disable_search=True
    )
    theirs = OnnxDynamicQuantization(DEFAULT_CPU_ACCELERATOR, config).run(
        ONNXModelHandler(model_path=str(tiny_onnx / "model.onnx")), str(tmp_path / "olive")
    )
    quantize = bound("olive:OnnxDynamicQuantization", input_type="onnx")
    ours = tmp_path / "ours"
    ours.mkdir()
    quantize.run(tiny_onnx, ours, quantize.validate({}))
    assert (ours / "model.onnx").read_bytes() == Path(theirs.model_path).read_bytes()
    # The source model's files ride along, as with every ONNX output.
    assert (ours / "config.json").read_bytes() == (tiny_onnx / "config.json").read_bytes()


@pytest.mark.slow
def test_a_failure_inside_olive_is_one_line_with_the_fix(tiny_bert: Path, tmp_path: Path) -> None:
    convert = bound("olive:OnnxConversion", input_type="hf", input_model={"task": "no-such"})
    with pytest.raises(OlivePassFailed) as raised:
        convert.run(tiny_bert, tmp_path, convert.validate({}))
    message = str(raised.value)
    assert "\n" not in message
    assert message.startswith("olive:OnnxConversion failed in Olive: ")
    assert '"use_dynamo_exporter": true' in message
    assert list(tmp_path.iterdir()) == []  # nothing of it is kept


def test_modelcache_passes_lists_olives_passes_by_the_names_that_find_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from modelcache.runner.cli import main

    assert main(["passes"]) == 0
    lines = capsys.readouterr().out.splitlines()
    version = olive.olive_version()
    assert lines[1].startswith("OnnxConversion\tversion ")  # the built-in, listed first
    assert lines[1].endswith("\thf -> onnx")
    assert f"olive:OnnxConversion\tversion 1\thf/pytorch -> onnx\tolive-ai {version}" in lines
    assert f"OrtTransformersOptimization\tversion 1\tonnx -> onnx\tolive-ai {version}" in lines
    for line in lines:  # each listed name finds the pass it lists
        name = line.split("\t")[0]
        assert load_pass(name).type in (name, f"olive:{name}")


def test_olives_log_is_written_to_stderr_without_tracebacks(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from modelcache.runner.olive._olive import quiet

    quiet()
    logger = logging.getLogger("olive.passes.onnx.quantization")
    try:
        raise ValueError("Incomplete symbolic shape inference")
    except ValueError as error:  # as Olive logs the preprocessing it goes on without
        logger.warning("Failed to run preprocessing with error of %s.", error, exc_info=True)
    logger.warning("model_path is a directory but onnx_file_name is not specified")
    out, err = capsys.readouterr()
    assert err.splitlines() == [
        "olive: WARNING: Failed to run preprocessing with error of Incomplete symbolic shape "
        "inference."
    ]
    assert "Traceback" not in err  # a run that goes on must not read as a crash
    assert "onnx_file_name" not in err  # what modelcache does itself: not the user's to act on
    assert not out  # stdout holds what a command prints
