"""A pass output that does not load is never published (issue 12), through the real CLI:
``TorchDtypeCast(fp16) -> OnnxConversion -> OnnxDynamicQuantization`` writes a graph
onnxruntime refuses; the run must fail naming the pass, with nothing of it cached."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e import ENTRIES, HALF, modelcache, write_config


@pytest.mark.slow
def test_a_broken_output_fails_the_run_and_is_not_cached(tiny_model: Path, tmp_path: Path) -> None:
    passes = {
        "half": HALF,
        # At opset 18 (at 20, the default, the quantized fp16 graph loads).
        "convert": {"type": "OnnxConversion", "target_opset": 18},
        "quantize": {"type": "OnnxDynamicQuantization"},
    }
    config = write_config(tmp_path, tiny_model, passes)
    result = modelcache("run", config, "--quiet", connection_string=None)
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = [text for text in result.stderr.splitlines() if text.strip()]
    assert "pass OnnxDynamicQuantization wrote a model that does not load" in line
    assert "onnxruntime cannot load it" in line
    # The two good outputs are cached; the broken one is not, and nothing was delivered.
    assert len(list((tmp_path / "cache" / ENTRIES).glob("*.json"))) == 2
    assert not (tmp_path / "out").exists()
