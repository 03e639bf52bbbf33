"""A tiny BERT-like Hugging Face model, built offline, for tests and examples.

It has the shape of all-MiniLM-L6-v2 (a ``BertModel`` with a WordPiece tokenizer) at a
fraction of its size: hidden size 32, 2 layers, 2 heads, intermediate size 37 (deliberately
not a multiple of anything), a vocabulary of 100 tokens and 64 positions. The weights are
random, drawn from a fixed seed; the model computes nothing useful, but every pass and
evaluator can run on it in about a second.

Deterministic: the same seed gives the same bytes with the same torch and transformers
versions (``config.json`` records the transformers version; torch's initializers may draw
differently in another torch release).

:func:`build_tiny_onnx` writes a tinier ONNX file, with ``onnx.helper`` alone: the stand-in
for an ``OnnxModel`` input, made in milliseconds.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["TINY_VOCABULARY", "build_tiny_bert", "build_tiny_onnx"]

_SPECIAL = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
_LETTERS = tuple("abcdefghijklmnopqrstuvwxyz")
_WORDS = (
    "the", "an", "is", "of", "and", "to", "in", "it", "model", "cache", "cloud", "pass",
    "fast", "small", "test", "hello", "world", "share", "blob", "key", "run", "plan",
    "onnx", "quick", "brown", "fox", "dog", "jumps", "over", "lazy",
)  # fmt: skip
_PUNCTUATION = tuple(".,!?'-:;()")

#: The tokenizer's vocabulary, in id order: special tokens, letters, whole words,
#: word-piece suffixes, punctuation. 100 tokens.
TINY_VOCABULARY: tuple[str, ...] = (
    *_SPECIAL,
    *_LETTERS,
    *_WORDS,
    *(f"##{c}" for c in _LETTERS[:-5]),
    *_PUNCTUATION,
    *(str(d) for d in range(8)),
)

_MAX_POSITIONS = 64


def build_tiny_bert(path: Path, seed: int = 0) -> Path:
    """Write a tiny random ``BertModel`` and its tokenizer into directory ``path``.

    ``path`` is created if needed. Files: ``config.json``, ``model.safetensors`` (float32),
    ``tokenizer.json``, ``tokenizer_config.json``, ``vocab.txt``. Needs torch and
    transformers; touches no network. Returns ``path``.
    """
    import torch
    from transformers import BertConfig, BertModel, BertTokenizer
    from transformers.utils import logging

    hf_logging: Any = logging  # its functions are unannotated

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    vocab_file = path / "vocab.txt"
    vocab_file.write_text("\n".join(TINY_VOCABULARY) + "\n", encoding="utf-8")
    tokenizer = BertTokenizer(vocab=str(vocab_file), model_max_length=_MAX_POSITIONS)
    config = BertConfig(
        vocab_size=len(TINY_VOCABULARY),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=37,
        max_position_embeddings=_MAX_POSITIONS,
        architectures=["BertModel"],
    )
    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        model: Any = BertModel(config)
    finally:
        torch.random.set_rng_state(generator_state)
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        model.save_pretrained(path)
        tokenizer.save_pretrained(path)
    finally:
        if bars:
            hf_logging.enable_progress_bar()
    return path


def build_tiny_onnx(path: Path, *, weights: float = 0.5, external: bool = False) -> Path:
    """Write a tiny ONNX graph to the file ``path`` (its folder created if needed): ``y =
    relu(x @ W + b)``, ``x`` a float tensor ``[batch, 8]``, ``W`` an 8x8 initializer of
    values around ``weights`` (another value, another model), at opset 17. With
    ``external``, the initializers go to ``<name>.data`` beside it. Needs onnx and numpy
    only; deterministic. Returns ``path``."""
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    matrix = (np.arange(64, dtype=np.float32).reshape(8, 8) / 64 - 0.5 + weights) / 8
    initializers = [
        numpy_helper.from_array(matrix, "W"),
        numpy_helper.from_array(np.linspace(-1, 1, 8, dtype=np.float32), "b"),
    ]
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "W"], ["xw"]),
            helper.make_node("Add", ["xw", "b"], ["z"]),
            helper.make_node("Relu", ["z"], ["y"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 8])],
        initializers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8  # what onnxruntime releases of the last years all load
    onnx.checker.check_model(model)
    if external:
        onnx.save_model(model, str(path), save_as_external_data=True,
                        location=f"{path.name}.data", size_threshold=0)  # fmt: skip
    else:
        onnx.save_model(model, str(path))
    return path
