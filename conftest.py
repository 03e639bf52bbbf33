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

import runpy  # noqa: E402
from pathlib import Path  # noqa: E402


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random BERT (``modelcache.runner.tiny_model.build_tiny_bert``, seed 0), built
    once per session by the example's script, ``examples/tiny/make_tiny_model.py``, so that
    the suite runs the script the documentation shows: its ``main``, in this process, which
    spares a second interpreter importing torch (the builder leaves torch's generator as it
    found it). Read-only: tests must not change it.
    """
    folder = tmp_path_factory.mktemp("tiny-model") / "model"
    script = Path(__file__).parent / "examples" / "tiny" / "make_tiny_model.py"
    assert runpy.run_path(str(script))["main"]([str(folder)]) == 0
    return folder


@pytest.fixture
def fake_model(tmp_path: Path) -> Path:
    """A folder that passes for a Hugging Face model: enough for config checks, never run."""
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"model_type": "bert"}', encoding="utf-8")
    (folder / "model.safetensors").write_bytes(b"not read by these tests")
    return folder


# ---------------------------------------------------------------------------------------------
# The order tests start in: the longest modules first, on every worker.

#: The modules whose tests take longest, with about how many seconds (the sum of their setup,
#: call and teardown durations printed by ``pytest -n 2 --durations=0``, 2026-12-03, on a
#: busy machine: the proportions are what count). A stale figure only costs speed.
LONGEST_FIRST: dict[str, float] = {
    "tests/test_faults.py": 114,
    "tests/test_store_contract.py": 105,
    "packages/runner/tests/test_passes.py": 61,
    "tests/test_concurrency.py": 49,
    "packages/runner/tests/test_determinism.py": 44,
    "tests/test_cli_e2e.py": 42,
    "tests/test_sweep_e2e.py": 35,
    "tests/test_sweep_ray.py": 34,
    "tests/test_hostile_configs.py": 27,
    "packages/azure_adapter/tests/test_lock.py": 25,
    "packages/runner/tests/test_olive_parameters.py": 24,
    "tests/test_broken_outputs.py": 19,
    "tests/test_olive_workflow.py": 18,
    "packages/azure_adapter/tests/test_store.py": 18,
    "packages/runner/tests/test_output_check.py": 16,
    "tests/test_cache_cli.py": 15,
    "packages/azure_adapter/tests/test_testing.py": 14,
    "tests/test_damaged_cache.py": 13,
    "packages/runner/tests/test_provenance.py": 12,
    "tests/test_config_errors.py": 12,
    "packages/planner/tests/test_planning.py": 10,
}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Start every xdist worker on long modules, so that none ends alone on one.

    ``--dist worksteal`` first hands the collection out in equal runs of tests, one run per
    worker, in order; a worker that runs out steals from the end of another's. So
    :data:`LONGEST_FIRST`'s modules are dealt out, longest first, each to the lane with the least
    time so far, one lane per worker; each lane leads a run, the other tests fill the runs
    up. A module's tests stay together and in their order (module fixtures are set up once).
    """
    lanes = int(getattr(config, "workerinput", {}).get("workercount", 1))
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::", 1)[0], []).append(item)
    loads = [0.0] * lanes
    dealt: list[list[pytest.Item]] = [[] for _ in range(lanes)]
    for module in sorted(LONGEST_FIRST, key=LONGEST_FIRST.__getitem__, reverse=True):
        if module in modules:
            lane = loads.index(min(loads))
            loads[lane] += LONGEST_FIRST[module]
            dealt[lane] += modules.pop(module)
    rest = [item for tests in modules.values() for item in tests]
    ordered: list[pytest.Item] = []
    for lane, tests in enumerate(dealt):
        # Where worksteal's run for this lane ends: the lane's tests, then the rest up to it.
        end = len(items) * (lane + 1) // lanes
        ordered += tests
        fill = max(0, end - len(ordered)) if lane < lanes - 1 else len(rest)
        ordered += rest[:fill]
        del rest[:fill]
    assert len(ordered) == len(items)
    items[:] = ordered
