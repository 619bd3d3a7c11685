"""Building `Weights` from the nested dict a weight file parses to (or a notebook writes).

Two forms, chosen matrix by matrix: a matrix written as an array of rows is
*dense*; a matrix written as a table is *labelled*, addressed by names,

    W_K.consonants.c = "S"      # row: a feature, token or group; column: a head dimension

with omitted entries 0. Every problem found is collected, with its place and its
fix, and raised together as one WeightFileError: validate first, run after.
"""

from __future__ import annotations

import datetime
import difflib
import re
from dataclasses import dataclass

import torch

from handattn.errors import Issue, WeightFileError
from handattn.problems import get_problem, problem_names
from handattn.vocab import GROUPS, INDEX, TOKENS
from handattn.weights.core import MAX_FEATURES, MAX_HEAD_DIMS, MAX_HEADS, MAX_POSITIONS, Head, Weights
from handattn.weights.expr import MAX_ABS, RESERVED, ExpressionError, check_bounds, evaluate

NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_POSITIONS = {str(i) for i in range(1, MAX_POSITIONS + 1)}  # "1"…"512", the rows of a labelled W_P

TOP = ("problem", "scale", "params", "embed", "heads", "unembed")
EMBED = ("features", "W_E", "W_P")
HEAD = ("name", "dims", "values", "W_Q", "W_K", "W_V")
UNEMBED = ("W_U", "b_U")
MAX_ISSUES = 50  # past this many, a file is not worth reading further


class _TooMany(Exception):
    pass


def from_dict(data: dict, source: str = "<dict>", problem: str | None = None) -> Weights:
    """Build weights from the nested dict a TOML file parses to (notebooks may write it directly)."""
    if not isinstance(data, dict):
        raise WeightFileError(source, [Issue("", f"is {_kind(data)}", 'pass a dict: {"problem": ..., "heads": [...]}')])
    issues = _key_issues(data)  # a dict from Python may hold what TOML cannot: non-text keys
    if issues:
        raise WeightFileError(source, issues)
    reader = _Reader()
    try:
        weights = reader.read(data, problem)
    except _TooMany:
        weights = None
        reader.issues.append(Issue("", f"stopped reading after {MAX_ISSUES} problems", "mend these first"))
    if reader.issues:
        raise WeightFileError(source, reader.issues)
    assert weights is not None  # no issues means the reader built them
    return weights


def _key_issues(data, where: str = "", depth: int = 0) -> list[Issue]:
    """Every key that is not text, down as deep as a weight file's keys go."""
    if not isinstance(data, dict | list) or depth > 6:
        return []
    issues = []
    for key, value in data.items() if isinstance(data, dict) else enumerate(data):
        if isinstance(data, dict) and not isinstance(key, str):
            issues.append(Issue(where or "top level", f"has the key {key!r}, not text", f'write it as text: "{key}"'))
            continue
        place = f"{where}[{key}]" if isinstance(data, list) else f"{where}.{key}" if where else key
        issues += _key_issues(value, place, depth + 1)
    return issues


@dataclass
class _Axis:
    """The names along one side of a matrix; groups expand to their tokens where tokens are names."""

    what: str  # "residual feature", "token", "value dimension of head 'seen'"
    names: tuple[str, ...]

    def resolve(self, key: str) -> list[int] | None:
        if key in self.names:
            return [self.names.index(key)]
        members = GROUPS.get(key)
        if members and all(tok in self.names for tok in members):
            return [self.names.index(tok) for tok in members]
        return None

    def unknown(self, key: str) -> str:
        close = difflib.get_close_matches(key, self.names + tuple(GROUPS), n=1)
        hint = f"did you mean {close[0]!r}? " if close else ""
        if key in GROUPS:
            return f"{key!r} is a group of tokens, but here the names are: {_listing(self.names)}"
        return f"{hint}choose from: {_listing(self.names)}"


def _listing(names: tuple[str, ...]) -> str:
    if names == TOKENS:
        return "a…z, 0, 1 (or a group: " + ", ".join(GROUPS) + ")"
    shown = ", ".join(names[:12])
    return shown + (f", … ({len(names)} in all)" if len(names) > 12 else "")


