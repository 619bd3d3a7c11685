"""`python -m handattn.gradescope`: the body of a Gradescope autograder, or (`--build-zip`) the autograder itself.

Grading: reads the upload in --submission (default /autograder/submission), finds
`<problem>.toml` anywhere inside it for each graded problem, and writes results.json into
--results (default /autograder/results). It always writes valid results: a broken, missing or
hostile file, even an internal error, is a failing test with a message. Exit 0 when
results.json is written, 2 when it cannot be (unusable options, an unwritable folder).

`--build-zip autograder.zip` writes the zip to upload to Gradescope (see the README).
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import time
from pathlib import Path

from handattn._cli import EXIT_OK, EXIT_UNUSABLE, Parser, add_problem_file_option, register_problem_files, run
from handattn.errors import HandattnError, UsageError, escape
from handattn.grading.autograder import CONFIG_NAME, AutograderConfig, failed_results, grade_upload
from handattn.grading.board_files import write_atomic
from handattn.grading.options import SECRET_SEED_ENV, env_secret_seed
from handattn.leaderboard import add_set_options, unusable
from handattn.problems import get_problem, problem_names

PROG = "python -m handattn.gradescope"
AUTOGRADER = Path("/autograder")


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = Parser(
        prog=prog,
        description="Grade a Gradescope submission into results.json, or build the autograder zip (--build-zip).",
        epilog="exit status: 0 results.json (or the zip) written, 2 it could not be",
    )
    parser.add_argument(
        "--submission",
        type=Path,
        metavar="DIR",
        default=AUTOGRADER / "submission",
        help="the student's upload (default %(default)s)",
    )
    parser.add_argument(
        "--results",
        type=Path,
        metavar="DIR",
        default=AUTOGRADER / "results",
        help="folder for results.json (default %(default)s)",
    )
    parser.add_argument(
        "--config",
        type=Path,
        metavar="FILE",
        help=f"the autograder's config (default {AUTOGRADER / 'source' / CONFIG_NAME} if present)",
    )
    parser.add_argument(
        "--problems",
        metavar="P1[:POINTS],P2",
        help="problems and their points (default: every registered problem, 1 point each)",
    )
    add_set_options(parser)
    add_problem_file_option(parser)
    parser.add_argument(
        "--build-zip", type=Path, metavar="ZIP", help="write the autograder zip for Gradescope and exit"
    )
    return parser


def main(argv: list[str] | None = None, prog: str = PROG) -> int:
    start = time.monotonic()
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
        if args.build_zip is not None:
            return _build_zip(args, prog)
        config = _config(args)
    except SystemExit as e:  # --help
        return int(e.code or 0)
    except HandattnError as e:
        return unusable(parser, prog, e)
    try:
        results = grade_upload(args.submission, config)
    except Exception as e:  # never Gradescope's "failed to execute": a failing test says what happened
        message = f"The autograder hit an internal error ({type(e).__name__}); please tell your instructor."
        print(f"{prog}: internal error: {escape(repr(e))}", file=sys.stderr)  # the instructor's log only
        results = failed_results(config, message, time.monotonic() - start)
    try:
        args.results.mkdir(parents=True, exist_ok=True)
        write_atomic(args.results / "results.json", json.dumps(results, indent=2, allow_nan=False) + "\n")
    except (OSError, ValueError) as e:
        print(f"{prog}: cannot write {escape(str(args.results / 'results.json'))}: {e}", file=sys.stderr)
        return EXIT_UNUSABLE
    return EXIT_OK


def _config(args: argparse.Namespace) -> AutograderConfig:
    """The config file if given (or present in the autograder), else the options; both name problems."""
    register_problem_files(args.problem_file)
    path = args.config or (AUTOGRADER / "source" / CONFIG_NAME)
    if args.config is not None or (args.problems is None and path.is_file()):
        try:
            config = AutograderConfig.from_json(path.read_text(encoding="utf-8"))
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
            raise UsageError(f"cannot read the config {escape(str(path))}: {escape(str(e))}") from None
        register_problem_files([str(path.parent / name) for name in config.problem_files])
        for name in config.problems:
            get_problem(name)
        return config
    seed = args.secret_seed if args.secret_seed is not None else env_secret_seed()
    return AutograderConfig(_points(args.problems), seed, args.hidden_length, args.hidden_texts)


def _points(text: str | None) -> dict[str, float]:
    if text is None:
        return {name: 1.0 for name in problem_names()}
    out = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, _, points = part.partition(":")
        get_problem(name)  # an unknown name raises UnknownProblemError with the known ones
        try:
            out[name] = float(points) if points else 1.0
        except ValueError:
            raise UsageError(f"--problems: {points!r} is not a number of points") from None
        if not 0 <= out[name] < float("inf"):
            raise UsageError(f"--problems: points must be ≥ 0, not {points}")
    if not out:
        raise UsageError(f"--problems names one or more of: {', '.join(problem_names())}")
    return out


def _build_zip(args: argparse.Namespace, prog: str) -> int:
    from handattn.grading.autograder_zip import build_zip

    if args.config is not None:
        raise UsageError("--build-zip writes its own config: give --problems, --secret-seed and --problem-file")
    register_problem_files(args.problem_file)
    bundled = {f"problems/{Path(p).name}": Path(p) for p in args.problem_file}
    seed = args.secret_seed if args.secret_seed is not None else env_secret_seed()
    generated = seed is None
    if generated:
        seed = secrets.randbits(63)
    config = AutograderConfig(
        _points(args.problems), seed, args.hidden_length, args.hidden_texts, problem_files=tuple(bundled)
    )
    path = build_zip(args.build_zip, config, bundled)
    print(f"wrote {escape(str(path))}: upload it to Gradescope (Configure Autograder → Zip file)")
    points = [f"{name} ({p:g} {'point' if p == 1 else 'points'})" for name, p in config.problems.items()]
    print(f"problems: {', '.join(points)}")
    if generated:
        print(
            f"secret seed {config.secret_seed} (generated; keep it private, and give it to handattn.leaderboard "
            f"as {SECRET_SEED_ENV} to rank on the same hidden texts)"
        )
    return EXIT_OK


if __name__ == "__main__":
    run(main)
