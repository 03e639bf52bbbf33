"""What the built-in passes share: configuration from a parameter table, package versions
from metadata, and the checks every run starts with."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._distributions import version
from ..models import UnknownModelType, model_type
from ._errors import PassInputError, PassUnavailable
from ._parameters import Parameter, check_config

__all__ = ["BuiltinPass"]


class BuiltinPass:
    """Base of the built-in passes. A subclass sets the class attributes and implements
    :meth:`_run`; it satisfies :class:`modelcache.runner.passes.Pass`."""

    type: str
    version: str
    input_types: frozenset[str]
    output_type: str
    #: The configuration parameters, in the order the validated configuration lists them.
    parameters: tuple[Parameter, ...] = ()
    #: Distributions whose versions affect the output (and so go into the cache key).
    package_names: tuple[str, ...] = ()
    #: Environment variables (``fnmatch`` patterns) that affect the output: the values of
    #: those set go into the cache key (:class:`EnvironmentDependentPass`).
    environment_variables: tuple[str, ...] = ()
    #: Olive's parameters the built-in honours at one value only (Olive's pass of the same
    #: name honours them all): a workflow giving another value runs Olive's pass instead.
    olive_fixed: tuple[Parameter, ...] = ()

    def packages(self) -> dict[str, str]:
        versions: dict[str, str] = {}
        for name in self.package_names:
            found = version(name)
            if found is None:
                raise PassUnavailable(self.type, name)
            versions[name] = found
        return versions

    def validate(self, config: Mapping[str, Any]) -> dict[str, Any]:
        return check_config(self.type, self.parameters, config)

    def unhonoured(self, config: Mapping[str, Any]) -> tuple[str, ...]:
        """The parameters of :attr:`olive_fixed` that ``config`` gives a value the built-in
        cannot honour, in table order."""
        names = []
        for parameter in self.olive_fixed:
            if parameter.name in config:
                try:
                    parameter.check(config[parameter.name])
                except ValueError:
                    names.append(parameter.name)
        return tuple(names)

    def machine_facts(self, config: Mapping[str, Any]) -> dict[str, str]:
        """No machine fact affects a built-in's output unless its subclass says so."""
        return {}

    def run(self, input_dir: Path, output_dir: Path, config: Mapping[str, Any]) -> None:
        validated = self.validate(config)
        input_dir, output_dir = Path(input_dir), Path(output_dir)
        try:
            found = model_type(input_dir)
        except UnknownModelType as error:
            raise PassInputError(self.type, str(error)) from None
        if found not in self.input_types:
            raise PassInputError(
                self.type,
                f"takes {' or '.join(sorted(self.input_types))} models, "
                f"but {input_dir} holds an {found} model",
            )
        if not output_dir.is_dir() or any(output_dir.iterdir()):
            raise ValueError(f"output directory {output_dir} must exist and be empty")
        self._run(input_dir, output_dir, validated)

    def _run(self, input_dir: Path, output_dir: Path, config: dict[str, Any]) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<pass {self.type} version {self.version}>"
