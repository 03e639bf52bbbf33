"""What an older Olive wrote that Olive's own example configs still write.

Parameters Olive 0.13 ignores: an older Olive's name for a parameter since renamed. Olive
drops them with a warning and runs the pass without them; so does modelcache, saying so in a
note, and keeps them in the pass's key (the ``ignored`` section of its configuration), so
that an output is never served to a config whose ignored value differs. An older Olive's
calibration data (``dataloader_func``...) is one of them only beside a ``data_config``;
alone, ``_older`` reads it as that Olive meant it. Any other parameter
Olive does not know stays an error: it is more often a misspelling (``per_chanel``) than an
older name.

Values Olive 0.13 refuses that an older Olive spelt otherwise: onnxruntime's ``QuantType``
names (``"QUInt16"``) for a quantizer's ``activation_type``, which Olive 0.13 takes as
precisions (``"uint16"``). The example would not run in Olive 0.13 at all; modelcache reads the
value as the Olive that wrote it meant it, the same quantization, with a note saying what to
write (:func:`respelt`). The key holds the value as read, so both spellings share outputs.

Pure data and its readers: nothing here imports Olive.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from ._older import CALIBRATION_FIELDS, QUANTIZERS, pass_kind

__all__ = ["IGNORED_BY_OLIVE", "ignored_note", "precision_of", "respelt", "split_ignored"]

_WEIGHT_TYPE = (
    "an older Olive's name for precision; Olive 0.13 ignores it and quantizes the weights "
    'as precision says (default "int8"): write precision to choose'
)
_PREPARE_QNN = (
    "an older Olive's name for prepare_qdq_config; Olive 0.13 ignores it and prepares the QDQ "
    "config as prepare_qdq_config says (default true)"
)
_OUTPUT_MODEL = (
    "an older Olive's name for model_name; Olive 0.13 ignores it and names the IR files as "
    'model_name says (default "ov_model")'
)
_CALIBRATION = (
    "an older Olive's way to name calibration data; beside a data_config, as here, Olive "
    "0.13 ignores it and calibrates on the data_config"
)
#: (pass type, casefolded, without ``olive:``; parameter) -> what Olive 0.13 makes of it.
IGNORED_BY_OLIVE: Final[Mapping[tuple[str, str], str]] = {
    **{(name, "weight_type"): _WEIGHT_TYPE for name in QUANTIZERS},
    **{(name, "prepare_qnn_config"): _PREPARE_QNN for name in QUANTIZERS},
    ("openvinoconversion", "output_model"): _OUTPUT_MODEL,
    **{(name, field): _CALIBRATION for name in QUANTIZERS for field in CALIBRATION_FIELDS},
}
#: onnxruntime's ``QuantType`` names, as an older Olive took them, and Olive 0.13's precision.
_QUANT_TYPES: Final[Mapping[str, str]] = {
    "QInt4": "int4", "QUInt4": "uint4", "QInt8": "int8", "QUInt8": "uint8",
    "QInt16": "int16", "QUInt16": "uint16",
}  # fmt: skip
#: The parameters an older Olive gave ``QuantType`` names: (pass type, parameter).
_RESPELT: Final = frozenset((name, "activation_type") for name in QUANTIZERS)


def split_ignored(
    pass_type: str, parameters: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``parameters`` as (those Olive reads, those Olive 0.13 ignores) for ``pass_type``."""
    kind = pass_kind(pass_type)
    read: dict[str, Any] = {}
    ignored: dict[str, Any] = {}
    for name, value in parameters.items():
        (ignored if (kind, name) in IGNORED_BY_OLIVE else read)[name] = value
    return read, ignored


def ignored_note(pass_type: str, name: str) -> str | None:
    """What to tell a user who gave ``pass_type`` the parameter ``name`` (``None``: it is
    not one Olive 0.13 ignores)."""
    why = IGNORED_BY_OLIVE.get((pass_kind(pass_type), name))
    return None if why is None else f"{why}; the value is kept in the pass's key"


def precision_of(quant_type: str) -> str:
    """Olive 0.13's precision for onnxruntime's ``QuantType`` name (``"QUInt8"``:
    ``"uint8"``); any other value as given."""
    return _QUANT_TYPES.get(quant_type, quant_type)


def respelt(pass_type: str, name: str, value: Any) -> str | None:
    """Olive 0.13's spelling of ``value``, given to ``pass_type``'s parameter ``name`` in an
    older Olive's spelling that Olive 0.13 refuses (``"QUInt16"``: ``"uint16"``); ``None``
    when it is no such value."""
    if (pass_kind(pass_type), name) not in _RESPELT or not isinstance(value, str):
        return None
    return _QUANT_TYPES.get(value)
