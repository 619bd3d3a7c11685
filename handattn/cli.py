"""`handattn COMMAND ...`: one entry point for every command (`handattn check problem2 FILE`)."""

from __future__ import annotations

import sys

from handattn import check, gradescope, leaderboard, new, show, solve
from handattn._cli import EXIT_OK, EXIT_UNUSABLE, run

COMMANDS = {
    "check": check.main,
    "new": new.main,
    "show": show.main,
    "solve": solve.main,
    "leaderboard": leaderboard.main,
    "gradescope": gradescope.main,
}
USAGE = "usage: handattn {check,new,show,solve,list,leaderboard,gradescope} ...   (handattn COMMAND --help for each)"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stdout if argv else sys.stderr)
        return EXIT_OK if argv else EXIT_UNUSABLE
    command, rest = argv[0], argv[1:]
    if command == "list":
        return check.main(["--list"], prog="handattn check")
    if command not in COMMANDS:
        print(f"handattn: unknown command {command!r}\n{USAGE}", file=sys.stderr)
        return EXIT_UNUSABLE
    return COMMANDS[command](rest, prog=f"handattn {command}")


def main_entry() -> None:
    """The `handattn` console script."""
    run(main)
