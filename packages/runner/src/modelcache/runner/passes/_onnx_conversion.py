"""OnnxConversion: export a Hugging Face model to ONNX with torch's exporter.

Theory of operation
-------------------
The model is loaded as ``AutoModel`` (the base model: its outputs are the hidden states an
embedding model pools) in the dtype it is stored in, and traced by ``torch.onnx.export``
with ``dynamo=True`` (``torch.export``, then onnxscript's translation and optimizer); the
TorchScript exporter cannot trace transformers 5 models. The graph's inputs are the
model's ``input_ids``, ``attention_mask`` and ``token_type_ids``, whichever its ``forward``
takes, in that order; its outputs are the model output's fields in order
(``last_hidden_state``, ``pooler_output`` for BERT).

The trace runs on a fixed synthetic batch (two rows, the second padded), not on tokenizer
output, so conversion needs no tokenizer and sees the same example every time. The axes
named in ``dynamic_axes`` stay symbolic; the others are fixed to the example's sizes.

Determinism: the exporter annotates every node with debugging metadata (Python stack traces
with absolute file paths, FX node text, module names). That differs between machines and
install locations, so it is stripped before saving; the remaining graph is the same bytes
for the same input, configuration and packages (pinned by a test).

``target_opset`` is 20 by default, as in Olive (20 expresses GELU as one ``Gelu`` node).
Opsets below 18 are reached by converting down from 18 after export; when that fails
(LayerNormalization exists only from opset 17, for example) the exporter silently keeps 18,
so the pass checks the result and says which opset to use instead.

Olive's parameters: a config written for Olive's ``OnnxConversion`` means here what it
means there. ``dynamic: false`` is ``dynamic_axes: {}``; ``torch_dtype`` casts the loaded
model before the trace, as Olive does. Olive's parameters the built-in cannot honour are
accepted at the one value it implements (:data:`_OLIVE_FIXED`) and left out of the
validated configuration, which holds only what the output depends on: an Olive parameter at
its default and leaving it out are one cache key.
"""

from __future__ import annotations

import inspect
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..models import ONNX_DATA_FILE
from ._builtin import BuiltinPass
from ._errors import PassConfigError
from ._hf_models import load_hf_model
from ._model_files import copy_along
from ._onnx_files import save_onnx
from ._parameters import Parameter, boolean, integer, nullable, one_of, only

__all__ = ["OnnxConversion"]

#: The inputs an exported graph may take, in graph order.
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
_DEFAULT_AXES = {0: "batch", 1: "sequence"}
_SAMPLE_SHAPE = (2, 16)
_SAMPLE_PADDING = 5
_AXIS_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _dynamic_axes(value: Any) -> dict[str, dict[str, str]]:
    if not isinstance(value, Mapping):
        raise ValueError(
            "must be null (batch and sequence axes of every input) or an object such as "
            '{"input_ids": {"0": "batch", "1": "sequence"}}'
        )
    axes: dict[str, dict[str, str]] = {}
    for input_name in sorted(value):
        if input_name not in _INPUTS:
            raise ValueError(f"{input_name!r} is not an input; inputs are {list(_INPUTS)}")
        named = value[input_name]
        if not isinstance(named, Mapping):
            raise ValueError(f'{input_name}: must map axis numbers to names, e.g. {{"0": "batch"}}')
        for axis, name in named.items():
            if axis not in ("0", "1"):
                raise ValueError(f'{input_name}: axis {axis!r} must be "0" or "1"')
            if not (isinstance(name, str) and _AXIS_NAME.fullmatch(name)):
                raise ValueError(f"{input_name}: axis name {name!r} must be an identifier")
        if named:  # an input with no symbolic axis is static, as an input left out is
            axes[input_name] = {axis: named[axis] for axis in sorted(named)}
    return axes


#: The names ``torch_dtype`` takes besides the canonical ones: Olive's (any ``torch``
#: attribute, with or without ``torch.``) and TorchDtypeCast's.
_DTYPE_ALIASES = {
    "half": "float16",
    "fp16": "float16",
    "bf16": "bfloat16",
    "float": "float32",
    "fp32": "float32",
    "torch.float16": "float16",
    "torch.half": "float16",
    "torch.bfloat16": "bfloat16",
    "torch.float32": "float32",
    "torch.float": "float32",
}
_ELSEWHERE = "use olive:OnnxConversion for another value"


def _ignored(name: str, default: Any, check: Any) -> Parameter:
    """The row of one of Olive's parameters that Olive's OnnxConversion reads only for a
    PyTorch model: any value of its type is taken, and changes nothing, as in Olive."""
    return Parameter(name=name, default=default, description="ignored, as by Olive", check=check)


def _fixed(name: str, value: Any, shown: str, otherwise: str = _ELSEWHERE) -> Parameter:
    """The row of one of Olive's parameters the built-in takes at ``value`` only."""
    problem = f"the built-in takes only {shown} (Olive's default); {otherwise}"
    return Parameter(
        name=name, default=value, description=f"{shown} only", check=only(value, otherwise=problem)
    )


