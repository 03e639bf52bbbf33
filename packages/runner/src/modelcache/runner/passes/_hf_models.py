"""Loading and saving Hugging Face models for the passes."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ._errors import PassInputError
from ._model_files import copy_along

__all__ = ["load_hf_model", "quiet_transformers", "save_hf_model"]


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' progress bars and info logging; the runner reports progress."""
    from transformers.utils import logging

    hf_logging: Any = logging  # its functions are unannotated
    bars = hf_logging.is_progress_bar_enabled()
    verbosity = hf_logging.get_verbosity()
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()


def load_hf_model(pass_type: str, model_dir: Path, *, base_model: bool) -> Any:
    """The model in ``model_dir``, in evaluation mode, in the dtype its weights are stored in.

    ``base_model``: load it as ``AutoModel`` (the encoder without a task head, whose outputs
    are the hidden states). Otherwise load the class ``config.json``'s ``architectures``
    names, so every weight, heads included, survives a load-modify-save round trip.

    A tensor the class needs and the weights lack is initialized by transformers from
    torch's global generator: the output would change with the process's seed under one
    cache key. So such tensors are drawn from a generator seeded the same every time, and,
    when the whole architecture is kept (not ``base_model``), where they would be saved as
    if trained, the model is refused with :class:`PassInputError` naming them.
    """
    import transformers

    try:
        config = transformers.AutoConfig.from_pretrained(str(model_dir))
        model_class = _model_class(pass_type, config, base_model=base_model)
        with quiet_transformers(), _fixed_seed():
            model, info = model_class.from_pretrained(
                str(model_dir), config=config, dtype="auto", output_loading_info=True
            )
    except PassInputError:
        raise
    except (OSError, ValueError) as error:  # what transformers raises for unusable files
        raise PassInputError(
            pass_type,
            f"cannot load the Hugging Face model in {model_dir}: {' '.join(str(error).split())}",
        ) from error
    missing = sorted(info.get("missing_keys") or ())
    if missing and not base_model:
        raise PassInputError(pass_type, _missing_message(model_dir, model_class, missing))
    return model.eval()


@contextlib.contextmanager
def _fixed_seed() -> Iterator[None]:
    import torch

    # fork_rng restores the caller's generator state afterwards: the pass leaves no trace.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        yield


def _missing_message(model_dir: Path, model_class: Any, missing: list[str]) -> str:
    shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
    return (
        f"the weights in {model_dir} lack {len(missing)} tensor(s) that "
        f"{model_class.__name__} needs ({shown}), which would be random; give weights with "
        'every tensor, or name in config.json\'s "architectures" the class they are for'
    )


def _model_class(pass_type: str, config: Any, *, base_model: bool) -> Any:
    import transformers

    architectures = getattr(config, "architectures", None) or []
    if base_model or not architectures:
        return transformers.AutoModel
    model_class = getattr(transformers, architectures[0], None)
    if model_class is None:
        raise PassInputError(
            pass_type,
            f"the model's architecture {architectures[0]!r} is not part of transformers; "
            "models with custom code are not supported",
        )
    return model_class


def save_hf_model(model: Any, input_dir: Path, output_dir: Path, *, new_config: bool) -> None:
    """Write ``model`` as a Hugging Face model (safetensors weights) into ``output_dir``, with
    the files of ``input_dir`` that ride along.

    ``new_config``: keep the ``config.json`` transformers writes for ``model`` (needed when
    the pass changed something the configuration records, such as the dtype). Otherwise the
    input's configuration files are kept byte for byte.
    """
    copy_along(input_dir, output_dir)
    with quiet_transformers():
        model.save_pretrained(str(output_dir))
    if not new_config:
        copy_along(input_dir, output_dir)
