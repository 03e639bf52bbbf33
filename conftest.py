"""Suite-wide settings: Hypothesis profiles, chosen by MODELCACHE_HYPOTHESIS_PROFILE.

``ci`` (the default) keeps the whole suite within minutes on two cores; ``thorough`` runs
many more examples, for a developer who has the time.
"""

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile("thorough", max_examples=2000, deadline=None)
settings.load_profile(os.environ.get("MODELCACHE_HYPOTHESIS_PROFILE", "ci"))

# Olive (the [olive] extra) must send no telemetry from the suite.
os.environ.setdefault("OLIVE_DISABLE_TELEMETRY", "1")

# Input-model digests are remembered in the user's cache directory; the suite, and the runs it
# starts in subprocesses (which inherit this), keep theirs in a folder of its own instead.
if "MODELCACHE_DIGEST_CACHE" not in os.environ:
    import atexit
    import shutil
    import tempfile

    os.environ["MODELCACHE_DIGEST_CACHE"] = tempfile.mkdtemp(prefix="modelcache-digests-")
    atexit.register(shutil.rmtree, os.environ["MODELCACHE_DIGEST_CACHE"], True)


# ---------------------------------------------------------------------------------------------
# Azurite, the Azure Storage emulator, for the tests of the Azure adapter.

import contextlib  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def azurite() -> Iterator[Any]:
    """One Azurite blob service for the whole session (``modelcache.azure.testing.Azurite``).

    Fails, never skips, when Azurite is not installed: these tests must run in CI.
    """
    from modelcache.azure.testing import Azurite, AzuriteNotFound

    try:
        server = Azurite.start()
    except AzuriteNotFound as error:
        pytest.fail(str(error), pytrace=False)  # says: run ./dev setup
    yield server
    server.stop()


@pytest.fixture
def azure_container(azurite: Any) -> Iterator[tuple[str, str]]:
    """A new, empty container of its own: ``(connection_string, container_name)``."""
    from azure.core.exceptions import ResourceNotFoundError
    from azure.storage.blob import BlobServiceClient

    name = f"test-{uuid.uuid4().hex[:24]}"
    with BlobServiceClient.from_connection_string(azurite.connection_string) as service:
        service.create_container(name)
        yield azurite.connection_string, name
        with contextlib.suppress(ResourceNotFoundError):  # a test may have removed it
            service.delete_container(name)


# ---------------------------------------------------------------------------------------------
# The tiny model, for the runner's tests and the end-to-end tests alike.

import subprocess  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT (``modelcache.runner.tiny_model.build_tiny_bert``, seed 0), built
    once per session by the example's script, ``examples/tiny/make_tiny_model.py``, so that
    the suite runs the script the documentation shows. Read-only: tests must not change it.
    """
    folder = tmp_path_factory.mktemp("tiny-model") / "model"
    script = Path(__file__).parent / "examples" / "tiny" / "make_tiny_model.py"
    done = subprocess.run(
        [sys.executable, str(script), str(folder)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return folder


# ---------------------------------------------------------------------------------------------
# The order tests start in: the longest modules first.

#: Modules by the time their tests take, longest first (the sum of each module's setup, call
#: and teardown durations printed by ``pytest -n 2 --durations=0``, 2026-12-03). Started
#: first, they are spread over the workers while the many short tests fill the gaps, instead
#: of one of them starting last and running alone. A stale list only costs speed.
LONGEST_FIRST = (
    "tests/test_damaged_cache.py",
    "tests/test_store_contract.py",
    "tests/test_cli_e2e.py",
    "tests/test_cache_cli.py",
    "tests/test_faults.py",
    "tests/test_read_only_credential.py",
    "packages/runner/tests/test_determinism.py",
    "tests/test_concurrency.py",
    "tests/test_input_model_identity.py",
    "packages/runner/tests/test_passes.py",
    "tests/test_hostile_configs.py",
    "tests/test_broken_outputs.py",
    "tests/test_secrets_in_artifacts.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Put the tests of :data:`LONGEST_FIRST`'s modules first, in its order; every module's
    tests stay together and in their order (module fixtures are set up once)."""
    rank = {module: place for place, module in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))
