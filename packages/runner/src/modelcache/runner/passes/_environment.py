"""What a pass's key holds beyond its configuration: package versions, the machine facts and
environment variables it declares, merged into one ``packages`` object.

Theory of operation
-------------------
The planner's key document has one place for what the output depends on besides the input
and the configuration: ``pass.packages``, an object of strings (``docs/cache-keys.md``).
Machine facts go in as ``machine:<fact>`` and environment variables as ``env:<NAME>``; a
distribution's name never holds ``:``, so neither can collide with a package. Only facts a
pass declares for its configuration and variables that are set are added, so a pass that
declares nothing, or a run with none of its variables set, keeps the key it always had.
"""

from __future__ import annotations

import fnmatch
import os
import platform
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ._protocol import EnvironmentDependentPass, MachineDependentPass, Pass

__all__ = ["cpu_features", "key_packages"]

MACHINE_PREFIX = "machine:"
ENV_PREFIX = "env:"

#: The CPU features that change which kernels and tensor layouts onnxruntime picks: vector
#: widths and the int8/fp16/bf16 instructions (x86 and Arm names as /proc/cpuinfo spells them).
_LAYOUT_FEATURES = frozenset(
    {
        "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512dq", "avx512vl",
        "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_vnni", "amx_tile", "amx_int8",
        "amx_bf16", "asimd", "asimdhp", "asimddp", "i8mm", "bf16", "sve", "sve2",
    }
)  # fmt: skip
_CPUINFO = Path("/proc/cpuinfo")


def key_packages(
    implementation: Pass, config: Mapping[str, Any], environ: Mapping[str, str] | None = None
) -> dict[str, str]:
    """The ``packages`` of ``implementation``'s key for ``config`` (validated): its package
    versions, ``machine:<fact>`` for each fact :meth:`machine_facts` returns and
    ``env:<NAME>`` for each set variable (in ``environ``, default ``os.environ``) its
    ``environment_variables`` match. Raises :class:`PassUnavailable` as
    :meth:`Pass.packages` does."""
    packages = dict(implementation.packages())
    if isinstance(implementation, MachineDependentPass):
        facts = implementation.machine_facts(config)
        packages.update({f"{MACHINE_PREFIX}{name}": str(v) for name, v in facts.items()})
    if isinstance(implementation, EnvironmentDependentPass):
        environ = os.environ if environ is None else environ
        patterns = tuple(implementation.environment_variables)
        for name in sorted(environ):
            if any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns):
                packages[f"{ENV_PREFIX}{name}"] = environ[name]
    return packages


def cpu_features() -> str:
    """This CPU as the outputs tuned to it depend on: its architecture and, on Linux, the
    layout-relevant features it has, sorted (``"x86_64 avx avx2 f16c fma"``); elsewhere the
    architecture and the processor's name."""
    machine = platform.machine() or "unknown"
    try:
        text = _CPUINFO.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return f"{machine} {platform.processor()}".strip()
    flags: set[str] = set()
    for line in text.splitlines():
        name, _, value = line.partition(":")
        if name.strip() in ("flags", "Features"):
            flags.update(value.split())
    return " ".join([machine, *sorted(flags & _LAYOUT_FEATURES)])
