"""Fault injection: the cloud dies or hangs mid-run; content blobs vanish or rot.

Theory of operation
-------------------
Each test runs the real command, ``modelcache.runner.cli.main``, in this process, so that a
``raw_request_hook`` on the cloud store's client (handed in through ``open_cloud_store``'s
``client_options``) can strike at one exact request: the first listing of a snapshot, the
second staged block of the final model's weights, the PUT of its manifest, the second
ranged GET of its weights. A :class:`Fault` then, before that request leaves, either
*crashes* the test's own Azurite (SIGKILL once every acknowledged write is on disk, as
Azure Storage would keep them) or *stalls* it (SIGSTOP). The store is told to give up fast
through ``MODELCACHE_AZURE_TRANSFER``: no retries, timeouts of seconds, one request at a
time and 16 KiB blocks, so the weights (84 and 42 KB) move in several requests.

After the fault the test checks, in order:

1. the run ended as promised: exit 0 with the right final model and a note that it
   finished locally; or, with ``--require-cloud``, exit 1 and one line, and no output;
2. once the service is back (restarted on the same data and port, or thawed), no partial
   entry is visible: every manifest in the container names blobs that exist and match;
   after a crash, exactly the entries published before it are there;
3. the next run heals: it recomputes nothing that was cached anywhere, and publishes what
   the cloud lacks, so that every entry of the chain is in the container, intact;
4. a third run, on a machine with an empty local cache, is all hits: it downloads the final
   model and runs nothing.

The last tests damage a finished cache from outside (a content blob deleted, or one byte of
it flipped) on the session's shared Azurite, which they never stop.

The chain is two cheap passes over a tiny BERT; a run with no cloud at all gives the
reference: the keys and the final model, byte for byte.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import SplitResult, urlsplit

import pytest
from attrs import frozen

from modelcache.azure.testing import Azurite
from modelcache.runner import cloud
from modelcache.runner.cli import main
from modelcache.store import (
    BLOBS_PREFIX,
    ENTRIES_PREFIX,
    LOCKS_PREFIX,
    Manifest,
    blob_name,
    manifest_name,
)

from .e2e import OUTPUT_MARKER, intact_manifests, model_files, new_container, write_config

pytestmark = [pytest.mark.azurite]

PASSES = {
    "prune": {"type": "MagnitudePruning", "sparsity": 0.5},
    "cast": {"type": "TorchDtypeCast", "dtype": "float16"},
}
#: The store gives up at once: no retries, short timeouts; one request at a time, in small
#: blocks, so that "the N-th request" names the same request in every run.
QUICK = (
    "retries=0,retry_backoff=0,connection_timeout=2,read_timeout=3,"
    "max_concurrency=1,block_size=16384,single_put_size=16384"
)
FINISHED_LOCALLY = "finishing locally"


# ---------------------------------------------------------------------------------------------
# The reference run, and reading what a run left


@frozen
class Reference:
    """The chain run with no cloud: the input model, the keys in chain order, each entry's
    manifest, and the final model's files."""

    model: Path
    keys: tuple[str, ...]
    manifests: dict[str, Manifest]
    final: dict[str, bytes]

    @property
    def final_key(self) -> str:
        return self.keys[-1]

    def digest(self, key: str, path: str) -> str:
        """The SHA-256 (the blob's name) of file ``path`` of entry ``key``."""
        return next(f.sha256 for f in self.manifests[key].files if f.path == path)