#: Olive's parameters the built-in takes at one value only (Olive's default, or the one export
#: it makes): checked, then left out of the validated configuration, since they change nothing.
_OLIVE_FIXED = (
    Parameter(
        name="use_dynamo_exporter",
        default=True,
        description="true only",
        check=only(
            True,
            otherwise="the built-in always exports with the dynamo exporter (Olive's default "
            'TorchScript exporter fails on transformers 5 models): write "use_dynamo_exporter": '
            "true, or use olive:OnnxConversion for the TorchScript export",
        ),
    ),
    Parameter(
        name="device",
        default=None,
        description='"cpu" or null only',
        check=only(
            None,
            "cpu",
            otherwise='the built-in exports on the CPU: leave device out (or write "cpu"), '
            "or use olive:OnnxConversion",
        ),
    ),
    _ignored("all_tensors_to_one_file", True, boolean()),
    Parameter(
        name="external_data_name",
        default=None,
        description='null or "model.onnx.data" only',
        check=only(
            None,
            ONNX_DATA_FILE,
            otherwise=f'the built-in names the weights file "{ONNX_DATA_FILE}" (as Olive does by '
            f"default); {_ELSEWHERE}",
        ),
    ),
    _ignored("size_threshold", 1024, integer(minimum=0)),
    _ignored("convert_attribute", False, boolean()),
    _fixed("merge_adapter_weights", False, "false"),
    _fixed("save_metadata_for_token_generation", False, "false"),
    _fixed("past_key_value_name", "past_key_values", '"past_key_values"'),
    _fixed("optimize", True, "true"),
    _ignored("parallel_jobs", None, nullable(integer(minimum=1))),
    _fixed("user_script", None, "null"),
    _fixed("script_dir", None, "null"),
)
#: The parameters that are Olive's way of saying something the validated configuration says
#: otherwise (``dynamic``), or nothing at all.
_FOLDED = frozenset({"dynamic", *(parameter.name for parameter in _OLIVE_FIXED)})
#: The rows of :data:`_OLIVE_FIXED` whose other values only Olive's pass honours.
_OLIVE_ONLY = tuple(p for p in _OLIVE_FIXED if p.description != "ignored, as by Olive")


