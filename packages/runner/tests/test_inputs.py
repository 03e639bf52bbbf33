"""Input models that are not Hugging Face folders (``modelcache.runner.inputs``): an
``OnnxModel`` found as Olive finds it, and identified by its files' content and the handler
settings Olive's passes read; a ``PyTorchModel`` its loader builds from nothing; and a file
that is not there yet, absent rather than wrong."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from modelcache.runner.inputs import resolve_onnx_model, resolve_pytorch_model
from modelcache.runner.models import (
    DigestCache,
    ModelAbsent,
    ModelNotFound,
    model_type,
    onnx_graph,
)
from modelcache.runner.tiny_model import build_tiny_onnx


@pytest.fixture
def digests(tmp_path: Path) -> DigestCache:
    return DigestCache(directory=tmp_path / "digests")


def _onnx(
    folder: Path, settings: dict[str, Any] | None = None, *, model_path: str = "m/g.onnx"
) -> Any:
    return resolve_onnx_model(model_path, settings or {}, base_dir=folder,
                              digests=DigestCache(directory=folder / "digests"))  # fmt: skip


def test_an_onnx_file_is_read_where_it_lies(tmp_path: Path) -> None:
    graph = build_tiny_onnx(tmp_path / "m" / "g.onnx")
    resolved = _onnx(tmp_path)
    assert resolved.path == graph.resolve()
    assert resolved.model_type == "onnx"
    assert model_type(resolved.path) == "onnx"
    assert onnx_graph(resolved.path) == resolved.path


def test_the_identity_is_the_content_not_the_place(tmp_path: Path) -> None:
    build_tiny_onnx(tmp_path / "a" / "m" / "g.onnx", external=True)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    assert _onnx(tmp_path / "a").identity == _onnx(tmp_path / "b").identity


@pytest.mark.parametrize(
    "change",
    [
        "graph",
        "external data",
        "inference_settings",
        "use_ort_extensions",
        "model_attributes",
    ],
)
def test_what_changes_an_output_changes_the_identity(tmp_path: Path, change: str) -> None:
    graph = build_tiny_onnx(tmp_path / "m" / "g.onnx", external=True)
    before = _onnx(tmp_path).identity
    settings: dict[str, Any] = {}
    if change == "graph":
        build_tiny_onnx(graph, external=False)  # the same weights, now inside the graph
    elif change == "external data":
        data = graph.with_name("g.onnx.data")
        data.write_bytes(data.read_bytes()[:-4] + b"\0\0\0\0")
    else:
        settings = {
            "inference_settings": {"session_options": {"intra_op_num_threads": 1}},
            "use_ort_extensions": True,
            "model_attributes": {"hidden_size": 8},
        }
        settings = {change: settings[change]}
    assert _onnx(tmp_path, settings).identity != before


def test_a_folder_gives_its_one_onnx_file_or_the_one_named(tmp_path: Path) -> None:
    build_tiny_onnx(tmp_path / "m" / "a.onnx")
    assert _onnx(tmp_path, model_path="m").path.name == "a.onnx"
    build_tiny_onnx(tmp_path / "m" / "b.onnx", weights=0.25)
    with pytest.raises(ModelNotFound, match=r"2 \.onnx files \(a\.onnx, b\.onnx\); name the"):
        _onnx(tmp_path, model_path="m")
    named = _onnx(tmp_path, {"onnx_file_name": "b.onnx"}, model_path="m")
    assert named.path.name == "b.onnx"
    other = _onnx(tmp_path, {"onnx_file_name": "a.onnx"}, model_path="m")
    assert named.identity != other.identity


def test_a_file_named_inside_a_file_path_is_ignored_as_olive_ignores_it(tmp_path: Path) -> None:
    build_tiny_onnx(tmp_path / "m" / "g.onnx")
    assert _onnx(tmp_path, {"onnx_file_name": "elsewhere.onnx"}).path.name == "g.onnx"


@pytest.mark.parametrize("model_path", ["m/g.onnx", "m"])
def test_an_onnx_model_not_there_yet_is_absent(tmp_path: Path, model_path: str) -> None:
    with pytest.raises(ModelAbsent, match="does not exist; make it first"):
        _onnx(tmp_path, model_path=model_path)


def test_a_missing_graph_in_a_folder_is_absent(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    with pytest.raises(ModelAbsent, match=r"onnx_file_name: .*g\.onnx does not exist"):
        _onnx(tmp_path, {"onnx_file_name": "g.onnx"}, model_path="m")


def test_external_data_must_be_beside_the_graph(tmp_path: Path) -> None:
    import onnx

    graph = build_tiny_onnx(tmp_path / "m" / "g.onnx", external=True)
    graph.with_name("g.onnx.data").unlink()
    with pytest.raises(ModelNotFound, match=r"its external data 'g\.onnx\.data' is not beside"):
        _onnx(tmp_path)
    model = onnx.load_model(str(graph), load_external_data=False)
    for entry in model.graph.initializer[0].external_data:
        if entry.key == "location":
            entry.value = "../../etc/passwd"
    onnx.save_model(model, str(graph))
    with pytest.raises(ModelNotFound, match="which is not a file beside the graph"):
        _onnx(tmp_path)


def test_a_file_that_is_not_onnx_is_not_found(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "g.onnx").write_bytes(b"\xff\xff not a protobuf")
    with pytest.raises(ModelNotFound, match="is not an ONNX model"):
        _onnx(tmp_path)


def test_a_pytorch_model_file_not_there_yet_is_absent(tmp_path: Path) -> None:
    (tmp_path / "s.py").write_text("def load(path):\n    return None\n")
    settings = {"model_loader": "load", "model_script": "s.py"}
    with pytest.raises(ModelAbsent, match=r"model_path .*trained\.pt does not exist"):
        resolve_pytorch_model("models/trained.pt", settings, base_dir=tmp_path)


def test_a_pytorch_model_its_loader_builds_is_its_code_and_loader(
    tmp_path: Path, digests: DigestCache
) -> None:
    script = tmp_path / "s.py"
    script.write_text("def load(path):\n    return None\n")
    (tmp_path / "code").mkdir()

    def resolve(**settings: Any) -> Any:
        settings = {"model_loader": "load", "model_script": "s.py", **settings}
        return resolve_pytorch_model(None, settings, base_dir=tmp_path, digests=digests)

    first = resolve()
    assert first.path == script.resolve()
    assert first.model_type == "pytorch"
    assert resolve(model_loader="build").identity != first.identity
    assert resolve(script_dir="code").identity != first.identity
    script.write_text("def load(path):\n    return 1\n")
    assert resolve().identity != first.identity


def test_a_big_onnx_input_is_read_once_then_known_by_its_stat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from modelcache.runner import inputs

    graph = build_tiny_onnx(tmp_path / "m" / "g.onnx", external=True)
    later = DigestCache(directory=tmp_path / "digests", clock=lambda: time.time() + 60)

    def resolve() -> Any:
        return resolve_onnx_model("m/g.onnx", {}, base_dir=tmp_path, digests=later)

    first = resolve()
    # Remembered: neither hashed nor parsed (onnx is slow to import) while nothing changed.
    opened: list[Path] = []
    real_open = Path.open

    def watched(self: Path, *args: Any, **kwargs: Any) -> Any:
        opened.append(self)
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", watched)
    monkeypatch.setattr(inputs, "_external_data", lambda _graph: pytest.fail("parsed again"))
    assert resolve().identity == first.identity
    assert not [p for p in opened if p.name.startswith("g.onnx")]
    monkeypatch.undo()
    # Changed bytes are read again; a remembered external file that is gone is still missed.
    data = graph.with_name("g.onnx.data")
    data.write_bytes(data.read_bytes()[:-4] + b"\1\1\1\1")
    assert resolve().identity != first.identity
    data.unlink()
    with pytest.raises(ModelNotFound, match=r"its external data 'g\.onnx\.data' is not beside it"):
        resolve()
