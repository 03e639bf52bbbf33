"""The runner's one error family.

Every error the runner raises on purpose is a :class:`RunnerError`: it carries its data as
attributes and builds ``str()`` from them, one line that says what is wrong and how to fix
it. :attr:`RunnerError.fault` is the hint the command line turns into an exit status, with
the meaning :attr:`modelcache.store.StoreError.fault` gives it: ``"user"`` for what the
user must fix, ``"environment"`` for what failed around them.

Each branch lives with the module that raises it::

    RunnerError
    ├── UserError                      this module: something the user must change
    │   ├── cli.run.NothingToDraw      a plan drawn with keys when no pass's key is known
    │   ├── maintenance.UnknownEntry   a key prefix that names no entry, or several
    │   ├── models.ModelError          the input model (also a ValueError)
    │   │   ├── ModelNotFound
    │   │   │   └── ModelAbsent        absent here, not wrong: a plan still shows the passes
    │   │   │       └── ModelNotDownloaded  a hub model not in this machine's hub cache
    │   │   └── UnknownModelType
    │   ├── sweep.CacheRequired        a sweep run with the cache off
    │   └── sweep.NothingToPlot        a plot asked of a sweep that measured nothing to plot
    ├── config.ConfigError             the workflow config, every problem at once
    ├── keyvault.KeyVaultError         an Azure Key Vault key that would not sign or show itself
    ├── passes.PassError               a pass or the pass registry
    │   ├── PassConfigError            (also a ValueError)
    │   │   ├── PassConfigProblems     several parameters of one pass at once
    │   │   ├── olive.OliveUnsupported an Olive pass that cannot run here
    │   │   │   └── OliveMissingPackage  a package it needs is not installed
    │   │   └── olive.OliveFileMissing a file an Olive pass's config names
    │   ├── PassInputError             (also a ValueError)
    │   ├── PassRegistryError
    │   ├── PassUnavailable
    │   ├── UnknownPassType
    │   ├── passes.BrokenOutput        a pass wrote a model that does not load
    │   └── olive.OlivePassFailed      Olive's implementation of a pass raised
    ├── sweep.WorkerLost               a sweep's worker died under a task, after retries
    └── modelcache.ray.RayUnavailable  the Ray cluster could not be started or joined

Beside the family, ``workflow.CloudRequired`` is a :class:`modelcache.store.StoreError`:
the cloud lost by a run that ``--require-cloud``.

This module imports nothing from the runner, so every module can raise these, and the same
class is raised however the command was started (``modelcache`` or ``python -m``).
"""

from __future__ import annotations

from typing import ClassVar

from modelcache.store import Fault

__all__ = ["RunnerError", "UserError"]


class RunnerError(Exception):
    """Base of every error the runner raises on purpose."""

    fault: ClassVar[Fault] = "environment"


class UserError(RunnerError):
    """Something the user must change: a command line (options that contradict each other,
    a cache not named), a model the config names; ``message`` says what is wrong and what to
    do."""

    fault: ClassVar[Fault] = "user"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message
