"""``python -m modelcache.runner.cli``: the ``modelcache`` command."""

from . import main

if __name__ == "__main__":
    raise SystemExit(main())
