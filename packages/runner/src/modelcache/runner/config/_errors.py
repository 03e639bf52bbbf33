"""The config's error family: :class:`Problem`, one problem at its JSON path, and
:class:`ConfigError`, carrying every problem of a config."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import ClassVar

from attrs import frozen

from modelcache.store import Fault

from ..errors import RunnerError

__all__ = ["ConfigError", "Problem", "naming_config_file"]


@frozen(kw_only=True)
class Problem:
    """One problem of a config: ``path`` is the JSON path of the offending value
    (``$.passes.convert``), ``problem`` what is wrong with it and how to fix it."""

    path: str
    problem: str
    #: Something absent from this machine (a hub model not downloaded, a package a pass
    #: needs), not a mistake in the config: a plan can still be drawn up to it.
    missing: bool = False


class ConfigError(RunnerError, ValueError):
    """The workflow configuration is wrong; each of :meth:`lines` names the file, the path
    and the fix of one of its :attr:`problems`.

    ``path`` and ``problem`` are the first problem's, ``source`` the config file (empty when
    the raiser does not know it). Never changed once raised: :meth:`located` makes the copy
    that names the file.
    """

    fault: ClassVar[Fault] = "user"

    def __init__(
        self, *, path: str = "$", problem: str = "", source: str = "",
        problems: Iterable[Problem] = (),
    ) -> None:  # fmt: skip
        found = tuple(dict.fromkeys(problems)) or (Problem(path=path, problem=problem),)
        super().__init__(*found)
        self.problems = found
        self.path, self.problem = found[0].path, found[0].problem
        self.source = source

    @classmethod
    def of(cls, problems: Iterable[Problem], *, source: str = "") -> ConfigError:
        """The error reporting ``problems`` (at least one), in order, each once."""
        return cls(problems=problems, source=source)

    def lines(self) -> tuple[str, ...]:
        """One line per problem: ``file: $.path: problem``."""
        where = f"{self.source}: " if self.source else ""
        return tuple(f"{where}{p.path}: {p.problem}" for p in self.problems)

    def __str__(self) -> str:
        return "\n".join(self.lines())

    def located(self, source: str) -> ConfigError:
        """This error naming the config file ``source``; itself if it names one already."""
        if self.source:
            return self
        return ConfigError(problems=self.problems, source=source)


@contextmanager
def naming_config_file(source: Path | str | None) -> Iterator[None]:
    """Run the block; a :class:`ConfigError` it raises that names no file is raised again,
    from it, naming ``source`` (the config the block works from). ``None``: left alone."""
    try:
        yield
    except ConfigError as error:
        if source is None or error.source:
            raise
        raise error.located(str(source)) from error
