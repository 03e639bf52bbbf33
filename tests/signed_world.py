"""A shared cache with signed entries, for ``test_signed_cache.py``: key pairs and secrets,
the workflow run in-process over the tiny BERT against the local store or a container on
Azurite, and a writer with container access but no trusted key publishing a poisoned entry.

A ``World`` is one shared cache: ``local`` (a cache directory every run reads and writes, as
on a shared disk) or ``azure`` (a container; each run gets a new local cache, so it reads
the container). Runs are in-process (``prepare``/``execute``) to keep the suite fast.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Literal

from attrs import Factory, define, evolve
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from modelcache.planner import Plan
from modelcache.runner.config import parse_config
from modelcache.runner.provenance import SIGNATURE_FILE
from modelcache.runner.reporting import RunReport
from modelcache.runner.workflow import Prepared, checked_plan, execute, prepare
from modelcache.store import (
    LocalStore,
    MaintainedStore,
    Manifest,
    SigningKey,
    Store,
    Trust,
    TrustedStore,
    build_manifest,
)

from .e2e import TINY_PASSES, model_files

Backend = Literal["local", "azure"]


def write_key_pair(folder: Path, name: str) -> tuple[Path, Path]:
    """A new P-256 key pair as ``<name>.pem`` and ``<name>.pub.pem`` in ``folder``."""
    key = ec.generate_private_key(ec.SECP256R1())
    private, public = folder / f"{name}.pem", folder / f"{name}.pub.pem"
    private.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    public.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return private, public


@define
class Reference:
    """An honest, unsigned run of the tiny workflow: its keys, manifests and final model."""

    cache: Path
    keys: list[str]
    final: dict[str, bytes]

    @property
    def final_key(self) -> str:
        return self.keys[-1]

    def manifest(self, key: str) -> Manifest:
        return LocalStore(self.cache).read_manifest(key)


@define
class World:
    """One shared cache and the runs made over it."""

    backend: Backend
    folder: Path
    model: Path
    container: tuple[str, str] | None = None
    _runs: itertools.count[int] = Factory(itertools.count)

    @property
    def shared_dir(self) -> Path:
        return self.folder / "shared"

    def store(self) -> MaintainedStore:
        """The shared cache, opened plainly: what any writer with access gets."""
        if self.container is None:
            return LocalStore(self.shared_dir)
        from modelcache.azure import AzureBlobStore

        return AzureBlobStore.from_connection_string(*self.container)

    def run(self, **sections: Any) -> tuple[RunReport, dict[str, bytes]]:
        """The workflow with the given config sections (``signing``, ``trust``, ``evaluator``);
        the report and the delivered model (without the signature a signing run adds to it,
        ``packages/runner/tests/test_provenance.py``)."""
        number = next(self._runs)
        report = execute(self._prepared(number, sections))
        model = model_files(self.folder / f"out-{number}")
        model.pop(SIGNATURE_FILE, None)
        return report, model

    def plan(self, **sections: Any) -> tuple[Plan, list[str]]:
        """What ``modelcache plan`` shows before the run :meth:`run` would make: the plan and
        its notes."""
        return checked_plan(self._prepared(next(self._runs), sections))

    def fingerprint(self, **sections: Any) -> str:
        """The evaluation fingerprint of the workflow with these sections."""
        return self._prepared(next(self._runs), sections).evaluation.fingerprint

    def _prepared(self, number: int, sections: dict[str, Any]) -> Prepared:
        local = self.shared_dir if self.container is None else self.folder / f"local-{number}"
        document = {
            "input_model": {"type": "HfModel", "model_path": str(self.model)},
            "passes": TINY_PASSES,
            "cache_dir": str(local),
            "output_dir": f"out-{number}",
            **sections,
        }
        prepared = prepare(parse_config(document, base_dir=self.folder))
        if self.container is not None:
            prepared.cloud = self.store()
            prepared.policy = evolve(prepared.policy, enable_cloud_cache=True, upload_to_cloud=True)
        return prepared

    def publish(self, source: Path, manifest: Manifest, key: SigningKey | None = None) -> None:
        """Publish straight into the shared cache, signed with ``key`` if given."""
        store: Store = self.store()
        if key is not None:
            store = TrustedStore(store, Trust(signing_key=key))
        assert store.publish(source, manifest)


def poisoned(reference: Reference, key: str, folder: Path) -> tuple[Path, Manifest]:
    """The entry ``key`` with other weights: a valid manifest under the real key (and key
    inputs), naming files that hash right, that no honest pass produced."""
    source = folder / f"poison-{key[:8]}"
    honest = reference.manifest(key)
    LocalStore(reference.cache).fetch(key, source)
    weights = source / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-64:] = bytes(64)  # a backdoor, as far as this test is concerned
    weights.write_bytes(bytes(data))
    manifest = build_manifest(
        key=key,
        key_inputs=honest.key_inputs,
        model_type=honest.model_type,
        directory=source,
        run_seconds=honest.run_seconds,
        created=honest.created,
        producer=honest.producer,
    )
    return source, manifest


def honest_entry(reference: Reference, key: str, folder: Path) -> tuple[Path, Manifest]:
    """The honest entry ``key``, as files and its unsigned manifest."""
    source = folder / f"honest-{key[:8]}"
    return source, LocalStore(reference.cache).fetch(key, source)


def steps(report: RunReport) -> list[str]:
    return [step.kind for step in report.steps if step.kind in ("run", "download", "skip")]


def notes(report: RunReport) -> str:
    return "\n".join(report.notes)
