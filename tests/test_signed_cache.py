"""A shared cache that a writer without the team's key cannot poison (issue 16), on the local
store and on Azurite: poisoned, tampered, replayed, rotated, HMAC-signed and unsigned legacy
entries and evaluation results, through real runs; ``cache verify`` flags and removes what
no trusted signer vouches for. The rules one by one are in
``packages/store/tests/test_trust.py``; key pairs and the config in
``packages/runner/tests/test_signing.py``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from attrs import evolve

from modelcache.runner import maintenance
from modelcache.runner.cli import main
from modelcache.runner.signing import EcPrivateKey
from modelcache.store import HmacKey, Trust, evaluation_name, sign_manifest

from .signed_world import (
    Backend,
    Reference,
    World,
    honest_entry,
    notes,
    poisoned,
    steps,
    write_key_pair,
)

pytestmark = [pytest.mark.azurite]

SECRET = "the team's shared secret, 32 bytes"


@pytest.fixture(scope="module")
def reference(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Reference:
    """One honest, unsigned run: the keys, entries and final model every test compares with."""
    folder = tmp_path_factory.mktemp("reference")
    world = World(backend="local", folder=folder, model=tiny_model)
    report, final = world.run()
    keys = [step.key for step in report.steps if step.kind == "run"]
    return Reference(cache=world.shared_dir, keys=keys, final=final)


@pytest.fixture(scope="module")
def keys(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    folder = tmp_path_factory.mktemp("keys")
    return {name: write_key_pair(folder, name) for name in ("ci", "attacker", "old", "new")}


@pytest.fixture(params=["local", "azure"])
def world(request: pytest.FixtureRequest, tiny_model: Path, tmp_path: Path) -> World:
    backend: Backend = request.param
    if backend == "local":
        return World(backend=backend, folder=tmp_path, model=tiny_model)
    container = request.getfixturevalue("azure_container")
    return World(backend=backend, folder=tmp_path, model=tiny_model, container=container)


def signing(pair: tuple[Path, Path]) -> dict[str, Any]:
    return {"signing": {"key": str(pair[0])}}


def trusting(*pairs: tuple[Path, Path], required: bool = True) -> dict[str, Any]:
    signers = [{"public_key": str(public)} for _, public in pairs]
    return {"trust": {"signers": signers, "require_signatures": required}}


def key_of(pair: tuple[Path, Path]) -> EcPrivateKey:
    return EcPrivateKey.from_pem(pair[0].read_bytes())


# -- poisoning ----------------------------------------------------------------------------------


@pytest.mark.parametrize("attacker_signs", [False, True], ids=["unsigned", "own-key"])
def test_a_writer_without_a_trusted_key_cannot_poison_the_cache(
    world: World, reference: Reference, keys: dict, attacker_signs: bool
) -> None:
    final = reference.final_key
    source, manifest = poisoned(reference, final, world.folder)
    world.publish(source, manifest, key_of(keys["attacker"]) if attacker_signs else None)

    report, model = world.run(**signing(keys["ci"]), **trusting(keys["ci"]))

    assert model == reference.final  # the honest weights, not the poisoned ones
    assert steps(report)[-2:] == ["run", "run"]  # after a failed download, in the cloud
    words = "signed by key" if attacker_signs else "unsigned, and signatures are required"
    assert f"entry {final} is untrusted: {words}" in notes(report)
    # The poisoned entry was never handed on; the next run serves the honest, signed one.
    again, model = world.run(**trusting(keys["ci"]))
    assert model == reference.final
    if world.backend == "local":
        assert steps(again) == ["skip", "skip"]


def test_verify_flags_and_repair_removes_untrusted_entries(
    world: World, reference: Reference, keys: dict
) -> None:
    first, last = reference.keys
    world.publish(*honest_entry(reference, first, world.folder), key_of(keys["ci"]))
    world.publish(*poisoned(reference, last, world.folder), key_of(keys["attacker"]))
    store = world.store()
    trust = Trust(checking=True, signers=(key_of(keys["ci"]).verifier(),), require_signatures=True)

    found = maintenance.verify(store, maintenance.take_inventory(store, now=time.time()),
                               trust=trust)  # fmt: skip
    assert list(found.untrusted_entries) == [last]
    assert not found.clean
    assert maintenance.verify(store, maintenance.take_inventory(store, now=time.time())).clean

    repaired = maintenance.verify(
        store, maintenance.take_inventory(store, now=time.time()), trust=trust, repair=True
    )
    assert repaired.removed_entries == [last]
    left = maintenance.take_inventory(store, now=time.time())
    assert list(left.entries) == [first]
    assert left.entries[first].summary().signed_by == key_of(keys["ci"]).key_id


# -- signatures that do not match ------------------------------------------------------------------


def test_a_tampered_signature_is_a_miss_even_where_signatures_are_optional(
    world: World, reference: Reference, keys: dict
) -> None:
    final = reference.final_key
    source, manifest = honest_entry(reference, final, world.folder)
    good = sign_manifest(manifest, Trust(signing_key=key_of(keys["ci"])))
    assert good.signature is not None
    value = good.signature.value
    tampered = evolve(good.signature, value=value[:-1] + ("0" if value[-1] != "0" else "1"))
    world.publish(source, evolve(good, signature=tampered))

    report, model = world.run(**trusting(keys["ci"], required=False))

    assert model == reference.final
    assert f"entry {final} is untrusted: its signature by key" in notes(report)
    assert "does not match" in notes(report)


def test_a_signature_replayed_from_another_entry_is_a_miss(
    world: World, reference: Reference, keys: dict
) -> None:
    first, last = reference.keys
    ci = Trust(signing_key=key_of(keys["ci"]))
    first_signature = sign_manifest(reference.manifest(first), ci).signature
    source, manifest = poisoned(reference, last, world.folder)
    world.publish(source, evolve(manifest, signature=first_signature))

    report, model = world.run(**trusting(keys["ci"]))

    assert model == reference.final
    assert "does not match" in notes(report)


# -- key rotation, HMAC, legacy caches ------------------------------------------------------------


def test_rotation_serves_old_and_new_until_the_old_key_is_dropped(
    world: World, reference: Reference, keys: dict
) -> None:
    old, new = keys["old"], keys["new"]
    for key in reference.keys:
        world.publish(*honest_entry(reference, key, world.folder), key_of(old))

    both, model = world.run(**signing(new), **trusting(old, new))
    assert model == reference.final
    assert "run" not in steps(both)

    dropped, model = world.run(**signing(new), **trusting(new))
    assert model == reference.final
    assert "run" in steps(dropped)
    assert "which this reader does not trust" in notes(dropped)


def test_hmac_signed_entries_are_served_to_readers_holding_the_secret(
    world: World, reference: Reference, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEAM_SECRET", SECRET)
    monkeypatch.setenv("WRONG_SECRET", "a secret that is not the team's")
    for key in reference.keys:
        world.publish(*honest_entry(reference, key, world.folder), HmacKey("team", SECRET.encode()))
    team = {"hmac_secret_env": "TEAM_SECRET", "key_id": "team"}
    wrong = {"hmac_secret_env": "WRONG_SECRET", "key_id": "team"}

    served, model = world.run(trust={"signers": [team], "require_signatures": True})
    assert model == reference.final
    assert "run" not in steps(served)

    refused, model = world.run(trust={"signers": [wrong], "require_signatures": True})
    assert model == reference.final
    assert "does not match" in notes(refused)
    assert SECRET not in json.dumps(refused.to_json())
    assert "a secret that is not" not in json.dumps(refused.to_json())


@pytest.mark.parametrize("required", [False, True], ids=["optional", "required"])
def test_an_unsigned_legacy_cache(
    world: World, reference: Reference, keys: dict, required: bool
) -> None:
    for key in reference.keys:
        world.publish(*honest_entry(reference, key, world.folder))

    report, model = world.run(**trusting(keys["ci"], required=required))

    assert model == reference.final
    if required:
        assert "run" in steps(report)
        assert "unsigned, and signatures are required" in notes(report)
    else:
        assert "run" not in steps(report)
        assert not report.notes


def test_a_reader_without_a_key_turns_uploads_off_where_signatures_are_required(
    world: World, reference: Reference, keys: dict
) -> None:
    report, model = world.run(**trusting(keys["ci"]))
    assert model == reference.final
    if world.backend == "azure":
        assert "uploads are off: signatures are required" in notes(report)
        assert maintenance.take_inventory(world.store(), now=time.time()).entries == {}


# -- evaluation results ---------------------------------------------------------------------------

EVALUATOR = {"evaluator": {"metrics": ["size"], "evaluate": "final"}}


def test_an_untrusted_evaluation_result_is_measured_again(
    world: World, reference: Reference, keys: dict
) -> None:
    ci = key_of(keys["ci"])
    for key in reference.keys:
        world.publish(*honest_entry(reference, key, world.folder), ci)
    report, _ = world.run(**signing(keys["ci"]), **trusting(keys["ci"]), **EVALUATOR)
    fingerprint, honest = _evaluation(world, reference.final_key)
    assert "signature" in honest
    store = world.store()
    forged = {**honest, "size_bytes": 1}  # the signature kept, the metric changed
    stored = next(store.list_objects(evaluation_name(reference.final_key, fingerprint)))
    assert store.delete_object(stored)
    assert store.create_object(stored.name, json.dumps(forged).encode())

    again, _ = world.run(**signing(keys["ci"]), **trusting(keys["ci"]), **EVALUATOR)

    measured = again.metrics["prune"]["size_bytes"]
    assert measured == report.metrics["prune"]["size_bytes"] != 1
    assert f"evaluation result {fingerprint} of entry {reference.final_key}" in notes(again)
    verified = maintenance.verify(
        store,
        maintenance.take_inventory(store, now=time.time()),
        trust=Trust(checking=True, signers=(ci.verifier(),)),
        repair=True,
    )
    assert verified.removed_evaluations == [stored.name]


def _evaluation(world: World, key: str) -> tuple[str, dict[str, Any]]:
    store = world.store()
    (stored,) = list(store.list_objects(f"modelcache-v1/evaluations/{key}/"))
    fingerprint = stored.name.rsplit("/", 1)[1].removesuffix(".json")
    data = store.read_object(stored.name, 1 << 20)
    assert data is not None
    return fingerprint, json.loads(data)


# -- the command line -----------------------------------------------------------------------------


def test_cache_ls_says_who_signed_and_verify_removes_the_untrusted(
    reference: Reference, keys: dict, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    world = World(backend="local", folder=tmp_path, model=Path("unused"))
    first, last = reference.keys
    world.publish(*honest_entry(reference, first, tmp_path), key_of(keys["ci"]))
    world.publish(*poisoned(reference, last, tmp_path), key_of(keys["attacker"]))
    config = tmp_path / "workflow.json"
    config.write_text(json.dumps({
        "input_model": {"type": "HfModel", "model_path": "m"},
        "passes": {"half": {"type": "TorchDtypeCast"}},
        "cache_dir": "shared",
        **trusting(keys["ci"]),
    }))  # fmt: skip

    assert main(["cache", "ls", "--config", str(config)]) == 0
    listing = capsys.readouterr().out
    assert key_of(keys["ci"]).key_id[:12] in listing
    assert f"{key_of(keys['attacker']).key_id} (untrusted)" in listing

    assert main(["cache", "verify", "--config", str(config)]) == 1
    assert f"untrusted entry {last}: signed by key" in capsys.readouterr().out
    assert main(["cache", "verify", "--repair", "--config", str(config)]) == 0
    assert main(["cache", "verify", "--config", str(config)]) == 0
