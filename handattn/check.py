"""`python -m handattn.check PROBLEM [FILE]`: score a weight file against a problem's exact rule.

Exit codes: 0 passed, 1 scored but not passed, 2 unusable input (one line per issue on stderr).
"""

from __future__ import annotations

import argparse
import json
import sys

from handattn import __version__
from handattn._cli import (
    EXIT_FAILED,
    EXIT_OK,
    Parser,
    add_param_option,
    add_problem_file_option,
    add_weight_file_arguments,
    bounded,
    params_option,
    refuse,
    register_problem_files,
    run,
    wants_json,
    weight_path,
)
from handattn.errors import HandattnError, UsageError
from handattn.evalset import DEFAULT_SEED, DEFAULT_TEXTS, MAX_TEXTS, read_eval_file, sample_eval_set
from handattn.gradient_references import reference_for
from handattn.hints import where_to_look
from handattn.problems import get_problem, problem_names
from handattn.render import problem_list, report, verdict_lines
from handattn.score import score
from handattn.weights import load
from handattn.weights.core import MAX_POSITIONS

PROG = "python -m handattn.check"


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = Parser(
        prog=prog,
        description="Score hand-written attention weights against the exact next-token distributions of a problem.",
        epilog="exit status: 0 passed, 1 scored but not passed, 2 unusable input",
    )
    add_weight_file_arguments(parser)
    parser.add_argument("--list", action="store_true", help="list the problems and exit")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of a report")
    parser.add_argument("--quiet", action="store_true", help="print only the verdict lines")
    add_param_option(parser)
    add_problem_file_option(parser)
    sampled = parser.add_argument_group("evaluation set (sampled, or --eval-file)")
    sampled.add_argument("--seed", type=bounded(0, 2**63 - 1), help=f"seed (default {DEFAULT_SEED}, the public set)")
    sampled.add_argument("--texts", type=bounded(1, MAX_TEXTS), metavar="N", help=f"texts (default {DEFAULT_TEXTS:,})")
    sampled.add_argument("--length", type=bounded(2, MAX_POSITIONS), metavar="T", help="tokens per text (default 32)")
    sampled.add_argument("--eval-file", metavar="FILE", help="score on these texts instead, one per line")
    return parser


def main(argv: list[str] | None = None, prog: str = PROG) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(prog)
    as_json = wants_json(argv)
    args = None
    try:
        args = parser.parse_args(argv)
        register_problem_files(args.problem_file)
        if args.list:
            print(problem_list())
            return EXIT_OK
        if args.problem is None:
            raise UsageError(f"name a problem ({', '.join(problem_names())}), or use --list")
        if args.eval_file is not None and (args.seed, args.texts, args.length) != (None, None, None):
            raise UsageError("--eval-file gives the texts; drop --seed, --texts and --length")
        problem = get_problem(args.problem)
        weights = load(weight_path(args), problem=problem.name, params=params_option(args.param))
        if args.eval_file is not None:
            eval_set = read_eval_file(problem, args.eval_file)
        else:
            seed = DEFAULT_SEED if args.seed is None else args.seed
            eval_set = sample_eval_set(problem, args.texts or DEFAULT_TEXTS, args.length, seed)
        result = score(weights, eval_set)
        where = None if result.passed or args.quiet else where_to_look(weights, eval_set, result)
    except SystemExit as e:  # --help and --version print and stop
        return int(e.code or 0)
    except HandattnError as e:
        return refuse(parser, e, as_json, args)
    path = weight_path(args)
    warnings = [w.format(path) for w in weights.warnings]
    if warnings:
        print("\n".join(warnings), file=sys.stderr)
    reference = reference_for(weights)  # gradient descent with the same head shape, if stored
    if args.json:
        extra = {"where_to_look": where.to_dict()} if where is not None else {}
        gd = None if reference is None else {"shape": reference.shape, "kl": reference.public_kl}
        data = {**result.to_dict(), **extra, "gradient_descent": gd, "file": path, "warnings": warnings}
        data["handattn"] = __version__
        print(json.dumps(data, allow_nan=False))
    elif args.quiet:
        print("\n".join(verdict_lines(result, path)))
    else:
        print(report(result, path, where, args.problem_file, reference))
    return EXIT_OK if result.passed else EXIT_FAILED


if __name__ == "__main__":
    run(main)