class _Reader:
    """Walks the parsed TOML, collecting every issue instead of stopping at the first."""

    def __init__(self) -> None:
        self.issues: list[Issue] = []
        self.params: dict[str, float] = {}

    def fail(self, where: str, message: str, fix: str = "") -> None:
        self.issues.append(Issue(where, message, fix))
        if len(self.issues) >= MAX_ISSUES:
            raise _TooMany

    # -- the file, top down --------------------------------------------------------------------------

    def read(self, data: dict, expected_problem: str | None) -> Weights | None:
        self.keys(data, "", TOP)
        problem = self.problem(data.get("problem"), expected_problem)
        self.read_params(data.get("params", {}))
        scale = self.entry(data["scale"], "scale") if "scale" in data else 1.0
        embed = self.table(data.get("embed", {}), "embed", EMBED)
        features = self.features(embed)
        W_E = self.embedding(embed, features)
        W_P = self.positions(embed.get("W_P"), features) if "W_P" in embed else None
        heads = self.heads(data.get("heads", []), features)
        unembed = self.table(data.get("unembed", {}), "unembed", UNEMBED)
        rows = features + tuple(v for h in heads for v in h.values)
        W_U = self.matrix(
            unembed.get("W_U"),
            "unembed.W_U",
            _Axis("W_U row (a feature or a head's value)", rows),
            _Axis("token", TOKENS),
        )
        b_U = self.vector(unembed.get("b_U"), "unembed.b_U", _Axis("token", TOKENS))
        if self.issues:
            return None
        try:
            return Weights(problem, heads, W_U, b_U, W_E, W_P, features, scale, self.params)
        except WeightFileError as e:  # names and sizes the parts above could not see alone
            self.issues += e.issues
            return None

    def problem(self, value, expected: str | None) -> str:
        fix = f'add a line problem = "{expected or problem_names()[0]}" at the top'
        if value is None:
            self.fail("problem", "is missing: the file must say which problem it solves", fix)
        elif not isinstance(value, str):
            self.fail("problem", f"is {value!r}, not a problem name", fix)
        elif value not in problem_names():
            self.fail("problem", f"{value!r} is not a problem", f"use one of: {', '.join(problem_names())}")
        elif expected is not None and value != expected:
            self.fail(
                "problem",
                f"this file is written for {value}, not {expected}",
                f'check it with `python -m handattn.check {value} FILE`, or change the line to problem = "{expected}"',
            )
        else:
            return get_problem(value).name
        return expected or ""

    def read_params(self, params) -> None:
        if not isinstance(params, dict):
            self.fail("params", "must be a table of name = value", "write [params] and then lines like S = 20")
            return
        for name, value in params.items():
            if not NAME.match(name) or name.startswith("_") or name in RESERVED:
                self.fail(
                    f"params.{name}",
                    "is not a usable parameter name",
                    "use letters, digits and _, starting with a letter, and not pi, e, log, exp or sqrt",
                )
                continue
            number = self.entry(value, f"params.{name}")  # may use the parameters declared above it
            if number is not None:
                self.params[name] = number

    def features(self, embed: dict) -> tuple[str, ...]:
        if "features" in embed:
            names = self.names(embed["features"], "embed.features", MAX_FEATURES)
            expanded: list[str] = []
            for name in names:  # a group stands for one feature per token: ["all", "first"] is one-hot plus "first"
                expanded += GROUPS[name] if name in GROUPS else (name,)
            return tuple(expanded)
        W_E = embed.get("W_E")
        if W_E is None:
            return TOKENS
        if not isinstance(W_E, list):
            self.fail(
                "embed.features",
                "is missing",
                'list the residual features W_E writes to, e.g. features = ["vowel", "consonant", "digit"]',
            )
            return ()
        return tuple(f"f{i}" for i in range(_dense_width(W_E) or 0))

    def embedding(self, embed: dict, features: tuple[str, ...]) -> torch.Tensor | None:
        if "W_E" in embed:
            return self.matrix(embed["W_E"], "embed.W_E", _Axis("token", TOKENS), _Axis("feature", features))
        if not any(f in INDEX for f in features):
            self.fail(
                "embed.W_E",
                "is missing, so every token would embed to zero",
                "write which tokens carry which features, e.g. W_E.vowels.vowel = 1",
            )
            return None
        # default: each token lights up the feature of its own name, if there is one
        return torch.tensor([[float(f == tok) for f in features] for tok in TOKENS], dtype=torch.float64)

    def positions(self, value, features: tuple[str, ...]) -> torch.Tensor | None:
        where = "embed.W_P"
        if isinstance(value, list):
            return self.matrix(
                value,
                where,
                _Axis("position", tuple(str(i + 1) for i in range(len(value)))),
                _Axis("feature", features),
            )
        if not isinstance(value, dict):
            return self.matrix(value, where, _Axis("position", ()), _Axis("feature", features))
        bad = [k for k in value if k not in _POSITIONS]
        for key in bad:
            self.fail(
                f"{where}.{key}",
                "is not a position",
                f"rows of W_P are positions 1 to {MAX_POSITIONS}, e.g. W_P.1.first = 1",
            )
        if bad:
            return None
        n_pos = max((int(k) for k in value), default=0)
        return self.matrix(
            value, where, _Axis("position", tuple(str(i + 1) for i in range(n_pos))), _Axis("feature", features)
        )

    def heads(self, value, features: tuple[str, ...]) -> list[Head]:
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(h, dict) for h in value):
            self.fail("heads", "must be one [[heads]] table per head", "start each head with a line [[heads]]")
            return []
        if len(value) > MAX_HEADS:
            self.fail("heads", f"has {len(value)} heads", f"at most {MAX_HEADS} are allowed")
            return []
        return [self.head(spec, f"heads[{i}]", i, features) for i, spec in enumerate(value)]

    def head(self, spec: dict, where: str, index: int, features: tuple[str, ...]) -> Head:
        self.keys(spec, where, HEAD)
        name = spec.get("name", f"h{index}")
        if not isinstance(name, str) or not name or len(name) > 32 or "." in name:  # "<name>_v63" must be a name too
            self.fail(f"{where}.name", f"is {_kind(name)}", 'use a short name without dots, e.g. name = "seen"')
            name = f"h{index}"
        dims = self.head_names(spec, where, "dims", ("W_Q", "W_K"), "d")
        values = self.head_names(spec, where, "values", ("W_V",), f"{name}_v")
        rows = _Axis("residual feature", features)
        qk, v = _Axis(f"dimension of {name}.dims", dims or ()), _Axis(f"dimension of {name}.values", values or ())
        W_Q = self.matrix(spec.get("W_Q"), f"{where}.W_Q", rows, qk) if dims is not None else None
        W_K = self.matrix(spec.get("W_K"), f"{where}.W_K", rows, qk) if dims is not None else None
        W_V = self.matrix(spec.get("W_V"), f"{where}.W_V", rows, v) if values is not None else None
        # a matrix with an issue becomes zeros, so that later names (W_U rows) still resolve
        return Head(
            _or(W_Q, _zeros(len(features), len(qk.names))),
            _or(W_K, _zeros(len(features), len(qk.names))),
            _or(W_V, _zeros(len(features), len(v.names))),
            name,
            qk.names,
            v.names,
        )

    def head_names(
        self, spec: dict, where: str, key: str, matrices: tuple[str, ...], prefix: str
    ) -> tuple[str, ...] | None:
        """The head's `dims` or `values`: given, or counted from its dense matrices; None if missing."""
        if key in spec:
            return self.names(spec[key], f"{where}.{key}", MAX_HEAD_DIMS)
        widths = {_dense_width(spec.get(m)) for m in matrices if m in spec}
        if any(isinstance(spec.get(m), dict) for m in matrices):
            example = 'dims = ["c"]' if key == "dims" else 'values = ["seen"]'
            self.fail(f"{where}.{key}", "is missing", f"name the columns of {' and '.join(matrices)}, e.g. {example}")
            return None
        width = max((w for w in widths if w is not None), default=0)
        return tuple(f"{prefix}{j}" for j in range(min(width, MAX_HEAD_DIMS + 1)))

    # -- building blocks -----------------------------------------------------------------------------

    def keys(self, table: dict, where: str, allowed: tuple[str, ...]) -> None:
        for key in table:
            if key not in allowed:
                lowered = {name.lower(): name for name in allowed}  # so W_k suggests W_K, not W_V
                close = difflib.get_close_matches(key.lower(), lowered, n=1)
                hint = f"did you mean {lowered[close[0]]!r}?" if close else f"allowed here: {', '.join(allowed)}"
                self.fail(f"{where}.{key}" if where else key, "is not a known key", hint)

    def table(self, value, where: str, allowed: tuple[str, ...]) -> dict:
        if not isinstance(value, dict):
            self.fail(where, "must be a table", f"write [{where}] on its own line, then its keys")
            return {}
        self.keys(value, where, allowed)
        return value

    def names(self, value, where: str, limit: int) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.fail(where, "must be a list of names in quotes", 'e.g. ["vowel", "consonant"]')
            return ()
        if len(value) > limit:
            self.fail(where, f"has {len(value)} names", f"at most {limit} are allowed")
            return ()
        return tuple(value)  # what a name may look like, `Weights` checks for files and Python alike

    def entry(self, value, where: str) -> float | None:
        """A number, or an arithmetic string over [params]; None (with an issue) if neither."""
        try:
            if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                raise ExpressionError(f"is {_kind(value)}, not a number")
            if isinstance(value, str):
                return evaluate(value, self.params)
            return check_bounds(float(value))
        except OverflowError:
            self.fail(where, "is too large a number", f"keep every entry within ±{MAX_ABS:g}")
            return None
        except ExpressionError as e:
            self.fail(
                where, str(e), f'write a number or arithmetic in quotes such as "-S/2" (finite, within ±{MAX_ABS:g})'
            )
            return None

    def vector(self, value, where: str, axis: _Axis) -> torch.Tensor | None:
        if value is None:
            return None
        if isinstance(value, list):
            if len(value) != len(axis.names):
                self.fail(
                    where,
                    f"has {len(value)} entries, expected {len(axis.names)}",
                    "one per token, in the order a…z, 0, 1",
                )
                return None
            entries = [self.entry(v, f"{where}[{j}]") for j, v in enumerate(value)]
            return None if None in entries else torch.tensor(entries, dtype=torch.float64)
        if not isinstance(value, dict):
            self.fail(where, f"is {_kind(value)}", "write a table token = number, or a list of 28 numbers")
            return None
        out = torch.zeros(len(axis.names), dtype=torch.float64)
        setter: dict[int, str] = {}
        for key, entry in value.items():
            cols = axis.resolve(key)
            if cols is None:
                self.fail(f"{where}.{key}", f"is not a {axis.what}", axis.unknown(key))
                continue
            number = self.entry(entry, f"{where}.{key}")
            for j in cols:
                if j in setter:
                    self.fail(
                        f"{where}.{key}",
                        f"sets {axis.names[j]!r}, which {setter[j]!r} already set",
                        "write each entry once (groups must not overlap)",
                    )
                    break
                setter[j] = key
                out[j] = number if number is not None else 0.0
        return out

    def matrix(self, value, where: str, rows: _Axis, cols: _Axis) -> torch.Tensor | None:
        """A matrix in either form; omitted (None) means all zeros."""
        if value is None:
            return _zeros(len(rows.names), len(cols.names))
        if isinstance(value, list):
            return self.dense(value, where, rows, cols)
        if not isinstance(value, dict):
            self.fail(
                where,
                f"is {_kind(value)}",
                f"write a table (labelled: {where.split('.')[-1]}.row.column = value) or an array of rows",
            )
            return None
        out = _zeros(len(rows.names), len(cols.names))
        setter: dict[tuple[int, int], str] = {}
        ok = True
        for row_key, row in value.items():
            row_ids = rows.resolve(row_key)
            if row_ids is None:
                self.fail(f"{where}.{row_key}", f"is not a {rows.what}", rows.unknown(row_key))
                ok = False
                continue
            if not isinstance(row, dict):
                self.fail(
                    f"{where}.{row_key}",
                    f"is {_kind(row)}",
                    f"name the column too: {where.split('.')[-1]}.{row_key}.<{cols.what}> = value",
                )
                ok = False
                continue
            for col_key, entry in row.items():
                place = f"{where}.{row_key}.{col_key}"
                col_ids = cols.resolve(col_key)
                if col_ids is None:
                    self.fail(place, f"{col_key!r} is not a {cols.what}", cols.unknown(col_key))
                    ok = False
                    continue
                number = self.entry(entry, place)
                ok &= number is not None
                cells = [(i, j) for i in row_ids for j in col_ids]
                taken = next((cell for cell in cells if cell in setter), None)
                if taken is not None:
                    i, j = taken
                    self.fail(
                        place,
                        f"sets [{rows.names[i]}, {cols.names[j]}], which {setter[taken]} already set",
                        "write each entry once (groups in a matrix must not overlap)",
                    )
                    ok = False
                    continue
                for cell in cells:
                    setter[cell] = place
                    out[cell] = number or 0.0
        return out if ok else None

    def dense(self, value: list, where: str, rows: _Axis, cols: _Axis) -> torch.Tensor | None:
        if len(value) != len(rows.names):
            self.fail(
                where,
                f"has {len(value)} rows, expected {len(rows.names)}",
                f"one row per {rows.what}: {_listing(rows.names)}",
            )
            return None
        entries = []
        for i, row in enumerate(value):
            if not isinstance(row, list) or len(row) != len(cols.names):
                n = len(cols.names)
                got = (
                    f"has {len(row)} entries, expected {n}" if isinstance(row, list) else f"is {_kind(row)}, not a row"
                )
                self.fail(f"{where}[{i}]", got, f"one entry per {cols.what}")
                return None
            entries.append([self.entry(v, f"{where}[{i}][{j}]") for j, v in enumerate(row)])
        if any(None in row for row in entries):
            return None
        return torch.tensor(entries, dtype=torch.float64).reshape(len(rows.names), len(cols.names))


def _or(matrix: torch.Tensor | None, default: torch.Tensor) -> torch.Tensor:
    return default if matrix is None else matrix


def _zeros(rows: int, cols: int) -> torch.Tensor:
    return torch.zeros(rows, cols, dtype=torch.float64)


def _dense_width(value) -> int | None:
    """Columns of a dense matrix (its first row's length), or None if it is not one."""
    if isinstance(value, list) and value and isinstance(value[0], list):
        return len(value[0])
    return None


def _kind(value) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f"the text {value[:30]!r}"
    if isinstance(value, datetime.date | datetime.time):
        return f"the date or time {value.isoformat()}"
    return f"{value!r}"
