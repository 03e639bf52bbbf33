"""The state machine's rules: random operations on a store, every answer checked against
the model.

:class:`StoreMachine` publishes, fetches, snapshots, writes and reads evaluation results,
damages blobs and plants manifests behind the store's back and, on every tier that is a
:class:`~modelcache.store.MaintainedStore`, lists, reads, hashes, creates and deletes
objects, and checks every answer against the model (``_model.py``). What the rules share
is in ``_machine_state.py``.
"""

from __future__ import annotations

import os
import shutil
from typing import Any

from attrs import frozen
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, consumes, initialize, multiple, precondition, rule

from .._errors import CorruptEntry, EntryNotFound, InvalidManifest
from .._layout import StoredObject, lock_name, manifest_name, run_record_name
from .._manifest import manifest_bytes
from .._port import Tier
from . import _draws as draws
from ._machine_state import MachineState, expect_refusal
from ._model import LayeredModel, ModelEntry, key_of, sha256_of

__all__ = ["StoreMachine"]


@frozen(kw_only=True)
class Listed:
    """An object as a tier listed it, and the model's version of it at that moment."""

    tier: Tier
    stored: StoredObject
    version: int


class StoreMachine(MachineState):
    """Random operations on one subject, every answer checked against the model.

    :param make_subject: called once, with a fresh scratch directory, for the subject.

    Rules for every store: publish, fetch (a known or an unknown key), read a manifest,
    snapshot, write and read evaluation results, and damage a blob behind the store's back.
    For a :class:`~modelcache.store.LayeredStore`, another runner also publishes entries and
    evaluation results straight into its cloud tier. For every tier that is a
    :class:`~modelcache.store.MaintainedStore`: list objects by prefix, read one with a size
    limit, hash one, create one (create-only), delete a listed one (only while unchanged),
    and delete a blob that a publish refreshed after it was listed (never deleted). When
    every tier is maintained: plant a bad manifest, have it refused, remove it as a repair
    does, and publish an entry under its key.
    """

    keys = Bundle("keys")
    listed = Bundle("listed")

    # -- every store -----------------------------------------------------------------------

    @initialize(
        target=keys, number=draws.numbers, layout=draws.layouts, run_seconds=draws.run_seconds
    )
    def publish_first(
        self, number: int, layout: dict[str, bytes | int], run_seconds: float | None
    ) -> str:
        """An entry from the start (in the cloud tier of a layered store: the next fetch
        fills the local tier), so that the rules that read one run from the first step."""
        cloud: Tier | None = (
            "cloud" if isinstance(self.model, LayeredModel) and "cloud" in self.tiers else None
        )
        return self.publish_into(cloud, number, layout, run_seconds)

    @rule(target=keys, number=draws.numbers, layout=draws.layouts, run_seconds=draws.run_seconds)
    def publish(
        self, number: int, layout: dict[str, bytes | int], run_seconds: float | None
    ) -> str:
        return self.publish_into(None, number, layout, run_seconds)

    @rule(key=keys)
    def fetch(self, key: str) -> None:
        destination = self.fresh_path("fetched")
        expected = self.model.fetch(key)
        if not isinstance(expected, ModelEntry):
            expect_refusal(expected, lambda: self.store.fetch(key, destination))
            assert not [name for name in os.listdir(self.scratch) if "fetched" in name]
            self.check_manifests(key)
            return
        manifest = self.store.fetch(key, destination)
        assert manifest_bytes(manifest) == manifest_bytes(expected.manifest)
        written = {
            path.relative_to(destination).as_posix(): path.read_bytes()
            for path in destination.rglob("*")
            if path.is_file()
        }
        assert written == expected.files
        shutil.rmtree(destination)
        self.check_manifests(key)

    @rule(key=draws.unknown_keys)
    def fetch_unknown(self, key: str) -> None:
        destination = self.fresh_path("fetched")
        expect_refusal(EntryNotFound, lambda: self.store.fetch(key, destination))
        assert not destination.exists()

    @rule(key=keys)
    def read_manifest(self, key: str) -> None:
        expected = self.model.read_manifest(key)
        if expected is None:
            expect_refusal(EntryNotFound, lambda: self.store.read_manifest(key))
            return
        assert manifest_bytes(self.store.read_manifest(key)) == manifest_bytes(expected.manifest)

    @rule(keys=st.lists(keys, max_size=5), others=st.lists(draws.unknown_keys, max_size=3))
    def snapshot(self, keys: list[str], others: list[str]) -> None:
        wanted = keys + others
        listing = self.store.snapshot(wanted)
        assert len({item.key for item in listing}) == len(listing)
        assert {item.key: item for item in listing} == self.model.snapshot(wanted)

    @rule(
        key=keys | draws.keys_without_entries,
        fingerprint=st.sampled_from(draws.FINGERPRINTS),
        result=draws.results,
    )
    def write_evaluation(self, key: str, fingerprint: str, result: dict[str, Any]) -> None:
        self.store.write_evaluation(key, fingerprint, result)
        self.model.write_evaluation(key, fingerprint, result)

    @rule(key=keys | draws.keys_without_entries, fingerprint=st.sampled_from(draws.FINGERPRINTS))
    def read_evaluation(self, key: str, fingerprint: str) -> None:
        expected = self.model.read_evaluation(key, fingerprint)
        if expected is None:
            expect_refusal(EntryNotFound, lambda: self.store.read_evaluation(key, fingerprint))
        else:
            assert dict(self.store.read_evaluation(key, fingerprint)) == expected

    @precondition(lambda self: self.has_blobs())
    @rule(data=st.data(), cut=st.booleans())
    def damage_a_blob(self, data: st.DataObject, cut: bool) -> None:
        """Flip a byte (the size stays: unseen until read) or cut one off (a publish that
        needs the blob writes it again)."""
        tier, name = self.draw_blob(data, list(self.tiers))
        self.check_raw(tier, name)
        content = self.contents[name.rpartition("/")[2]]
        if not content:
            damaged = b"\0"
        elif cut:
            damaged = content[:-1]
        else:
            damaged = bytes([content[0] ^ 1]) + content[1:]
        self.tiers[tier].put_object(name, damaged)
        self.models[tier].put(name, damaged)

    @precondition(lambda self: len(self.bundle("keys")) > 4)
    @rule(key=consumes(keys))
    def forget_a_key(self, key: str) -> None:
        """Keep the bundle small, so that rules often meet the same keys again."""

    # -- a layered store's cloud tier, written by another runner ---------------------------

    @precondition(lambda self: isinstance(self.model, LayeredModel) and "cloud" in self.tiers)
    @rule(target=keys, number=draws.numbers, layout=draws.layouts, run_seconds=draws.run_seconds)
    def another_runner_uploads(
        self, number: int, layout: dict[str, bytes | int], run_seconds: float | None
    ) -> str:
        return self.publish_into("cloud", number, layout, run_seconds)

    @precondition(lambda self: isinstance(self.model, LayeredModel) and "cloud" in self.tiers)
    @rule(
        key=keys | draws.keys_without_entries,
        fingerprint=st.sampled_from(draws.FINGERPRINTS),
        result=draws.results,
    )
    def another_runner_evaluates(self, key: str, fingerprint: str, result: dict[str, Any]) -> None:
        self.tiers["cloud"].store.write_evaluation(key, fingerprint, result)
        self.models["cloud"].write_evaluation(key, fingerprint, result)

    # -- maintenance, on every tier that offers it -----------------------------------------

    @precondition(lambda self: self.maintained)
    @rule(target=listed, data=st.data())
    def list_objects(self, data: st.DataObject) -> Any:
        tier = data.draw(st.sampled_from(self.maintained), label="tier")
        model = self.models[tier]
        fixed = st.sampled_from(draws.PREFIXES)
        cut = st.tuples(st.sampled_from(sorted(model.objects)), st.integers(0, 90)).map(
            lambda pair: pair[0][: pair[1]]
        )
        prefix = data.draw(fixed | cut if model.objects else fixed, label="prefix")
        listing = list(self.maintained_store(tier).list_objects(prefix))
        expected = {name: len(content) for name, content in model.objects.items()}
        assert sorted((item.name, item.size) for item in listing) == sorted(
            (name, size) for name, size in expected.items() if name.startswith(prefix)
        )
        if not listing:
            return multiple()
        stored = data.draw(st.sampled_from(listing), label="listed")
        return Listed(tier=tier, stored=stored, version=model.versions[stored.name])

    @rule(listed=consumes(listed))
    def delete_listed(self, listed: Listed) -> None:
        model = self.models[listed.tier]
        unchanged = model.versions.get(listed.stored.name) == listed.version
        assert self.maintained_store(listed.tier).delete_object(listed.stored) is unchanged
        if unchanged:
            model.remove(listed.stored.name)
        self.check_raw(listed.tier, listed.stored.name)

    @precondition(lambda self: self.has_blobs(self.maintained))
    @rule(target=keys, data=st.data())
    def delete_a_blob_a_publish_refreshed(self, data: st.DataObject) -> str:
        """A prune lists a blob, a publisher reuses it, the prune's delete fails."""
        tier, name = self.draw_blob(data, self.maintained)
        store = self.maintained_store(tier)
        model = self.models[tier]
        (stored,) = store.list_objects(name)
        assert stored.size == len(model.objects[name])
        before = model.versions[name]
        content = self.contents[name.rpartition("/")[2]]
        source, entry = self.new_entry(10_000 + self.serial, {"reused.bin": content}, None)
        assert model.publish(entry)  # a new key: the blob is refreshed, or written again
        assert self.tiers[tier].store.publish(source, entry.manifest)
        shutil.rmtree(source)
        assert model.versions[name] != before
        assert store.delete_object(stored) is False
        self.check_raw(tier, name)
        return entry.manifest.key

    @precondition(lambda self: self.maintained == sorted(self.tiers))
    @rule(
        target=keys,
        planted=draws.refused_manifests,
        number=draws.numbers,
        layout=draws.layouts,
        run_seconds=draws.run_seconds,
    )
    def publish_after_a_repair(
        self,
        planted: bytes,
        number: int,
        layout: dict[str, bytes | int],
        run_seconds: float | None,
    ) -> str:
        """A bad manifest is planted, refused, and removed as ``cache verify --repair``
        removes it (a conditional delete of what was listed), then an entry is published
        under its key: a store that remembers refusing the key must list and read it."""
        source, entry = self.new_entry(number, self.resolve(layout), run_seconds)
        key = entry.manifest.key
        name = manifest_name(key)
        self.subject.put_object(name, planted)
        for model in self.models.values():
            model.plant(name, planted)
        expect_refusal(InvalidManifest, lambda: self.store.read_manifest(key))
        for tier in self.tiers:
            store = self.maintained_store(tier)
            (stored,) = store.list_objects(name)
            assert store.delete_object(stored)
            self.models[tier].remove(name)
        assert self.store.publish(source, entry.manifest)
        assert self.model.publish(entry)
        shutil.rmtree(source)
        self.check_manifests(key)
        listing = {item.key: item for item in self.store.snapshot([key])}
        assert listing == self.model.snapshot([key])
        assert manifest_bytes(self.store.read_manifest(key)) == manifest_bytes(entry.manifest)
        return key

    @precondition(lambda self: self.maintained)
    @rule(data=st.data(), margin=st.sampled_from([-1, 0, 1]))
    def read_object(self, data: st.DataObject, margin: int) -> None:
        tier = data.draw(st.sampled_from(self.maintained), label="tier")
        name = self.draw_name(data, tier)
        expected = self.models[tier].objects.get(name)
        limit = max(0, (0 if expected is None else len(expected)) + margin)
        store = self.maintained_store(tier)
        if expected is not None and len(expected) > limit:
            expect_refusal(CorruptEntry, lambda: store.read_object(name, limit))
        else:
            assert store.read_object(name, limit) == expected

    @precondition(lambda self: self.maintained)
    @rule(data=st.data())
    def hash_object(self, data: st.DataObject) -> None:
        tier = data.draw(st.sampled_from(self.maintained), label="tier")
        name = self.draw_name(data, tier)
        expected = self.models[tier].objects.get(name)
        found = self.maintained_store(tier).hash_object(name)
        assert found == (None if expected is None else sha256_of(expected))

    @precondition(lambda self: self.maintained)
    @rule(
        data=st.data(),
        fresh=st.one_of(
            st.text("abc012", min_size=1, max_size=2).map(
                lambda token: run_record_name("20260101T000000Z", token)
            ),
            st.integers(0, 60).map(lambda number: lock_name(key_of(number)[0])),
        ),
        content=st.binary(max_size=32),
    )
    def create_object(self, data: st.DataObject, fresh: str, content: bytes) -> None:
        """A run record or a lock (layout names nothing else reads), or a name taken."""
        tier = data.draw(st.sampled_from(self.maintained), label="tier")
        model = self.models[tier]
        taken = sorted(model.objects)
        name = data.draw(st.just(fresh) | st.sampled_from(taken) if taken else st.just(fresh))
        expected = name not in model.objects
        assert self.maintained_store(tier).create_object(name, content) is expected
        if expected:
            model.put(name, content)
        self.check_raw(tier, name)
