"""Olive's ``pass_flows`` as a sweep: each flow (a list of the config's pass names) is a
variant, the chain of those passes in that order.

Olive runs every flow of ``pass_flows`` over the input model, each one a pipeline of its
own, and searches each if the config searches. Here each flow is a variant named by its
passes (``convert-quantize``), whose config is the Olive config with only the flow's passes,
in the flow's order; a flow of a config that searches is a sweep of its own, each point a
variant named ``<flow>.<point>``. The flows share their common prefixes through the cache
as any sweep's variants do: a conversion every flow starts with runs once.
"""

from __future__ import annotations

import copy
from typing import Any

from ..config import Problem, pass_flows_of

__all__ = ["flow_documents", "has_flows"]


def has_flows(document: Any) -> bool:
    """Whether ``document`` (an Olive config, as written) has flows that make it a sweep:
    more than one, or one that is not every pass in the order written."""
    found = pass_flows_of(document)
    if found is None:
        return False
    _at, flows = found
    passes = document.get("passes")
    names = list(passes) if isinstance(passes, dict) else None
    return flows is not None and flows != [names]


def flow_documents(
    document: dict[str, Any],
) -> tuple[list[tuple[str, dict[str, Any]]], list[Problem]]:
    """Each flow of ``document`` as its name and its config (a copy, without ``pass_flows``);
    every mistake of the flows, at its JSON path."""
    found = pass_flows_of(document)
    assert found is not None  # has_flows said so
    at, flows = found
    passes = document.get("passes")
    if not isinstance(passes, dict):
        return [], [Problem(path="$.passes", problem="flows name passes: give passes as an "
                            "object of passes by name")]  # fmt: skip
    if not isinstance(flows, list) or not flows:
        return [], [Problem(path=at, problem="give a non-empty list of flows, each a list of "
                            "pass names from $.passes")]  # fmt: skip
    problems: list[Problem] = []
    named: list[tuple[str, dict[str, Any]]] = []
    seen: dict[str, int] = {}
    for i, flow in enumerate(flows):
        where = f"{at}[{i}]"
        if not isinstance(flow, list) or not flow:
            problems.append(Problem(path=where, problem="a flow is a non-empty list of pass names"))
            continue
        unknown = [(j, name) for j, name in enumerate(flow) if name not in passes]
        for j, name in unknown:
            problems.append(Problem(path=f"{where}[{j}]", problem=(
                f"no pass named {name!r} under $.passes; passes are {list(passes)}"
            )))  # fmt: skip
        if unknown:
            continue
        name = "-".join(str(step) for step in flow)
        if name.startswith(".") or "/" in name or "\\" in name:
            name = f"flow{i}"  # a variant's name names its output folder
        if name in seen:
            problems.append(Problem(path=where, problem=f"the same flow as {at}[{seen[name]}]"))
            continue
        seen[name] = i
        named.append((name, _flow_document(document, flow)))
    return named, problems


def _flow_document(document: dict[str, Any], flow: list[str]) -> dict[str, Any]:
    """``document`` with only the passes of ``flow``, in its order, and no ``pass_flows``."""
    single = copy.deepcopy(document)
    single.pop("pass_flows", None)
    single["passes"] = {name: document["passes"][name] for name in flow}
    return single
