"""Write the tiny random BERT used by the tests into a folder, offline.

    .venv/bin/python examples/tiny/make_tiny_model.py examples/tiny/model [--seed 0]

The model (hidden size 32, 2 layers, a 100-token WordPiece vocabulary) computes nothing
useful, but every pass and the evaluator run on it in about a second, so a workflow over it
shows the cache at work without the minutes a real model takes. The same seed gives the same
bytes, so two machines building it share cache entries.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from modelcache.runner.tiny_model import build_tiny_bert


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="where to write the model (created if needed)")
    parser.add_argument("--seed", type=int, default=0, help="the weights' random seed")
    args = parser.parse_args(argv)
    if args.folder.exists() and any(args.folder.iterdir()):
        print(f"error: {args.folder} is not empty; choose a new folder", file=sys.stderr)
        return 2
    path = build_tiny_bert(args.folder, seed=args.seed)
    print(f"wrote a tiny BERT (seed {args.seed}) to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
