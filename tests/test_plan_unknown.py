"""``modelcache plan`` when something is missing from this machine: a hub model not
downloaded, a package a pass needs. Every pass and parameter is still checked, the plan is
drawn up to what is missing, and the keys after it are shown as unknown, never guessed;
``run`` refuses in one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from modelcache.runner import olive
from modelcache.runner.cli import main

NOT_DOWNLOADED = "modelcache-tests/never-downloaded"


@pytest.fixture(autouse=True)
def wide(monkeypatch: pytest.MonkeyPatch) -> None:
    """A table wide enough that no reason is wrapped."""
    monkeypatch.setenv("COLUMNS", "250")


def _config(folder: Path, model: str, passes: dict[str, Any]) -> Path:
    document = {
        "input_model": {"type": "HfModel", "model_path": model},
        "passes": passes,
        "cache_dir": str(folder / "cache"),
        "output_dir": str(folder / "out"),
    }
    path = folder / "workflow.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


PASSES = {
    "convert": {"type": "OnnxConversion"},
    "quantize": {"type": "OnnxDynamicQuantization"},
}


def test_a_hub_model_not_downloaded_still_plans_every_pass_as_unknown(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _config(tmp_path, NOT_DOWNLOADED, PASSES)
    assert main(["plan", str(config)]) == 0
    out, err = capsys.readouterr()
    assert out.count("unknown") >= 2
    assert "its input's key is unknown" in out
    assert f"note: pass 'convert': key unknown: model {NOT_DOWNLOADED}" in err
    assert "hf download" in err
    # A drawing of keys has none to draw; a run cannot start.
    assert main(["plan", str(config), "--format", "json"]) == 2
    assert "error: no plan to draw as json" in capsys.readouterr().err
    assert main(["run", str(config), "--quiet"]) == 2
    assert "not in the local Hugging Face cache" in capsys.readouterr().err
    assert not (tmp_path / "cache").exists()


def test_a_mistake_is_still_an_error_beside_what_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    passes = {**PASSES, "quantize": {"type": "OnnxDynamicQuantization", "per_chanel": True}}
    config = _config(tmp_path, NOT_DOWNLOADED, passes)
    assert main(["plan", str(config)]) == 2
    err = capsys.readouterr().err
    assert "$.passes.quantize.per_chanel" in err
    assert "$.input_model.model_path" in err  # the missing model is named too


@pytest.mark.skipif(olive.olive_version() is None, reason="needs olive-ai")
def test_a_pass_whose_package_is_missing_ends_the_plan_there(
    tiny_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    from modelcache.runner.olive import OlivePass

    needs = OlivePass._package_names
    monkeypatch.setattr(
        OlivePass, "_package_names", lambda self: [*needs(self), "surely-not-installed-pkg"]
    )
    passes = {
        "convert": {"type": "OnnxConversion"},
        "optimize": {"type": "OrtTransformersOptimization", "model_type": "bert"},
        "quantize": {"type": "OnnxDynamicQuantization"},
    }
    config = _config(tmp_path, str(tiny_model), passes)
    assert main(["plan", str(config), "--no-cloud"]) == 0
    out, err = capsys.readouterr()
    assert "not cached; final output" in out  # convert: known, and what the next pass needs
    assert "note: pass 'optimize': key unknown: needs the 'surely-not-installed-pkg'" in err
    assert "note: pass 'quantize': key unknown: its input's key is unknown" in err
    assert main(["plan", str(config), "--format", "json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert [step["pass"] for step in plan["steps"]] == ["convert"]
    assert main(["run", str(config), "--quiet"]) == 2
    assert "surely-not-installed-pkg" in capsys.readouterr().err
