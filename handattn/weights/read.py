"""Reading weight files: bytes on disk → the nested dict TOML gives → validated `Weights`.

A weight file is untrusted data. Before tomllib sees it, it must be a regular file of at
most 1 MiB of UTF-8 text, not empty, and small in the ways that make tomllib slow (keys of
many dotted parts, very many tables or entries), so that any file is read or refused in
well under a second. Every refusal is a WeightFileError naming the file, the place and the
fix. What the TOML means is `sections.from_dict`'s business.
"""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from handattn.errors import Issue, WeightFileError
from handattn.untrusted import read_capped
from handattn.weights.core import Weights
from handattn.weights.sections import from_dict

MAX_FILE_BYTES = 1 << 20  # 1 MiB: a real solution is a few KiB
MAX_KEY_DEPTH = 8  # tomllib is quadratic in the parts of a dotted key; real files use 3 or 4
MAX_TABLES = 256  # [table] and [[array]] headers: a real file has a few, one per head
MAX_BRACKET_LINES = 20_000  # lines that start with [: headers and matrix rows; the largest real dense file has ~8k
MAX_ENTRIES = 100_000  # `=` and `,` (keys and array items): the largest real dense file has ~70k
MAX_KEYS = 10_000  # `=`: a labelled file has a line per nonzero row; real ones have dozens
MAX_QUOTES = 20_000  # quote marks, two per string: every string entry is an expression to parse
MAX_KEY_PARTS = 60_000  # dots before a key part, over the whole file: tomllib's cost grows with them
LARGE_FIX = "a weight file is a few KiB of numbers and names"
_TOKEN = re.compile(r"""(?P<part>[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"?|'[^']*'?)|(?P<blank>[ \t]+)|(?P<other>.)""")
# [name] or [[name]]; a matrix row starts with a number or a quote
_HEADER = re.compile(r"^[ \t]*\[\[?[ \t]*[A-Za-z_]", re.MULTILINE)
_BRACKET_LINE = re.compile(r"^[ \t]*\[", re.MULTILINE)  # headers of any name, and matrix rows
_KEY_DOT = re.compile(r"\.[ \t]*[A-Za-z_\"']")  # a dot before a key part (not the dot of 0.5)


def load(path: str | Path, problem: str | None = None, params: dict[str, float] | None = None) -> Weights:
    """Load a weight file; with `problem`, also insist that the file is written for it.

    `params` replaces the declared value of [params] entries, e.g. {"S": 5.0}.
    """
    missing = "check the path, or write a starter with `python -m handattn.new PROBLEM`"
    data = read_capped(path, MAX_FILE_BYTES, WeightFileError, missing_fix=missing, large_fix=LARGE_FIX)
    return loads(data, source=str(path), problem=problem, params=params)


def loads(
    text: str | bytes, source: str = "<string>", problem: str | None = None, params: dict[str, float] | None = None
) -> Weights:
    """Load weights from TOML text (or its bytes)."""
    if len(text) > MAX_FILE_BYTES:
        raise _refuse(source, "", f"is {len(text):,} bytes, over the 1 MiB limit", LARGE_FIX)
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
    except ValueError:  # an integer of thousands of digits: Python refuses to convert it
        raise _refuse(source, "", "holds a number with thousands of digits", "write entries within ±1e6") from None
    except RecursionError:
        fix = "a matrix is an array of rows of numbers"
        raise _refuse(source, "", "nests arrays or tables too deeply", fix) from None
    return from_dict(data, source=source, problem=problem, params=params)


def _refuse(source: str, where: str, message: str, fix: str) -> WeightFileError:
    return WeightFileError(source, [Issue(where, message, fix)])


def _prescan(text: str) -> list[Issue]:
    """Refuse what would make reading slow: long dotted keys, very many tables, keys, entries or strings.

    Counts are over the raw text (strings and comments included), so they overcount, and the
    limits sit far above any real file. A table header is a line that starts with [ or [[ and a
    letter (a matrix row starts with a number or a quote); headers of other names are among the
    lines that start with [, which are bounded too.
    """
    tables = len(_HEADER.findall(text))
    if tables > MAX_TABLES:
        return [Issue("", f"has {tables:,} table headers", f"a weight file has at most {MAX_TABLES} [sections]")]
    lines = len(_BRACKET_LINE.findall(text))
    if lines > MAX_BRACKET_LINES:
        fix = f"a weight file has at most {MAX_BRACKET_LINES:,} (table headers and matrix rows)"
        return [Issue("", f"has {lines:,} lines that start with [", fix)]
    counts = [
        (text.count("="), MAX_KEYS, "keys"),
        (text.count("=") + text.count(","), MAX_ENTRIES, "entries"),
        (len(_KEY_DOT.findall(text)), MAX_KEY_PARTS, "dotted key parts"),
        (text.count('"') + text.count("'"), MAX_QUOTES, "quote marks"),
    ]
    for count, limit, what in counts:
        if count > limit:
            fix = f"a weight file has at most {limit:,} {what}; write groups (W_K.consonants.c), not single tokens"
            return [Issue("", f"has about {count:,} {what}", fix)]
    for number, line in enumerate(text.split("\n"), start=1):
        if line.count(".") < MAX_KEY_DEPTH:
            continue  # too few dots for a key that is too long
        if _longest_key(line) > MAX_KEY_DEPTH:
            fix = f"keys have at most {MAX_KEY_DEPTH} parts, e.g. W_K.consonants.c"
            return [Issue(f"line {number}", f"a key with more than {MAX_KEY_DEPTH} dotted parts", fix)]
    return []


def _longest_key(line: str) -> int:
    """The most parts of a dotted run on the line, outside comments (a key may stand after `=` or `{`)."""
    longest = run = 0
    dotted = False  # just read a dot?
    for m in _TOKEN.finditer(line):
        kind, token = m.lastgroup, m.group()
        if token == "#":
            break
        if token == "." or kind == "blank":
            dotted |= token == "."
            continue
        run = run + 1 if kind == "part" and dotted else int(kind == "part")  # a part after a dot extends the run
        dotted = False
        longest = max(longest, run)
    return longest


def _toml_issue(message: str) -> Issue:
    match = re.search(r"\(at line (\d+), column (\d+)\)", message)
    reason = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", message)
    if match:
        where = f"line {match.group(1)}, column {match.group(2)}"
    else:
        where = "end of file" if "end of document" in message else ""
    fix = "check the brackets, quotes and `key = value` syntax on that line"
    return Issue(where, f"is not valid TOML: {reason}", fix)
