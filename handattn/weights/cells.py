"""Names to cells: how `W_K.consonants.c = "S"` becomes one entry of a float64 tensor.

A matrix is written in one of two forms, chosen matrix by matrix: an array of rows is
*dense*; a table is *labelled*, addressed by names along each `Axis`

    W_K.consonants.c = "S"      # row: a feature, token or group; column: a head dimension

with omitted entries 0. A group (`consonants`) stands for each of its tokens wherever the
names are tokens. `Cells` evaluates every entry (numbers or safe arithmetic over the
file's [params]) and places it, collecting every issue instead of stopping at the first.
"""

from __future__ import annotations

import datetime
import difflib
from dataclasses import dataclass

import torch

from handattn.errors import MAX_ISSUES, Issue, clip, escape, listing, shown
from handattn.vocab import GROUPS, TOKENS
from handattn.weights.expr import MAX_ABS, ExpressionError, check_bounds, evaluate, evaluate_positions


class TooManyIssues(Exception):
    """Raised once MAX_ISSUES are collected; the reader stops and reports what it has."""


@dataclass(frozen=True)
class Axis:
    """The names along one side of a matrix; groups expand to their tokens where tokens are names.

    `known=False` marks names that could not be read (a bad `features` list, say): that has its
    own issue, so keys along such an axis are skipped silently instead of each adding another.
    """

    what: str  # "residual feature", "token", "dimension of seen.values"
    names: tuple[str, ...]
    known: bool = True

    def resolve(self, key: str) -> list[int] | None:
        if key in self.names:
            return [self.names.index(key)]
        members = GROUPS.get(key)
        if members and all(tok in self.names for tok in members):
            return [self.names.index(tok) for tok in members]
        return None

    def unknown(self, key: str) -> str:
        """The fix for a key that names nothing on this axis."""
        if key in GROUPS:
            return f"{key!r} is a group of tokens, but here the names are: {_names(self.names)}"
        close = difflib.get_close_matches(key, self.names + tuple(GROUPS), n=1)
        hint = f"did you mean {shown(close[0])}? " if close else ""
        return f"{hint}choose from: {_names(self.names)}"


def _names(names: tuple[str, ...]) -> str:
    if names == TOKENS:
        return "a…z, 0, 1 (or a group: " + ", ".join(GROUPS) + ")"
    return listing(names) or "(none: declare them first)"