@pytest.fixture(scope="module")
def reference(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    from modelcache.runner.config import load_config
    from modelcache.runner.workflow import run_workflow
    from modelcache.store import LocalStore

    folder = tmp_path_factory.mktemp("faults-reference")
    report = run_workflow(load_config(write_config(folder, tiny_model, PASSES)))
    keys = tuple(step.key for step in report.steps if step.kind == "run")
    assert len(keys) == len(PASSES)
    assert report.final_key == keys[-1]
    local = LocalStore(folder / "cache")
    return Reference(
        model=tiny_model,
        keys=keys,
        manifests={key: local.read_manifest(key) for key in keys},
        final=model_files(folder / "out"),
    )


def intact_entries(connection_string: str, container: str) -> set[str]:
    """The keys of the container's entries, having checked that every manifest names only
    blobs that exist and match it: that no partial entry is visible."""
    return set(intact_manifests(connection_string, container))


def local_entries(cache: Path, reference: Reference) -> set[str]:
    return {key for key in reference.keys if (cache / manifest_name(key)).is_file()}


def assert_no_leftovers(folder: Path) -> None:
    """No scratch folder of a run, half-fetched entry or half-delivered output is left."""
    left = [
        path.relative_to(folder)
        for pattern in ("*cache/run-*", "**/*.partial", "**/*.fetch", "**/*.tmp", ".*out.*")
        for path in folder.glob(pattern)
    ]
    assert not left, left


def assert_final_model(folder: Path, reference: Reference) -> None:
    """``folder`` holds the reference's final model, byte for byte, and nothing else."""
    assert model_files(folder) == reference.final
    marker = json.loads((folder / OUTPUT_MARKER).read_text(encoding="utf-8"))
    assert marker["key"] == reference.final_key


# ---------------------------------------------------------------------------------------------
# Running the command


@frozen
class Outcome:
    """What one ``modelcache run`` did: its exit code, stderr, and report (if it wrote one)."""

    code: int
    stderr: str
    report: dict[str, Any] | None

    def keys(self, kind: str, outcome: str = "done") -> list[str]:
        """The keys of the steps of ``kind`` that ended with ``outcome``, in order."""
        assert self.report is not None
        steps = self.report["steps"]
        return [s["key"] for s in steps if s["kind"] == kind and s["outcome"] == outcome]

    def notes(self, text: str) -> list[str]:
        assert self.report is not None
        return [note for note in self.report["notes"] if text in note]


class Workspace:
    """A folder of configs, one per local cache, all naming ``container``."""

    def __init__(
        self, folder: Path, model: Path, container: str, capsys: pytest.CaptureFixture[str]
    ) -> None:
        self.folder = folder
        self.model = model
        self.container = container
        self.capsys = capsys
        self.runs = 0

    def run(self, cache: str = "cache", output: str = "out", *switches: str) -> Outcome:
        """``modelcache run --quiet --report ...`` over ``cache`` and ``output``."""
        config = write_config(
            self.folder,
            self.model,
            PASSES,
            container=self.container,
            cache=cache,
            output=output,
            name=f"{cache}.json",
        )
        self.runs += 1
        report = self.folder / f"report-{self.runs}.json"
        self.capsys.readouterr()
        code = main(["run", str(config), "--quiet", "--report", str(report), *switches])
        stderr = self.capsys.readouterr().err
        assert "Traceback" not in stderr
        document = json.loads(report.read_text(encoding="utf-8")) if code == 0 else None
        return Outcome(code, stderr, document)


@pytest.fixture(autouse=True)
def _offline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.delenv(cloud.TRANSFER_VARIABLE, raising=False)


# ---------------------------------------------------------------------------------------------
# Faults


class Fault:
    """Crashes or stalls ``server`` just before the ``nth`` request that ``matches`` leaves;
    once. Give it to the cloud store as ``client_options``."""

    def __init__(
        self, server: Azurite, kind: str, matches: Callable[[str, SplitResult], bool], nth: int
    ) -> None:
        assert kind in ("crash", "stall")
        self.server = server
        self.kind = kind
        self._matches = matches
        self._nth = nth
        self._seen = 0
        self._lock = threading.Lock()
        self.struck = False

    @property
    def client_options(self) -> dict[str, Any]:
        return {"raw_request_hook": self._on_request}

    def _on_request(self, request: Any) -> None:
        http = request.http_request
        with self._lock:
            if self.struck or not self._matches(http.method, urlsplit(http.url)):
                return
            self._seen += 1
            if self._seen < self._nth:
                return
            self.struck = True
            if self.kind == "crash":
                self.server.crash()
            else:
                self.server.pause()

    def recover(self) -> None:
        """Bring the service back: restarted on the same data and port, or thawed."""
        if self.kind == "crash":
            self.server.restart()
        else:
            self.server.resume()


@frozen
class Moment:
    """When to strike (the ``nth`` request that ``matches``), whether the cloud holds the
    chain before the run (``warm``), and the entries published before the fault."""

    matches: Callable[[Reference, str, SplitResult], bool]
    nth: int
    warm: bool
    published: Callable[[Reference], set[str]]


def _a_listing(_reference: Reference, method: str, url: SplitResult) -> bool:
    return method == "GET" and "comp=list" in url.query.split("&")


def _a_block_of_the_final_weights(reference: Reference, method: str, url: SplitResult) -> bool:
    weights = blob_name(reference.digest(reference.final_key, "model.safetensors"))
    return method == "PUT" and url.path.endswith(weights) and "comp=block" in url.query.split("&")


def _the_final_manifest(reference: Reference, method: str, url: SplitResult) -> bool:
    return method == "PUT" and url.path.endswith(manifest_name(reference.final_key))


def _a_get_of_the_final_weights(reference: Reference, method: str, url: SplitResult) -> bool:
    weights = blob_name(reference.digest(reference.final_key, "model.safetensors"))
    return method == "GET" and url.path.endswith(weights)


def _all_but_the_final(reference: Reference) -> set[str]:
    return set(reference.keys[:-1])


MOMENTS = {
    # The run's first request: the cloud is empty; the run has computed nothing yet.
    "mid-snapshot": Moment(_a_listing, 1, warm=False, published=lambda _: set()),
    # The first entry is published; the final model's weights are one block staged.
    "mid-upload": Moment(_a_block_of_the_final_weights, 2, False, _all_but_the_final),
    # Every blob of the final entry is committed; its manifest is not.
    "before-manifest": Moment(_the_final_manifest, 1, False, _all_but_the_final),
    # A warm cloud and an empty local cache: the final model is one block downloaded.
    "mid-download": Moment(_a_get_of_the_final_weights, 2, True, lambda r: set(r.keys)),
}
KINDS = ("crash", "stall")


@pytest.fixture(scope="module")
def private_azurite() -> Iterator[Azurite]:
    """An Azurite of this module's own, for its tests to crash and stall."""
    server = Azurite.start()
    yield server
    server.stop()


@pytest.fixture
def service(private_azurite: Azurite, monkeypatch: pytest.MonkeyPatch) -> Iterator[Azurite]:
    """The private Azurite as the cloud; up and answering again after the test."""
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", private_azurite.connection_string)
    yield private_azurite
    if private_azurite.running:
        private_azurite.resume()
    else:
        private_azurite.restart()


def strike(
    moment: str,
    kind: str,
    *switches: str,
    service: Azurite,
    reference: Reference,
    space: Workspace,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Fault, Outcome]:
    """Set the scene for ``moment``, then run with ``switches`` as the fault strikes."""
    scene = MOMENTS[moment]
    if scene.warm:
        warm = space.run("warm-cache", "warm-out")
        assert warm.code == 0, warm.stderr
    fault = Fault(service, kind, partial(scene.matches, reference), scene.nth)
    with monkeypatch.context() as patch:
        patch.setenv(cloud.TRANSFER_VARIABLE, QUICK)
        faulty = partial(cloud.open_cloud_store, client_options=fault.client_options)
        patch.setattr(cloud, "open_cloud_store", faulty)
        outcome = space.run("cache", "out", *switches)
    assert fault.struck, f"the fault {moment} never struck"
    return fault, outcome


def assert_heals(
    space: Workspace, fault: Fault, reference: Reference, moment: str, *switches: str
) -> None:
    """Steps 2 to 4 of the module's docstring, once the service is back."""
    fault.recover()
    connection_string = fault.server.connection_string
    present = intact_entries(connection_string, space.container)
    published = MOMENTS[moment].published(reference)
    if fault.kind == "crash":
        assert present == published
    else:
        # A thawed service still serves the request it froze on: a manifest may land late.
        assert published <= present <= set(reference.keys)
    cached = present | local_entries(space.folder / "cache", reference)

    healed = space.run("cache", "out", *switches)
    assert healed.code == 0, healed.stderr
    assert not healed.notes(FINISHED_LOCALLY)
    assert not set(healed.keys("run")) & cached, "the next run recomputed a cached output"
    uploaded = set(healed.keys("upload"))
    assert uploaded <= set(reference.keys) - present, "the next run published an entry twice"
    if fault.kind == "crash":
        assert uploaded == set(reference.keys) - present
    assert intact_entries(connection_string, space.container) == set(reference.keys)
    assert_final_model(space.folder / "out", reference)

    fresh = space.run("fresh-cache", "fresh-out", *switches)
    assert fresh.code == 0, fresh.stderr
    assert fresh.keys("run") == []
    assert fresh.keys("upload") == []
    assert fresh.keys("download") == [reference.final_key]
    assert_final_model(space.folder / "fresh-out", reference)
    assert_no_leftovers(space.folder)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("moment", list(MOMENTS))
def test_a_run_that_loses_the_cloud_finishes_locally_and_the_next_run_heals(
    moment: str,
    kind: str,
    service: Azurite,
    reference: Reference,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    container = new_container(service.connection_string, "faults")
    space = Workspace(tmp_path, reference.model, container, capsys)
    fault, faulted = strike(
        moment, kind, service=service, reference=reference, space=space, monkeypatch=monkeypatch
    )

    assert faulted.code == 0, faulted.stderr
    assert faulted.report is not None
    assert faulted.report["final_key"] == reference.final_key
    assert_final_model(tmp_path / "out", reference)
    [note] = faulted.notes(FINISHED_LOCALLY)
    assert note.startswith("cloud cache unreachable")
    assert f"note: {note}" in " ".join(faulted.stderr.split())
    assert_no_leftovers(tmp_path)
    assert_heals(space, fault, reference, moment)


#: With --require-cloud, each moment once, the kinds taking turns.
REQUIRED = [(moment, KINDS[i % 2]) for i, moment in enumerate(MOMENTS)]


@pytest.mark.parametrize(("moment", "kind"), REQUIRED)
def test_with_require_cloud_a_lost_cloud_ends_the_run_in_one_line_and_the_next_run_heals(
    moment: str,
    kind: str,
    service: Azurite,
    reference: Reference,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    container = new_container(service.connection_string, "faults")
    space = Workspace(tmp_path, reference.model, container, capsys)
    fault, faulted = strike(
        moment,
        kind,
        "--require-cloud",
        service=service,
        reference=reference,
        space=space,
        monkeypatch=monkeypatch,
    )

    assert faulted.code == 1
    [line] = faulted.stderr.strip().splitlines()
    assert line.startswith("error: the cloud cache failed and --require-cloud was given: ")
    assert not (tmp_path / "out").exists()
    assert_no_leftovers(tmp_path)
    assert_heals(space, fault, reference, moment, "--require-cloud")


# ---------------------------------------------------------------------------------------------
# Damage from outside: on the shared Azurite, which these tests leave running.


def _delete(client: Any) -> None:
    client.delete_blob()


def _flip_a_byte(client: Any) -> None:
    data = bytearray(client.download_blob().readall())
    data[len(data) // 2] ^= 0x01
    client.upload_blob(bytes(data), overwrite=True)


#: Each kind of damage, and what the run's note says of it.
DAMAGE = {"deleted": (_delete, "is missing"), "flipped": (_flip_a_byte, "does not match")}


@pytest.mark.parametrize("damage", list(DAMAGE))
@pytest.mark.parametrize("path", ["model.safetensors", "tokenizer.json"])
def test_a_damaged_content_blob_is_a_miss_reported_and_never_used(
    damage: str,
    path: str,
    azure_container: tuple[str, str],
    reference: Reference,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The final model's weights belong to its entry alone; the tokenizer, which the passes
    leave unchanged, to every entry: then nothing in the cloud is usable."""
    from azure.storage.blob import ContainerClient

    connection_string, container = azure_container
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", connection_string)
    space = Workspace(tmp_path, reference.model, container, capsys)
    assert space.run("first-cache", "first-out").code == 0
    digest = reference.digest(reference.final_key, path)
    broken = [
        k for k in reference.keys if digest in {f.sha256 for f in reference.manifests[k].files}
    ]
    spoil, words = DAMAGE[damage]
    with ContainerClient.from_connection_string(connection_string, container) as client:
        spoil(client.get_blob_client(blob_name(digest)))

    run = space.run("cache", "out")

    assert run.code == 0, run.stderr
    assert_final_model(tmp_path / "out", reference)
    assert_no_leftovers(tmp_path)
    # Each broken entry the run reached for, from the final model back, is a miss: its
    # download is a failed step, and a note (on stderr too) names the entry and the file.
    reached = list(reversed(broken))
    assert run.keys("download", "failed") == reached
    notes = run.notes("unusable")
    assert len(notes) == len(reached)
    for note, key in zip(notes, reached, strict=True):
        assert f"cloud entry {key[:12]} unusable" in note
        assert repr(path) in note
        assert words in note
        assert f"note: {note}" in " ".join(run.stderr.split())
    # It re-planned from the last output actually available, and ran only what followed.
    available = reference.keys[: reference.keys.index(broken[0])]
    assert run.keys("download") == list(available[-1:])
    assert run.keys("run") == list(reference.keys[len(available) :])
    # The recomputed outputs cannot replace the damaged entries: the run says so.
    assert run.keys("upload", "damaged-in-cloud") == sorted(reached, key=reference.keys.index)
    assert not run.notes("for another runner")
    # Never used: every blob in the local cache holds the bytes its name says.
    for blob in (tmp_path / "cache" / "modelcache-v1" / "blobs").rglob("*"):
        if blob.is_file():
            assert hashlib.sha256(blob.read_bytes()).hexdigest() == blob.name


# ---------------------------------------------------------------------------------------------
# Round trips of a cold run: what the store spares (docs/storage.md, "Round trips of each
# kind of run"), on the shared Azurite.


class RequestKinds:
    """Counts the requests a run's cloud store sends, as ``"<object> <operation>"``."""

    def __init__(self) -> None:
        self.kinds: Counter[str] = Counter()
        self._lock = threading.Lock()

    @property
    def client_options(self) -> dict[str, Any]:
        return {"raw_request_hook": self._on_request}

    def _on_request(self, request: Any) -> None:
        http = request.http_request
        url = urlsplit(http.url)
        query = url.query.split("&")
        thing = next((k for p, k in _THINGS if f"/{p}" in url.path), "listing")
        action = http.headers.get("x-ms-lease-action") or next(
            (c for c in ("comp=metadata", "comp=block") if c in query), http.method
        )
        with self._lock:
            self.kinds[f"{thing} {action}"] += 1


_THINGS = ((ENTRIES_PREFIX, "manifest"), (BLOBS_PREFIX, "blob"), (LOCKS_PREFIX, "lock"))


def test_a_cold_run_heads_no_blob_it_sends_and_claims_each_entry_in_two_requests(
    azure_container: tuple[str, str],
    reference: Reference,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    connection_string, container = azure_container
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", connection_string)
    space = Workspace(tmp_path, reference.model, container, capsys)
    requests = RequestKinds()
    counted = partial(cloud.open_cloud_store, client_options=requests.client_options)
    monkeypatch.setattr(cloud, "open_cloud_store", counted)

    run = space.run("cache", "out")

    assert run.code == 0, run.stderr
    entries = len(reference.keys)
    kinds = requests.kinds
    # Single flight: the lock blob created before the one acquire; no manifest HEAD (the
    # snapshot found none and nobody had claimed the entry); no release (published).
    assert kinds["lock PUT"] == entries
    assert kinds["lock acquire"] == entries
    assert kinds["lock release"] == 0
    assert kinds["manifest HEAD"] == 0
    # Publishing: no blob is looked at before it is sent (small files: create-only PUTs);
    # a blob shared with the entry before is refreshed on condition, not looked at either.
    assert kinds["blob HEAD"] == 0
    assert kinds["manifest PUT"] == entries
    assert intact_entries(connection_string, container) == set(reference.keys)