class OnnxConversion(BuiltinPass):
    """Export a Hugging Face model to ONNX (``torch.onnx.export``, ``dynamo=True``).

    Parameters: ``target_opset`` (default 20, as Olive's), ``dynamic_axes`` (``null``: the
    batch and sequence axes of every input are dynamic; ``{}``: all static; or an object of
    input -> axis -> name), ``save_as_external_data`` (default false: weights go into
    ``model.onnx.data`` only beyond protobuf's 2 GiB limit), ``torch_dtype`` (``null``: as
    stored; ``"float16"``, ``"bfloat16"`` or ``"float32"``: cast before the export), Olive's
    ``dynamic`` (false is ``dynamic_axes: {}``), and Olive's other parameters at the values
    of :data:`_OLIVE_FIXED`.
    """

    type = "OnnxConversion"
    version = "2"
    input_types = frozenset({"hf"})
    output_type = "onnx"
    parameters = (
        Parameter(
            name="target_opset",
            default=20,
            description="the ONNX opset to export to, such as 20",
            check=integer(minimum=7),
        ),
        Parameter(
            name="dynamic_axes",
            default=None,
            description="the symbolic axes of each input, or null for batch and sequence",
            check=nullable(_dynamic_axes),
        ),
        Parameter(
            name="save_as_external_data",
            default=False,
            description="whether the weights go into model.onnx.data",
            check=boolean(),
        ),
        Parameter(
            name="torch_dtype",
            default=None,
            description='the dtype to cast the model to before the export, such as "float16"',
            check=nullable(one_of("float16", "bfloat16", "float32", aliases=_DTYPE_ALIASES)),
        ),
        Parameter(
            name="dynamic",
            default=True,
            description="Olive's switch: false exports static axes, as dynamic_axes {}",
            check=boolean(),
        ),
        *_OLIVE_FIXED,
    )
    olive_fixed = _OLIVE_ONLY
    package_names = ("torch", "transformers", "onnxscript", "onnx-ir", "onnx")
    # torch reads its exporter's flags (TORCH_ONNX_ENABLE_DRAFT_EXPORT, ...) and onnxscript
    # its optimizer's (TORCH_ONNX_ENABLE_OPTIMIZATION, ...) when first imported, so they
    # cannot be cleared for a run: they are keyed instead.
    environment_variables = ("TORCH_ONNX_*",)

    def validate(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """The configuration checked, with ``dynamic`` folded into ``dynamic_axes`` and the
        parameters of :data:`_OLIVE_FIXED` left out."""
        validated = super().validate(config)
        if "dynamic" in config:
            static = validated["dynamic_axes"] == {}
            if "dynamic_axes" in config and static == validated["dynamic"]:
                wants = "static" if static else "dynamic"
                raise PassConfigError(
                    self.type,
                    "dynamic",
                    f"{str(validated['dynamic']).lower()} contradicts dynamic_axes, which asks "
                    f"for {wants} axes; keep one of the two",
                )
            if not validated["dynamic"]:
                validated["dynamic_axes"] = {}
        return {name: value for name, value in validated.items() if name not in _FOLDED}

    def _run(self, input_dir: Path, output_dir: Path, config: dict[str, Any]) -> None:
        import torch

        model = load_hf_model(self.type, input_dir, base_model=True)
        if config["torch_dtype"] is not None:
            # As Olive does: the whole module in the dtype, then the trace (inputs are ids).
            model = model.to(dtype=getattr(torch, config["torch_dtype"]))
        takes = inspect.signature(model.forward).parameters
        names = [n for n in _INPUTS if n in takes]
        # A decoder would also return its key-value cache, which is no tensor to export.
        fixed: dict[str, Any] = {"use_cache": False} if "use_cache" in takes else {}
        fixed["return_dict"] = True
        sample = _sample(model.config, names)
        with torch.no_grad():
            output_names = list(model(**sample, **fixed).keys())
        axes = self._axes(config["dynamic_axes"], names)
        with warnings.catch_warnings():
            # torch turns dynamic_axes into dynamic shapes and names the graph's symbolic
            # dimensions after them; its advice to pass dynamic_shapes instead is noise.
            warnings.filterwarnings("ignore", message=".*dynamic_axes.*", category=UserWarning)
            warnings.filterwarnings("ignore", message=".*axis name.*", category=UserWarning)
            program = torch.onnx.export(
                _tuple_outputs(model, fixed),
                (),
                kwargs=sample,
                input_names=names,
                output_names=output_names,
                opset_version=config["target_opset"],
                dynamic_axes=axes,
                dynamo=True,
                optimize=True,
                verbose=False,
            )
        assert program is not None  # None only for the TorchScript exporter
        onnx_model = program.model
        reached = onnx_model.opset_imports.get("", None)
        if reached != config["target_opset"]:
            raise PassConfigError(
                self.type,
                "target_opset",
                f"the exporter could not convert this model down to opset "
                f"{config['target_opset']} (from {reached}); use a higher target_opset "
                f"({reached} always works)",
            )
        _strip_debug_metadata(onnx_model)
        save_onnx(onnx_model, output_dir, external=config["save_as_external_data"])
        copy_along(input_dir, output_dir)

    def _axes(
        self, configured: dict[str, dict[str, str]] | None, names: list[str]
    ) -> dict[str, dict[int, str]]:
        if configured is None:
            return {name: dict(_DEFAULT_AXES) for name in names}
        for name in configured:
            if name not in names:
                raise PassConfigError(
                    self.type,
                    "dynamic_axes",
                    f"the model has no input {name!r}; its inputs are {names}",
                )
        return {name: {int(a): n for a, n in axes.items()} for name, axes in configured.items()}


def _sample(config: Any, names: list[str]) -> dict[str, Any]:
    """A fixed batch of two rows, the second padded at the end."""
    import torch

    batch, length = _SAMPLE_SHAPE
    length = min(length, int(getattr(config, "max_position_embeddings", length) or length))
    vocab = int(config.vocab_size)
    pad = getattr(config, "pad_token_id", None)
    pad = 0 if pad is None else int(pad)
    positions = torch.arange(batch * length).reshape(batch, length)
    ids = 1 + (positions * 7) % max(vocab - 1, 1)
    ids = torch.where(ids == pad, (ids + 1) % vocab, ids)
    mask = torch.ones(batch, length, dtype=torch.int64)
    mask[1, length - _SAMPLE_PADDING :] = 0
    ids[1, length - _SAMPLE_PADDING :] = pad
    tensors = {
        "input_ids": ids.to(torch.int64),
        "attention_mask": mask,
        "token_type_ids": torch.zeros(batch, length, dtype=torch.int64),
    }
    return {name: tensors[name] for name in names}


def _tuple_outputs(model: Any, fixed: dict[str, Any]) -> Any:
    """``model`` as a module returning its outputs as a tuple, which the exporter names."""
    import torch

    class TupleOutputs(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(
            self, input_ids: Any, attention_mask: Any = None, token_type_ids: Any = None
        ) -> tuple[Any, ...]:
            given = {"attention_mask": attention_mask, "token_type_ids": token_type_ids}
            extra = {name: value for name, value in given.items() if value is not None}
            return tuple(self.model(input_ids=input_ids, **extra, **fixed).values())

    return TupleOutputs().eval()


def _strip_debug_metadata(model: Any) -> None:
    import onnx_ir as ir

    model.metadata_props.clear()
    graphs = [model.graph, *model.functions.values()]
    for graph in graphs:
        graph.metadata_props.clear()
        for value in (*graph.inputs, *graph.outputs):
            value.metadata_props.clear()
        for value in getattr(graph, "initializers", {}).values():
            value.metadata_props.clear()
        for node in ir.traversal.RecursiveGraphIterator(graph):
            node.metadata_props.clear()
            node.doc_string = None
            for value in node.outputs:
                value.metadata_props.clear()
