"""The command line's import budget, without a clock: each command imports what it uses only.

Each case runs ``modelcache.runner.cli.main`` in a fresh interpreter and reads back the
modules it loaded. Time is what the budget is about (``docs/performance.md``: a warm run is
mostly starting Python and importing), but a timing test would be flaky on a shared
machine; the modules a command loads are what decide its time, and they are exact.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .e2e import Published, environment, write_config

#: What no command may import unless it needs it: the passes' libraries, the terminal UI,
#: signing, Key Vault, Ray, and the maintenance commands' code.
HEAVY = (
    "ray",
    "modelcache.ray",
    "torch",
    "onnx",
    "onnxruntime",
    "onnxscript",
    "transformers",
    "olive",
    "rich",
    "cryptography",
    "model_signing",
    "azure.identity",
    "azure.keyvault",
    "modelcache.runner.keyvault",
    "modelcache.runner.maintenance.inventory",
    "modelcache.runner.maintenance.prune",
    "modelcache.runner.maintenance.verify",
    "modelcache.runner.maintenance.why",
    "modelcache.runner.maintenance.delete",
    "modelcache.runner.cli.cache",
    "modelcache.runner.cli.render",
    "modelcache.runner.cli.progress",
)

#: What a warm run that moves nothing needs not import (``docs/performance.md``).
UNUSED_WARM = (
    "importlib.metadata",
    "email",
    "modelcache.planner._wire",
    "statistics",
    "secrets",
)

_PROGRAM = """
import json, sys
from modelcache.runner.cli import main
try:
    status = main(sys.argv[1:])
except SystemExit as exit:
    status = exit.code
print(json.dumps({"status": status, "modules": sorted(sys.modules)}))
"""


def _modules(*args: str | Path, connection_string: str | None = None) -> set[str]:
    """The modules ``modelcache ARGS`` loaded; fails unless it exits 0."""
    done = subprocess.run(
        [sys.executable, "-c", _PROGRAM, *map(str, args)],
        capture_output=True,
        text=True,
        env=environment(connection_string),
        check=False,
        timeout=300,
    )
    answer = json.loads(done.stdout.splitlines()[-1])
    assert answer["status"] in (0, None), done.stderr
    return set(answer["modules"])


def _loaded(modules: set[str], *names: str) -> list[str]:
    """Which of ``names`` (or their submodules) are in ``modules``."""
    return [n for n in names if any(m == n or m.startswith(f"{n}.") for m in modules)]


@pytest.mark.parametrize(
    "args", [("--help",), ("run", "--help"), ("sweep", "--help"), ("cache", "prune", "--help")]
)
def test_help_imports_the_parser_alone(args: tuple[str, ...]) -> None:
    modules = _modules(*args)
    assert _loaded(modules, *HEAVY, "azure", "attrs", "cattrs", "modelcache.planner") == []
    assert _loaded(modules, "modelcache.store", "modelcache.runner.config") == []


@pytest.mark.azurite
def test_a_warm_local_run_and_a_plan_import_what_they_use_only(
    published: Published, warm_container: str, tiny_model: Path, tmp_path: Path
) -> None:
    published.copy_cache(tmp_path / "cache")
    config = write_config(tmp_path, tiny_model, published.passes, container=warm_container)
    connection = published.connection_string

    # The storage SDK imports cryptography itself (for client-side encryption).
    with_the_sdk = [name for name in HEAVY if name != "cryptography"]
    run = _modules("run", config, "--quiet", connection_string=connection)
    assert _loaded(run, *with_the_sdk) == []
    assert _loaded(run, "azure.storage.blob")  # the cloud's listing: the one request
    # Within the day, what the cloud held is noted in the local tier: no listing, no SDK.
    again = _modules("run", config, "--quiet", connection_string=connection)
    assert _loaded(again, *HEAVY, "azure", *UNUSED_WARM) == []

    plan = _modules("plan", config, "--format", "json", connection_string=connection)
    assert _loaded(plan, *with_the_sdk) == []

    local = _modules("plan", config, "--no-cloud", "--format", "json")
    assert _loaded(local, *HEAVY, "azure") == []

    # What a run that moves nothing has no use for: a plan's JSON, the report's converter
    # (no --report), importlib's metadata reader (with its email parser), statistics.
    offline = _modules("run", config, "--quiet", "--no-cloud")
    assert _loaded(offline, *HEAVY, "azure", *UNUSED_WARM) == []
    reported = _modules("run", config, "--quiet", "--no-cloud", "--report", tmp_path / "r.json")
    assert _loaded(reported, "modelcache.planner._wire") == []
