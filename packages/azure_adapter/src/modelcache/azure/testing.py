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
import contextlib
import ctypes
import datetime
import ipaddress
import json
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
import uuid
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
# The container crash() writes its markers to.
_CRASH_MARKERS = "azurite-crash-markers"
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
    once (SIGKILL), as with a crash, and :meth:`crash` does so once every acknowledged write
    is on disk; :meth:`restart` brings it back on the same port and data.
    """

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        workdir: Path,
        scheme: str,
        port: int,
        *,
        executable: Path | None = None,
        options: tuple[str, ...] = (),
    ):
        self._process = process
        self._workdir = workdir
        self.scheme = scheme
        self.port = port
        self.certificate: Path | None = workdir / "cert.pem" if scheme == "https" else None
        # How to start it again (restart()): the same executable, options, port and data.
        self._executable = executable
        self._options = options

    @classmethod
    def start(cls, *, https: bool = False, timeout: float = 30.0) -> Azurite:
        """Start an emulator; raises :class:`AzuriteNotFound` if it is not installed."""
        executable = _find_executable()
        workdir = Path(tempfile.mkdtemp(prefix="modelcache-azurite-"))
        (workdir / "data").mkdir()
        options: tuple[str, ...] = ()
        if https:
            cert, key = _self_signed_certificate(workdir)
            options = ("--cert", str(cert), "--key", str(key), "--oauth", "basic")
        try:
            process, scheme, port = cls._launch(executable, workdir, 0, options, timeout)
        except BaseException:
            shutil.rmtree(workdir, ignore_errors=True)
            raise
        server = cls(process, workdir, scheme, port, executable=executable, options=options)
        atexit.register(server.stop)
        server._wait_until_answering(time.monotonic() + timeout)
        return server

    @staticmethod
    def _launch(
        executable: Path, workdir: Path, port: int, options: tuple[str, ...], timeout: float
    ) -> tuple[subprocess.Popen[bytes], str, int]:
        command = [
            str(executable),
            "--blobHost", "127.0.0.1",
            "--blobPort", str(port),
            "--location", str(workdir / "data"),
            "--disableTelemetry",
            "--skipApiVersionCheck",
            "--loose",
            "--silent",
            *options,
        ]  # fmt: skip
        log_path = workdir / "azurite.log"
        log = log_path.open("wb")
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
            text = log_path.read_text(errors="replace")
            found = _LISTENING.search(text)
            if found:
                return process, found.group(1), int(found.group(2))
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                process.wait()
                raise RuntimeError(f"Azurite did not start ({' '.join(command)}):\n{text}")
            time.sleep(0.05)

    def restart(self, *, timeout: float = 30.0) -> None:
        """Start the emulator again after :meth:`kill` (or a crash), on the same port and
        data directory, as a service coming back up would; returns once it answers. What
        it keeps is what Azurite had saved to disk (it saves its blob index every few
        seconds), so the last moments before a kill may be forgotten."""
        if self.running:
            raise RuntimeError("Azurite is still running: kill() it first")
        executable = self._executable or _find_executable()
        self._process, _, _ = self._launch(
            executable, self._workdir, self.port, self._options, timeout
        )
        self._wait_until_answering(time.monotonic() + timeout)

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

    def crash(self, *, timeout: float = 20.0) -> None:
        """End the emulator at once (SIGKILL), as soon as it has saved to disk every write it
        acknowledged before this call: a crash of a durable service such as Azure Storage.
        (:meth:`kill` alone may lose the last few seconds: Azurite saves its index every 5 s.)
        Takes up to about 5 s; :meth:`restart` brings the service back."""
        from azure.core.exceptions import ResourceExistsError
        from azure.storage.blob import BlobServiceClient

        # A write of our own, after all those acknowledged so far: once the saved index
        # holds it, it holds them too.
        marker = uuid.uuid4().hex
        verify: Any = str(self.certificate) if self.certificate else True
        with BlobServiceClient.from_connection_string(
            self.connection_string, connection_verify=verify
        ) as service:
            container = service.get_container_client(_CRASH_MARKERS)
            with contextlib.suppress(ResourceExistsError):
                container.create_container()
            container.upload_blob(marker, b"saved")
        deadline = time.monotonic() + timeout
        while not self._saved(marker):
            if time.monotonic() > deadline:
                raise RuntimeError(f"Azurite did not save its index within {timeout} s")
            time.sleep(0.05)
        self.kill()

    def _saved(self, marker: str) -> bool:
        try:
            index = json.loads((self.data_directory / "__azurite_db_blob__.json").read_bytes())
            extents = (self.data_directory / "__azurite_db_blob_extent__.json").read_text()
        except (OSError, ValueError):  # not written yet, or being written
            return False
        for collection in index.get("collections", []):
            for blob in collection.get("data", []):
                if blob.get("containerName") == _CRASH_MARKERS and blob.get("name") == marker:
                    return str((blob.get("persistency") or {}).get("id")) in extents
        return False

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
