"""Key pairs (``modelcache.runner.signing``) and the config's signing and trust sections read
into a :class:`~modelcache.store.Trust` (``modelcache.runner.trust``): key ids, every
failure a one-line problem at its JSON path, and no secret in any of them."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from modelcache.runner.config import ConfigError, parse_config
from modelcache.runner.signing import EcPrivateKey, EcPublicKey, ec_key_id
from modelcache.runner.trust import load_trust
from modelcache.store import ECDSA_P256, HMAC_SHA256

SECRET = "a team secret of more than 16 bytes"


def private_pem(key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def public_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture
def pair(tmp_path: Path) -> tuple[ec.EllipticCurvePrivateKey, Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    (tmp_path / "ci.pem").write_bytes(private_pem(key))
    (tmp_path / "ci.pub.pem").write_bytes(public_pem(key))
    return key, tmp_path / "ci.pem", tmp_path / "ci.pub.pem"


def config(tmp_path: Path, **sections: Any) -> Any:
    document = {
        "input_model": {"type": "HfModel", "model_path": "m"},
        "passes": {"half": {"type": "TorchDtypeCast"}},
        **sections,
    }
    return parse_config(document, base_dir=tmp_path)


def test_a_key_pairs_id_is_the_sha256_of_its_public_key(pair: Any) -> None:
    key, private, public = pair
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    expected = hashlib.sha256(der).hexdigest()[:32]
    assert ec_key_id(key.public_key()) == expected
    assert EcPrivateKey.from_pem(private.read_bytes()).key_id == expected
    assert EcPublicKey.from_pem(public.read_bytes()).key_id == expected


def test_a_private_key_signs_what_its_public_key_verifies(pair: Any) -> None:
    _, private, public = pair
    signer = EcPrivateKey.from_pem(private.read_bytes())
    verifier = EcPublicKey.from_pem(public.read_bytes())
    signature = signer.sign(b"message")
    assert verifier.algorithm == signer.algorithm == ECDSA_P256
    assert verifier.verify(b"message", signature)
    assert not verifier.verify(b"other message", signature)
    assert not verifier.verify(b"message", b"not DER at all")


def test_another_key_pair_does_not_verify(pair: Any) -> None:
    _, private, _ = pair
    other = EcPublicKey(ec.generate_private_key(ec.SECP256R1()).public_key())
    assert not other.verify(b"m", EcPrivateKey.from_pem(private.read_bytes()).sign(b"m"))


@pytest.mark.parametrize(
    ("pem", "words"),
    [
        (b"garbage", "not a PEM private key"),
        (private_pem(ec.generate_private_key(ec.SECP384R1())), "not an EC P-256"),
        (private_pem(ed25519.Ed25519PrivateKey.generate()), "not an EC P-256"),
        (
            ec.generate_private_key(ec.SECP256R1()).private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.BestAvailableEncryption(b"pw"),
            ),
            "encrypted",
        ),
    ],
)
def test_a_private_key_of_the_wrong_kind_is_one_line(pem: bytes, words: str) -> None:
    with pytest.raises(ValueError, match=words) as caught:
        EcPrivateKey.from_pem(pem)
    assert "\n" not in str(caught.value)
    assert "PRIVATE KEY-----\n" not in str(caught.value)


def test_the_private_key_never_shows(pair: Any) -> None:
    _, private, _ = pair
    key = EcPrivateKey.from_pem(private.read_bytes())
    assert repr(key) == f"EcPrivateKey(key_id={key.key_id!r})"


# -- the config's sections, read ----------------------------------------------------------


def test_a_config_reads_into_a_trust(pair: Any, tmp_path: Path) -> None:
    _, _, public = pair
    environ = {"TEAM_SECRET": SECRET, "KEY": (tmp_path / "ci.pem").read_text()}
    trust = load_trust(
        config(
            tmp_path,
            signing={"key": "env:KEY"},
            trust={
                "signers": [
                    {"public_key": public.name},
                    {"hmac_secret_env": "TEAM_SECRET", "key_id": "team"},
                ],
                "require_signatures": True,
            },
        ),
        environ,
    )
    assert trust.checking
    assert trust.require_signatures
    assert [(k.algorithm, k.key_id) for k in trust.signers] == [
        (ECDSA_P256, EcPublicKey.from_pem(public.read_bytes()).key_id),
        (HMAC_SHA256, "team"),
    ]
    assert trust.signing_key is not None
    assert trust.signing_key.key_id == trust.signers[0].key_id


def test_no_sections_check_nothing(tmp_path: Path) -> None:
    trust = load_trust(config(tmp_path), {})
    assert not trust.checking
    assert trust.signing_key is None


def test_every_unreadable_key_is_a_problem_at_its_path(pair: Any, tmp_path: Path) -> None:
    _, private, _ = pair
    document = config(
        tmp_path,
        signing={"hmac_secret_env": "UNSET", "key_id": "team"},
        trust={
            "signers": [
                {"public_key": "missing.pem"},
                {"public_key": private.name},  # a private key where a public one goes
                {"hmac_secret_env": "SHORT", "key_id": "team"},
                {"public_key": "env:EMPTY"},
            ]
        },
    )
    with pytest.raises(ConfigError) as caught:
        load_trust(document, {"SHORT": "tiny", "EMPTY": ""})
    problems = {problem.path: problem.problem for problem in caught.value.problems}
    assert problems == {
        "$.signing": "the environment variable UNSET holding the secret is not set",
        "$.trust.signers[0]": f"cannot read {tmp_path / 'missing.pem'}: No such file or directory",
        "$.trust.signers[1]": "not a PEM public key (-----BEGIN PUBLIC KEY-----)",
        "$.trust.signers[2]": "the HMAC secret of key 'team' is shorter than 16 bytes",
        "$.trust.signers[3]": "the environment variable EMPTY is not set or empty",
    }
    assert "tiny" not in str(caught.value)


def test_requiring_signatures_while_trusting_no_one_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\$\.trust\.signers: signatures are required"):
        load_trust(config(tmp_path, trust={"require_signatures": True}), {})


@pytest.mark.parametrize(
    ("sections", "path", "words"),
    [
        ({"signing": {"key": "k.pem", "hmac_secret_env": "S"}}, "$.signing", "exactly one"),
        ({"signing": {"hmac_secret_env": "S"}}, "$.signing", "needs a key_id"),
        ({"signing": {"key": "k.pem", "key_id": "x"}}, "$.signing", "derived"),
        ({"signing": {"key": "env:1X"}}, "$.signing", "environment variable"),
        ({"signing": {"secret": "inline"}}, "$.signing", "unknown field"),
        ({"trust": {"signers": {}}}, "$.trust.signers", "a list of signers"),
        ({"trust": {"signers": [{}]}}, "$.trust.signers[0]", "exactly one"),
        (
            {"trust": {"signers": [{"public_key": "p.pem"}, {"hmac_secret_env": "S"}]}},
            "$.trust.signers[1]",
            "needs a key_id",
        ),
        ({"trust": {"require_signatures": "yes"}}, "$.trust.require_signatures", "true or false"),
        ({"trust": []}, "$.trust", "an object"),
    ],
)
def test_a_malformed_section_is_a_problem_at_its_path(
    tmp_path: Path, sections: dict[str, Any], path: str, words: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        config(tmp_path, **sections)
    assert [problem.path for problem in caught.value.problems] == [path]
    assert words in caught.value.problems[0].problem
