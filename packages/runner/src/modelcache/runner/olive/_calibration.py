"""The data components that give Olive 0.13's quantizers an older Olive's calibration data
(``_older``): the dataset is what the user script's ``dataloader_func`` returns, called as
that Olive called it; the dataloader hands its batches over as they come.

An older Olive gave ``quantize_static`` the function's ``CalibrationDataReader`` itself;
Olive 0.13 wraps whatever its dataloader yields in a reader of its own, casting each input
to the type the model declares. The batches, read with ``get_next`` until it returns
``None`` (or iterated, when the function returned a dataloader), are those the older Olive
calibrated on.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from typing import Any

from ._older import CALIBRATION_DATALOADER, CALIBRATION_DATASET

__all__ = ["register_components"]


@functools.cache
def register_components() -> None:
    """Olive's data registry given the two components (once per process: Olive looks a
    component up when it validates a data config naming it)."""
    from olive.data.registry import Registry

    Registry.register_dataset(CALIBRATION_DATASET)(older_calibration_data)
    Registry.register_dataloader(CALIBRATION_DATALOADER)(calibration_batches)


def older_calibration_data(
    user_script: str,
    dataloader_func: str,
    data_dir: str | None = None,
    batch_size: int = 1,
    script_dir: str | None = None,
    dataloader_func_kwargs: dict[str, Any] | None = None,
) -> Any:
    """What ``dataloader_func(data_dir, batch_size, **dataloader_func_kwargs)`` of
    ``user_script`` returns."""
    from olive.common.user_module_loader import UserModuleLoader

    loader = UserModuleLoader(user_script, script_dir)
    kwargs = dataloader_func_kwargs or {}
    return loader.call_object(dataloader_func, data_dir, batch_size, **kwargs)


def calibration_batches(dataset: Any, **kwargs: Any) -> _Batches:
    """``dataset`` (a reader or a dataloader) as something Olive iterates."""
    return _Batches(dataset)


class _Batches:
    """A reader's batches, from the start each time (a reader that can is rewound)."""

    def __init__(self, made: Any) -> None:
        self.made = made
        self.started = False

    def __iter__(self) -> Iterator[Any]:
        made = self.made
        if not callable(getattr(made, "get_next", None)):
            return iter(made)
        if self.started and callable(getattr(made, "rewind", None)):
            made.rewind()
        self.started = True
        return iter(made.get_next, None)
