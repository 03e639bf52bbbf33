"""Signed entries and the trust rules: what is signed, what is refused and why, and the two
trusted stores. Shared secrets (``HmacKey``) here; key pairs in the runner's
``test_signing.py``, end to end in ``tests/test_signed_cache.py``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from attrs import evolve

from modelcache.store import (
    HMAC_SHA256,
    HmacKey,
    InvalidManifest,
    LocalStore,
    Manifest,
    MemoryStore,
    Signature,
    Trust,
    TrustedLocalStore,
    TrustedStore,
    UntrustedEntry,
    check_evaluation,
    check_manifest,
    manifest_problem,
    sign_evaluation,
    sign_manifest,
    signer_of,
)

from .entries import entry

TEAM = HmacKey("team", b"team secret, at least 16 bytes")
OTHER = HmacKey("other", b"another secret of 16+ bytes")
#: The same name as TEAM, another secret: what a writer guessing the key id can do.
IMPOSTOR = HmacKey("team", b"not the team's secret at all")
REQUIRED = Trust(checking=True, signers=(TEAM,), require_signatures=True)
OPTIONAL = Trust(checking=True, signers=(TEAM,))


@pytest.fixture
def two(tmp_path: Path) -> tuple[tuple[Path, Manifest], tuple[Path, Manifest]]:
    return entry(tmp_path, "a", {"model.onnx": b"weights a"}), entry(
        tmp_path, "b", {"model.onnx": b"weights b"}
    )


def signed(manifest: Manifest, key: HmacKey = TEAM) -> Manifest:
    return sign_manifest(manifest, Trust(signing_key=key))


# -- the signed bytes ---------------------------------------------------------------------------


def test_an_unsigned_manifest_is_stored_as_before(two: tuple) -> None:
    (_, manifest), _ = two
    assert "signature" not in json.loads(manifest.to_json())


def test_the_signature_covers_the_manifest_without_it(two: tuple) -> None:
    (_, manifest), _ = two
    document = json.loads(signed(manifest).to_json())
    assert document["signature"]["key_id"] == "team"
    assert document["signature"]["algorithm"] == HMAC_SHA256
    assert signed(manifest).signed_message().endswith(manifest.to_json())


def test_a_signed_manifest_reads_back_and_still_verifies(two: tuple) -> None:
    (_, manifest), _ = two
    read = Manifest.from_json(signed(manifest).to_json(), key=manifest.key)
    assert signer_of(read) == "team"
    assert check_manifest(read, REQUIRED) == read


def test_a_whole_run_time_is_signed_as_readers_read_it(two: tuple) -> None:
    (_, manifest), _ = two
    whole = evolve(manifest, run_seconds=12)  # an int, which readers read as 12.0
    read = Manifest.from_json(signed(whole).to_json())
    assert manifest_problem(read, REQUIRED) is None


def test_a_signed_manifest_is_not_signed_again(two: tuple) -> None:
    (_, manifest), _ = two
    once = signed(manifest)
    assert sign_manifest(once, Trust(signing_key=OTHER)) == once


@pytest.mark.parametrize(
    ("signature", "words"),
    [
        ({"key_id": "team", "algorithm": "rsa", "value": "00" * 32}, "unknown algorithm"),
        ({"key_id": "team", "algorithm": HMAC_SHA256, "value": "XYZ"}, "hex digits"),
        ({"key_id": "", "algorithm": HMAC_SHA256, "value": "00" * 32}, "key id"),
        ({"key_id": "team", "algorithm": HMAC_SHA256}, "exactly algorithm, key_id and value"),
        ("team:00", "not an object"),
        (None, "not an object"),
    ],
)
def test_a_malformed_signature_makes_the_manifest_invalid(
    two: tuple, signature: object, words: str
) -> None:
    (_, manifest), _ = two
    document = json.loads(manifest.to_json())
    document["signature"] = signature
    with pytest.raises(InvalidManifest, match=words):
        Manifest.from_json(json.dumps(document))


# -- the rules ------------------------------------------------------------------------------------


def test_an_unsigned_entry_is_a_miss_only_where_signatures_are_required(two: tuple) -> None:
    (_, manifest), _ = two
    assert manifest_problem(manifest, OPTIONAL) is None
    assert manifest_problem(manifest, Trust()) is None
    assert manifest_problem(manifest, REQUIRED) == "unsigned, and signatures are required"


def test_a_signature_by_a_key_not_trusted_is_refused_even_when_optional(two: tuple) -> None:
    (_, manifest), _ = two
    problem = manifest_problem(signed(manifest, OTHER), OPTIONAL)
    assert problem == "signed by key other (hmac-sha256), which this reader does not trust"


def test_a_signature_under_a_trusted_name_but_another_secret_does_not_match(two: tuple) -> None:
    (_, manifest), _ = two
    problem = manifest_problem(signed(manifest, IMPOSTOR), OPTIONAL)
    assert problem is not None
    assert "does not match" in problem


def test_a_tampered_signature_does_not_match(two: tuple) -> None:
    (_, manifest), _ = two
    good = signed(manifest)
    assert good.signature is not None
    flipped = ("1" if good.signature.value[0] == "0" else "0") + good.signature.value[1:]
    tampered = evolve(good, signature=evolve(good.signature, value=flipped))
    with pytest.raises(UntrustedEntry, match="does not match"):
        check_manifest(tampered, REQUIRED)


def test_a_signature_replayed_onto_another_entry_does_not_match(two: tuple) -> None:
    (_, a), (_, b) = two
    replayed = evolve(b, signature=signed(a).signature)
    assert "does not match" in (manifest_problem(replayed, REQUIRED) or "")


def test_a_signature_does_not_survive_a_change_of_files(two: tuple) -> None:
    (_, a), (_, b) = two
    swapped = evolve(signed(a), files=b.files)
    assert "does not match" in (manifest_problem(swapped, REQUIRED) or "")


def test_unchecked_trust_serves_anything(two: tuple) -> None:
    (_, manifest), _ = two
    assert manifest_problem(signed(manifest, IMPOSTOR), Trust()) is None


def test_the_writers_own_key_is_trusted(two: tuple) -> None:
    (_, manifest), _ = two
    own = Trust(checking=True, require_signatures=True, signing_key=OTHER)
    assert manifest_problem(signed(manifest, OTHER), own) is None


def test_rotation_trusts_old_and_new_until_the_old_is_removed(two: tuple) -> None:
    (_, manifest), _ = two
    old = signed(manifest, OTHER)
    both = Trust(checking=True, signers=(TEAM, OTHER), require_signatures=True)
    assert manifest_problem(old, both) is None
    assert manifest_problem(signed(manifest), both) is None
    assert "does not trust" in (manifest_problem(old, REQUIRED) or "")


def test_a_signature_never_shows_the_secret() -> None:
    assert "secret" not in repr(TEAM)
    with pytest.raises(ValueError, match="shorter than 16 bytes") as caught:
        HmacKey("team", b"short")
    assert "short'" not in str(caught.value)


def test_a_signature_value_is_checked_as_hex() -> None:
    with pytest.raises(InvalidManifest, match="hex"):
        Signature(key_id="team", algorithm=HMAC_SHA256, value="AB" * 32)


# -- evaluation results -------------------------------------------------------------------------

KEY_A, KEY_B = "a" * 64, "b" * 64


def test_an_evaluation_result_is_signed_and_read_back_without_its_signature() -> None:
    stored = sign_evaluation(KEY_A, "eval-1", {"size_bytes": 10}, Trust(signing_key=TEAM))
    assert "signature" in stored
    assert check_evaluation(KEY_A, "eval-1", stored, REQUIRED) == {"size_bytes": 10}


@pytest.mark.parametrize(("key", "fingerprint"), [(KEY_B, "eval-1"), (KEY_A, "eval-2")])
def test_an_evaluation_signature_replayed_elsewhere_does_not_match(
    key: str, fingerprint: str
) -> None:
    stored = sign_evaluation(KEY_A, "eval-1", {"size_bytes": 10}, Trust(signing_key=TEAM))
    with pytest.raises(UntrustedEntry, match="does not match"):
        check_evaluation(key, fingerprint, stored, REQUIRED)


def test_changed_metrics_do_not_match_their_signature() -> None:
    stored = dict(sign_evaluation(KEY_A, "e", {"size_bytes": 10}, Trust(signing_key=TEAM)))
    stored["size_bytes"] = 1
    with pytest.raises(UntrustedEntry, match="does not match"):
        check_evaluation(KEY_A, "e", stored, OPTIONAL)


def test_an_unsigned_result_is_a_miss_where_required_and_served_where_optional() -> None:
    assert check_evaluation(KEY_A, "e", {"x": 1}, OPTIONAL) == {"x": 1}
    with pytest.raises(UntrustedEntry, match="unsigned"):
        check_evaluation(KEY_A, "e", {"x": 1}, REQUIRED)


def test_a_malformed_result_signature_is_a_miss_when_checking() -> None:
    stored = {"x": 1, "signature": "forged"}
    with pytest.raises(UntrustedEntry, match="not an object"):
        check_evaluation(KEY_A, "e", stored, OPTIONAL)
    assert check_evaluation(KEY_A, "e", stored, Trust()) == {"x": 1}


# -- the trusted stores ----------------------------------------------------------------------


def test_a_trusted_store_signs_on_publish_and_checks_on_fetch(tmp_path: Path, two: tuple) -> None:
    (source, manifest), _ = two
    memory = MemoryStore()
    writer = TrustedStore(memory, Trust(signing_key=TEAM))
    assert writer.publish(source, manifest)
    assert signer_of(memory.read_manifest(manifest.key)) == "team"
    reader = TrustedStore(memory, REQUIRED)
    assert reader.fetch(manifest.key, tmp_path / "out").signature is not None
    assert (tmp_path / "out" / "model.onnx").read_bytes() == b"weights a"


def test_an_untrusted_fetch_leaves_nothing(tmp_path: Path, two: tuple) -> None:
    (source, manifest), _ = two
    memory = MemoryStore()
    TrustedStore(memory, Trust(signing_key=OTHER)).publish(source, manifest)
    reader = TrustedStore(memory, REQUIRED)
    moved: list[int] = []
    with pytest.raises(UntrustedEntry, match="does not trust"):
        reader.fetch(manifest.key, tmp_path / "out", progress=moved.append)
    assert moved == []  # refused on its manifest, before any file was moved
    assert not (tmp_path / "out").exists()
    with pytest.raises(UntrustedEntry):
        reader.read_manifest(manifest.key)
    TrustedStore(memory, Trust()).fetch(manifest.key, tmp_path / "out", progress=moved.append)
    assert sum(moved) == len(b"weights a")  # the same fetch, unchecked, moves the files


def test_a_trusted_store_signs_and_checks_evaluation_results() -> None:
    memory = MemoryStore()
    TrustedStore(memory, Trust(signing_key=TEAM)).write_evaluation(KEY_A, "e", {"x": 1})
    assert "signature" in memory.read_evaluation(KEY_A, "e")
    assert TrustedStore(memory, REQUIRED).read_evaluation(KEY_A, "e") == {"x": 1}
    with pytest.raises(UntrustedEntry):
        TrustedStore(memory, Trust(checking=True, signers=(OTHER,))).read_evaluation(KEY_A, "e")


def test_the_trusted_local_store_leaves_untrusted_entries_out_of_its_snapshot(
    tmp_path: Path, two: tuple
) -> None:
    (source_a, a), (source_b, b) = two
    root = tmp_path / "cache"
    TrustedLocalStore(root, trust=Trust(signing_key=TEAM)).publish(source_a, a)
    LocalStore(root).publish(source_b, b)  # a writer with no key
    reader = TrustedLocalStore(root, trust=REQUIRED)
    assert [entry.key for entry in reader.snapshot([a.key, b.key])] == [a.key]
    with pytest.raises(UntrustedEntry, match="unsigned"):
        reader.fetch(b.key, tmp_path / "out")
    assert not (tmp_path / "out").exists()
