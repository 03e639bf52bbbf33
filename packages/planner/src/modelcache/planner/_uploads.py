"""Which intermediates are worth uploading: the one rule, for the planner and the runner.

With the ``"worthwhile"`` upload policy an intermediate output is uploaded only when
recomputing it would cost more than moving it. Recomputing an output that is not in the
cloud means running its pass, and before it every pass back to the nearest output that is
shared (or to the input model): ``recompute_seconds`` is the sum of those recorded run times.
Moving it is its size over the link's bandwidth. The final output is always uploaded: it is
what colleagues ask for.

The planner applies the rule where it already knows both figures (an output in the local
tier only, with its size and run time recorded); for an output the plan runs, the figures
exist only once it has run, so the plan's :class:`~modelcache.planner.Upload` says
``if_worthwhile`` and the runner applies this same function then.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

from attrs import frozen

__all__ = ["UploadPolicy", "UploadVerdict", "upload_verdict"]

#: ``all``: every output is uploaded (the seed's behaviour, and the default);
#: ``worthwhile``: intermediates only when recomputing them costs more than moving them.
UploadPolicy: TypeAlias = Literal["all", "worthwhile"]


@frozen
class UploadVerdict:
    """Whether to upload an output, and why, in words."""

    upload: bool
    reason: str


def upload_verdict(
    *, recompute_seconds: float | None, size: int | None, bandwidth: float | None
) -> UploadVerdict:
    """The ``worthwhile`` policy's answer for one intermediate output.

    :param recompute_seconds: the run time of its pass and of every pass back to the nearest
        shared output; None if not recorded.
    :param size: its size in bytes; None if not known.
    :param bandwidth: the link's bytes per second, configured or measured; None if neither.
    :return: an upload whenever a figure is missing: without prices, the seed's default.
    """
    if bandwidth is None:
        return UploadVerdict(True, "uploaded: no bandwidth is configured or measured yet")
    if recompute_seconds is None or size is None:
        return UploadVerdict(True, "uploaded: its run time or size is not recorded")
    moving = size / bandwidth
    figures = (
        f"recomputing it takes {_seconds(recompute_seconds)}, moving {_size(size)} "
        f"{_seconds(moving)} at {_size(bandwidth)}/s"
    )
    if recompute_seconds > moving:
        return UploadVerdict(True, f"uploaded: {figures}")
    return UploadVerdict(False, f"not uploaded: {figures}")


def _seconds(value: float) -> str:
    return f"{value:.3g} s"


def _size(value: float) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000:
            return f"{value:.3g} {unit}"
        value /= 1000
    return f"{value:.3g} TB"
