"""What the machine works on: a subject, the models of its tiers and a scratch directory,
and what its rules share: making entries, drawing blobs and names, checking raw objects."""

from __future__ import annotations

import itertools
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine

from .._errors import StoreError
from .._layered import LayeredStore
from .._layout import blob_name, lock_name, manifest_name, parse_blob_name
from .._port import MaintainedStore, Tier
from .._transfer import build_manifest
from ._model import LayeredModel, ModelEntry, TierModel, key_of, sha256_of
from ._subjects import SubjectFactory

__all__ = ["MachineState", "expect_refusal"]


def expect_refusal(expected: type[StoreError], call: Callable[[], object]) -> None:
    """Call, expecting ``expected``: an answer or another error is a disagreement."""
    try:
        call()
    except StoreError as error:
        if not isinstance(error, expected):
            raise AssertionError(f"expected {expected.__name__}, got {error!r}") from error
        return
    raise AssertionError(f"expected {expected.__name__}, got an answer")


class MachineState(RuleBasedStateMachine):
    """The state of :class:`~modelcache.store.testing.StoreMachine`, without its rules.

    :param make_subject: called once, with a fresh scratch directory, for the subject.
    """

    def __init__(self, make_subject: SubjectFactory) -> None:
        super().__init__()
        self.scratch = Path(tempfile.mkdtemp(prefix="modelcache-machine-"))
        self.subject = make_subject(self.scratch)
        self.store = self.subject.store
        versions = itertools.count(1)
        self.tiers = {tier.store.tier: tier for tier in self.subject.tiers or (self.subject,)}
        self.models = {name: TierModel(name, versions) for name in self.tiers}
        self.model: TierModel | LayeredModel = self.models[self.store.tier]
        if isinstance(self.store, LayeredStore):
            self.model = LayeredModel(
                self.models["local"],
                self.models.get("cloud"),
                write_through=self.store.write_through,
            )
        self.maintained = sorted(
            name for name, tier in self.tiers.items() if isinstance(tier.store, MaintainedStore)
        )
        self.contents: dict[str, bytes] = {}  # by SHA-256: every content ever published
        self.serial = 0

    def teardown(self) -> None:
        try:
            self.subject.close()
        finally:
            shutil.rmtree(self.scratch, ignore_errors=True)

    # -- helpers ---------------------------------------------------------------------------

    def fresh_path(self, name: str) -> Path:
        self.serial += 1
        return self.scratch / f"{name}-{self.serial}"

    def new_entry(
        self, number: int, files: Mapping[str, bytes], run_seconds: float | None
    ) -> tuple[Path, ModelEntry]:
        """A model directory of ``files`` in scratch, and the entry it makes under key
        number ``number``."""
        source = self.fresh_path("source")
        source.mkdir()
        for path, data in files.items():
            (source / path).parent.mkdir(parents=True, exist_ok=True)
            (source / path).write_bytes(data)
            self.contents[sha256_of(data)] = data
        key, inputs = key_of(number)
        manifest = build_manifest(
            key=key,
            key_inputs=inputs,
            model_type="onnx",
            directory=source,
            run_seconds=run_seconds,
            created="2026-01-01T00:00:00Z",
            producer="contract",
        )
        return source, ModelEntry(files=dict(files), manifest=manifest)

    def resolve(self, layout: Mapping[str, bytes | int]) -> dict[str, bytes]:
        """Fresh contents as they are; an index picks a content published before."""
        known = sorted(self.contents.values())
        return {
            path: content
            if isinstance(content, bytes)
            else known[content % len(known)]
            if known
            else bytes([content % 256])
            for path, content in layout.items()
        }

    def has_blobs(self, tiers: list[Tier] | None = None) -> bool:
        return any(
            parse_blob_name(name) is not None
            for tier in (self.tiers if tiers is None else tiers)
            for name in self.models[tier].objects
        )

    def draw_blob(self, data: st.DataObject, tiers: list[Tier]) -> tuple[Tier, str]:
        tier = data.draw(
            st.sampled_from([tier for tier in tiers if self.has_blobs([tier])]), label="tier"
        )
        names = sorted(name for name in self.models[tier].objects if parse_blob_name(name))
        return tier, data.draw(st.sampled_from(names), label="blob")

    def draw_name(self, data: st.DataObject, tier: Tier) -> str:
        """A name the tier holds (often a damaged blob, when there is one), or one it does
        not."""
        objects = self.models[tier].objects
        names = sorted(objects)
        damaged = [
            name for name in names if parse_blob_name(name) not in (None, sha256_of(objects[name]))
        ]
        choices = [
            st.sampled_from([blob_name(sha256_of(b"never stored")), lock_name(key_of(99)[0])])
        ]
        choices += [st.sampled_from(names)] * 2 if names else []
        choices += [st.sampled_from(damaged)] if damaged else []
        return data.draw(st.one_of(choices), label="name")

    def check_raw(self, tier: Tier, name: str) -> None:
        assert self.tiers[tier].get_object(name) == self.models[tier].objects.get(name)

    def check_manifests(self, key: str) -> None:
        """Every tier holds the manifest of ``key`` if and only if the model says so."""
        for tier in self.tiers:
            self.check_raw(tier, manifest_name(key))

    def publish_into(
        self, tier: Tier | None, number: int, layout: dict[str, bytes | int], seconds: float | None
    ) -> str:
        """Publish an entry into the store, or straight into one of its tiers."""
        source, entry = self.new_entry(number, self.resolve(layout), seconds)
        store = self.store if tier is None else self.tiers[tier].store
        model = self.model if tier is None else self.models[tier]
        published = store.publish(source, entry.manifest)
        assert published is model.publish(entry)
        self.check_manifests(entry.manifest.key)
        shutil.rmtree(source)
        return entry.manifest.key

    def maintained_store(self, tier: Tier) -> MaintainedStore:
        store = self.tiers[tier].store
        assert isinstance(store, MaintainedStore)
        return store
