"""The accelerator Olive's passes are configured and keyed for: the one Olive 0.13 picks
from the target system's accelerators (``modelcache.runner.olive.target_accelerator``), and
what a config's target makes of a plan's keys."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from modelcache.runner import olive
from modelcache.runner.cli import main
from modelcache.runner.config import parse_config
from modelcache.runner.digests import DIGEST_CACHE_VARIABLE
from modelcache.runner.passes import PassConfigError

pytestmark = pytest.mark.skipif(olive.olive_version() is None, reason="needs olive-ai")

QNN = [{"device": "npu", "execution_providers": ["QNNExecutionProvider"]}]


@pytest.fixture(autouse=True)
def _own_answers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Olive's answers remembered in this test's folder only."""
    monkeypatch.setenv(DIGEST_CACHE_VARIABLE, str(tmp_path / "digests"))


@pytest.mark.parametrize(
    ("accelerators", "picked"),
    [
        (None, ("cpu", "CPUExecutionProvider")),
        (QNN, ("npu", "QNNExecutionProvider")),
        # The device, when not given, from the providers; the provider from the device.
        ([{"execution_providers": ["CUDAExecutionProvider"]}], ("gpu", "CUDAExecutionProvider")),
        ([{"execution_providers": ["QNNExecutionProvider"]}], ("npu", "QNNExecutionProvider")),
        ([{"device": "gpu"}], ("gpu", "CUDAExecutionProvider")),
        ([{"device": "GPU", "execution_providers": ["QNNExecutionProvider"]}],
         ("gpu", "QNNExecutionProvider")),
    ],
)  # fmt: skip
def test_the_accelerator_is_the_one_olive_picks(accelerators: Any, picked: Any) -> None:
    assert olive.target_accelerator(accelerators) == picked


def test_accelerators_olive_cannot_pick_from_are_one_problem_in_olives_words() -> None:
    with pytest.raises(PassConfigError) as raised:
        olive.target_accelerator([{"device": "npu"}])
    assert raised.value.problem == (
        "Olive cannot pick its accelerator: Please specify the execution providers for the "
        "device: npu."
    )


def test_olives_answer_is_remembered(monkeypatch: pytest.MonkeyPatch) -> None:
    assert olive.target_accelerator(QNN) == ("npu", "QNNExecutionProvider")
    from olive.systems import accelerator_creator

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("Olive asked again")

    monkeypatch.setattr(accelerator_creator, "create_accelerator", refuse)
    assert olive.target_accelerator(QNN) == ("npu", "QNNExecutionProvider")


def test_an_answer_remembered_by_other_code_is_asked_again(monkeypatch: pytest.MonkeyPatch) -> None:
    from modelcache.runner.olive import _memo

    with monkeypatch.context() as other:
        other.setattr(_memo, "_code", lambda: "another version of the adapter")
        assert olive.target_accelerator(QNN) == ("npu", "QNNExecutionProvider")
    from olive.systems import accelerator_creator

    asked = []
    create = accelerator_creator.create_accelerator

    def counted(*args: Any, **kwargs: Any) -> Any:
        asked.append(1)
        return create(*args, **kwargs)

    monkeypatch.setattr(accelerator_creator, "create_accelerator", counted)
    assert olive.target_accelerator(QNN) == ("npu", "QNNExecutionProvider")
    assert asked == [1]  # the record of the other code was not used
    assert olive.target_accelerator(QNN) == ("npu", "QNNExecutionProvider")
    assert asked == [1]  # this code's is


def _document(model: Path | str, target: Any) -> dict[str, Any]:
    """A config whose target has ``target`` accelerators: a conversion (modelcache's), then
    OrtTransformersOptimization, which depends on the accelerator, and OnnxFloatToFloat16,
    which does not."""
    return {
        "input_model": {"type": "HfModel", "model_path": str(model)},
        "systems": {"target_system": {"type": "LocalSystem", "accelerators": target}},
        "target": "target_system",
        "passes": {
            "conversion": {"type": "OnnxConversion"},
            "optimize": {"type": "OrtTransformersOptimization", "model_type": "bert"},
            "fp16": {"type": "OnnxFloatToFloat16"},
        },
    }


def _keys(capsys: pytest.CaptureFixture[str], folder: Path, model: Path, target: Any) -> Any:
    folder.mkdir()
    document = _document(model, target)
    config = folder / "workflow.json"
    config.write_text(json.dumps(document), encoding="utf-8")
    code = main(["plan", str(config), "--no-cloud", "--format", "json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return json.loads(captured.out)["keys"], captured.err


def test_a_pass_that_depends_on_the_accelerator_is_keyed_for_the_targets(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fake_model: Path
) -> None:
    cpu = [{"device": "cpu", "execution_providers": ["CPUExecutionProvider"]}]
    on_cpu, cpu_notes = _keys(capsys, tmp_path / "cpu", fake_model, cpu)
    on_qnn, qnn_notes = _keys(capsys, tmp_path / "qnn", fake_model, QNN)
    assert on_cpu[0] == on_qnn[0]  # modelcache's OnnxConversion: the same on every target
    assert on_cpu[1] != on_qnn[1]  # Olive configures it for QNN there
    assert "accelerator" not in cpu_notes
    assert (
        "note: $.systems.target_system: Olive's passes are configured and keyed for this "
        "target's accelerator"
    ) in qnn_notes
    default, _ = _keys(capsys, tmp_path / "none", fake_model, None)
    assert default == on_cpu  # no accelerators: the CPU, as in Olive


def test_several_accelerators_or_providers_configure_for_the_first(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, fake_model: Path
) -> None:
    both = [{"device": "npu", "execution_providers": ["QNNExecutionProvider",
                                                       "CPUExecutionProvider"]},
            {"device": "cpu"}]  # fmt: skip
    first, err = _keys(capsys, tmp_path / "both", fake_model, both)
    alone, _ = _keys(capsys, tmp_path / "alone", fake_model, QNN)
    assert first == alone
    assert (
        "note: $.systems.target_system.accelerators[0].execution_providers: Olive 0.13 takes "
        "one execution provider per accelerator (an older Olive ran the workflow for each); "
        "modelcache configures Olive's passes for the first, QNNExecutionProvider"
    ) in err
    assert "note: $.systems.target_system.accelerators: Olive 0.13 takes one accelerator" in err


def test_olives_warnings_never_reach_standard_output(tmp_path: Path, fake_model: Path) -> None:
    """Olive logs to standard output; a plan printed there must stay the plan alone."""
    # A provider the device does not take: Olive warns that it drops it.
    target = [{"device": "cpu", "execution_providers": ["QNNExecutionProvider"]}]
    document = _document(fake_model, target)
    config = tmp_path / "workflow.json"
    config.write_text(json.dumps(document), encoding="utf-8")
    command = [sys.executable, "-m", "modelcache.runner.cli", "plan", str(config), "--no-cloud",
               "--format", "json"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False,
                          env=dict(os.environ))  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["format"] == "modelcache-plan/1"
    assert "are not supported: 'QNNExecutionProvider' by the device: 'cpu'" in done.stderr


def test_a_target_of_the_cpu_alone_is_read_as_none_without_asking_olive() -> None:
    def target(accelerators: Any) -> Any:
        return parse_config(_document("model", accelerators)).target_accelerators

    assert target([{"device": "cpu", "execution_providers": ["CPUExecutionProvider"]}]) is None
    assert target([{"device": "CPU"}]) is None
    assert target(QNN) == QNN
