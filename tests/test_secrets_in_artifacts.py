"""Secrets never leave the environment: every artefact of real ``modelcache`` runs against
Azurite is searched for the account key, the SAS signature and the connection string.

The runs (the real command, in this process, ``e2e.modelcache_here``, which captures its
stdout and stderr down to the file descriptors, over a tiny BERT and two cheap passes):

* ``connection-string``: a cold run with ``AZURE_STORAGE_CONNECTION_STRING`` (which holds
  the account key) in the environment; it uploads both outputs;
* ``sas-url``: a container SAS (``racwl``) as ``account_url``, no connection string; it
  downloads the first output and runs and uploads a changed second pass;
* ``wrong-key`` and ``bad-sas``: a connection string with another key, a SAS whose
  signature was tampered with: both fail;
* ``plan-*``: ``modelcache plan --format json`` and ``--format text`` with each credential.

The cold run comes first, then the other runs, which need nothing but it, then the plans.

The artefacts: stdout, stderr, the ``--report`` JSON, every file the run left in its folder
(the local cache, the output model; not the config, which the user wrote), and every blob in
the container, with its metadata. The secrets: the key (as written, URL-encoded, decoded to
bytes, as hex, and its first 16 characters), each SAS signature (URL-encoded and decoded,
decoded to bytes, its first 16 characters), the SAS query strings and the connection strings.
"""

from __future__ import annotations

import base64
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote

import pytest

from modelcache.azure.testing import ACCOUNT_KEY

from .e2e import container_sas_url, modelcache_here, new_container, write_config

pytestmark = [pytest.mark.azurite, pytest.mark.slow]

USER_ERROR = 2
#: Another key for the same account: valid base64, so the SDK accepts it and Azurite refuses.
WRONG_KEY = base64.b64encode(b"not the key of devstoreaccount1".ljust(64, b"!")).decode()
EVALUATOR = {"metrics": ["size"], "evaluate": "all"}


# ---------------------------------------------------------------------------------------------
# Helpers


def signature(url: str) -> str:
    """The ``sig=`` value of a SAS URL, URL-encoded as it appears in the URL."""
    query = url.partition("?")[2]
    return next(part[4:] for part in query.split("&") if part.startswith("sig="))


def secret_forms(name: str, value: str) -> dict[str, bytes]:
    """The ways ``value``, a base64 secret, could show up in an artefact."""
    forms = {
        f"{name}": value.encode(),
        f"{name} URL-encoded": quote(value, safe="").encode(),
        f"{name} first 16 characters": value[:16].encode(),
    }
    raw = base64.b64decode(value)
    forms[f"{name} decoded"] = raw
    forms[f"{name} decoded, hex"] = raw.hex().encode()
    return forms


def passes(dtype: str = "float16") -> dict[str, dict[str, Any]]:
    return {
        "prune": {"type": "MagnitudePruning", "sparsity": 0.5},
        "cast": {"type": "TorchDtypeCast", "dtype": dtype},
    }


class Run:
    """One command and everything it left: name -> bytes."""

    def __init__(self, folder: Path, config: Path, result: subprocess.CompletedProcess[str]):
        self.folder = folder
        self.result = result
        self.artefacts: dict[str, bytes] = {
            "stdout": result.stdout.encode(),
            "stderr": result.stderr.encode(),
        }
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path != config:
                self.artefacts[str(path.relative_to(folder))] = path.read_bytes()

    @property
    def report(self) -> dict[str, Any]:
        return json.loads(self.artefacts["report.json"])  # type: ignore[no-any-return]


# ---------------------------------------------------------------------------------------------
# The runs


class Scenario:
    """All the runs, and what they know: the container, the SAS URLs, the secrets."""

    def __init__(self, container: str, secrets: dict[str, bytes], runs: dict[str, Run]):
        self.container = container
        self.secrets = secrets
        self.runs = runs


