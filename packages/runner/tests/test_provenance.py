"""The delivered model's OpenSSF model-signing signature (``modelcache.runner.provenance``),
checked with model-signing's own command line: accepted with the signer's public key, refused
with another, or when a file is changed, added or removed; no signature and a note for a
shared secret or without the package; and whole runs delivering a signed model."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from modelcache.runner.config import parse_config
from modelcache.runner.keyvault import KeyVaultSigningKey
from modelcache.runner.provenance import SIGNATURE_FILE, sign_model
from modelcache.runner.reporting import RunReport
from modelcache.runner.signing import EcPrivateKey, EcPublicKey
from modelcache.runner.workflow import execute, prepare
from modelcache.store import HmacKey, LocalStore

from .vault_double import VaultDouble

#: model-signing's command line, installed beside this interpreter by the signing extra.
CLI = Path(sys.executable).parent / "model_signing"


def verify(model: Path, public_key: Path, signature: Path | None = None) -> tuple[bool, str]:
    """``model_signing verify key``, as a deployment runs it: whether it accepts, and why."""
    done = subprocess.run(
        [str(CLI), "verify", "key", str(model),
         "--signature", str(signature or model / SIGNATURE_FILE),
         "--public_key", str(public_key)],
        capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    return done.returncode == 0, done.stdout + done.stderr


def write_public(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    path.write_bytes(
        key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


@pytest.fixture
def model(tmp_path: Path) -> Path:
    folder = tmp_path / "tiny"
    (folder / "sub").mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(bytes(range(256)) * 64)
    (folder / "config.json").write_text('{"hidden_size": 8}\n')
    (folder / "sub" / "tokenizer.json").write_text("{}\n")
    return folder


@pytest.fixture
def signer(tmp_path: Path) -> tuple[EcPrivateKey, Path]:
    """A P-256 key pair: the private key (also in ``ci.pem``) and ``ci.pub.pem``."""
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (tmp_path / "ci.pem").write_bytes(pem)
    return EcPrivateKey.from_pem(pem), write_public(key, tmp_path / "ci.pub.pem")


@pytest.fixture
def key_file(tmp_path: Path, signer: tuple[EcPrivateKey, Path]) -> Path:
    """The signer's private key as the config names it: an unencrypted PEM file."""
    return tmp_path / "ci.pem"


