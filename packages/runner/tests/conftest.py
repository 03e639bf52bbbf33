"""Fixtures for the runner's tests: a tiny offline model, and outputs of the slow passes
shared across tests so each export runs once per session.

Everything runs offline: ``HF_HUB_OFFLINE`` is set before anything imports
``huggingface_hub``, so a test that reached for the hub would fail instead of downloading.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"

#: Sentences the tiny model's tokenizer knows, of different lengths, so a batch is padded.
TINY_SENTENCES = (
    "hello world, the quick brown fox jumps over the lazy dog!",
    "share a model cache in the cloud.",
    "onnx is fast",
)


@pytest.fixture
def not_installed(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """``not_installed(module, *packages)``: ``module`` finds no version of ``packages``
    (the rest as installed), through the name it imported ``_distributions.version`` as."""
    from modelcache.runner._distributions import version

    def hide(module: Any, *packages: str) -> None:
        def found(package: str) -> str | None:
            return None if package in packages else version(package)

        (name,) = [name for name, value in vars(module).items() if value is version]
        monkeypatch.setattr(module, name, found)

    return hide


@pytest.fixture(scope="session")
def tiny_bert(tiny_model: Path) -> Path:
    """A tiny random BERT (``build_tiny_bert(seed=0)``): the session's ``tiny_model`` (root
    ``conftest.py``), which the end-to-end tests share. Read-only: tests must not change it."""
    return tiny_model


@pytest.fixture(scope="session")
def run_pass(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``run_pass(type, input_dir, **config)``: run a pass into a new directory, return it."""
    from modelcache.runner.passes import load_pass

    def run(type_name: str, input_dir: Path, **config: Any) -> Path:
        implementation = load_pass(type_name)
        output = tmp_path_factory.mktemp(type_name.lower())
        implementation.run(input_dir, output, implementation.validate(config))
        return output

    return run


@pytest.fixture(scope="session")
def tiny_onnx(tiny_bert: Path, run_pass: Callable[..., Path]) -> Path:
    """The tiny BERT through ``OnnxConversion`` with the default configuration."""
    return run_pass("OnnxConversion", tiny_bert)


@pytest.fixture(scope="session")
def tiny_onnx_external(tiny_bert: Path, run_pass: Callable[..., Path]) -> Path:
    """The tiny BERT converted at opset 17, static axes, weights in ``model.onnx.data``."""
    return run_pass(
        "OnnxConversion",
        tiny_bert,
        target_opset=17,
        dynamic_axes={},
        save_as_external_data=True,
    )


@pytest.fixture(scope="session")
def tiny_batch(tiny_bert: Path) -> dict[str, Any]:
    """:data:`TINY_SENTENCES` tokenized by the tiny model's tokenizer, as int64 numpy arrays."""
    import numpy as np
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_bert))
    batch = tokenizer(list(TINY_SENTENCES), padding=True)
    return {name: np.asarray(values, dtype=np.int64) for name, values in batch.items()}


@pytest.fixture(scope="session")
def static_batch(tiny_batch: dict[str, Any]) -> dict[str, Any]:
    """The first two rows of the tiny batch, padded to 2 x 16: what ``tiny_onnx_external``
    (static axes, traced on a 2 x 16 example) accepts."""
    import numpy as np

    return {k: np.pad(v[:2], ((0, 0), (0, 16 - v.shape[1]))) for k, v in tiny_batch.items()}


@pytest.fixture(scope="session")
def hf_hidden(tiny_batch: dict[str, Any]) -> Callable[[Path], Any]:
    """``hf_hidden(model_dir)``: the last hidden state of a Hugging Face model on the tiny
    batch, as a float32 numpy array."""

    def hidden(model_dir: Path) -> Any:
        import torch
        from transformers import AutoModel

        model = AutoModel.from_pretrained(str(model_dir)).eval()
        tensors = {name: torch.from_numpy(array) for name, array in tiny_batch.items()}
        with torch.no_grad():
            return model(**tensors).last_hidden_state.float().numpy()

    return hidden


@pytest.fixture(scope="session")
def onnx_hidden(tiny_batch: dict[str, Any]) -> Callable[[Path], Any]:
    """``onnx_hidden(model_dir)``: the first output of an ONNX model on the tiny batch."""

    def hidden(model_dir: Path, batch: dict[str, Any] | None = None) -> Any:
        import onnxruntime

        session = onnxruntime.InferenceSession(
            str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"]
        )
        feed = batch if batch is not None else tiny_batch
        names = {i.name for i in session.get_inputs()}
        return session.run(None, {k: v for k, v in feed.items() if k in names})[0]

    return hidden