#: A command of the scenario: its folder's name, the config's cloud section, the connection
#: string in its environment (``None``: none at all), the cast's dtype, and the command's
#: words (the config follows the first; a run writes ``report.json`` in its folder).
Command = tuple[str, dict[str, Any], str | None, str, tuple[str, ...]]


def run_each(root: Path, model: Path, commands: list[Command]) -> dict[str, Run]:
    """Run ``commands`` in turn, each in a folder of its own with a config of its own; what
    each left, by name."""
    runs: dict[str, Run] = {}
    for name, cloud, connection_string, dtype, words in commands:
        folder = root / name
        config = write_config(
            folder, model, passes(dtype), cloud=cloud, evaluator=EVALUATOR, name="workflow.json"
        )
        args: tuple[str | Path, ...] = (words[0], config, *words[1:])
        if words[0] == "run":
            args = (*args, "--report", folder / "report.json")
        result = modelcache_here(*args, connection_string=connection_string, cwd=folder)
        runs[name] = Run(folder, config, result)
    return runs


@pytest.fixture(scope="module")
def scenario(
    azurite: Any, tiny_model: Path, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Scenario]:
    from azure.storage.blob import BlobServiceClient

    container = new_container(azurite.connection_string, "secrets")
    url = container_sas_url(azurite, container, write=True)
    tampered_sig = quote(base64.b64encode(b"x" * 32).decode(), safe="")
    tampered = url.replace(signature(url), tampered_sig)
    wrong = azurite.connection_string.replace(ACCOUNT_KEY, WRONG_KEY)
    assert wrong != azurite.connection_string

    secrets: dict[str, bytes] = {
        **secret_forms("account key", ACCOUNT_KEY),
        **secret_forms("wrong key", WRONG_KEY),
        "connection string": azurite.connection_string.encode(),
        "wrong connection string": wrong.encode(),
    }
    for name, value in (("SAS", url), ("tampered SAS", tampered)):
        encoded = signature(value)
        decoded = parse_qs(value.partition("?")[2])["sig"][0]
        assert encoded != decoded  # the signature has characters URL-encoding changes
        secrets[f"{name} query string"] = value.partition("?")[2].encode()
        secrets[f"{name} signature, as in the URL"] = encoded.encode()
        secrets.update(secret_forms(f"{name} signature", decoded))

    key = azurite.connection_string
    by_name = {"container_name": container}
    by_sas = {"account_url": url}
    root = tmp_path_factory.mktemp("secrets")
    run = ("run",)
    # The cold run first: the SAS run downloads its first output. Then the runs that need
    # nothing but it; then the plans, which read what the runs left.
    runs = run_each(root, tiny_model, [("connection-string", by_name, key, "float16", run)])
    runs |= run_each(
        root,
        tiny_model,
        [
            ("sas-url", by_sas, None, "bfloat16", run),
            ("wrong-key", by_name, wrong, "float16", run),
            ("bad-sas", {"account_url": tampered}, None, "float16", run),
        ],
    )
    plans: list[Command] = [
        (f"{name}-{format_}", cloud, connection_string, "float16", ("plan", "--format", format_))
        for name, cloud, connection_string in (
            ("plan-key", by_name, key),
            ("plan-sas", by_sas, None),
        )
        for format_ in ("json", "text")
    ]
    runs |= run_each(root, tiny_model, plans)
    yield Scenario(container, secrets, runs)
    with BlobServiceClient.from_connection_string(azurite.connection_string) as service:
        service.delete_container(container)


def container_artefacts(azurite: Any, container: str) -> dict[str, bytes]:
    """Every blob of the container, and every blob's metadata, by name."""
    from azure.storage.blob import ContainerClient

    found: dict[str, bytes] = {}
    with ContainerClient.from_connection_string(azurite.connection_string, container) as client:
        for blob in client.list_blobs(include=["metadata"]):
            found[blob.name] = client.download_blob(blob.name).readall()
            found[f"{blob.name} (metadata)"] = json.dumps(blob.metadata or {}).encode()
    return found


