"""Per-pass resources: what a pass asks of the worker that runs it, read from the sweep file.

::

    "resources": {"quantize": {"memory": "4 GB", "gpus": 1}, "convert": {"cpus": 2}}

Keyed by the pass's name in the workflows (a matrix's variants share the base's names).
A pass not named asks for :data:`DEFAULT_RESOURCES`: one CPU. A segment asks for the most any of its
run steps asks for, each resource on its own (:meth:`PassResources.of_segment`); a
variant's own run, which only delivers unless the cache let a segment down, asks for the
default, and after such a segment for the most any of its passes asks for
(:meth:`PassResources.of_variant`). The Ray engine gives each task an actor of its
shape; the local engine's workers are this machine's processes, and it only says so when a
pass asks for more than the machine has (:meth:`PassResources.beyond`).
"""

from __future__ import annotations

import glob
import json
import math
import os
from collections.abc import Collection, Iterable
from typing import Any, Final

from attrs import field, frozen

from modelcache.planner import Run, Segment, SweepPlan, canonical_json

from ..config import Problem

__all__ = ["DEFAULT_RESOURCES", "RESOURCE_FIELDS", "PassResources", "Resources", "machine",
           "read_resources"]  # fmt: skip

#: What a pass's entry may say: CPUs and GPUs (numbers, fractions allowed), memory (bytes, or
#: a size such as ``"4 GB"``: binary units, as ``cache prune --max-size`` reads them).
RESOURCE_FIELDS: Final = ("cpus", "gpus", "memory")


@frozen(kw_only=True)
class Resources:
    """What a worker holds for a task: CPUs, GPUs and memory in bytes (0: not asked for)."""

    cpus: float = 1.0
    gpus: float = 0.0
    memory: int = 0

    def join(self, other: Resources) -> Resources:
        """The least that holds both: the larger of each resource."""
        return Resources(cpus=max(self.cpus, other.cpus), gpus=max(self.gpus, other.gpus),
                         memory=max(self.memory, other.memory))  # fmt: skip

    def beyond(self, have: Resources) -> list[str]:
        """The resources (``cpus``, ``gpus``, ``memory``) of which this asks for more than
        ``have`` holds; empty if it fits."""
        return [name for name in RESOURCE_FIELDS if getattr(self, name) > getattr(have, name)]

    def words(self, names: Iterable[str]) -> str:
        """The amounts of the resources ``names``, in words: ``1 GPU, 4.0 GiB of memory``."""
        return ", ".join(_words(name, getattr(self, name)) for name in names)

    def __str__(self) -> str:
        return self.words(name for name in RESOURCE_FIELDS if name == "cpus" or getattr(self, name))


#: What a pass the sweep file does not name asks for, and a variant's own run.
DEFAULT_RESOURCES: Final = Resources()


def _words(name: str, amount: float) -> str:
    if name == "memory":
        return f"{amount / 2**30:.1f} GiB of memory"
    number = f"{amount:g}"
    unit = {"cpus": "CPU", "gpus": "GPU"}[name]
    return f"{number} {unit}" if amount == 1 else f"{number} {unit}s"


def _pairs(value: Iterable[tuple[str, Resources]]) -> tuple[tuple[str, Resources], ...]:
    return tuple(value)


@frozen(kw_only=True)
class PassResources:
    """The sweep file's ``resources``: what each pass named asks for, in the file's order."""

    by_pass: tuple[tuple[str, Resources], ...] = field(default=(), converter=_pairs)

    def of_pass(self, name: str) -> Resources:
        return dict(self.by_pass).get(name, DEFAULT_RESOURCES)

    def of_passes(self, names: Iterable[str]) -> Resources:
        """The most any of the passes ``names`` asks for, each resource on its own."""
        shape = DEFAULT_RESOURCES
        for name in names:
            shape = shape.join(self.of_pass(name))
        return shape

    def of_segment(self, segment: Segment) -> Resources:
        """The most any run step of ``segment`` asks for; the default if it runs nothing."""
        return self.of_passes(i.step.pass_name for i in segment.steps if isinstance(i.step, Run))

    def of_variant(self, plan: SweepPlan, name: str) -> Resources:
        """The most any pass variant ``name`` runs in ``plan`` asks for: what its own run
        asks for when the cache let one of its segments down, and it may run any of them."""
        through = {i for path in plan.workflows if path.name == name for i in path.segments}
        return self.of_passes(
            item.step.pass_name
            for segment in plan.segments
            if segment.id in through
            for item in segment.steps
            if isinstance(item.step, Run)
        )

    def of_call(self, args: tuple[Any, ...]) -> Resources:
        """What a task submitted with ``args`` asks for: a segment's task (``run_segment``)
        has the segment first; a variant's run (``run_variant``) its name, then the shape
        it asks for when not the default."""
        if args and isinstance(args[0], Segment):
            return self.of_segment(args[0])
        if len(args) > 1 and isinstance(args[1], Resources):
            return args[1]
        return DEFAULT_RESOURCES

    def beyond(self, have: Resources, *, where: str = "the machine") -> list[str]:
        """One sentence per pass that asks for more than ``have`` (what ``where`` holds):
        ``pass 'q' asks for 1 GPU; the machine has 0 GPUs``."""
        return [
            f"pass {name!r} asks for {shape.words(more)}; {where} has {have.words(more)}"
            for name, shape in self.by_pass
            if (more := shape.beyond(have))
        ]


