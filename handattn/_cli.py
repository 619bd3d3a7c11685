"""What every command shares: exit codes, one-line errors, quiet broken pipes."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable

from handattn.errors import HandattnError, InputError

EXIT_OK = 0  # ran; for check: passed
EXIT_FAILED = 1  # check: scored, but not passed
EXIT_UNUSABLE = 2  # unusable input: unknown problem, unreadable or invalid file, bad options

MAX_ERROR_LINES = 20


def error_lines(prog: str, error: HandattnError) -> list[str]:
    """The lines a command prints for an error: one per issue, never a traceback."""
    if isinstance(error, InputError):
        return error.lines(MAX_ERROR_LINES)
    return [f"{prog}: {error}"]


def run(main: Callable[[], int]) -> None:
    """Run a command's main and exit with its code; `| head` closing the pipe is not an error."""
    try:
        code = main()
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # python would complain again while flushing at exit
        code = EXIT_FAILED
    except KeyboardInterrupt:
        code = 130
    raise SystemExit(code)
