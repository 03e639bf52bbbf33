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

from modelcache.planner import Download, Evaluate, Plan, Run, Skip
from modelcache.runner import maintenance
from modelcache.runner.cli import main
from modelcache.runner.signing import EcPrivateKey
from modelcache.store import HmacKey, Trust, TrustedStore, evaluation_name, sign_manifest

from .e2e import TINY_PASSES
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


# -- the plan sees what the run will refuse ----------------------------------------------------


def _primary(plan: Plan) -> list[str]:
    return [type(step).__name__.lower() for step in plan.steps
            if isinstance(step, Run | Skip | Download)]  # fmt: skip


@pytest.mark.parametrize("attacker_signs", [False, True], ids=["unsigned", "own-key"])
def test_the_plan_recomputes_what_the_run_will_refuse(
    world: World, reference: Reference, keys: dict, attacker_signs: bool
) -> None:
    first, final = reference.keys
    world.publish(*honest_entry(reference, first, world.folder), key_of(keys["ci"]))
    world.publish(*poisoned(reference, final, world.folder),
                  key_of(keys["attacker"]) if attacker_signs else None)  # fmt: skip
    sections = {**signing(keys["ci"]), **trusting(keys["ci"])}

    plan, said = world.plan(**sections)

    tier = "local" if world.backend == "local" else "cloud"
    reads_first = "skip" if tier == "local" else "download"
    assert _primary(plan) == [reads_first, "run"]
    words = "signed by key" if attacker_signs else "unsigned, and signatures are required"
    (note,) = said
    assert note.startswith(f"{tier} entry {final[:12]} refused ({words}")
    report, model = world.run(**sections)  # the run does what the plan said, after its refusal
    assert steps(report)[-2:] == [reads_first, "run"]
    assert model == reference.final
    # Without a trust section nothing is read before the plan is drawn, nor refused.
    plain, said = world.plan()
    assert said == []
    assert "run" not in _primary(plain)


def test_the_plan_leaves_signatures_it_cannot_check_to_the_run(
    world: World, reference: Reference, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, final = reference.keys
    world.publish(*honest_entry(reference, first, world.folder), HmacKey("team", SECRET.encode()))
    world.publish(*honest_entry(reference, final, world.folder))  # unsigned
    monkeypatch.delenv("TEAM_SECRET", raising=False)  # a laptop without the team's secret
    team = {"hmac_secret_env": "TEAM_SECRET", "key_id": "team"}

    plan, said = world.plan(trust={"signers": [team], "require_signatures": True})

    assert _primary(plan)[-1] == "run"  # the unsigned entry is refused all the same
    assert said[0].endswith("refused (unsigned, and signatures are required): planned "
                            "without it, as the run will")  # fmt: skip
    assert said[1] == (
        "1 signature(s) by keys this plan could not read were not checked ($.trust.signers[0]: "
        "the environment variable TEAM_SECRET holding the secret is not set); the run checks them"
    )
    monkeypatch.setenv("TEAM_SECRET", SECRET)
    plan, said = world.plan(trust={"signers": [team], "require_signatures": True})
    assert len(said) == 1  # checked now, and accepted


def test_the_plan_measures_again_a_result_the_run_will_refuse(
    world: World, reference: Reference, keys: dict
) -> None:
    ci = key_of(keys["ci"])
    for key in reference.keys:
        world.publish(*honest_entry(reference, key, world.folder), ci)
    sections = {**signing(keys["ci"]), **trusting(keys["ci"]), **EVALUATOR}
    fingerprint = world.fingerprint(**sections)
    signed = TrustedStore(world.store(), Trust(signing_key=ci))
    signed.write_evaluation(reference.final_key, fingerprint, {"size_bytes": 5})

    plan, said = world.plan(**sections)
    assert said == []
    assert [step.cached for step in plan.steps if isinstance(step, Evaluate)] == [True]

    store = world.store()
    name = evaluation_name(reference.final_key, fingerprint)
    stored = next(store.list_objects(name))
    forged = {**json.loads(store.read_object(name, 1 << 20) or b""), "size_bytes": 1}
    assert store.delete_object(stored)
    assert store.create_object(name, json.dumps(forged).encode())

    plan, said = world.plan(**sections)
    assert [step.cached for step in plan.steps if isinstance(step, Evaluate)] == [False]
    assert said == [
        f"evaluation result {fingerprint} of entry {reference.final_key} is untrusted: its "
        f"signature by key {ci.key_id} does not match it (tampered with, or copied from another "
        "entry): the plan has it measured again, as the run will"
    ]


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


def test_modelcache_plan_says_what_it_refused(
    reference: Reference, keys: dict, tiny_model: Path, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    world = World(backend="local", folder=tmp_path, model=tiny_model)
    final = reference.final_key
    world.publish(*poisoned(reference, final, tmp_path), key_of(keys["attacker"]))
    config = tmp_path / "workflow.json"
    config.write_text(json.dumps({
        "input_model": {"type": "HfModel", "model_path": str(tiny_model)},
        "passes": TINY_PASSES,
        "cache_dir": "shared",
        **trusting(keys["ci"]),
    }))  # fmt: skip

    assert main(["plan", "--format", "json", str(config)]) == 0

    drawn = capsys.readouterr()
    assert f"local entry {final[:12]} refused (signed by key" in drawn.err
    steps = json.loads(drawn.out)["steps"]
    assert [step["kind"] for step in steps if step["key"] == final] == ["run"]