def machine() -> Resources:
    """What this machine holds: its CPUs, its physical memory, its NVIDIA GPUs (the device
    files Linux makes for them; none counted elsewhere)."""
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # no sysconf (Windows): not compared
        memory = 2**63
    gpus = [path for path in glob.glob("/dev/nvidia*") if path[len("/dev/nvidia") :].isdigit()]
    return Resources(cpus=float(os.cpu_count() or 1), gpus=float(len(gpus)), memory=memory)


def read_resources(
    value: Any, *, passes: Collection[str], source: str
) -> tuple[PassResources, list[Problem]]:
    """The sweep file's ``resources`` (``value``; ``None`` when absent), and a problem per
    mistake, each at ``<source>: $.resources...``.

    :param passes: the names of the passes of every workflow of the sweep; a name not among
        them is a mistake (a typo would otherwise ask for nothing, silently). Empty when
        the workflows could not be read: their names are not checked then.
    """
    if value is None:
        return PassResources(), []
    at = f"{source}: $.resources"
    if not isinstance(value, dict):
        problem = 'an object: pass name -> {"cpus": ..., "gpus": ..., "memory": ...}'
        return PassResources(), [Problem(path=at, problem=problem)]
    problems: list[Problem] = []
    found: list[tuple[str, Resources]] = []
    for name, asked in value.items():
        where = f"{at}[{canonical_json(name)}]"
        if passes and name not in passes:
            known = ", ".join(sorted(passes))
            problem = f"no pass called {name!r} in the sweep's workflows; they have {known}"
            problems.append(Problem(path=where, problem=problem))
            continue
        shape, mistakes = _resources(asked, where)
        problems.extend(mistakes)
        if not mistakes:
            found.append((name, shape))
    return PassResources(by_pass=found), problems


def _resources(asked: Any, at: str) -> tuple[Resources, list[Problem]]:
    """One pass's entry, read; a problem per mistake."""
    if not isinstance(asked, dict):
        problem = 'an object: {"cpus": 2, "gpus": 1, "memory": "4 GB"}, any of them'
        return DEFAULT_RESOURCES, [Problem(path=at, problem=problem)]
    problems: list[Problem] = []
    unknown = sorted(set(asked) - set(RESOURCE_FIELDS))
    if unknown:
        problem = f"unknown field(s) {unknown}; give {', '.join(RESOURCE_FIELDS)}"
        problems.append(Problem(path=at, problem=problem))
    values: dict[str, Any] = {}
    for name in RESOURCE_FIELDS:
        if name in asked:
            read, wrong = (_memory if name == "memory" else _count)(asked[name], name)
            if wrong is None:
                values[name] = read
            else:
                problems.append(Problem(path=f"{at}.{name}", problem=wrong))
    return Resources(**values), problems


def _count(value: Any, name: str) -> tuple[float, str | None]:
    least = "more than 0" if name == "cpus" else "0 or more"
    number = value if isinstance(value, int | float) and not isinstance(value, bool) else None
    if number is None or not math.isfinite(number) or number < 0 or (name == "cpus" and not number):
        return 0.0, f"a number of {name[:-1].upper()}s, {least}; got {_shown(value)}"
    return float(number), None


def _memory(value: Any, _name: str) -> tuple[int, str | None]:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value, None
    if isinstance(value, str):
        from ..maintenance.prune import parse_size  # read as prune reads --max-size

        try:
            return parse_size(value), None
        except ValueError as error:
            return 0, str(error)
    return 0, f'a size, as in "4 GB" or "512 MB", or bytes; got {_shown(value)}'


def _shown(value: Any) -> str:
    return json.dumps(value)[:80]