def files(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_a_signed_model_verifies_with_model_signings_cli(model: Path, signer: tuple) -> None:
    key, public = signer
    before = files(model)
    provenance = sign_model(model, key)
    assert provenance.note is None
    assert provenance.signature == model / SIGNATURE_FILE
    accepted, said = verify(model, public)
    assert accepted, said
    after = files(model)
    assert after.pop(SIGNATURE_FILE)
    assert after == before  # the model's own files are untouched


def test_a_key_vault_key_signs_a_model_the_cli_verifies(model: Path, tmp_path: Path) -> None:
    vault = VaultDouble(ec.generate_private_key(ec.SECP256R1()))
    public = write_public(vault.key, tmp_path / "vault.pub.pem")
    url = "https://team-vault.vault.azure.net/keys/ci"
    key = KeyVaultSigningKey(vault, EcPublicKey.from_pem(public.read_bytes()), url=url)
    assert sign_model(model, key).signature == model / SIGNATURE_FILE
    accepted, said = verify(model, public)
    assert accepted, said
    assert len(vault.requests) == 1  # one request to the vault: the envelope's digest


@pytest.mark.parametrize("change", ["tamper", "add", "remove"])
def test_a_changed_model_fails_verification(model: Path, signer: tuple, change: str) -> None:
    key, public = signer
    sign_model(model, key)
    weights = model / "model.safetensors"
    if change == "tamper":
        data = bytearray(weights.read_bytes())
        data[-1] ^= 1
        weights.write_bytes(bytes(data))
    elif change == "add":
        (model / "backdoor.py").write_text("print('hi')\n")
    else:
        (model / "config.json").unlink()
    accepted, said = verify(model, public)
    assert not accepted
    assert "Verification failed" in said


def test_another_public_key_fails_verification(model: Path, signer: tuple, tmp_path: Path) -> None:
    key, _ = signer
    sign_model(model, key)
    other = write_public(ec.generate_private_key(ec.SECP256R1()), tmp_path / "other.pub.pem")
    accepted, said = verify(model, other)
    assert not accepted
    assert "Key mismatch" in said


def test_a_shared_secret_signs_no_model_and_says_why(model: Path) -> None:
    provenance = sign_model(model, HmacKey("team", b"a secret of sixteen bytes or more"))
    assert provenance.signature is None
    assert provenance.note is not None
    assert "no shared-secret (HMAC) mode" in provenance.note
    assert not (model / SIGNATURE_FILE).exists()


def test_without_model_signing_the_note_says_how_to_install_it(
    model: Path, signer: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "model_signing", None)
    monkeypatch.delitem(sys.modules, "modelcache.runner._openssf", raising=False)
    provenance = sign_model(model, signer[0])
    assert provenance.signature is None
    assert provenance.note == (
        "the delivered model is not signed: the model-signing package is not installed "
        '(model_signing is missing); pip install "modelcache-runner[signing]"'
    )
    assert not (model / SIGNATURE_FILE).exists()


def test_a_model_with_its_own_model_sig_is_left_alone(model: Path, signer: tuple) -> None:
    (model / SIGNATURE_FILE).write_bytes(b"the model's own")
    provenance = sign_model(model, signer[0])
    assert provenance.signature is None
    assert provenance.note is not None
    assert SIGNATURE_FILE in provenance.note
    assert (model / SIGNATURE_FILE).read_bytes() == b"the model's own"


def test_the_signature_holds_no_key_material(model: Path, signer: tuple) -> None:
    key, public = signer
    sign_model(model, key)
    text = (model / SIGNATURE_FILE).read_text()
    body = b"".join(public.read_bytes().splitlines()[1:-1]).decode()
    assert body not in text  # only the public key's SHA-256, as their key signer writes
    assert "PRIVATE" not in text


# -- whole runs -----------------------------------------------------------------------------------


def run(tiny_bert: Path, folder: Path, output: str, **sections: Any) -> RunReport:
    """The tiny workflow in-process, every run sharing ``folder``'s cache."""
    document = {
        "input_model": {"type": "HfModel", "model_path": str(tiny_bert)},
        "passes": {"cast": {"type": "TorchDtypeCast", "dtype": "float16"}},
        "cache_dir": "cache",
        "output_dir": output,
        **sections,
    }
    return execute(prepare(parse_config(document, base_dir=folder)))


def test_a_run_with_a_key_pair_delivers_a_model_the_cli_verifies(
    tiny_bert: Path, tmp_path: Path, signer: tuple, key_file: Path
) -> None:
    report = run(tiny_bert, tmp_path, "signed", signing={"key": str(key_file)})
    output = tmp_path / "signed"
    assert report.model_signature == str(output / SIGNATURE_FILE)
    assert report.to_json()["model_signature"] == report.model_signature
    accepted, said = verify(output, signer[1])
    assert accepted, said
    # The cache entry never holds the signature; the folder holds what it held unsigned.
    assert report.final_key is not None
    entry = LocalStore(tmp_path / "cache").read_manifest(report.final_key)
    assert SIGNATURE_FILE not in {file.path for file in entry.files}
    plain = run(tiny_bert, tmp_path, "plain")
    assert plain.model_signature is None
    assert "model_signature" not in plain.to_json()
    signed = files(output)
    assert signed.pop(SIGNATURE_FILE)
    assert signed == files(tmp_path / "plain")

    weights = output / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 1
    weights.write_bytes(bytes(data))
    accepted, said = verify(output, signer[1])
    assert not accepted
    assert "Signature mismatch" in said


def test_a_run_signing_with_a_shared_secret_says_once_that_its_model_is_unsigned(
    tiny_bert: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEAM_SECRET", "a secret of sixteen bytes or more")
    report = run(tiny_bert, tmp_path, "out",
                 signing={"hmac_secret_env": "TEAM_SECRET", "key_id": "team"})  # fmt: skip
    assert report.model_signature is None
    assert not (tmp_path / "out" / SIGNATURE_FILE).exists()
    said = [note for note in report.notes if "OpenSSF model-signing" in note]
    assert len(said) == 1
    assert "no shared-secret (HMAC) mode" in said[0]
