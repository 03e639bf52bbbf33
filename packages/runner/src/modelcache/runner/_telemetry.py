"""Libraries that report their use over the network unless told not to, told not to.

A run sends nothing but what its stores need. OpenVINO's model converter (``import
openvino`` imports it; Olive's OpenVINO passes call it) sends every conversion to Google
Analytics, and writes a client id under ``~/intel``, unless a consent file there says no;
without the ``openvino-telemetry`` package it falls back to its own stub, which sends
nothing. :func:`silence` makes that package unimportable in this process before OpenVINO is
first imported: every place modelcache may import OpenVINO calls it first.
"""

from __future__ import annotations

import sys

__all__ = ["silence"]


def silence() -> None:
    """Keep OpenVINO's telemetry from loading in this process (no effect once loaded)."""
    sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]
