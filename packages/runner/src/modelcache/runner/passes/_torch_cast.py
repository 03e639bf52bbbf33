"""TorchDtypeCast: a Hugging Face model with its floating-point weights cast to fp16 or bf16.

The model is loaded as the class its ``config.json`` names (so task heads survive), every
floating-point parameter and buffer is cast, and the model is saved with
``save_pretrained``: safetensors weights and a ``config.json`` recording the new ``dtype``.
Deterministic: the same input gives the same bytes with the same torch, transformers and
safetensors (``config.json`` records the transformers version).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ._builtin import BuiltinPass
from ._hf_models import load_hf_model, save_hf_model
from ._parameters import Parameter, one_of

__all__ = ["TorchDtypeCast"]

_ALIASES = {"fp16": "float16", "half": "float16", "bf16": "bfloat16"}


class TorchDtypeCast(BuiltinPass):
    """Cast a Hugging Face model's floating-point weights, saved as a Hugging Face model.

    Parameter: ``dtype``, ``"float16"`` (the default; also ``"fp16"``, ``"half"``) or
    ``"bfloat16"`` (also ``"bf16"``).
    """

    type = "TorchDtypeCast"
    version = "1"
    input_types = frozenset({"hf"})
    output_type = "hf"
    parameters = (
        Parameter(
            name="dtype",
            default="float16",
            description='the target dtype, "float16" or "bfloat16"',
            check=one_of("float16", "bfloat16", aliases=_ALIASES),
        ),
    )
    package_names = ("torch", "transformers", "safetensors")

    def _run(self, input_dir: Path, output_dir: Path, config: dict[str, Any]) -> None:
        import torch

        dtype = getattr(torch, config["dtype"])
        model = load_hf_model(self.type, input_dir, base_model=False)
        model = model.to(dtype=dtype)
        save_hf_model(model, input_dir, output_dir, new_config=True)
