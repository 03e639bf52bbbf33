"""OnnxDynamicQuantization: onnxruntime's dynamic int8 quantization, as Olive runs it.

Theory of operation
-------------------
Weights are quantized ahead of time (to signed or unsigned 8 bits, per tensor or per
channel); activations are quantized at run time, batch by batch, so no calibration data is
needed. The pass does what Olive's ``OnnxDynamicQuantization`` does, with Olive's parameters
and defaults, so an Olive config means the same here:

1. ``quant_preprocess`` (default true): onnxruntime's ``quant_pre_process`` (symbolic shape
   inference, onnxruntime's basic graph optimizations, ONNX shape inference), called with
   Olive's arguments. Where it fails on a model, Olive quantizes the original model, and so
   does the pass; a failure of the machine (memory, disk) fails the run instead, so that it
   never decides what is cached.
2. ``op_types_to_exclude``: the names of the (preprocessed) main graph's nodes of those
   types join ``nodes_to_exclude``, as Olive excludes them.
3. ``quantize_dynamic`` with ``extra_options`` holding ``ActivationSymmetric`` and
   ``WeightSymmetric`` from their parameters, as Olive sets them.

It writes into a scratch folder beside the output; the result is then saved in the layout
every ONNX output shares (:mod:`._onnx_files`). Deterministic: the same input gives the
same bytes.

Validation folds Olive's spellings into one configuration, since it is what the cache key
hashes: ``precision`` into ``weight_type``, ``extra_options``' symmetry flags into their
parameters, ``weight_symmetric: null`` into the value onnxruntime gives it for the weight
type, and options at their defaults out of ``extra_options``. Olive's parameters the pass
takes at one value only (:data:`_OLIVE_FIXED`) are checked and left out.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..models import ONNX_DATA_FILE, ONNX_MODEL_FILE, onnx_graph
from ._builtin import BuiltinPass
from ._errors import PassConfigError
from ._model_files import copy_along
from ._onnx_files import load_onnx, save_onnx, uses_external_data
from ._parameters import (
    Check,
    Parameter,
    PassConfigProblems,
    boolean,
    did_you_mean,
    nullable,
    number,
    one_of,
    only,
    string_set,
)

__all__ = ["OnnxDynamicQuantization"]

_ELSEWHERE = "use olive:OnnxDynamicQuantization for another value"

#: The ``extra_options`` of ``quantize_dynamic`` the pass takes, with the value each has when
#: left out (which the canonical configuration leaves out too). ``ActivationSymmetric`` and
#: ``WeightSymmetric`` are the parameters ``activation_symmetric`` and ``weight_symmetric``.
_EXTRA_OPTIONS: dict[str, tuple[Check, Any]] = {
    "MatMulConstBOnly": (boolean(), True),  # quantize_dynamic's default, unlike quantize_static
    "EnableSubgraph": (boolean(), False),
    "ForceQuantizeNoInputCheck": (boolean(), False),
    "ActivationRestrictedAsymmetric": (boolean(), False),
    "extra.Sigmoid.nnapi": (boolean(), False),
    "MinimumRealRange": (nullable(number(minimum=0.0)), None),
    "ActivationSymmetric": (boolean(), None),
    "WeightSymmetric": (boolean(), None),
}


def _selection(value: Any) -> list[str] | None:
    # quantize_dynamic reads an empty list of op types or nodes to quantize as "all", exactly
    # as it reads null: both must be one configuration, or one output has two keys.
    return nullable(string_set())(value) or None


def _exclusion(value: Any) -> list[str]:
    # Olive's default is null, onnxruntime's []: both exclude nothing.
    return nullable(string_set())(value) or []


def _precision(value: Any) -> str:
    if value == "int8":
        return "QInt8"
    if value == "uint8":
        return "QUInt8"
    raise ValueError(
        f"must be 'int8' or 'uint8' (the weight_type QInt8 or QUInt8); got {value!r}; for "
        "other precisions use olive:OnnxDynamicQuantization"
    )


def _extra_options(value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f'must be an object such as {{"MatMulConstBOnly": false}}, got {value!r}')
    options: dict[str, Any] = {}
    for name in sorted(value):
        if name not in _EXTRA_OPTIONS:
            known = list(_EXTRA_OPTIONS)
            raise ValueError(
                f"the built-in does not take the option {name!r}; {did_you_mean(name, known)}"
                f"it takes {', '.join(known)}; for others use olive:OnnxDynamicQuantization"
            )
        check, default = _EXTRA_OPTIONS[name]
        try:
            checked = check(value[name])
        except ValueError as error:
            raise ValueError(f"{name}: {error}") from None
        if checked != default:
            options[name] = checked
    return options


#: Olive's parameters the pass takes at one value only: checked, then left out of the
#: validated configuration, since they change nothing.
_OLIVE_FIXED = (
    Parameter(
        name="quant_mode",
        default="dynamic",
        description='"dynamic" only',
        check=only(
            "dynamic",
            otherwise="this pass quantizes dynamically; for static quantization use Olive's "
            "OnnxStaticQuantization",
        ),
    ),
    Parameter(
        name="all_tensors_to_one_file",
        default=True,
        description="true only",
        check=only(
            True,
            otherwise=f"the built-in writes every external tensor into {ONNX_DATA_FILE}; "
            f"{_ELSEWHERE}",
        ),
    ),
    Parameter(
        name="external_data_name",
        default=None,
        description=f'null or "{ONNX_DATA_FILE}" only',
        check=only(
            None,
            ONNX_DATA_FILE,
            otherwise=f'the built-in names the weights file "{ONNX_DATA_FILE}" (as Olive does by '
            f"default); {_ELSEWHERE}",
        ),
    ),
    Parameter(
        name="size_threshold",
        default=1024,
        description="1024 only",
        check=only(1024, otherwise=f"the built-in takes only 1024 (Olive's default); {_ELSEWHERE}"),
    ),
    Parameter(
        name="convert_attribute",
        default=False,
        description="false only",
        check=only(
            False, otherwise=f"the built-in takes only false (Olive's default); {_ELSEWHERE}"
        ),
    ),
)
#: The rows of :data:`_OLIVE_FIXED` whose other values Olive's pass honours (its
#: ``quant_mode`` is dynamic too).
_OLIVE_ONLY = tuple(p for p in _OLIVE_FIXED if p.name != "quant_mode")
_FIXED_NAMES = frozenset({"precision", *(parameter.name for parameter in _OLIVE_FIXED)})


class OnnxDynamicQuantization(BuiltinPass):
    """Dynamic int8 quantization of an ONNX model (``quantize_dynamic``), as Olive's pass.

    Parameters (Olive's, with Olive's defaults): ``weight_type`` (``"QInt8"``, the default,
    or ``"QUInt8"``; Olive's ``precision``, ``"int8"`` or ``"uint8"``, says the same),
    ``per_channel`` (default false), ``reduce_range`` (default false),
    ``op_types_to_quantize`` (``null`` or ``[]``: onnxruntime's default set),
    ``op_types_to_exclude``, ``nodes_to_quantize`` (``null``: all), ``nodes_to_exclude``,
    ``weight_symmetric`` (``null``: true for QInt8, false for QUInt8),
    ``activation_symmetric`` (default false), ``extra_options`` (:data:`_EXTRA_OPTIONS`),
    ``quant_preprocess`` (default true), ``save_as_external_data`` (default false), and
    Olive's other parameters at the values of :data:`_OLIVE_FIXED`.

    ``per_channel`` is false by default, as in Olive and onnxruntime, although on
    all-MiniLM-L6-v2 per-channel scales lift the cosine similarity of the sentence
    embeddings to the float model's from about 0.96 to 0.99, for 0.5% more bytes: a config
    must mean what it means in Olive, so the examples ask for ``"per_channel": true``.
    """

    type = "OnnxDynamicQuantization"
    version = "2"
    input_types = frozenset({"onnx"})
    output_type = "onnx"
    parameters = (
        Parameter(
            name="weight_type",
            default="QInt8",
            description='the weight type, "QInt8" or "QUInt8"',
            check=one_of("QInt8", "QUInt8", aliases={"int8": "QInt8", "uint8": "QUInt8"}),
        ),
        Parameter(
            name="per_channel",
            default=False,
            description="whether weights get one scale per output channel",
            check=boolean(),
        ),
        Parameter(
            name="reduce_range",
            default=False,
            description="whether weights use 7 bits (for CPUs without VNNI)",
            check=boolean(),
        ),
        Parameter(
            name="op_types_to_quantize",
            default=None,
            description='the operator types to quantize, such as ["MatMul"], or null',
            check=_selection,
        ),
        Parameter(
            name="op_types_to_exclude",
            default=[],
            description="the operator types to leave in float",
            check=_exclusion,
        ),
        Parameter(
            name="nodes_to_quantize",
            default=None,
            description="the names of the only nodes to quantize, or null for all",
            check=_selection,
        ),
        Parameter(
            name="nodes_to_exclude",
            default=[],
            description="the names of nodes to leave in float",
            check=_exclusion,
        ),
        Parameter(
            name="weight_symmetric",
            default=None,
            description="whether weights are quantized symmetrically (null: for QInt8 only)",
            check=nullable(boolean()),
        ),
        Parameter(
            name="activation_symmetric",
            default=False,
            description="whether activations are quantized symmetrically",
            check=boolean(),
        ),
        Parameter(
            name="extra_options",
            default={},
            description='quantize_dynamic\'s extra options, such as {"MatMulConstBOnly": false}',
            check=_extra_options,
        ),
        Parameter(
            name="quant_preprocess",
            default=True,
            description="whether onnxruntime's quant_pre_process runs first",
            check=boolean(),
        ),
        Parameter(
            name="save_as_external_data",
            default=False,
            description="whether the weights go into model.onnx.data",
            check=boolean(),
        ),
        Parameter(
            name="precision",
            default="int8",
            description='Olive\'s name for weight_type: "int8" or "uint8"',
            check=_precision,
        ),
        *_OLIVE_FIXED,
    )
    # sympy: quant_pre_process's symbolic shape inference.
    olive_fixed = _OLIVE_ONLY
    package_names = ("onnxruntime", "onnx", "onnx-ir", "numpy", "sympy")

    def validate(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The configuration checked and folded into its canonical form (module docstring)."""
        validated = super().validate(config)
        errors: list[PassConfigError] = []

        def contradiction(field: str, problem: str) -> None:
            errors.append(PassConfigError(self.type, field, problem))

        if "precision" in config:
            if "weight_type" in config and validated["weight_type"] != validated["precision"]:
                contradiction("precision", "contradicts weight_type; keep one of the two")
            validated["weight_type"] = validated["precision"]
        extra = dict(validated["extra_options"])
        activation = extra.pop("ActivationSymmetric", validated["activation_symmetric"])
        if activation != validated["activation_symmetric"]:
            contradiction(
                "extra_options",
                "ActivationSymmetric contradicts activation_symmetric, which Olive puts in "
                'its place: set "activation_symmetric" instead',
            )
        if "WeightSymmetric" in extra:
            given = extra.pop("WeightSymmetric")
            if validated["weight_symmetric"] is None:
                validated["weight_symmetric"] = given
            elif given != validated["weight_symmetric"]:
                contradiction(
                    "extra_options",
                    "WeightSymmetric contradicts weight_symmetric, which Olive puts in its "
                    'place: set "weight_symmetric" only',
                )
        if validated["weight_symmetric"] is None:  # onnxruntime's choice for the weight type
            validated["weight_symmetric"] = validated["weight_type"] == "QInt8"
        validated["extra_options"] = extra
        if errors:
            raise PassConfigProblems.of(errors)
        return {name: value for name, value in validated.items() if name not in _FIXED_NAMES}

    def _run(self, input_dir: Path, output_dir: Path, config: dict[str, Any]) -> None:
        from onnxruntime.quantization import QuantType, quantize_dynamic

        source = onnx_graph(input_dir)
        external = config["save_as_external_data"] or uses_external_data(load_onnx(input_dir))
        with tempfile.TemporaryDirectory(prefix=".quantize-", dir=output_dir.parent) as scratch:
            if config["quant_preprocess"]:
                source = _preprocessed(source, Path(scratch) / "preprocessed")
            quantized = Path(scratch) / "quantized"
            quantized.mkdir()
            excluded = _nodes_of_types(source, config["op_types_to_exclude"])
            quantize_dynamic(
                source,
                quantized / ONNX_MODEL_FILE,
                weight_type=QuantType[config["weight_type"]],
                per_channel=config["per_channel"],
                reduce_range=config["reduce_range"],
                op_types_to_quantize=config["op_types_to_quantize"],
                nodes_to_quantize=config["nodes_to_quantize"],
                nodes_to_exclude=[*config["nodes_to_exclude"], *excluded],
                use_external_data_format=external,
                extra_options={
                    **config["extra_options"],
                    "ActivationSymmetric": config["activation_symmetric"],
                    "WeightSymmetric": config["weight_symmetric"],
                },
            )
            save_onnx(load_onnx(quantized), output_dir, external=external)
        copy_along(input_dir, output_dir)


def _preprocessed(source: Path, folder: Path) -> Path:
    """``source`` through ``quant_pre_process`` as Olive calls it, into ``folder``; ``source``
    itself where preprocessing fails on the model, as in Olive."""
    from onnxruntime.quantization.preprocess import quant_pre_process

    folder.mkdir()
    target = folder / ONNX_MODEL_FILE
    try:
        quant_pre_process(
            str(source),  # positional: onnxruntime renamed the parameter (input_model_path)
            str(target),
            auto_merge=True,
            save_as_external_data=True,
        )
    except (MemoryError, OSError):
        raise  # the machine's failure, not the model's: it must not choose the output
    except Exception:  # what Olive catches; it then quantizes the original model
        return source
    return target


def _nodes_of_types(model_file: Path, op_types: list[str]) -> list[str]:
    """The names of the main graph's nodes of ``op_types``, as Olive lists them."""
    if not op_types:
        return []
    import onnx

    graph = onnx.load(str(model_file), load_external_data=False).graph
    return [node.name for node in graph.node if node.op_type in op_types]
