"""What every command shares: exit codes, one-line errors, usage errors, quiet broken pipes.

Only this layer touches process-wide state (torch's thread count, the output streams): the
library never does, so a notebook or a server calling it keeps its own settings.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from handattn.errors import HandattnError, InputError, UsageError, escape, shown

EXIT_OK = 0  # ran; for check: passed
EXIT_FAILED = 1  # check: scored, but not passed
EXIT_UNUSABLE = 2  # unusable input: unknown problem, unreadable or invalid file, bad options
EXIT_PIPE = 141  # the reader went away (`| head`): 128 + SIGPIPE, as a shell reports it; never a verdict
EXIT_INTERRUPTED = 130  # Ctrl-C: 128 + SIGINT

MAX_ERROR_LINES = 20


class Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing and exiting, so a command can still
    answer in JSON (`--json --texts 0`) and choose its exit code."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(message)


def add_problem_file_option(parser: argparse.ArgumentParser) -> None:
    """`--problem-file FILE` (repeatable): an instructor's problem, usable by name like a built-in."""
    parser.add_argument(
        "--problem-file",
        action="append",
        default=[],
        metavar="FILE",
        help="a Python file defining PROBLEM, an instructor's problem (repeatable)",
    )


def register_problem_files(paths: Sequence[str]) -> None:
    """Load and register the problems of --problem-file (raises ProblemFileError, one line each)."""
    from handattn.problems import load_problem_file, register

    for path in paths:
        register(load_problem_file(path))


def bounded(lo: int, hi: int):
    """An argparse type: a whole number from lo to hi, or a usage error saying which bound."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not lo <= value <= hi:
            raise argparse.ArgumentTypeError(f"{value} is outside {lo}…{hi}")
        return value

    return parse


def error_lines(prog: str, error: HandattnError) -> list[str]:
    """The lines a command prints for an error: one per issue, never a traceback."""
    if isinstance(error, InputError):
        return error.lines(MAX_ERROR_LINES)
    return [f"{prog}: {'error: ' if isinstance(error, UsageError) else ''}{escape(str(error))}"]


def usage_lines(parser: argparse.ArgumentParser, error: UsageError) -> list[str]:
    """argparse's usage line and the error under it, as a usage mistake is shown."""
    return [parser.format_usage().rstrip(), *error_lines(parser.prog, error)]


def add_weight_file_arguments(parser: argparse.ArgumentParser) -> None:
    """PROBLEM and an optional FILE, as every command that reads a weight file takes them."""
    parser.add_argument("problem", nargs="?", help="problem name (python -m handattn.check --list)")
    parser.add_argument("file", nargs="?", help="weight file (default: PROBLEM.toml in this folder)")


def weight_path(args: argparse.Namespace) -> str | None:
    """The weight file a command reads: FILE, or PROBLEM.toml in the current folder."""
    if args.problem is None:
        return args.file
    return args.file if args.file is not None else f"{args.problem}.toml"


def refuse(parser: argparse.ArgumentParser, error: HandattnError, as_json: bool, args) -> int:
    """Print an error as a command does (usage errors under the usage line; with --json also the
    error object on stdout) and return the exit code for unusable input."""
    import json

    lines = error_lines(parser.prog, error)
    print("\n".join(usage_lines(parser, error) if isinstance(error, UsageError) else lines), file=sys.stderr)
    if as_json:
        problem = getattr(args, "problem", None)
        print(json.dumps({"problem": problem, "file": args and weight_path(args), "error": lines}))
    return EXIT_UNUSABLE


def add_param_option(parser: argparse.ArgumentParser) -> None:
    """`--param NAME=VALUE`, repeatable: override a [params] entry of the weight file."""
    parser.add_argument(
        "--param",
        action="append",
        type=_param,
        default=[],
        metavar="NAME=VALUE",
        help="override a [params] entry, e.g. --param S=5 (repeatable); parameters that use it follow",
    )


def params_option(pairs: list[tuple[str, float]]) -> dict[str, float] | None:
    """The --param pairs as the `params=` of `load`; None when there are none; a name twice is a UsageError."""
    params: dict[str, float] = {}
    for name, value in pairs:
        if name in params:
            raise UsageError(f"--param {shown(name)} is given twice")
        params[name] = value
    return params or None


def _param(text: str) -> tuple[str, float]:
    from handattn.weights.expr import ExpressionError, evaluate

    name, sep, value = text.partition("=")
    if not sep or not name.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"{shown(text)} is not NAME=VALUE, e.g. S=5")
    try:
        return name.strip(), evaluate(value.strip())  # a number, or arithmetic such as log(2)
    except ExpressionError as e:
        raise argparse.ArgumentTypeError(f"{shown(text)}: {e}") from None


def wants_json(argv: Sequence[str]) -> bool:
    """Whether the command line asks for --json (or an abbreviation argparse accepts), before `--`."""
    for arg in argv:
        if arg == "--":
            return False
        if len(arg) >= 3 and "--json".startswith(arg):
            return True
    return False


def run(main: Callable[[], int]) -> None:
    """Run a command's main and exit with its code; `| head` closing the pipe is not an error."""
    import torch  # the one process-wide setting, made here and not in the library

    # one thread: the tensors are small, and torch's thread pool stalls badly on a busy machine
    # (a grader running many checks at once); scores do not depend on the thread count
    torch.set_num_threads(1)
    for stream in (sys.stdout, sys.stderr):  # a terminal that cannot show a character gets its escape
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # python would complain again while flushing at exit
        code = EXIT_PIPE
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    raise SystemExit(code)
