"""Errors the command line reports as one line with exit code 2.

They live here, not in :mod:`modelcache.runner.cli`, so that every module raises the same
class whether the command runs as ``modelcache`` or as ``python -m modelcache.runner.cli``
(which loads ``cli`` a second time, as ``__main__``).
"""

from __future__ import annotations

__all__ = ["UserError"]


class UserError(Exception):
    """Something the user can fix; printed as one line, exit code 2."""
