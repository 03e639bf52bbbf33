"""Test support: an Azurite emulator per test session, and a request counter.

:class:`Azurite` runs ``node_modules/.bin/azurite-blob`` (installed by ``./dev setup`` from
``package.json``) on 127.0.0.1, on a port the system picks, with its data in a temporary
directory of its own. It is found through ``MODELCACHE_AZURITE`` (the path of the
``azurite-blob`` executable) or by looking for ``node_modules/.bin/azurite-blob`` in the
current directory, the directory of this file and their parents.

:class:`TrafficCounter` counts the HTTP requests a
client sends and the bytes they carry; give it to a store with
``client_options=counter.client_options``.
"""

from __future__ import annotations

import atexit
import ctypes
import datetime
import ipaddress
import os
import re
import shutil
import signal
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

from azure.core.pipeline import PipelineRequest, PipelineResponse

__all__ = ["ACCOUNT_KEY", "ACCOUNT_NAME", "Azurite", "AzuriteNotFound", "TrafficCounter"]

# Azurite's well-known development account (public, in Azurite's documentation).
ACCOUNT_NAME = "devstoreaccount1"
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)
_PR_SET_PDEATHSIG = 1
_LISTENING = re.compile(r"successfully listens on (https?)://[^:\s]+:(\d+)")


class AzuriteNotFound(FileNotFoundError):
    """``azurite-blob`` is not installed where the suite looks for it."""


def _find_executable() -> Path:
    configured = os.environ.get("MODELCACHE_AZURITE")
    if configured:
        path = Path(configured)
        if os.access(path, os.X_OK) and path.is_file():
            return path
        raise AzuriteNotFound(
            f"MODELCACHE_AZURITE={configured} is not an executable azurite-blob: fix it, or "
            "unset it and run ./dev setup"
        )
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for directory in (start, *start.parents):
            candidate = directory / "node_modules" / ".bin" / "azurite-blob"
            if os.access(candidate, os.X_OK):
                return candidate
    raise AzuriteNotFound(
        "node_modules/.bin/azurite-blob not found (the Azure tests need the Azurite "
        "emulator): run ./dev setup, or set MODELCACHE_AZURITE to an azurite-blob executable"
    )


def _self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    # cryptography comes with azure-identity (through msal); only https runs need it.
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


