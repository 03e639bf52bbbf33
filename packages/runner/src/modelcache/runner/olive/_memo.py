"""Olive's answers remembered on this machine, so that a warm run does not import Olive.

Validating an Olive pass means asking Olive (``generate_config``, which parameters name
paths, whether the pass depends on the accelerator), and importing Olive takes seconds: a
warm run of a workflow whose outputs are all cached would spend most of its time there.
Olive's answers are a pure function of olive-ai's version, the pass, the accelerator, the
parameters and the content of the files they name, so they are remembered under a SHA-256
of exactly those, one small JSON file each, written atomically beside the digest records
(:class:`~modelcache.runner.digests.DigestCache`). A record that is missing, unreadable or
not in this format is a miss; a folder that cannot be written only means nothing is
remembered. A record is never trusted for anything but the answer it was written for: its
name is the hash of the question, and its body repeats the question, compared in full.
Nor does it outlive the code that made the answer out of Olive's: it holds the digest of
this adapter's modules (:func:`_code`), and a record another version of them wrote is a
miss, replaced.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from ..digests import DigestCache

__all__ = ["remembered"]

#: The record's layout (2: with the code's digest).
_FORMAT = "modelcache-olive-answer/2"
_T = TypeVar("_T")


def remembered(question: dict[str, Any], answer: Callable[[], _T]) -> _T:
    """The remembered answer to ``question`` (JSON values), else ``answer()``, remembered."""
    text = json.dumps(question, sort_keys=True, separators=(",", ":"), allow_nan=False)
    record = _folder() / f"{hashlib.sha256(text.encode('utf-8')).hexdigest()}.json"
    try:
        document = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        document = None
    if (
        isinstance(document, dict)
        and document.get("format") == _FORMAT
        and document.get("code") == _code()
        and document.get("question") == json.loads(text)
        and "answer" in document
    ):
        return document["answer"]  # type: ignore[no-any-return]
    value = answer()
    question = json.loads(text)
    _write(record, {"format": _FORMAT, "code": _code(), "question": question, "answer": value})
    return value


@functools.cache
def _code() -> str:
    """The SHA-256 of this adapter's modules, which make the answers out of Olive's: a
    record of other code (an upgrade, a fix) is not used."""
    digest = hashlib.sha256()
    for module in sorted(Path(__file__).parent.glob("*.py")):
        digest.update(module.name.encode("utf-8") + b"\0" + module.read_bytes() + b"\0")
    return digest.hexdigest()


def _folder() -> Path:
    return DigestCache.default().directory / "olive"


def _write(record: Path, document: dict[str, Any]) -> None:
    try:
        text = json.dumps(document, allow_nan=False)
    except (TypeError, ValueError):  # an answer that is not JSON is not remembered
        return
    with contextlib.suppress(OSError):
        record.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(
            "w", encoding="utf-8", dir=record.parent, prefix=".answer-", delete=False
        ) as stream:
            stream.write(text)
        os.replace(stream.name, record)
