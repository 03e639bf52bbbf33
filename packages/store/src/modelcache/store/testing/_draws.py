"""What the machine draws: entries' files and contents, key numbers, evaluation results,
layout prefixes to list, and manifests a store must refuse."""

from __future__ import annotations

from hypothesis import strategies as st

from .._layout import (
    BLOBS_PREFIX,
    ENTRIES_PREFIX,
    EVALUATIONS_PREFIX,
    LAYOUT_PREFIX,
    LOCKS_PREFIX,
    RUNS_PREFIX,
)
from ._hostile import REFUSED_UNDER_ANY_KEY
from ._model import key_of

__all__ = [
    "FILE_NAMES",
    "FINGERPRINTS",
    "PREFIXES",
    "contents",
    "keys_without_entries",
    "layouts",
    "numbers",
    "refused_manifests",
    "results",
    "run_seconds",
    "unknown_keys",
]

FILE_NAMES = ("config.json", "model.onnx", "weights/part-0.bin", "weights/part-1.bin", "ü n/i.txt")
FINGERPRINTS = ("acc-v1", "latency.v2", "F1_3")
# Whole folders of the layout, and names cut short within a folder's name.
PREFIXES = (
    "",
    LAYOUT_PREFIX,
    BLOBS_PREFIX,
    ENTRIES_PREFIX,
    EVALUATIONS_PREFIX,
    RUNS_PREFIX,
    LOCKS_PREFIX,
    f"{BLOBS_PREFIX}0",
    "modelcache-v1/e",
    "modelcache-v2/",
)

_json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8)
)
results = st.dictionaries(st.text(max_size=6), _json_scalars | st.lists(_json_scalars, max_size=3))
# Content is fresh bytes, or an index into the contents already published (shared blobs).
contents = st.binary(max_size=48) | st.integers(0, 1000)
unknown_keys = st.integers(31, 60).map(lambda number: key_of(number)[0])
# A few, so that results written for keys without entries are often read again.
keys_without_entries = st.integers(31, 34).map(lambda number: key_of(number)[0])
# What an entry is drawn from: a key number, its files, its run time.
numbers = st.integers(0, 30)
layouts = st.dictionaries(st.sampled_from(FILE_NAMES), contents, max_size=4)
run_seconds = st.none() | st.floats(0, 1e6)
# Bytes no store may take for a manifest, whatever key they are planted under.
refused_manifests = st.sampled_from(sorted(REFUSED_UNDER_ANY_KEY.values()))
