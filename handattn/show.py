"""`python -m handattn.show PROBLEM [FILE]`: see what a weight file does on one text.

Prints, for the text (by default the public evaluation text the file does worst on), each
position's true next-token distribution, the model's top tokens and the KL, then every
head's attention pattern as a heat map; `--png` draws the same as a figure, `--circuits`
adds the QK and OV→logits tables, `--param NAME=VALUE` overrides a [params] entry.

Exit codes: 0 shown, 2 unusable input (one line per issue on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys

from handattn import __version__
from handattn._cli import (
    EXIT_OK,
    Parser,
    add_param_option,
    add_problem_file_option,
    add_weight_file_arguments,
    params_option,
    refuse,
    register_problem_files,
    run,
    wants_json,
    weight_path,
)
from handattn.circuits import circuits
from handattn.diagnose import inspect_text
from handattn.errors import HandattnError, UsageError
from handattn.problems import get_problem, problem_names
from handattn.views.terminal import circuits_text, terminal_width, text_view_text, wants_colour
from handattn.weights import load

PROG = "python -m handattn.show"


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = Parser(
        prog=prog,
        description="Show what a weight file does on one text: distributions, KL and attention patterns.",
        epilog="exit status: 0 shown, 2 unusable input",
    )
    add_weight_file_arguments(parser)
    parser.add_argument("--text", help="the text to show (default: the public evaluation text the file does worst on)")
    parser.add_argument("--png", metavar="OUT.png", help='also draw it as a figure (needs "handattn[plot]")')
    parser.add_argument("--circuits", action="store_true", help="also print each head's QK and OV→logits tables")
    add_param_option(parser)
    add_problem_file_option(parser)
    parser.add_argument("--json", action="store_true", help="print one JSON object instead")
    return parser


def main(argv: list[str] | None = None, prog: str = PROG) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(prog)
    as_json = wants_json(argv)
    args = None
    try:
        args = parser.parse_args(argv)
        register_problem_files(args.problem_file)
        if args.problem is None:
            raise UsageError(f"name a problem ({', '.join(problem_names())})")
        if args.png is not None:
            from handattn.views.figure import require_matplotlib, save_png

            require_matplotlib()  # before any work: without it, one line and exit 2
        problem = get_problem(args.problem)
        params = params_option(args.param)
        weights = load(weight_path(args), problem=problem.name, params=params)
        label = weight_path(args) + (" with " + ", ".join(f"{k} = {v:g}" for k, v in params.items()) if params else "")
        view = inspect_text(weights, args.text, file=label)
        if args.png is not None:
            try:
                save_png(view, args.png)
            except OSError as e:
                raise UsageError(f"cannot write {args.png} ({e.strerror or e})") from None
        tables = circuits(weights) if args.circuits else None
    except SystemExit as e:  # --help prints and stops
        return int(e.code or 0)
    except HandattnError as e:
        return refuse(parser, e, as_json, args)
    warnings = [w.format(weight_path(args)) for w in weights.warnings]  # e.g. a parameter no entry uses
    if warnings:
        print("\n".join(warnings), file=sys.stderr)
    if args.json:
        data = {**view.to_dict(), "png": args.png, "warnings": warnings, "handattn": __version__}
        if tables is not None:
            data["circuits"] = [t.to_dict() for t in tables]
        print(json.dumps(data, allow_nan=False))
        return EXIT_OK
    colour, width = wants_colour(sys.stdout), terminal_width(sys.stdout)
    print(text_view_text(view, colour, width))
    if tables is not None:
        print("\n" + circuits_text(tables, weights.scale, width))
    if args.png is not None:
        print(f"\nwrote {args.png}")
    return EXIT_OK


if __name__ == "__main__":
    run(main)
