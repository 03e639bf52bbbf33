"""What an older Olive's configs wrote that Olive 0.13 no longer runs, read as the Olive that
wrote it meant it.

Two forms of Olive's own example configs fail in Olive 0.13, though the Olive they were
written for ran them:

- **Calibration data named by a function.** ``OnnxQuantization`` and
  ``OnnxStaticQuantization`` took ``user_script``, ``data_dir``, ``dataloader_func``
  (``dataloader_func_kwargs``, ``batch_size``, ``script_dir``): the pass called
  ``dataloader_func(data_dir, batch_size, **dataloader_func_kwargs)`` from the user script
  and calibrated on what it returned, an onnxruntime ``CalibrationDataReader`` (or a
  dataloader). Olive 0.13 drops those parameters and fails for want of calibration data.
  Read here as the ``data_config`` that gives Olive 0.13's pass the same data
  (:func:`calibration_data_config`): a data container whose dataset is what the function
  returns (``_calibration``). Given beside a ``data_config``, they are what Olive 0.13 makes
  of them, ignored (``_ignored``).
- **OrtPerfTuning's lists.** An older Olive's ``OrtPerfTuning`` (now
  ``OrtSessionParamsTuning``) took ``providers_list``, ``execution_mode_list``... as lists
  of values to tune over, execution modes and optimization levels by onnxruntime's names
  (``"ORT_SEQUENTIAL"``). Olive 0.13's pass tunes one value of each, its search trying the
  others. A list of one is read as its value; a longer one, unless the config searches
  (where Olive 0.13 reads a list as the values to try), is a problem saying to search;
  names become onnxruntime's numbers (:func:`perf_tuning_values`).

Pure: each reader returns the parameters as read, and the notes and problems to report;
nothing here imports Olive.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

__all__ = [
    "as_written",
    "CALIBRATION_DATALOADER",
    "CALIBRATION_DATASET",
    "CALIBRATION_FIELDS",
    "QUANTIZERS",
    "Read",
    "calibration_data_config",
    "pass_kind",
    "perf_tuning_values",
    "read_older",
]

#: The quantizers that took calibration data by function (:func:`pass_kind`).
QUANTIZERS: Final = ("onnxquantization", "onnxstaticquantization")
#: Their parameters naming it, in the order a note lists them.
CALIBRATION_FIELDS: Final = (
    "user_script", "script_dir", "data_dir", "dataloader_func", "dataloader_func_kwargs",
    "batch_size",
)  # fmt: skip
#: The data components (``_calibration``) that give Olive 0.13 what the function returns.
CALIBRATION_DATASET: Final = "modelcache_older_olive_calibration"
CALIBRATION_DATALOADER: Final = "modelcache_older_olive_calibration_batches"
_CALIBRATION_NAME: Final = "older_olive_calibration"
_CALIBRATION_PARAMS: Final = "data_config.load_dataset_config.params."
#: onnxruntime's names of execution modes and optimization levels, as an older Olive's
#: ``OrtPerfTuning`` took them, and the numbers Olive 0.13 takes.
_ORT_NAMES: Final[Mapping[str, Mapping[str, int]]] = {
    "execution_mode_list": {"ORT_SEQUENTIAL": 0, "ORT_PARALLEL": 1},
    "opt_level_list": {
        "ORT_DISABLE_ALL": 0, "ORT_ENABLE_BASIC": 1, "ORT_ENABLE_EXTENDED": 2,
        "ORT_ENABLE_LAYOUT": 3, "ORT_ENABLE_ALL": 99,
    },
}  # fmt: skip
_LISTS: Final = (
    "providers_list", "provider_options_list", "execution_mode_list", "opt_level_list",
    "intra_thread_num_list", "inter_thread_num_list",
)  # fmt: skip

#: What a reader found: the parameters as read, and its notes and problems, each as
#: (the parameter it is about, ``""`` for the pass; what to say).
Read = tuple[dict[str, Any], list[tuple[str, str]], list[tuple[str, str]]]


def pass_kind(pass_type: str) -> str:
    """``pass_type`` as the tables of Olive's older forms name it: casefolded, without
    ``olive:``."""
    return pass_type.casefold().removeprefix("olive:")


def read_older(pass_type: str, parameters: Mapping[str, Any], *, searching: bool) -> Read:
    """``parameters`` of ``pass_type`` with all this module reads read
    (``searching``: the config has a search strategy that searches)."""
    read, notes, problems = calibration_data_config(pass_type, parameters)
    read, more_notes, more_problems = perf_tuning_values(pass_type, read, searching=searching)
    return read, notes + more_notes, problems + more_problems


def calibration_data_config(pass_type: str, parameters: Mapping[str, Any]) -> Read:
    """``parameters`` of ``pass_type`` with an older Olive's calibration data
    (:data:`CALIBRATION_FIELDS`) read into the ``data_config`` Olive 0.13 takes, when the
    pass is one that took it, names it and has no ``data_config`` (with one, Olive 0.13
    ignores them: ``_ignored`` says so). A note lists what was read; a function named without
    its script, or a script without the function, is a problem."""
    given = [name for name in CALIBRATION_FIELDS if name in parameters]
    if pass_kind(pass_type) not in QUANTIZERS or not given or "data_config" in parameters:
        return dict(parameters), [], []
    problems = _calibration_problems(parameters)
    if problems:
        return dict(parameters), [], problems
    read = {name: value for name, value in parameters.items() if name not in given}
    arguments = {name: parameters[name] for name in given}
    arguments.setdefault("batch_size", 1)  # an older Olive's default
    read["data_config"] = {
        "name": _CALIBRATION_NAME,
        "load_dataset_config": {"type": CALIBRATION_DATASET, "params": arguments},
        "dataloader_config": {"type": CALIBRATION_DATALOADER},
    }
    function = f"{parameters['dataloader_func']}(data_dir, batch_size)"
    note = (
        f"{', '.join(given)} are an older Olive's calibration data, which Olive 0.13 drops (and "
        f"then fails for want of data); read as that Olive read them, the pass calibrating on "
        f"what {function} of user_script returns, given to Olive 0.13 as a data_config"
    )
    return read, [("", note)], []


def as_written(parameters: Mapping[str, Any], location: str) -> str:
    """``location`` (dotted, in ``parameters``) as the config wrote it: a parameter of the
    calibration data read into a data config is where the config gave it."""
    data_config = parameters.get("data_config")
    if (
        location.startswith(_CALIBRATION_PARAMS)
        and isinstance(data_config, Mapping)
        and data_config.get("name") == _CALIBRATION_NAME
    ):
        return location.removeprefix(_CALIBRATION_PARAMS)
    return location


def _calibration_problems(parameters: Mapping[str, Any]) -> list[tuple[str, str]]:
    problems = []
    function = parameters.get("dataloader_func")
    if not isinstance(function, str) or not function:
        problems.append(("dataloader_func", (
            "the calibration data of an older Olive needs dataloader_func, the name of the "
            "user_script function that returns it; give it, or give data_config instead"
        )))  # fmt: skip
    if not isinstance(parameters.get("user_script"), str):
        problems.append(("user_script", (
            "the calibration data of an older Olive needs user_script, the script that "
            "defines dataloader_func; give it, or give data_config instead"
        )))  # fmt: skip
    batch_size = parameters.get("batch_size", 1)
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
        problems.append(("batch_size", f"expected a positive integer, got {batch_size!r}"))
    kwargs = parameters.get("dataloader_func_kwargs")
    if kwargs is not None and not isinstance(kwargs, dict):
        problems.append(("dataloader_func_kwargs", "expected an object of keyword arguments"))
    return problems


def perf_tuning_values(pass_type: str, parameters: Mapping[str, Any], *, searching: bool) -> Read:
    """``parameters`` of an older Olive's ``OrtPerfTuning`` (written by that name) with its
    lists of one read as their value and onnxruntime's names as numbers; a longer list, in
    a config that does not search, is a problem."""
    if pass_kind(pass_type) != "ortperftuning":
        return dict(parameters), [], []
    read = dict(parameters)
    notes: list[tuple[str, str]] = []
    problems: list[tuple[str, str]] = []
    for name in _LISTS:
        value = read.get(name)
        names = _ORT_NAMES.get(name, {})
        if isinstance(value, str) and value in names:
            read[name] = names[value]
            notes.append((name, f"onnxruntime's {value}, read as Olive 0.13's {names[value]}"))
        if not isinstance(value, list):
            continue
        numbers = [names.get(item, item) if isinstance(item, str) else item for item in value]
        if searching:
            read[name] = numbers
        elif len(value) == 1:
            read[name] = numbers[0]
            notes.append((name, (
                "an older Olive's OrtPerfTuning took a list of values to tune over; Olive "
                f"0.13's OrtSessionParamsTuning takes one: read as {numbers[0]!r}"
            )))  # fmt: skip
        elif value:
            problems.append((name, (
                "an older Olive's OrtPerfTuning tuned over each of these; Olive 0.13's "
                "OrtSessionParamsTuning tunes one value, its search the others: give the "
                "config a search_strategy and run it with `modelcache sweep`, or give one value"
            )))  # fmt: skip
    return read, notes, problems
