"""The accelerator Olive configures passes for: the one Olive 0.13 picks from the target
system's ``accelerators`` (its first, and of that the first execution provider the device
supports; the device inferred from the providers when not given), asked of Olive itself
(``create_accelerator``) and remembered (``_memo``), so that a warm run does not import
Olive for it. A pass that depends on the accelerator is configured and keyed for it; one
that does not is keyed without it (:class:`~._pass.OlivePass`).
"""

from __future__ import annotations

from typing import Any

from ..passes import PassConfigError
from ._library import olive_version
from ._memo import remembered

__all__ = ["CPU", "target_accelerator"]

#: What Olive configures passes for when the target names no accelerator.
CPU = ("cpu", "CPUExecutionProvider")


def target_accelerator(accelerators: Any) -> tuple[str, str]:
    """(device, execution provider) of Olive's target with ``accelerators`` (as the config
    wrote them; ``None``: the CPU, also when olive-ai is not installed, since no pass then
    depends on it).

    :raises PassConfigError: Olive cannot pick one from them (its message, in one line).
    """
    version = olive_version()
    if not accelerators or version is None:
        return CPU
    question = {"question": "target accelerator", "olive": version, "accelerators": accelerators}
    device, provider = remembered(question, lambda: list(_ask_olive(accelerators)))
    return str(device), str(provider)


def _ask_olive(accelerators: Any) -> tuple[str, str]:
    from ._olive import quiet

    quiet()
    from olive.systems.accelerator_creator import create_accelerator
    from olive.systems.system_config import SystemConfig

    # The target's accelerators on this machine: modelcache runs everything locally. As Olive
    # does when the target runs nothing (modelcache measures on its own), the providers are not
    # checked against what this machine has.
    system = {"type": "LocalSystem", "config": {"accelerators": accelerators}}
    try:
        spec = create_accelerator(
            SystemConfig.model_validate(system), skip_supported_eps_check=True
        )
    except Exception as error:  # pydantic's and Olive's own assertions share no base
        problem = " ".join(str(error).split())[:400] or type(error).__name__
        problem = f"Olive cannot pick its accelerator: {problem}"
        raise PassConfigError("Olive", None, problem) from None
    return str(spec.accelerator_type), str(spec.execution_provider or CPU[1])
