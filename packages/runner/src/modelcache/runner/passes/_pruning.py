"""MagnitudePruning: unstructured magnitude pruning of a Hugging Face model's linear layers.

Theory of operation
-------------------
Each linear layer (``torch.nn.Linear``, and transformers' ``Conv1D``, which GPT-2 uses for
the same thing) whose name no ``exclude`` pattern matches, loses the ``round(sparsity * n)``
weights of smallest magnitude among its ``n``: they are set to zero. Biases, embeddings and
normalization layers are left alone. Ties are broken by position (a stable sort), so the
result is deterministic. The model keeps its dense format: zeros take as much room as any
other weight, so the files do not shrink; a sparse kernel or a compressing store benefits.

The input's ``config.json`` and other files are kept byte for byte: pruning changes weights,
not the architecture.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

from ._builtin import BuiltinPass
from ._hf_models import load_hf_model, save_hf_model
from ._parameters import REQUIRED, Parameter, number, string_set

__all__ = ["MagnitudePruning", "linear_layers"]


class MagnitudePruning(BuiltinPass):
    """Zero the smallest-magnitude weights of every linear layer, per layer.

    Parameters: ``sparsity`` (required: the fraction of each layer's weights to zero, in
    ``[0, 1)``), ``exclude`` (``fnmatch`` patterns of module names to leave alone, such as
    ``"pooler.*"``; default none).
    """

    type = "MagnitudePruning"
    version = "1"
    input_types = frozenset({"hf"})
    output_type = "hf"
    parameters = (
        Parameter(
            name="sparsity",
            default=REQUIRED,
            description="the fraction of each linear layer's weights to zero, such as 0.5",
            check=number(minimum=0.0, below=1.0),
        ),
        Parameter(
            name="exclude",
            default=[],
            description='module-name patterns to leave unpruned, such as ["pooler.*"]',
            check=string_set(),
        ),
    )
    package_names = ("torch", "transformers", "safetensors")

    def _run(self, input_dir: Path, output_dir: Path, config: dict[str, Any]) -> None:
        import torch

        model = load_hf_model(self.type, input_dir, base_model=False)
        with torch.no_grad():
            for name, layer in linear_layers(model):
                if any(fnmatch.fnmatchcase(name, pattern) for pattern in config["exclude"]):
                    continue
                _prune(layer.weight, config["sparsity"])
        save_hf_model(model, input_dir, output_dir, new_config=False)


def linear_layers(model: Any) -> list[tuple[str, Any]]:
    """The named linear layers of ``model`` that pruning considers, in module order."""
    import torch
    from transformers.pytorch_utils import Conv1D

    return [
        (name, module)
        for name, module in model.named_modules()
        if isinstance(module, (torch.nn.Linear, Conv1D))
    ]


def _prune(weight: Any, sparsity: float) -> None:
    import torch

    count = round(sparsity * weight.numel())
    if count == 0:
        return
    smallest = torch.argsort(weight.detach().abs().flatten().float(), stable=True)[:count]
    pruned = torch.zeros(weight.numel(), dtype=torch.bool)
    pruned[smallest] = True
    weight.masked_fill_(pruned.view(weight.shape), 0)
