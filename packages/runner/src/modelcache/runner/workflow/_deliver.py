"""Delivery: the final model copied to ``output_dir``, which modelcache alone writes, and
signed there in the OpenSSF model-signing format when the writer has a key pair
(:mod:`modelcache.runner.provenance`)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from modelcache.store import LocalStore, Manifest, StoreError, blob_name, describe_directory

from ..config import ConfigError
from ..digests import DigestCache
from ..provenance import SIGNATURE_FILE, sign_model
from ..trust import trust_of
from ._prepare import Prepared
from ._state import PRODUCER, Execution

__all__ = ["OUTPUT_MARKER", "already_delivered", "deliver", "output_dir"]

#: The file that marks a folder as a modelcache output, which a later run may replace.
OUTPUT_MARKER = ".modelcache-output.json"


def output_dir(prepared: Prepared) -> Path:
    """Where the final model goes; refused up front if it holds files of someone else's.

    :raises ConfigError: ``output_dir`` holds files and no :data:`OUTPUT_MARKER`.
    """
    output = prepared.config.resolve(prepared.config.output_dir)
    if output.exists() and any(output.iterdir()) and not (output / OUTPUT_MARKER).exists():
        raise ConfigError(
            path="$.output_dir",
            problem=f"{output} holds files modelcache did not write; "
            "choose an empty or new output_dir",
        )
    return output


def already_delivered(run: Execution, final_key: str) -> bool:
    """Whether ``output_dir`` holds the final model ``final_key`` byte for byte as delivering
    it would leave it: its marker names the key (and this modelcache), and its files are
    exactly the local entry's, sizes and SHA-256 checked, and the entry's own files are all
    in the local tier. Then a warm run need not copy the
    model twice (into its scratch folder, then into ``output_dir``) nor delete the old one.
    A file's digest is remembered by its stat (:meth:`DigestCache.file_digest`), so a warm
    run reads none of them again. Never for a writer that signs: a delivered model is
    signed anew. Anything unreadable is a no: the model is delivered as usual."""
    trust = trust_of(run.prepared.local)
    if trust is not None and trust.signing_key is not None:
        return False
    output = output_dir(run.prepared)
    try:
        marker = json.loads((output / OUTPUT_MARKER).read_text(encoding="utf-8"))
        if marker != {"key": final_key, "producer": PRODUCER}:
            return False
        manifest = run.prepared.local.read_manifest(final_key)
        digests = DigestCache.default()
        found = describe_directory(output, hashing=lambda file: (
            file.stat().st_size, digests.file_digest(file)))  # fmt: skip
        if tuple(f for f in found if f.path != OUTPUT_MARKER) != manifest.files:
            return False
        return _blobs_present(run.prepared.local, manifest)
    except (OSError, ValueError, StoreError):
        return False


def _blobs_present(local: LocalStore, manifest: Manifest) -> bool:
    """Whether the local entry's files are all there at their sizes (not hashed): an entry
    missing one is left to the run's usual read, which repairs it from the cloud."""
    for item in manifest.files:
        stored = next(iter(local.list_objects(blob_name(item.sha256))), None)
        if stored is None or stored.size != item.size:
            return False
    return True


def deliver(run: Execution, final_key: str) -> None:
    """Copy the final model to ``output_dir``, replacing an earlier modelcache output whole,
    sign it if the writer has a key, and note where it went in the report. A model the run
    found there already (:func:`already_delivered`) is left as it is."""
    output = output_dir(run.prepared)
    if run.delivered == final_key:
        _delivered(run, final_key, output, signed=False)
        return
    source = run.materialize(final_key)
    output.parent.mkdir(parents=True, exist_ok=True)
    # Staged under the output's own name: a model signature records the folder's name.
    holder = Path(tempfile.mkdtemp(prefix=f".{output.name}.new-", dir=output.parent))
    staging = holder / output.name
    aside = None
    try:
        _take(run, final_key, source, staging)
        marker = {"key": final_key, "producer": PRODUCER}
        (staging / OUTPUT_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
        signed = _sign(run, staging)
        if output.exists():
            # Renaming a folder onto an empty one replaces it; the old output waits there
            # until the new one is in place, so a failure leaves one or the other whole.
            aside = Path(tempfile.mkdtemp(prefix=f".{output.name}.old-", dir=output.parent))
            os.replace(output, aside)
        try:
            os.replace(staging, output)
        except BaseException:
            if aside is not None:
                os.replace(aside, output)
                aside = None
            raise
    finally:
        shutil.rmtree(holder, ignore_errors=True)
        if aside is not None:
            shutil.rmtree(aside, ignore_errors=True)
    _delivered(run, final_key, output, signed=signed)


def _take(run: Execution, final_key: str, source: Path, staging: Path) -> None:
    """Put the final model at ``staging``: the run's own copy of it (read from the cache
    into its scratch folder, files copied, never linked) is moved there when the two are on
    one file system, so a model downloaded or read once is not copied a second time; else
    it is copied."""
    try:
        os.rename(source, staging)
    except OSError:
        shutil.copytree(source, staging)
    else:
        run.materialized.pop(final_key, None)  # moved: no longer this run's to read


def _delivered(run: Execution, final_key: str, output: Path, *, signed: bool) -> None:
    run.report.final_key = final_key
    run.report.output_dir = str(output)
    if signed:
        run.report.model_signature = str(output / SIGNATURE_FILE)


def _sign(run: Execution, staging: Path) -> bool:
    """Sign the staged model if the writer has a key; a note if it cannot be signed."""
    trust = trust_of(run.prepared.local)
    if trust is None or trust.signing_key is None:
        return False
    provenance = sign_model(staging, trust.signing_key)
    if provenance.note is not None:
        run.note(provenance.note)
    return provenance.signature is not None
