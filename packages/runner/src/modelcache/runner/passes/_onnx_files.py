"""Reading and writing the ONNX graph of an ``"onnx"`` model directory.

Every ONNX pass writes through :func:`save_onnx`, so all outputs share one layout:
``model.onnx``, plus ``model.onnx.data`` holding every tensor of 256 bytes or more when the
weights are external. They are external when asked for, when the input's were, and always
when inlining them would pass protobuf's 2 GiB limit on a file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..models import ONNX_DATA_FILE, ONNX_MODEL_FILE, onnx_graph

__all__ = ["load_onnx", "save_onnx", "uses_external_data"]

#: Initializer bytes above which weights go external: protobuf's 2 GiB, less room for the graph.
_INLINE_LIMIT = 2**31 - 2**27


def load_onnx(model_dir: Path) -> Any:
    """The ``onnx_ir`` model in ``model_dir`` (or the ONNX file ``model_dir``: a workflow's
    ``OnnxModel`` input); external tensors are read lazily."""
    import onnx_ir as ir

    return ir.load(onnx_graph(model_dir))


def uses_external_data(model: Any) -> bool:
    """Whether any initializer of ``model``'s main graph lives in an external file."""
    import onnx_ir as ir

    return any(
        isinstance(value.const_value, ir.ExternalTensor)
        for value in model.graph.initializers.values()
    )


def save_onnx(model: Any, output_dir: Path, *, external: bool) -> None:
    """Write ``model`` (``onnx_ir``) into ``output_dir`` as ``model.onnx`` [+ its data]."""
    import onnx_ir as ir

    size = sum(
        value.const_value.nbytes
        for value in model.graph.initializers.values()
        if value.const_value is not None
    )
    if external or size > _INLINE_LIMIT or uses_external_data(model):
        ir.save(model, output_dir / ONNX_MODEL_FILE, external_data=ONNX_DATA_FILE)
    else:
        ir.save(model, output_dir / ONNX_MODEL_FILE)
