"""What the command line draws tells the truth: a plan's DOT drawing renders one line per fact
(checked with Graphviz itself), Mermaid shows pass names as written, whatever they hold, and
the progress bars count steps for the workflow and bytes, in binary units, for transfers.

The plans are made by ``modelcache plan`` in-process over a folder that passes for a model:
planning reads the model's files but never loads it.
"""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from rich.console import Console

from modelcache.planner import Plan, loads
from modelcache.runner.cli import main
from modelcache.runner.cli.progress import ProgressReporter, progress_display
from modelcache.runner.reporting import StepRecord

#: A pass name with every character a drawing language gives a meaning to.
HOSTILE = 'ha"lf\\n<b>#1;&amp;]x'


def _workflow(folder: Path, names: tuple[str, str]) -> Path:
    model = folder / "model"
    model.mkdir()
    (model / "config.json").write_text('{"model_type": "bert"}', encoding="utf-8")
    (model / "model.safetensors").write_bytes(b"not read: planning only hashes the files")
    document = {
        "input_model": {"type": "HfModel", "model_path": str(model)},
        "passes": {
            names[0]: {"type": "TorchDtypeCast"},
            names[1]: {"type": "MagnitudePruning", "sparsity": 0.5},
        },
        "cache_dir": "cache",
        "evaluator": {"metrics": ["size"], "evaluate": "final"},
    }
    path = folder / "workflow.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def _drawn(capsys: pytest.CaptureFixture[str], config: Path, form: str) -> str:
    assert main(["plan", str(config), "--format", form]) == 0
    return capsys.readouterr().out


@pytest.mark.skipif(shutil.which("dot") is None, reason="needs Graphviz (apt install graphviz)")
@pytest.mark.parametrize("first", ["half", HOSTILE])
def test_dot_labels_render_one_line_per_fact(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, first: str
) -> None:
    config = _workflow(tmp_path, (first, "prune"))
    svg = subprocess.run(
        ["dot", "-Tsvg"],
        input=_drawn(capsys, config, "dot"),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    labels = []
    for node in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}g"):
        if node.get("class") == "node":
            texts = node.iter("{http://www.w3.org/2000/svg}text")
            labels.append([text.text for text in texts])
    assert labels == [
        ["input model"],
        [first, "TorchDtypeCast", "run"],
        ["prune", "MagnitudePruning", "run + evaluate"],
    ]


def test_dot_escapes_what_graphviz_reads_in_a_quoted_label(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    drawing = _drawn(capsys, _workflow(tmp_path, (HOSTILE, "prune")), "dot")
    # A backslash and a quote are escaped, an ampersand is an entity, \n breaks the line.
    assert '[label="ha\\"lf\\\\n<b>#1;&amp;amp;]x\\nTorchDtypeCast\\nrun",' in drawing


def test_mermaid_shows_a_pass_name_as_written(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    drawing = _drawn(capsys, _workflow(tmp_path, (HOSTILE, "prune")), "mermaid")
    [node] = [line.strip() for line in drawing.splitlines() if line.strip().startswith("p0[")]
    label = re.fullmatch(r'p0\["(.*)"\]:::run', node)
    assert label is not None, node
    parts = label.group(1).split("<br/>")  # the facts are on separate lines
    # Between the line breaks only entity codes and plain characters: nothing Mermaid or
    # the HTML it makes would read as syntax, markup or an entity of the user's.
    for part in parts:
        assert not set(part) & set('"<>&[]\\`'), part
    decoded = [re.sub(r"#(\d+);", lambda m: chr(int(m.group(1))), part) for part in parts]
    assert decoded == [HOSTILE, "TorchDtypeCast", "run"]


def _plan(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Plan:
    return loads(_drawn(capsys, _workflow(tmp_path, ("half", "prune")), "json"), Plan)


def test_the_overall_progress_bar_counts_steps_and_transfers_count_binary_bytes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    plan = _plan(capsys, tmp_path)
    console = Console(file=io.StringIO(), width=160, force_terminal=False)
    progress = progress_display(console)
    reporter = ProgressReporter(progress, console)
    reporter.planned(plan=plan)
    reporter.step_started(kind="download", pass_name="half", total_bytes=3 * 1024 * 1024)
    reporter.transferred(pass_name="half", bytes_done=1024 * 1024)
    console.print(progress.get_renderable())
    workflow, transfer = console.file.getvalue().splitlines()  # type: ignore[attr-defined]
    steps = sum(1 for step in plan.steps if type(step).__name__ != "Skip")
    assert f"0/{steps} steps" in workflow
    assert "bytes" not in workflow
    assert "B" not in workflow.split("workflow")[1]
    assert "1.0/3.0 MiB" in transfer

    record = StepRecord(kind="download", pass_name="half", key="0" * 64, reason="r",
                        seconds=0.5, bytes=3 * 1024 * 1024)  # fmt: skip
    reporter.step_finished(record=record)
    console.file = io.StringIO()
    console.print(progress.get_renderable())
    assert f"1/{steps} steps" in console.file.getvalue()