def leaks(artefacts: dict[str, bytes], secrets: dict[str, bytes]) -> list[str]:
    return [
        f"{secret} in {artefact}"
        for artefact, data in artefacts.items()
        for secret, value in secrets.items()
        if value in data
    ]


# ---------------------------------------------------------------------------------------------
# What the runs did: each must have gone down the path whose artefacts are searched


def test_the_runs_used_the_credentials(scenario: Scenario) -> None:
    runs = scenario.runs
    for name in ("connection-string", "sas-url"):
        assert runs[name].result.returncode == 0, runs[name].result.stderr
    cold = runs["connection-string"].report
    assert [s["pass"] for s in cold["steps"] if s["kind"] == "upload"] == ["prune", "cast"]
    assert all(s["outcome"] == "done" for s in cold["steps"]), cold["steps"]
    sas = runs["sas-url"].report
    done = {(s["kind"], s["pass"]) for s in sas["steps"] if s["outcome"] == "done"}
    assert {("download", "prune"), ("run", "cast"), ("upload", "cast")} <= done
    assert ("run", "prune") not in done
    for name in (
        "plan-key-json", "plan-key-text", "plan-sas-json", "plan-sas-text",
    ):  # fmt: skip
        assert runs[name].result.returncode == 0, runs[name].result.stderr
        assert runs[name].result.stdout.strip()
        assert "unreachable" not in runs[name].result.stderr


@pytest.mark.parametrize("name", ["wrong-key", "bad-sas"])
def test_a_refused_credential_fails_in_one_line(scenario: Scenario, name: str) -> None:
    result = scenario.runs[name].result
    assert result.returncode == USER_ERROR, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "credential" in lines[0] or "refused" in lines[0], lines[0]
    assert not (scenario.runs[name].folder / "report.json").exists()
    assert not (scenario.runs[name].folder / "out").exists()


# ---------------------------------------------------------------------------------------------
# The secrets


def test_the_search_finds_a_secret_where_there_is_one(scenario: Scenario) -> None:
    """A control: the SAS run's config, which the user wrote (and the search leaves out),
    holds the SAS URL, and the search finds it there."""
    assert all(len(value) >= 16 for value in scenario.secrets.values())
    config = scenario.runs["sas-url"].folder / "workflow.json"
    found = leaks({"workflow.json": config.read_bytes()}, scenario.secrets)
    assert "SAS signature, as in the URL in workflow.json" in found
    assert "SAS query string in workflow.json" in found
    assert not any("account key" in leak for leak in found)


@pytest.mark.parametrize(
    "name",
    [
        "connection-string", "sas-url", "wrong-key", "bad-sas",
        "plan-key-json", "plan-key-text", "plan-sas-json", "plan-sas-text",
    ],
)  # fmt: skip
def test_no_artefact_of_a_run_holds_a_secret(scenario: Scenario, name: str) -> None:
    run = scenario.runs[name]
    assert run.artefacts["stdout"] or run.artefacts["stderr"]
    assert leaks(run.artefacts, scenario.secrets) == []


def test_the_local_cache_and_output_were_searched(scenario: Scenario) -> None:
    """The searches above covered real files: manifests, weights, evaluations, the report."""
    names = set(scenario.runs["sas-url"].artefacts)
    assert "report.json" in names
    assert any(n.startswith("cache/") and n.endswith(".json") for n in names), names
    assert any(n.startswith("out/") and n.endswith(".safetensors") for n in names), names


def test_no_blob_in_the_container_holds_a_secret(azurite: Any, scenario: Scenario) -> None:
    blobs = container_artefacts(azurite, scenario.container)
    assert any("/entries/" in name for name in blobs), sorted(blobs)
    assert any("/evaluations/" in name for name in blobs), sorted(blobs)
    assert leaks(blobs, scenario.secrets) == []
