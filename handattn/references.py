"""`python -m handattn.references [--write]`: list the stored gradient-descent references, or remake them.

The references and their recipes live in `handattn.gradient_references`; `--write` reruns every
recipe (a few minutes) and rewrites `handattn/data/gd_references.json`.
"""

from __future__ import annotations

import argparse
import sys

from handattn._cli import EXIT_OK, run
from handattn.gradient_references import DATA, RECIPES, compute, stored, write

PROG = "python -m handattn.references"


def main(argv: list[str] | None = None, prog: str = PROG) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.splitlines()[0].split(": ", 1)[1])
    parser.add_argument("--write", action="store_true", help=f"recompute every recipe and rewrite handattn/{DATA}")
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:
        return int(e.code or 0)
    if args.write:
        refs = []
        for recipe in RECIPES:
            refs.append(compute(recipe))
            print(f"{refs[-1].problem}, gradient descent, {refs[-1].shape}: {refs[-1].public_kl:.3e}", file=sys.stderr)
        print(f"wrote {write(refs)}", file=sys.stderr)
    for r in stored():
        print(f"{r.problem}  gradient descent, {r.shape}: public KL {r.public_kl:.3e} (training {r.train_kl:.3e})")
    return EXIT_OK


if __name__ == "__main__":
    run(main)
