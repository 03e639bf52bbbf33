"""The contract, run: :func:`run_contract` runs the machine alone, :class:`StoreContract`
is the machine, the hostile manifests and transfer progress as pytest tests."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import hypothesis
import pytest
from hypothesis import given
from hypothesis.stateful import run_state_machine_as_test

from .._errors import CorruptEntry, InvalidManifest
from .._manifest import MAX_FILE_SIZE, Manifest, check_relative_path
from .._transfer import build_manifest
from ._hostile import (
    BLOB,
    HOSTILE_KEY,
    HOSTILE_PATHS,
    MALFORMED_MANIFESTS,
    everything_under,
    files_at,
    fuzzed_paths,
    hostile_manifests,
    manifest_document,
    plant_and_fetch,
)
from ._machine import StoreMachine
from ._model import key_of
from ._subjects import Subject, SubjectFactory

__all__ = ["StoreContract", "run_contract"]


def run_contract(
    make_subject: SubjectFactory, *, settings: hypothesis.settings | None = None
) -> None:
    """Run :class:`StoreMachine` against subjects from ``make_subject``.

    :param make_subject: makes one empty store under test per run (see :class:`Subject`).
    :param settings: Hypothesis settings; by default the current profile's, with 30 steps
        per run. Costs ``max_examples`` runs of up to that many operations each.
    :raises AssertionError: or the store's own exception: the first disagreement with the
        model Hypothesis found, reported with the operations that led to it.
    """
    chosen = settings if settings is not None else hypothesis.settings(stateful_step_count=30)
    # Hypothesis leaves run_state_machine_as_test unannotated.
    run_state_machine_as_test(lambda: StoreMachine(make_subject), settings=chosen)  # type: ignore[no-untyped-call]


class StoreContract:
    """The store contract as pytest tests, for a store implementation's test module.

    Subclass it in a class named ``Test...`` and give it a fixture ``make_subject`` that
    returns a :data:`SubjectFactory` (it may use any fixture, session ones included: an
    emulator, a database). Every test below then runs against the subjects it makes:

    * ``test_store_agrees_with_the_model``: :class:`StoreMachine`, ``max_examples`` runs
      (the Hypothesis profile's) of :attr:`machine_steps` operations;
    * hostile manifests planted into the store (unsafe paths, malformed documents, sizes
      that disagree with the blob, :attr:`fuzzed_manifests` fuzzed ones) are refused with
      ``InvalidManifest``/``CorruptEntry`` and nothing is written outside the destination;
    * transfer progress counts every byte moved, and no more.

    Each test makes one subject (the fuzzed-path test one per example) and closes it.
    """

    #: Operations per run of the machine.
    machine_steps: ClassVar[int] = 30
    #: Fuzzed manifests to try: fewer for a store behind a network.
    fuzzed_manifests: ClassVar[int] = 150

    @pytest.fixture
    def make_subject(self) -> SubjectFactory:
        raise NotImplementedError("a StoreContract subclass provides a make_subject fixture")

    @pytest.fixture
    def scratch(self) -> Iterator[Path]:
        # Short paths: some hostile paths are long, and the file system's limits must not
        # be what refuses them.
        path = Path(tempfile.mkdtemp(prefix="modelcache-contract-"))
        yield path
        shutil.rmtree(path, ignore_errors=True)

    @pytest.fixture
    def subject(self, make_subject: SubjectFactory, scratch: Path) -> Iterator[Subject]:
        subject = make_subject(scratch)
        yield subject
        subject.close()

    def test_store_agrees_with_the_model(self, make_subject: SubjectFactory) -> None:
        steps = hypothesis.settings(stateful_step_count=self.machine_steps)
        run_contract(make_subject, settings=steps)

    @pytest.mark.parametrize("path", HOSTILE_PATHS, ids=repr)
    def test_a_manifest_with_an_unsafe_path_is_refused(
        self, subject: Subject, scratch: Path, path: str
    ) -> None:
        data = json.dumps(manifest_document(files=files_at(path))).encode()
        with pytest.raises(InvalidManifest):
            plant_and_fetch(subject, scratch, data)
        assert everything_under(scratch / "sandbox") == {"work"}

    @pytest.mark.parametrize("data", MALFORMED_MANIFESTS.values(), ids=MALFORMED_MANIFESTS)
    def test_a_malformed_manifest_is_refused(
        self, subject: Subject, scratch: Path, data: bytes
    ) -> None:
        with pytest.raises(InvalidManifest):
            plant_and_fetch(subject, scratch, data)
        assert everything_under(scratch / "sandbox") == {"work"}
        assert subject.store.snapshot([HOSTILE_KEY]) == []

    @pytest.mark.parametrize(
        "size",
        [len(BLOB) - 1, len(BLOB) + 1, 10**12, MAX_FILE_SIZE],
        ids=lambda size: f"size={size}",
    )
    def test_a_manifest_whose_size_disagrees_with_the_blob_is_corrupt(
        self, subject: Subject, scratch: Path, size: int
    ) -> None:
        data = json.dumps(manifest_document(files=files_at("m", size=size))).encode()
        with pytest.raises(CorruptEntry):  # InvalidManifest is a CorruptEntry
            plant_and_fetch(subject, scratch, data)
        assert everything_under(scratch / "sandbox") == {"work"}

    def test_any_path_is_either_refused_or_written_inside_the_destination(
        self, make_subject: SubjectFactory
    ) -> None:
        @given(path=fuzzed_paths)
        def check(path: str) -> None:
            scratch = Path(tempfile.mkdtemp(prefix="modelcache-fuzz-"))
            subject = make_subject(scratch)
            try:
                data = json.dumps(manifest_document(files=files_at(path))).encode()
                try:
                    check_relative_path(path)
                except InvalidManifest:
                    with pytest.raises(InvalidManifest):
                        plant_and_fetch(subject, scratch, data)
                    assert everything_under(scratch / "sandbox") == {"work"}
                    return
                destination = plant_and_fetch(subject, scratch, data)
                written = destination.joinpath(*path.split("/"))
                assert written.read_bytes() == BLOB
                assert written.resolve().is_relative_to(destination.resolve())
                outside = everything_under(scratch / "sandbox") - {"work"}
                assert all(item.startswith("work/dest") for item in outside)
            finally:
                subject.close()
                shutil.rmtree(scratch, ignore_errors=True)

        check()

    def test_a_fuzzed_manifest_never_writes_outside_the_destination(
        self, subject: Subject, scratch: Path
    ) -> None:
        def outside() -> set[str]:
            """What is in scratch beside the sandbox and a local store's directory."""
            return {
                path
                for path in everything_under(scratch)
                if path.split("/")[0] not in ("sandbox", "store")
            }

        outside_before = outside()
        tried = {"refused": 0, "fetched": 0}

        @hypothesis.settings(max_examples=self.fuzzed_manifests, deadline=None)
        @given(data=hostile_manifests())
        def check(data: bytes) -> None:
            shutil.rmtree(scratch / "sandbox", ignore_errors=True)
            try:
                destination = plant_and_fetch(subject, scratch, data)
            except CorruptEntry:  # InvalidManifest is a CorruptEntry
                tried["refused"] += 1
                assert everything_under(scratch / "sandbox") == {"work"}
            else:
                tried["fetched"] += 1
                written = everything_under(scratch / "sandbox") - {"work", "work/dest"}
                assert all(path.startswith("work/dest/") for path in written)
                for path in destination.rglob("*"):
                    assert not path.is_symlink()
                    assert path.resolve().is_relative_to(destination.resolve())
            assert outside() == outside_before

        check()
        assert tried["refused"] > 0

    def test_progress_counts_every_byte_moved_and_no_more(
        self, subject: Subject, scratch: Path
    ) -> None:
        big = os.urandom(9 << 20)  # several blocks for a store that sends blocks
        files = {"weights.bin": big, "config.json": b"{}", "shared.txt": b"tokenizer"}
        source = scratch / "source"
        source.mkdir()
        for path, data in files.items():
            (source / path).write_bytes(data)
        manifest = _progress_manifest(source, 900)
        sent: list[int] = []
        assert subject.store.publish(source, manifest, progress=sent.append)
        assert sum(sent) == sum(map(len, files.values()))
        assert len(sent) > 1  # reported as it goes, not once at the end

        received: list[int] = []
        subject.store.fetch(manifest.key, scratch / "fetched", progress=received.append)
        assert sum(received) == manifest.size

        (source / "weights.bin").write_bytes(b"changed")
        other = _progress_manifest(source, 901)
        resent: list[int] = []
        assert subject.store.publish(source, other, progress=resent.append)
        assert sum(resent) == len(b"changed")  # stored blobs are not sent, nor counted


def _progress_manifest(source: Path, number: int) -> Manifest:
    key, inputs = key_of(number)
    return build_manifest(
        key=key,
        key_inputs=inputs,
        model_type="hf",
        directory=source,
        run_seconds=None,
        created="",
        producer="contract",
    )
