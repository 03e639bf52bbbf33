"""An Olive pass as a modelcache pass: Olive's own implementation, on Olive's model handlers,
under this project's keys.

Theory of operation
-------------------
:meth:`OlivePass.validate` hands the parameters to the pass's own
``generate_config(accelerator, config, disable_search=True)``, so the configuration keyed
is Olive's, with Olive's defaults filled in (``per_channel`` false for
``OnnxDynamicQuantization``, ``target_opset`` 20 for ``OnnxConversion``, ...). The
validated configuration is::

    {"parameters": {...Olive's resolved parameters, paths as written...},
     "files": {"user_script": "sha256:...", ...},          # what named paths hold
     "accelerator": {"device": "cpu", "execution_provider": "CPUExecutionProvider"},
     "input_model": {"task": "feature-extraction", ...}}   # Hugging Face input only

``files`` is there when the parameters name files (``_keys``); ``accelerator`` only for a
pass Olive says is not accelerator-agnostic (``is_accelerator_agnostic``); ``input_model``
only for a pass that reads a Hugging Face model, which Olive loads with the workflow's
``input_model`` settings. The key's packages are olive-ai's version and those of the
libraries the pass runs on (:meth:`OlivePass.packages`).

:meth:`OlivePass.run` builds the handler Olive expects for the input folder, runs the pass
into a scratch folder and lays its output out as every output of its type is laid out
(``model.onnx`` and the source model's ``config.json`` and tokenizer files beside it).
Whatever Olive raises is one :class:`OlivePassFailed` line.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._distributions import version as installed_version
from ..inputs import ONNX_KEYED, PYTORCH_FILES
from ..models import ONNX_MODEL_FILE, UnknownModelType, model_type
from ..passes import PassConfigError, PassConfigProblems, PassInputError, PassUnavailable
from ..passes._model_files import copy_along
from ..passes._protocol import PassContext
from ..passes._registry import OLIVE_PREFIX
from ._errors import OliveFileMissing, OliveMissingPackage, OlivePassFailed, OliveUnsupported
from ._ignored import split_ignored
from ._keys import digest_of, named_paths, resolve_paths
from ._library import (
    DISTRIBUTION,
    INPUT_CHOSEN_BY,
    OlivePassInfo,
    extra_requirements,
    olive_version,
)
from ._memo import remembered
from ._older import as_written, calibration_data_config

__all__ = ["HF_SETTINGS", "OLIVE_PREFIX", "OlivePass", "data_config_packages"]

_SECTIONS = frozenset({"parameters", "ignored", "files", "accelerator", "input_model"})
#: The libraries every pass of a kind runs on, by the model type it reads.
_STACK = {
    "onnx": ("onnx", "onnxruntime", "onnxscript", "onnx-ir", "numpy"),
    "hf": ("torch", "transformers", "safetensors", "onnx", "onnxruntime", "onnxscript",
           "onnx-ir", "numpy"),
    "openvino": ("numpy",),
}  # fmt: skip
#: What Olive's OpenVINO passes import, in place of their ``openvino`` extra (which also
#: lists optimum, nncf and onnxruntime-openvino for every one of them).
_OPENVINO_PACKAGES = {
    "OpenVINOConversion": ("openvino",),
    "OpenVINOIoUpdate": ("openvino",),
    "OpenVINOEncapsulation": ("openvino", "onnx"),
    "OpenVINOQuantization": ("openvino", "nncf"),
    "OpenVINOQuantizationWithAccuracy": ("openvino", "nncf"),
    "OpenVINOWeightCompression": ("openvino", "nncf"),
    "OpenVINOOptimumConversion": ("openvino", "nncf", "optimum", "optimum-intel"),
}
#: The input model settings Olive's ``HfModelHandler`` takes beside its path.
HF_SETTINGS = ("task", "load_kwargs", "io_config", "model_attributes")
#: The model types Olive loads with the input model's settings.
_LOADED = frozenset({"hf", "pytorch"})
#: Model types as a reader says them.
_SAID = {"hf": "Hugging Face", "onnx": "ONNX", "openvino": "OpenVINO IR", "pytorch": "PyTorch"}
_REQUIREMENT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
#: Olive's data containers and components that import a package Olive does not require.
_DATA_PACKAGES = {"huggingfacecontainer": "datasets", "huggingface_dataset": "datasets"}


class OlivePass:
    """Olive's pass ``info.name``, in ``context`` (:class:`PassContext`)."""

    version = "1"

    def __init__(self, info: OlivePassInfo, context: PassContext | None = None) -> None:
        self.info = info
        self.context = context or PassContext()

    @property
    def type(self) -> str:
        return f"{OLIVE_PREFIX}{self.info.name}"

    @property
    def input_types(self) -> frozenset[str]:
        return self.info.input_types

    @property
    def output_type(self) -> str:
        """What the pass writes from the model it receives; ``""`` (a type no pass takes,
        so the next pass is not checked) when that depends on an input not known."""
        if self.info.outputs and not self.context.input_known:
            return ""
        return self.info.output_of(self.context.input_type)

    @property
    def origin(self) -> str:
        """Where the pass comes from, for listings: ``olive-ai 0.13.0``."""
        return f"{DISTRIBUTION} {olive_version()}"

    def in_context(self, context: PassContext) -> OlivePass:
        return OlivePass(self.info, context)

    def packages(self) -> dict[str, str]:
        versions = {DISTRIBUTION: olive_version() or ""}
        if not versions[DISTRIBUTION]:
            raise PassUnavailable(self.type, DISTRIBUTION)
        for name in self._package_names():
            found = installed_version(name)
            if found is None:
                problem = f"needs the {name!r} package, which is not installed"
                hint = self._install_hint(name)
                raise OliveMissingPackage(self.type, name, f"{problem}; {hint}")
            versions[name] = found
        return dict(sorted(versions.items()))

    def _package_names(self) -> list[str]:
        names = list(_STACK.get(self.context.input_type, _STACK["hf"]))
        names.extend(self.info.module_dependencies)
        requirements = extra_requirements()
        names.extend(_OPENVINO_PACKAGES.get(self.info.name, ()))
        extras = () if self.info.name in _OPENVINO_PACKAGES else self.info.extras
        for extra in extras:  # an extra of olive-ai's, or a distribution's name
            names.extend(requirements.get(extra, (extra,)))
        found = [_REQUIREMENT_NAME.match(name) for name in names]
        return sorted({m.group(0) for m in found if m})

    def _install_hint(self, missing: str) -> str:
        if self.info.name in _OPENVINO_PACKAGES:  # Olive's extra would pin numpy below 2
            return f"pip install {missing}"
        extras = [e for e in self.info.extras if e in extra_requirements()]
        others = [e for e in self.info.extras if e not in extras]
        commands = [f"pip install 'olive-ai[{','.join(extras)}]'"] if extras else []
        commands += [f"pip install {' '.join(others)}"] if others else []
        return " and ".join(commands) or "install it beside olive-ai"

    def validate(self, config: Mapping[str, Any]) -> dict[str, Any]:
        if not self.info.input_types:
            raise OliveUnsupported(self.type, (
                "works on a model format modelcache cannot carry between passes (it handles "
                "Hugging Face and ONNX models); run this workflow with Olive itself"
            ))  # fmt: skip
        raw, ignored = split_ignored(self.info.name, self._older_read(config))
        packages = self.packages()  # a missing library is a problem listed with the others
        question = {
            "pass": self.info.module_path,
            "packages": packages,
            "device": self.context.device,
            "execution_provider": self.context.execution_provider,
        }
        path_names, agnostic = remembered(question, self._schema)
        try:
            files = self._files(raw, frozenset(path_names))  # before Olive: ours name the field
        except OliveFileMissing as missing:
            raise self._besides(missing, raw, frozenset(path_names)) from None
        parameters = remembered(
            {**question, "parameters": raw, "files": files,
             "base_dir": str(self.context.base_dir)},
            lambda: self._resolved(raw, frozenset(path_names)),
        )  # fmt: skip
        self._check_input(parameters)
        self._check_data_packages(parameters)
        validated: dict[str, Any] = {"parameters": parameters}
        if ignored:  # what Olive 0.13 drops, keyed all the same (``_ignored``)
            validated["ignored"] = ignored
        if files:
            validated["files"] = files
        if not agnostic:
            validated["accelerator"] = {
                "device": self.context.device,
                "execution_provider": self.context.execution_provider,
            }
        if self.context.input_type in _LOADED and self.context.input_model:
            validated["input_model"] = dict(self.context.input_model)
        return validated

    def _older_read(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters of ``config`` with an older Olive's calibration data read into a
        ``data_config`` (``_older``; a config read from a file has it so already)."""
        read, _, problems = calibration_data_config(
            self.info.name, _parameters_of(config, self.type)
        )
        errors = [PassConfigError(self.type, name, problem) for name, problem in problems]
        if errors:
            raise PassConfigProblems.of(errors)
        return read

    def _besides(
        self, missing: PassConfigError, raw: dict[str, Any], path_names: frozenset[str]
    ) -> PassConfigError:
        """``missing`` (paths not there yet), with what Olive finds wrong besides in the
        parameters: a file not made yet must not hide a mistake."""
        found = list(missing.errors) if isinstance(missing, PassConfigProblems) else [missing]
        try:
            self._resolved(raw, path_names)
        except PassConfigError as error:
            found += error.errors if isinstance(error, PassConfigProblems) else [error]
        return PassConfigProblems.of(found)

    def _check_input(self, parameters: Mapping[str, Any]) -> None:
        """A pass whose parameter chooses the model type it takes (:data:`INPUT_CHOSEN_BY`)
        refused when it receives the other: Olive's pass would fail when it ran."""
        rule = INPUT_CHOSEN_BY.get(self.info.name)
        receives = self.context.input_type
        if rule is None or not self.context.input_known:
            return
        name, when_true, when_false = rule
        takes = when_true if parameters.get(name) else when_false
        if receives == takes:
            return
        chosen = bool(parameters.get(name))
        setting = f"with {name} true" if chosen else f"without {name}"
        raise PassConfigError(self.type, name if chosen else None, (
            f"{setting}, {self.type} takes {_SAID[takes]} models, but receives "
            f"{_SAID.get(receives, receives)} models; reorder the passes or change {name}"
        ))  # fmt: skip

    def _check_data_packages(self, parameters: Mapping[str, Any]) -> None:
        """A data config whose components import a package not installed here
        (:data:`_DATA_PACKAGES`) refused as a missing package: Olive's pass would fail when
        it loaded the data, after the passes before it ran."""
        for name, value in parameters.items():
            if not name.endswith("data_config") or not isinstance(value, Mapping):
                continue
            for package in data_config_packages(value):
                if installed_version(package) is None:
                    raise OliveMissingPackage(self.type, package, (
                        f"its data config ({value.get('type')}) needs the {package!r} "
                        f"package, which is not installed; pip install {package}"
                    ))  # fmt: skip

    def _schema(self) -> tuple[list[str], bool]:
        """Olive's answers about the pass itself: the parameters that name paths, and
        whether its output is the same for every accelerator."""
        from ._olive import accelerator_spec, olive_pass_class, path_parameters

        cls = olive_pass_class(self.info)
        accelerator = accelerator_spec(self.context.device, self.context.execution_provider)
        return sorted(path_parameters(cls, accelerator)), bool(
            cls.is_accelerator_agnostic(accelerator)
        )

    def _resolved(self, raw: dict[str, Any], path_names: frozenset[str]) -> dict[str, Any]:
        """Olive's configuration for ``raw``, paths as the config wrote them."""
        from ._olive import accelerator_spec, olive_pass_class, resolve

        cls = olive_pass_class(self.info)
        accelerator = accelerator_spec(self.context.device, self.context.execution_provider)
        absolute = resolve_paths(raw, self.context.base_dir, path_names)
        written = _written_paths(raw, absolute)  # before Olive, which moves nested values
        parameters = resolve(cls, accelerator, absolute, pass_type=self.type)
        return _replace_strings(parameters, written)  # type: ignore[no-any-return]

    def _files(self, raw: Mapping[str, Any], path_names: frozenset[str]) -> dict[str, str]:
        files: dict[str, str] = {}
        errors = []
        for location, written in named_paths(raw, path_names):
            digest = digest_of(self.context.base_dir / Path(written).expanduser())
            if digest is None:
                location = as_written(raw, location)
                field = location.partition(".")[0].partition("[")[0]
                errors.append(OliveFileMissing(self.type, field, (
                    f"{location} names {written!r}, which is not there (relative paths are "
                    "relative to the config file's folder)"
                )))  # fmt: skip
            else:
                files[location] = digest
        if errors:
            raise PassConfigProblems.of(errors)
        return files

    def run(self, input_dir: Path, output_dir: Path, config: Mapping[str, Any]) -> None:
        from ._olive import (
            accelerator_spec,
            fresh_user_code,
            handler_for,
            olive_pass_class,
            path_parameters,
        )

        fresh_user_code()  # the user code as it is now: its content is in the key
        validated = self.validate(config)
        input_dir, output_dir = Path(input_dir), Path(output_dir)
        found = self._input_type(input_dir)
        cls = olive_pass_class(self.info)
        accelerator = accelerator_spec(self.context.device, self.context.execution_provider)
        parameters = resolve_paths(
            validated["parameters"], self.context.base_dir, path_parameters(cls, accelerator)
        )
        settings = self._handler_settings(found, input_dir)
        with tempfile.TemporaryDirectory(prefix=".olive-", dir=output_dir.parent) as scratch:
            given = input_dir
            if found == "openvino":  # with reuse_cache, Olive writes into its input's folder
                given = Path(scratch) / "in"
                shutil.copytree(input_dir, given)
            handler = handler_for(given, found, settings)
            try:
                olive_config = cls.generate_config(accelerator, parameters, disable_search=True)
                output = cls(accelerator, olive_config).run(handler, str(Path(scratch) / "out"))
            except Exception as error:
                raise OlivePassFailed(self.type, error, self._hint(parameters)) from error
            along = input_dir if input_dir.is_dir() and found != "pytorch" else None
            _lay_out(Path(output.model_path), output_dir, along, self.output_type)

    def _input_type(self, input_dir: Path) -> str:
        """The type of the model at ``input_dir``: a folder made by a pass or a Hugging Face
        input, or, first in a chain from a ``PyTorchModel`` or an ``OnnxModel``, the user's
        own model file (the first has no riding-along files of ours)."""
        if self.context.input_type == "pytorch":
            return "pytorch"
        try:
            found: str = model_type(input_dir)
        except UnknownModelType as error:
            raise PassInputError(self.type, str(error)) from None
        if found not in self.input_types:
            raise PassInputError(self.type, f"takes {' or '.join(sorted(self.input_types))} "
                                 f"models, but {input_dir} holds an {found} model")  # fmt: skip
        return found

    def _hint(self, parameters: Mapping[str, Any]) -> str:
        if (
            self.info.name == "OnnxConversion"
            and self.context.input_type == "hf"
            and not parameters.get("use_dynamo_exporter")
        ):
            return (
                "Olive's TorchScript exporter fails on transformers 5 models: set "
                '"use_dynamo_exporter": true'
            )
        return ""

    def _handler_settings(self, found: str, input_dir: Path) -> dict[str, Any]:
        if found == "pytorch":
            settings = dict(self.context.input_model)
            return resolve_paths(settings, self.context.base_dir, frozenset(PYTORCH_FILES))  # type: ignore[no-any-return]
        if input_dir.is_file():  # the workflow's OnnxModel: Olive hands its settings over
            return {k: v for k, v in self.context.input_model.items() if k in ONNX_KEYED}
        settings = {k: v for k, v in self.context.input_model.items() if k in HF_SETTINGS}
        if found == "hf":
            return settings
        # An ONNX model made here carries its source's config.json: Olive's passes read the
        # source's attributes (hidden size, heads) from the handler, as its engine passes
        # them along from the Hugging Face model it converted.
        attributes = dict(settings.get("model_attributes") or {})
        source_config = input_dir / "config.json"
        if source_config.is_file():
            attributes = {**json.loads(source_config.read_text("utf-8")), **attributes}
        return {"model_attributes": attributes} if attributes else {}

    def __repr__(self) -> str:
        return f"<Olive pass {self.info.name} ({self.info.module_path})>"


def data_config_packages(data_config: Mapping[str, Any]) -> list[str]:
    """The packages Olive does not require that ``data_config`` (an Olive data config, as
    written or as Olive resolved it) imports through its container or components
    (:data:`_DATA_PACKAGES`)."""
    parts = [data_config, *(v for k, v in data_config.items() if k.endswith("_config"))]
    kinds = [str(p["type"]).lower() for p in parts if isinstance(p, Mapping) and p.get("type")]
    return sorted({_DATA_PACKAGES[kind] for kind in kinds if kind in _DATA_PACKAGES})


def _parameters_of(config: Mapping[str, Any], pass_type: str) -> dict[str, Any]:
    """The parameters of ``config``: itself as a workflow writes it, or its ``parameters``
    and ``ignored`` sections when it is a configuration :meth:`OlivePass.validate` returned."""
    if not isinstance(config, Mapping):
        raise PassConfigError(pass_type, None, "the configuration must be a JSON object")
    if "parameters" in config and set(config) <= _SECTIONS:
        inner = config["parameters"]
        if not isinstance(inner, Mapping):
            raise PassConfigError(pass_type, "parameters", "must be a JSON object")
        ignored = config.get("ignored") or {}
        if not isinstance(ignored, Mapping):
            raise PassConfigError(pass_type, "ignored", "must be a JSON object")
        return {**inner, **ignored}
    return dict(config)


def _written_paths(raw: Any, absolute: Any) -> dict[str, str]:
    """Each path the config wrote (``raw``) as Olive is handed it, made absolute
    (``absolute``), to the path as written: what Olive's resolved configuration gets back
    (:func:`_replace_strings`), so that no host path is keyed."""
    written: dict[str, str] = {}
    _pair_paths(raw, absolute, written)
    return written


def _pair_paths(raw: Any, absolute: Any, written: dict[str, str]) -> None:
    if isinstance(raw, Mapping) and isinstance(absolute, Mapping):
        for key in raw:
            _pair_paths(raw[key], absolute.get(key), written)
    elif isinstance(raw, list) and isinstance(absolute, list):
        for item, resolved in zip(raw, absolute, strict=False):
            _pair_paths(item, resolved, written)
    elif isinstance(raw, str) and isinstance(absolute, str) and raw != absolute:
        written[absolute] = raw
        written[os.path.realpath(absolute)] = raw


def _replace_strings(value: Any, written: Mapping[str, str]) -> Any:
    if isinstance(value, str):
        return written.get(value, value)
    if isinstance(value, Mapping):
        return {key: _replace_strings(inner, written) for key, inner in value.items()}
    if isinstance(value, list):
        return [_replace_strings(item, written) for item in value]
    return value


def _lay_out(made: Path, output_dir: Path, input_dir: Path | None, output_type: str) -> None:
    """Olive's output (``made``: its model file or folder) as an output of
    ``output_type``: Olive's files, the input's riding-along files (config, tokenizer;
    none for a user's PyTorch model, ``input_dir`` None) beside them, and for ONNX the
    graph named ``model.onnx``."""
    folder = made if made.is_dir() else made.parent
    if input_dir is not None:
        copy_along(input_dir, output_dir)
    shutil.copytree(folder, output_dir, dirs_exist_ok=True)
    if output_type != "onnx" or (output_dir / ONNX_MODEL_FILE).is_file():
        return
    graphs = sorted(output_dir.glob("*.onnx"))
    if made.suffix == ".onnx" and (output_dir / made.name).is_file():
        graphs = [output_dir / made.name]
    if len(graphs) != 1:
        raise OlivePassFailed.of_layout(made, [g.name for g in graphs])
    graphs[0].rename(output_dir / ONNX_MODEL_FILE)
