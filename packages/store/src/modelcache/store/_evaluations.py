"""The stored form of evaluation results, the same in every store.

A result is a small JSON object (metric name to value) written once per entry and evaluator
fingerprint. It is canonical JSON on the way in and checked on the way out: NaN and
infinity are not JSON, and nothing larger than :data:`MAX_EVALUATION_SIZE` is written or read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from modelcache.planner import canonical_json

from ._errors import CorruptEntry
from ._untrusted import UntrustedJson, load_untrusted

__all__ = ["MAX_EVALUATION_SIZE", "evaluation_bytes", "parse_evaluation"]

#: The largest evaluation result a store writes or reads; results are a few metrics.
MAX_EVALUATION_SIZE = 4 << 20


def evaluation_bytes(result: Mapping[str, Any]) -> bytes:
    """The stored form of an evaluation result: the canonical JSON of a JSON object.

    :raises ValueError: ``result`` is not a JSON object (a NaN, a non-string key...), or
        its JSON is larger than :data:`MAX_EVALUATION_SIZE`.
    """
    if not isinstance(result, Mapping):
        raise ValueError(f"an evaluation result is a JSON object, not {type(result).__name__}")
    data = canonical_json(result).encode("utf-8")
    if len(data) > MAX_EVALUATION_SIZE:
        raise ValueError(f"evaluation result is larger than {MAX_EVALUATION_SIZE} bytes")
    return data


def parse_evaluation(data: bytes) -> dict[str, Any]:
    """A stored evaluation result, read back.

    :raises CorruptEntry: ``data`` is not the UTF-8 JSON of an object (NaN and infinity are
        not JSON either), or is larger than :data:`MAX_EVALUATION_SIZE`.
    """
    if len(data) > MAX_EVALUATION_SIZE:
        raise CorruptEntry(f"evaluation result is larger than {MAX_EVALUATION_SIZE} bytes")
    try:
        result = load_untrusted(data)
    except UntrustedJson as error:
        raise CorruptEntry(f"evaluation result refused: {error}") from None
    if not isinstance(result, dict):
        raise CorruptEntry("evaluation result is not a JSON object")
    return result
