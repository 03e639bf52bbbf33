"""The embedding example in docs/embedding.md runs, and does what the document says it does."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parents[1] / "examples/embedding/engine.py"


@pytest.fixture(scope="module")
def printed() -> str:
    """What the example prints: run once, for both tests (it is deterministic)."""
    done = subprocess.run(
        [sys.executable, str(ENGINE)], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout


def scenes(printed: str) -> dict[str, list[str]]:
    """The example's output, by scene: the lines under each unindented heading."""
    result: dict[str, list[str]] = {}
    scene: list[str] = []
    for line in printed.splitlines():
        if not line.startswith(" "):
            scene = result.setdefault(line.rstrip(":"), [])
        else:
            scene.append(line.strip())
    return result


def test_the_embedding_example_caches_its_passes(printed: str) -> None:
    output = scenes(printed)
    assert list(output) == [
        "machine A, cold cache",
        "machine A, the same workflow again",
        "machine B, sharing the cloud",
        "machine B, last pass changed",
    ]
    cold, again, shared, changed = output.values()

    assert "=> ran 3, downloaded 0, uploaded 3, evaluated 1 (0 from the cache)" in cold
    assert "output: {'greeting': 'noom ,olleh', 'question': '?noom a tahw'}" in cold

    # Run again on the same machine: nothing runs, nothing moves, the result is read.
    assert "=> ran 0, downloaded 0, uploaded 0, evaluated 0 (1 from the cache)" in again

    # Another machine: only the final output is fetched; the intermediates are skipped.
    assert "=> ran 0, downloaded 1, uploaded 0, evaluated 0 (1 from the cache)" in shared
    assert [line.split()[0] for line in shared if not line.startswith(("=>", "result"))] == [
        "skip",
        "skip",
        "download",
        "evaluate",
    ]

    # Change the last pass: its input is fetched, it runs, and only it is uploaded.
    assert "=> ran 1, downloaded 1, uploaded 1, evaluated 1 (0 from the cache)" in changed
    assert "output: {'greeting': 'hell0, m00n', 'question': 'what a m00n?'}" in changed


def test_the_document_quotes_the_example_as_it_is(printed: str) -> None:
    document = (ENGINE.parents[2] / "docs/embedding.md").read_text(encoding="utf-8")
    source = ENGINE.read_text(encoding="utf-8")
    blocks = re.findall(r"```python\n(.*?)```", document, flags=re.DOTALL)
    assert len(blocks) == 3
    for block in blocks:
        assert block in source
    (quoted,) = re.findall(r"prints:\n\n```\n(.*?)```", document, flags=re.DOTALL)
    assert quoted == printed