class Cells:
    """Evaluates entries and places them into tensors, collecting issues as it goes."""

    def __init__(self) -> None:
        self.issues: list[Issue] = []
        self.params: dict[str, float] = {}
        self.broken_params: set[str] = set()  # declared but failed: their own issue says why
        self.params_unreadable = False  # the whole [params] table is malformed
        self.used: set[str] = set()  # parameters read by an entry
        self.depends: dict[str, set[str]] = {}  # parameter → the parameters its expression reads

    def fail(self, where: str, message: str, fix: str = "") -> None:
        self.issues.append(Issue(where, message, fix))
        if len(self.issues) >= MAX_ISSUES:
            raise TooManyIssues

    def entry(self, value, where: str, used: set[str] | None = None) -> float | None:
        """A number, or an arithmetic string over [params]; None (with an issue) if neither."""
        used = self.used if used is None else used
        try:
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise ExpressionError(f"is {kind(value)}, not a number")
            if isinstance(value, str):
                return evaluate(value, self.params, used)
            return check_bounds(float(value))
        except OverflowError:
            self.fail(where, "is too large a number", f"keep every entry within ±{MAX_ABS:g}")
        except ExpressionError as e:
            if e.unknown_name in self.broken_params or (e.unknown_name and self.params_unreadable):
                return None  # one cause, one line: the parameter's own issue says what is wrong
            fix = f'write a number or arithmetic in quotes such as "-S/2" (finite, within ±{MAX_ABS:g})'
            self.fail(where, str(e), fix)
        return None

    def entry_at_positions(self, value, where: str, n: int) -> list[float] | None:
        """An entry for every position 1…n: a number, or an expression over [params] and `pos`."""
        if not isinstance(value, str):
            number = self.entry(value, where)
            return None if number is None else [number] * n
        try:
            return evaluate_positions(value, n, self.params, self.used)
        except ExpressionError as e:
            if e.unknown_name in self.broken_params or (e.unknown_name and self.params_unreadable):
                return None
            self.fail(where, str(e), 'write arithmetic over the parameters and pos, e.g. "cos(THETA*pos)"')
        return None

    def vector(self, value, where: str, axis: Axis) -> torch.Tensor | None:
        """A vector along `axis`: a list of one entry per name, or a table name = entry."""
        if value is None:
            return None
        if isinstance(value, list):
            return self.dense([value], where, Axis("", ("",)), axis, row_places=False)
        if not isinstance(value, dict):
            self.fail(where, f"is {kind(value)}", "write a table token = number, or a list of 28 numbers")
            return None
        out = torch.zeros(1, len(axis.names), dtype=torch.float64)
        ok = self.place_row(out, {}, value, where, [0], Axis("", ("",)), axis)
        return out[0] if ok else None

    def matrix(self, value, where: str, rows: Axis, cols: Axis) -> torch.Tensor | None:
        """A matrix in either form; omitted (None) means all zeros; None (with issues) if unusable."""
        if value is None:
            return zeros(len(rows.names), len(cols.names))
        if isinstance(value, list):
            return self.dense(value, where, rows, cols)
        short = where.split(".")[-1]
        if not isinstance(value, dict):
            fix = f"write a table (labelled: {short}.row.column = value) or an array of rows"
            self.fail(where, f"is {kind(value)}", fix)
            return None
        out = zeros(len(rows.names), len(cols.names))
        setter: dict[tuple[int, int], str] = {}
        ok = True
        for row_key, row in value.items():
            place = f"{where}.{row_key}"
            row_ids = self.resolve(rows, row_key, place, f"is not a {rows.what}")
            if row_ids is None:
                ok = False
            elif not isinstance(row, dict):
                self.fail(place, f"is {kind(row)}", f"name the column too: {short}.{row_key}.<{cols.what}> = value")
                ok = False
            else:
                ok &= self.place_row(out, setter, row, place, row_ids, rows, cols)
        return out if ok else None

    def resolve(self, axis: Axis, key: str, place: str, message: str) -> list[int] | None:
        """The indices a key names along `axis`; None, with an issue unless the axis itself is unknown."""
        ids = axis.resolve(key)
        if ids is None and axis.known:
            self.fail(place, message, axis.unknown(key))
        return ids

    def place_row(
        self, out: torch.Tensor, setter: dict, row: dict, where: str, row_ids: list[int], rows: Axis, cols: Axis
    ) -> bool:
        """Place `column = entry` pairs into the rows `row_ids` of `out`; each cell may be set once."""
        ok = True
        for col_key, entry in row.items():
            place = f"{where}.{col_key}"
            col_ids = self.resolve(cols, col_key, place, f"{shown(col_key)} is not a {cols.what}")
            if col_ids is None:
                ok = False
                continue
            number = self.entry(entry, place)
            cells = [(i, j) for i in row_ids for j in col_ids]
            taken = next((cell for cell in cells if cell in setter), None)
            if taken is not None:
                i, j = taken
                cell = f"[{rows.names[i]}, {cols.names[j]}]" if rows.names[i] else shown(cols.names[j])
                self.fail(
                    place,
                    f"sets {cell}, which {setter[taken]} already set",
                    "write each entry once (groups must not overlap)",
                )
                ok = False
                continue
            for cell in cells:
                setter[cell] = place
                out[cell] = number if number is not None else 0.0
            ok &= number is not None
        return ok

    def dense(self, value: list, where: str, rows: Axis, cols: Axis, row_places: bool = True) -> torch.Tensor | None:
        """An array of rows (or, with `row_places=False`, the single row of a vector)."""
        if len(value) != len(rows.names):
            fix = f"one row per {rows.what}: {_names(rows.names)}"
            self.fail(where, f"has {len(value)} rows, expected {len(rows.names)}", fix)
            return None
        entries = []
        for i, row in enumerate(value):
            place = f"{where}[{i}]" if row_places else where
            n = len(cols.names)
            if not isinstance(row, list) or len(row) != n:
                got = f"has {len(row)} entries, expected {n}" if isinstance(row, list) else f"is {kind(row)}, not a row"
                order = ", in the order a…z, 0, 1" if cols.names == TOKENS else ""
                self.fail(place, got, f"one entry per {cols.what}{order}")
                return None
            entries.append([self.entry(v, f"{place}[{j}]") for j, v in enumerate(row)])
        if any(None in row for row in entries):
            return None
        out = torch.tensor(entries, dtype=torch.float64).reshape(len(rows.names), len(cols.names))
        return out if row_places else out[0]


def zeros(rows: int, cols: int) -> torch.Tensor:
    return torch.zeros(rows, cols, dtype=torch.float64)


def kind(value) -> str:
    """What a value from a file is, for a message: "a table", "the text 'abc'", "the boolean true"."""
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text {shown(value, 30)}"
    if isinstance(value, datetime.date | datetime.time):
        return f"the date or time {value.isoformat()}"
    if isinstance(value, int) and value.bit_length() > 64:
        return "a whole number of more than 64 bits"
    return escape(clip(repr(value), 40))