def _die_with_parent() -> None:
    # Runs in the child before exec: on Linux, have the kernel end the emulator when the
    # process that started it dies, even by SIGKILL (atexit covers an orderly exit).
    if sys.platform == "linux":
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Azurite:
    """One Azurite blob service, for tests and benchmarks.

    ``Azurite.start()`` returns once the service answers; :meth:`stop` ends it and removes
    its data. With ``https=True`` it serves TLS with a self-signed certificate
    (:attr:`certificate`, to give clients as ``connection_verify``) and accepts OAuth bearer
    tokens, checking their claims but not their signature (Azurite's ``--oauth basic``).

    :meth:`pause` and :meth:`resume` freeze and thaw the process (SIGSTOP, SIGCONT): the
    port stays open but nothing answers, as with a hung service. :meth:`kill` ends it at
    once (SIGKILL), as with a crash.
    """

    def __init__(self, process: subprocess.Popen[bytes], workdir: Path, scheme: str, port: int):
        self._process = process
        self._workdir = workdir
        self.scheme = scheme
        self.port = port
        self.certificate: Path | None = workdir / "cert.pem" if scheme == "https" else None

    @classmethod
    def start(cls, *, https: bool = False, timeout: float = 30.0) -> Azurite:
        """Start an emulator; raises :class:`AzuriteNotFound` if it is not installed."""
        executable = _find_executable()
        workdir = Path(tempfile.mkdtemp(prefix="modelcache-azurite-"))
        data = workdir / "data"
        data.mkdir()
        command = [
            str(executable),
            "--blobHost", "127.0.0.1",
            "--blobPort", "0",
            "--location", str(data),
            "--disableTelemetry",
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
        ]  # fmt: skip
        if https:
            cert, key = _self_signed_certificate(workdir)
            command += ["--cert", str(cert), "--key", str(key), "--oauth", "basic"]
        log = (workdir / "azurite.log").open("wb")
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        finally:
            log.close()
        deadline = time.monotonic() + timeout
        while True:
            text = (workdir / "azurite.log").read_text(errors="replace")
            found = _LISTENING.search(text)
            if found:
                server = cls(process, workdir, found.group(1), int(found.group(2)))
                break
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait()
                shutil.rmtree(workdir, ignore_errors=True)
                raise RuntimeError(f"Azurite did not start ({' '.join(command)}):\n{text}")
            time.sleep(0.05)
        atexit.register(server.stop)
        server._wait_until_answering(deadline)
        return server

    def _wait_until_answering(self, deadline: float) -> None:
        context = None
        if self.certificate is not None:
            context = ssl.create_default_context(cafile=str(self.certificate))
        while True:
            try:
                urllib.request.urlopen(self.account_url, timeout=2, context=context).close()
                return
            except urllib.error.HTTPError:
                return  # any HTTP answer will do
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    @property
    def account_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/{ACCOUNT_NAME}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol={self.scheme};AccountName={ACCOUNT_NAME};"
            f"AccountKey={ACCOUNT_KEY};BlobEndpoint={self.account_url};"
        )

    @property
    def running(self) -> bool:
        return self._process.poll() is None

    @property
    def pid(self) -> int:
        return self._process.pid

    @property
    def data_directory(self) -> Path:
        return self._workdir / "data"

    def pause(self) -> None:
        """Freeze the emulator (SIGSTOP): connections are accepted, nothing is answered."""
        os.kill(self._process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        """Thaw a paused emulator (SIGCONT)."""
        os.kill(self._process.pid, signal.SIGCONT)

    def kill(self) -> None:
        """End the emulator at once (SIGKILL), keeping its data directory until :meth:`stop`."""
        if self._process.poll() is None:
            self._process.kill()
        self._process.wait()

    def stop(self) -> None:
        """End the emulator (SIGTERM, then SIGKILL after 10 s) and remove its data. Also
        done at interpreter exit for an emulator still running; the kernel ends it if the
        process that started it dies (Linux)."""
        atexit.unregister(self.stop)
        if self._process.poll() is None:
            self.resume()
            self._process.terminate()
            try:
                self._process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        shutil.rmtree(self._workdir, ignore_errors=True)

    def __enter__(self) -> Azurite:
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.stop()


class TrafficCounter:
    """Counts the HTTP requests a client sends (each retry too), by method, and the bytes
    their bodies carry and their answers bring back.

    Give it to a client with ``client_options=counter.client_options``: it uses the storage
    SDK's ``raw_request_hook`` and ``raw_response_hook``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.methods: Counter[str] = Counter()
        self.bytes_sent = 0
        self.bytes_received = 0

    @property
    def client_options(self) -> dict[str, Any]:
        return {"raw_request_hook": self.on_request, "raw_response_hook": self.on_response}

    @property
    def requests(self) -> int:
        with self._lock:
            return sum(self.methods.values())

    def reset(self) -> None:
        with self._lock:
            self.methods.clear()
            self.bytes_sent = 0
            self.bytes_received = 0

    def on_request(self, request: PipelineRequest[Any]) -> None:
        length = int(request.http_request.headers.get("Content-Length", 0) or 0)
        with self._lock:
            self.methods[request.http_request.method] += 1
            self.bytes_sent += length

    def on_response(self, response: PipelineResponse[Any, Any]) -> None:
        if response.http_request.method == "HEAD":
            return
        length = int(response.http_response.headers.get("Content-Length", 0) or 0)
        with self._lock:
            self.bytes_received += length
