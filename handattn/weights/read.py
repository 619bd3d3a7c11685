"""Reading weight files: bytes on disk → the nested dict TOML gives → validated `Weights`.

A weight file is untrusted data. Before tomllib sees it, it must be at most
1 MiB of UTF-8 text, not empty, and free of dotted keys long enough to make
tomllib slow; every refusal is a WeightFileError naming the file, the place and
the fix. What the TOML means is `build.from_dict`'s business.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from handattn.errors import Issue, WeightFileError
from handattn.weights.build import from_dict
from handattn.weights.core import Weights

MAX_FILE_BYTES = 1 << 20  # 1 MiB: a real solution is a few KiB
MAX_KEY_DEPTH = 16  # tomllib is quadratic in the parts of a dotted key; real files use 3
_TOKEN = re.compile(r"""(?P<part>[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"?|'[^']*'?)|(?P<blank>[ \t]+)|(?P<other>.)""")


def load(path: str | Path, problem: str | None = None) -> Weights:
    """Load a weight file; with `problem`, also insist that the file is written for it."""
    path = Path(path)
    source = str(path)
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:  # refuse before reading it
            raise _too_large(source, size)
        with path.open("rb") as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except IsADirectoryError:
        raise _refuse(source, "", "is a folder, not a weight file", "name a .toml file") from None
    except FileNotFoundError:
        fix = "check the path, or write a starter with `python -m handattn.new PROBLEM`"
        raise _refuse(source, "", "does not exist", fix) from None
    except OSError as e:
        raise _refuse(source, "", f"cannot be read ({e.strerror or e})", "check the path and its permissions") from None
    return loads(data, source=source, problem=problem)


def loads(text: str | bytes, source: str = "<string>", problem: str | None = None) -> Weights:
    """Load weights from TOML text (or its bytes)."""
    if len(text) > MAX_FILE_BYTES:
        raise _too_large(source)
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            line = text[: e.start].count(b"\n") + 1
            fix = "save the file as UTF-8 (plain text)"
            raise _refuse(source, f"line {line}", f"byte {e.start + 1} is not UTF-8 text", fix) from None
    text = text.removeprefix("\ufeff")  # a byte-order mark, as some Windows editors write
    if not text.strip():
        fix = "start from `python -m handattn.new PROBLEM`, which writes a file to fill in"
        raise _refuse(source, "", "is empty", fix)
    issues = _prescan(text)
    if issues:
        raise WeightFileError(source, issues)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise WeightFileError(source, [_toml_issue(str(e))]) from None
    except RecursionError:
        fix = "a matrix is an array of rows of numbers"
        raise _refuse(source, "", "nests arrays or tables too deeply", fix) from None
    return from_dict(data, source=source, problem=problem)


def _refuse(source: str, where: str, message: str, fix: str) -> WeightFileError:
    return WeightFileError(source, [Issue(where, message, fix)])


def _too_large(source: str, size: int) -> WeightFileError:
    return _refuse(
        source, "", f"is {size:,} bytes, over the 1 MiB limit", "a weight file is a few KiB of numbers and names"
    )


def _prescan(text: str) -> list[Issue]:
    """Refuse what would make tomllib itself slow: dotted keys with very many parts.

    A key may stand anywhere on a line (after `=` inside an inline table, in a header
    with a quoted part), so count the parts of every dotted run outside strings and comments.
    """
    for number, line in enumerate(text.splitlines(), start=1):
        if line.count(".") < MAX_KEY_DEPTH:
            continue  # too few dots for a key that is too long
        run, dotted = 0, False  # parts of the current dotted run; just read a dot?
        for m in _TOKEN.finditer(line):
            kind, token = m.lastgroup, m.group()
            if token == "#":
                break
            if token == "." or kind == "blank":
                dotted |= token == "."
                continue
            run = run + 1 if kind == "part" and dotted else int(kind == "part")  # a part after a dot extends the run
            dotted = False
            if run > MAX_KEY_DEPTH:
                return [
                    Issue(
                        f"line {number}",
                        f"a key with more than {MAX_KEY_DEPTH} dotted parts",
                        f"keys have at most {MAX_KEY_DEPTH} parts, e.g. W_K.consonants.c",
                    )
                ]
    return []


def _toml_issue(message: str) -> Issue:
    match = re.search(r"\(at line (\d+), column (\d+)\)", message)
    reason = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", message)
    where = (
        f"line {match.group(1)}, column {match.group(2)}"
        if match
        else "end of file"
        if "end of document" in message
        else ""
    )
    return Issue(
        where, f"is not valid TOML: {reason}", "check the brackets, quotes and `key = value` syntax on that line"
    )
