"""The input model's errors: :class:`ModelError` and its branches, raised by model
resolution (:mod:`.models`, which exports them) and by the digests of model files
(:mod:`.digests`). A module of their own, so that each of those two can import them."""

from __future__ import annotations

from .errors import UserError

__all__ = ["ModelAbsent", "ModelError", "ModelNotDownloaded", "ModelNotFound", "UnknownModelType"]


class ModelError(UserError, ValueError):
    """A model directory or ``model_path`` cannot be used; ``message`` says why and what to
    do. The user's to fix: the config names the model."""


class ModelNotFound(ModelError):
    """The input model is not where ``model_path`` says: no such directory, not in the local
    Hugging Face cache, or not a Hugging Face model."""


class ModelAbsent(ModelNotFound):
    """Absent from this machine, not wrong in the config: a plan can still show the passes
    that would run. A file the config names that is not there yet (a model an example's
    own script makes first) is one."""


class ModelNotDownloaded(ModelAbsent):
    """A hub model that is not (wholly) in the local Hugging Face cache."""


class UnknownModelType(ModelError):
    """A directory is neither a Hugging Face model nor an ONNX model."""
