"""`python -m handattn.new PROBLEM`: write a commented starter weight file to fill in.

The starter loads and scores as it stands (it predicts a uniform distribution),
so a student can run `check` on it at once and watch the KL fall as they work.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

from handattn._cli import (
    EXIT_OK,
    EXIT_UNUSABLE,
    Parser,
    add_problem_file_option,
    error_lines,
    register_problem_files,
    run,
    usage_lines,
)
from handattn.errors import HandattnError, UsageError, escape
from handattn.problems import Problem, get_problem
from handattn.weights import loads

PROG = "python -m handattn.new"

STARTER = """\
# handattn weights for {name}. Fill them in, then run:
#     python -m handattn.check {name} {path}
#
# The problem:
{statement}
#
# The model (README, "The model"):
#   1. residual     r_i = W_E[x_i] + W_P[i]
#   2. each head    q = r W_Q, k = r W_K, v = r W_V
#                   pattern = softmax(scale * q kᵀ); position i sees 1…i
#                   z = pattern v
#   3. logits       [r | z_1 | … | z_H] W_U + b_U, prediction = softmax(logits)
#
# Entries are numbers, or arithmetic in quotes over [params]: "S", "-S/2",
# "log(21/5)". Rows and columns are names: tokens (a…z, 0, 1), groups (vowels,
# consonants, letters, digits, all), your features, a head's dims and values:
#   W_E.<token or group>.<feature>    the features each token carries
#   W_P.<position>.<feature>          what a position adds (counted from 1);
#   W_P.all.<feature> = "cos(pos)"    one entry for every position, pos = 1, 2…
#   W_Q.<feature>.<dim>               what each position asks for
#   W_K.<feature>.<dim>               what each position offers (score q·k)
#   W_V.<feature>.<value>             what a position passes on when attended to
#   W_U.<feature or value>.<token>    votes for the next token
#   b_U.<token>                       a fixed vote
# Anything you leave out is 0, so this file already runs: it predicts the
# uniform distribution.

problem = "{name}"
# scale = 1    # attn_scores = scale * q kᵀ; no hidden 1/sqrt(d_head)

"""

UNEMBED = """
[unembed]
# W_U.<feature or value>.<token or group> = ...
# b_U.<token or group> = ...
"""


def starter(problem: Problem, path: str) -> str:
    """The text of a starter file for a problem."""
    statement = "\n".join("#   " + line for line in textwrap.wrap(problem.statement, 76))
    # the problem's hint is not put through format: it may hold TOML's { }
    return STARTER.format(name=problem.name, path=path, statement=statement) + problem.starter_hint + UNEMBED


def main(argv: list[str] | None = None, prog: str = PROG) -> int:
    parser = Parser(prog=prog, description="Write a commented starter weight file for a problem.")
    parser.add_argument("problem", help="problem name (python -m handattn.check --list)")
    parser.add_argument("-o", "--output", help="file to write (default: PROBLEM.toml; - for standard output)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    add_problem_file_option(parser)
    try:
        args = parser.parse_args(argv)
        register_problem_files(args.problem_file)
        problem = get_problem(args.problem)
    except SystemExit as e:  # --help
        return int(e.code or 0)
    except UsageError as e:
        print("\n".join(usage_lines(parser, e)), file=sys.stderr)
        return EXIT_UNUSABLE
    except HandattnError as e:
        print("\n".join(error_lines(prog, e)), file=sys.stderr)
        return EXIT_UNUSABLE
    path = args.output or f"{problem.name}.toml"
    text = starter(problem, f"{problem.name}.toml" if path == "-" else path)
    try:  # a problem's own starter_hint (an instructor's, say) must give a file that loads
        loads(text, source=f"the starter of {problem.name} (its starter_hint)", problem=problem.name)
    except HandattnError as e:
        print("\n".join(error_lines(prog, e)), file=sys.stderr)
        return EXIT_UNUSABLE
    if path == "-":
        sys.stdout.write(text)
        return EXIT_OK
    target = Path(path)
    if target.exists() and not args.force:
        print(
            f"{prog}: {escape(path)} already exists; choose another name with -o, or pass --force to overwrite it",
            file=sys.stderr,
        )
        return EXIT_UNUSABLE
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as e:
        print(f"{prog}: cannot write {escape(path)} ({e.strerror or e})", file=sys.stderr)
        return EXIT_UNUSABLE
    print(f"wrote {escape(path)}; fill it in, then run: python -m handattn.check {problem.name} {escape(path)}")
    return EXIT_OK


if __name__ == "__main__":
    run(main)
