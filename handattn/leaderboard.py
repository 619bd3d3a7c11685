"""`python -m handattn.leaderboard SUBMISSIONS --out OUT`: grade a class's weight files into a leaderboard.

Exit codes: 0 the board was written (whatever the students scored), 2 unusable input (no such
folder, a broken manifest.csv, bad options), 130 interrupted (grades so far are kept).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from handattn._cli import (
    EXIT_OK,
    EXIT_UNUSABLE,
    Parser,
    add_problem_file_option,
    bounded,
    error_lines,
    register_problem_files,
    run,
    usage_lines,
)
from handattn.errors import HandattnError, UsageError, escape, listing, plural
from handattn.evalset import MAX_TEXTS
from handattn.grading.board import Board, grade_folder
from handattn.grading.board_files import write_board
from handattn.grading.history import History
from handattn.grading.options import SECRET_SEED_ENV, GradingOptions, Limits, env_secret_seed
from handattn.grading.ranking import POLICIES
from handattn.grading.workers import default_workers
from handattn.problems import problem_names
from handattn.weights.core import MAX_POSITIONS

PROG = "python -m handattn.leaderboard"
HISTORY = "history.sqlite"
SHIPPED_SOLUTIONS = Path(__file__).resolve().parent.parent / "solutions"


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = Parser(
        prog=prog,
        description="Grade every SUBMISSIONS/<student>/<problem>.toml (or SUBMISSIONS/manifest.csv) into "
        "OUT/leaderboard.html, .csv and .md, keeping every grade in OUT/history.sqlite.",
        epilog=f"The secret seed may also come from the environment variable {SECRET_SEED_ENV} (kept out of "
        "the shell history and the process list). Exit status: 0 board written, 2 unusable input.",
    )
    parser.add_argument("submissions", help="folder with one folder per student, or a manifest.csv")
    parser.add_argument("--out", required=True, help="folder for the board and its history (created if needed)")
    add_set_options(parser)
    add_problem_file_option(parser)
    parser.add_argument(
        "--policy", choices=POLICIES, default="best", help="which submission of a student ranks (default: best)"
    )
    parser.add_argument("--problems", metavar="P1,P2", help="problems to grade (default: every registered problem)")
    parser.add_argument(
        "--reference",
        metavar="DIR",
        help="reference solutions <problem>.toml, <problem>_*.toml (default: the shipped solutions/)",
    )
    parser.add_argument("--no-reference", action="store_true", help="no reference solution rows")
    parser.add_argument(
        "--workers",
        type=bounded(1, 256),
        metavar="N",
        help=f"worker processes (default: {default_workers()}, the usable CPUs)",
    )
    limits = Limits()
    parser.add_argument(
        "--time-limit",
        type=float,
        metavar="S",
        default=limits.seconds,
        help=f"seconds to load and score one file (default {limits.seconds:g})",
    )
    parser.add_argument(
        "--memory-limit",
        type=bounded(64, 1 << 20),
        metavar="MIB",
        default=limits.memory_mib,
        help=f"MiB a worker may add for one file (default {limits.memory_mib})",
    )
    return parser


def add_set_options(parser: argparse.ArgumentParser) -> None:
    """--secret-seed, --hidden-length, --hidden-texts: the hidden set (both instructor commands take them)."""
    parser.add_argument(
        "--secret-seed",
        type=bounded(0, 2**63 - 1),
        metavar="N",
        help=f"seed of the hidden texts (or {SECRET_SEED_ENV})",
    )
    parser.add_argument(
        "--hidden-length",
        type=bounded(2, MAX_POSITIONS),
        metavar="T",
        help="tokens per hidden text (default: twice the problem's)",
    )
    parser.add_argument(
        "--hidden-texts",
        type=bounded(1, MAX_TEXTS),
        metavar="N",
        help="hidden texts (default: as many tokens as the public set)",
    )


def main(argv: list[str] | None = None, prog: str = PROG) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(prog)
    try:
        args = parser.parse_args(argv)
        register_problem_files(args.problem_file)  # before anything reads the registry; workers inherit it
        options = GradingOptions(
            secret_seed=args.secret_seed if args.secret_seed is not None else env_secret_seed(),
            hidden_length=args.hidden_length,
            hidden_texts=args.hidden_texts,
            limits=Limits(seconds=_positive(args.time_limit), memory_mib=args.memory_limit),
        )
        problems = _problems(args.problems)
        reference = None if args.no_reference else args.reference or SHIPPED_SOLUTIONS
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        history = History(out / HISTORY)
        try:
            with _Progress() as progress:
                board = grade_folder(
                    args.submissions,
                    history,
                    options,
                    problems=problems,
                    policy=args.policy,
                    references=reference,
                    workers=args.workers,
                    progress=progress,
                )
            written = write_board(board, out)
        finally:
            history.close()
    except SystemExit as e:  # --help
        return int(e.code or 0)
    except HandattnError as e:
        return unusable(parser, prog, e)
    except OSError as e:  # OUT cannot be created or written
        print(f"{prog}: cannot write {escape(str(e.filename or args.out))}: {e.strerror or e}", file=sys.stderr)
        return EXIT_UNUSABLE
    _report(board, written, out / HISTORY, prog)
    return EXIT_OK


def unusable(parser: argparse.ArgumentParser, prog: str, error: HandattnError) -> int:
    """Print an error as the command line shows it (usage first for a usage mistake); exit code 2."""
    lines = usage_lines(parser, error) if isinstance(error, UsageError) else error_lines(prog, error)
    print("\n".join(lines), file=sys.stderr)
    return EXIT_UNUSABLE


def _report(board: Board, written: list[Path], history: Path, prog: str) -> None:
    stats = board.stats
    if not board.hidden:
        print(
            f"{prog}: no secret seed (--secret-seed or {SECRET_SEED_ENV}): the board ranks on the public texts only",
            file=sys.stderr,
        )
    if stats.ignored:
        print(
            f"{prog}: not graded, as not <problem>.toml inside a student folder "
            f"({plural(len(stats.ignored), 'entry', 'entries')}): {listing(stats.ignored, 5)}",
            file=sys.stderr,
        )
    errors = sum(1 for p in board.problems for e in p.entries if e.kind == "student" and e.error)
    print(
        f"graded {plural(stats.graded, 'distinct file')} in {stats.seconds:.1f} s "
        f"({plural(stats.reused, 'grade')} reused from the history)"
    )
    print(
        f"{plural(stats.submissions, 'submission')}, {plural(len(board.overall), 'student')} on the board, "
        f"{plural(errors, 'entry', 'entries')} with an error"
    )
    if board.hidden:
        sizes = sorted(
            {
                f"{p.sets['hidden']['texts']:,} × {p.sets['hidden']['length']} tokens"
                for p in board.problems
                if p.sets and p.sets.get("hidden")
            }
        )
        print(f"ranked on hidden texts (secret seed): {' or '.join(sizes)} per problem")
    print(f"wrote {', '.join(p.name for p in written)}, {history.name}")
    print(f"  into {escape(str(written[0].parent))}")


class _Progress:
    """A tqdm bar on stderr while files are graded, only when stderr is a terminal and tqdm is installed."""

    def __init__(self) -> None:
        self.bar = None

    def __enter__(self) -> _Progress:
        return self

    def __call__(self, done: int, total: int) -> None:
        if self.bar is None:
            if not sys.stderr.isatty():
                return
            try:
                from tqdm import tqdm
            except ImportError:
                return
            tqdm.monitor_interval = 0  # no monitor thread: the parent forks workers while the bar runs
            self.bar = tqdm(total=total, unit="file", file=sys.stderr, dynamic_ncols=True)
        self.bar.update(done - self.bar.n)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()


def _problems(text: str | None) -> list[str] | None:
    if text is None:
        return None
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise UsageError(f"--problems names one or more of: {', '.join(problem_names())}")
    return names


def _positive(seconds: float) -> float:
    if not seconds > 0 or seconds == float("inf"):
        raise UsageError("--time-limit must be a positive number of seconds")
    return seconds


if __name__ == "__main__":
    run(main)
