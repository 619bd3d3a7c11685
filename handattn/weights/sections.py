"""The sections of a weight file, top down: the nested dict TOML gives → validated `Weights`.

    problem, scale        which problem; the score scale
    [params]              named numbers, each may use the ones above it
    [embed]               features, W_E, W_P
    [[heads]]             name, dims, values, W_Q, W_K, W_V
    [unembed]             W_U, b_U

Every problem found is collected with its place and its fix and raised together as one
WeightFileError: validate first, run after. One cause gives one line: a section that
cannot be read marks what depends on it, so the entries below it stay quiet.
"""

from __future__ import annotations

import difflib
import keyword
import re

import torch

from handattn.errors import MAX_ISSUES, Issue, WeightFileError, listing, shown
from handattn.problems import get_problem, problem_names
from handattn.vocab import GROUPS, INDEX, TOKENS
from handattn.weights.cells import Axis, Cells, TooManyIssues, kind, zeros
from handattn.weights.core import (
    MAX_FEATURES,
    MAX_HEAD_DIMS,
    MAX_HEADS,
    MAX_POSITIONS,
    NAME_FIX,
    Head,
    Weights,
    name_problem,
)
from handattn.weights.expr import RESERVED

MAX_PARAMS = 256  # a real file names a handful of numbers
PARAM_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
_POSITIONS = {str(i) for i in range(1, MAX_POSITIONS + 1)}  # "1"…"512", the rows of a labelled W_P

TOP = ("problem", "scale", "params", "embed", "heads", "unembed")
EMBED = ("features", "W_E", "W_P")
HEAD = ("name", "dims", "values", "W_Q", "W_K", "W_V")
UNEMBED = ("W_U", "b_U")


def from_dict(
    data: dict, source: str = "<dict>", problem: str | None = None, params: dict[str, float] | None = None
) -> Weights:
    """Build weights from the nested dict a TOML file parses to (notebooks may write it directly).

    `problem` insists the file is written for that problem; `params` replaces the declared value
    of [params] entries (parameters computed from them follow), e.g. {"S": 5.0}.
    """
    if not isinstance(data, dict):
        raise WeightFileError(source, [Issue("", f"is {kind(data)}", 'pass a dict: {"problem": ..., "heads": [...]}')])
    issues = _key_issues(data)  # a dict from Python may hold what TOML cannot: non-text keys
    if issues:
        raise WeightFileError(source, issues)
    reader = _Reader(params or {})
    try:
        weights = reader.read(data, problem)
    except TooManyIssues:
        weights = None
        reader.issues.append(Issue("", f"stopped reading after {MAX_ISSUES} problems", "mend these first"))
    if reader.issues or weights is None:
        raise WeightFileError(source, reader.issues)
    return weights


def _key_issues(data, where: str = "", depth: int = 0) -> list[Issue]:
    """Every key that is not text, down as deep as a weight file's keys go."""
    if not isinstance(data, dict | list) or depth > 6:
        return []
    issues = []
    for key, value in data.items() if isinstance(data, dict) else enumerate(data):
        if isinstance(data, dict) and not isinstance(key, str):
            text = kind(key) if isinstance(key, int) else "it"  # kind() shows a number of any size safely
            fix = (
                f'write it as text: "{text}"'
                if isinstance(key, int) and key.bit_length() <= 64
                else "write keys as text"
            )
            issues.append(Issue(where or "top level", f"has the key {kind(key)}, not text", fix))
            continue
        place = f"{where}[{key}]" if isinstance(data, list) else f"{where}.{key}" if where else key
        issues += _key_issues(value, place, depth + 1)
    return issues


class _Reader(Cells):
    """Walks the parsed TOML section by section."""

    def __init__(self, overrides: dict[str, float]) -> None:
        super().__init__()
        self.overrides = dict(overrides)

    def read(self, data: dict, expected_problem: str | None) -> Weights | None:
        self.keys(data, "", TOP)
        problem = self.problem(data.get("problem"), expected_problem)
        self.read_params(data.get("params", {}))
        scale = self.entry(data["scale"], "scale") if "scale" in data else 1.0
        embed = self.table(data.get("embed", {}), "embed", EMBED)
        features = self.features(embed)
        W_E = self.embedding(embed, features)
        n_ctx = get_problem(problem).n_ctx if problem in problem_names() else MAX_POSITIONS
        W_P = self.positions(embed["W_P"], features, n_ctx) if embed and "W_P" in embed else None
        W_P = None if W_P is not None and len(W_P) == 0 else W_P  # `W_P = {}` is no position embedding
        heads = self.heads(data.get("heads", []), features)
        unembed = self.table(data.get("unembed", {}), "unembed", UNEMBED) or {}
        values = tuple(v for h in heads for v in h.values)
        rows = Axis("W_U row (a feature or a head's value)", features.names + values, features.known)
        W_U = self.matrix(unembed.get("W_U"), "unembed.W_U", rows, Axis("token", TOKENS))
        b_U = self.vector(unembed.get("b_U"), "unembed.b_U", Axis("token", TOKENS))
        if self.issues or not features.known or embed is None:
            return None
        try:
            return Weights(
                problem=problem, heads=heads, W_U=W_U, b_U=b_U, W_E=W_E, W_P=W_P, features=features.names,
                scale=scale if scale is not None else 1.0, params=self.params, warnings=self.unused_params(),
            )  # fmt: skip
        except WeightFileError as e:  # names and sizes the parts above could not see alone
            self.issues += e.issues
            return None

    # -- problem and parameters ----------------------------------------------------------------------

    def problem(self, value, expected: str | None) -> str:
        fix = f'add a line problem = "{expected or problem_names()[0]}" at the top'
        if value is None:
            self.fail("problem", "is missing: the file must say which problem it solves", fix)
        elif not isinstance(value, str):
            self.fail("problem", f"is {kind(value)}, not a problem name", fix)
        elif value not in problem_names():
            self.fail("problem", f"{shown(value)} is not a problem", f"use one of: {listing(problem_names(), 40)}")
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
            self.params_unreadable = True
            self.fail("params", f"is {kind(params)}", "write one [params] table, then lines like S = 20")
            return
        if len(params) > MAX_PARAMS:
            self.params_unreadable = True
            self.fail("params", f"declares {len(params):,} parameters", f"at most {MAX_PARAMS} are allowed")
            return
        for name, value in params.items():
            where = f"params.{name}"
            if name in TOP:
                self.broken_params.add(name)
                self.fail(
                    where,
                    f"{name!r} is a top-level setting, not a parameter",
                    f"move the line `{name} = …` above [params]",
                )
                continue
            if not PARAM_NAME.match(name) or keyword.iskeyword(name) or name in RESERVED:
                self.broken_params.add(name)
                fix = "start with a letter, then letters, digits or _; not a Python keyword, pi, e, log, exp or sqrt"
                self.fail(where, "is not a usable parameter name", fix)
                continue
            depends: set[str] = set()
            if name in self.overrides:  # --param NAME=VALUE: checked like any entry, reported at the option
                number = self.entry(self.overrides.pop(name), f"--param {name}")
            else:
                number = self.entry(value, where, depends)
            self.depends[name] = depends
            if number is None:
                self.broken_params.add(name)
            else:
                self.params[name] = float(number)
        for name in self.overrides:
            declared = listing([n for n in params if n not in TOP]) or "none"
            self.fail("params", f"has no parameter {shown(name)} to set", f"declared: {declared}")

    def unused_params(self) -> tuple[Issue, ...]:
        """One warning for the parameters no entry reads, directly or through another parameter."""
        used, todo = set(), list(self.used)
        while todo:
            name = todo.pop()
            if name not in used:
                used.add(name)
                todo += self.depends.get(name, ())
        unused = [name for name in self.params if name not in used]
        if not unused:
            return ()
        message = f"warning: {listing(unused)} declared, but no entry uses {'it' if len(unused) == 1 else 'them'}"
        return (Issue("params", message, 'use it in an entry (e.g. W_K.consonants.c = "S") or delete the line'),)

    # -- the embedding -----------------------------------------------------------------------------

    def features(self, embed: dict | None) -> Axis:
        """The residual features: declared, one-hot by default, or counted from a dense W_E."""
        if embed is None:
            return Axis("residual feature", (), known=False)
        if "features" in embed:
            names = self.names(embed["features"], "embed.features", MAX_FEATURES, expand_groups=True)
            return Axis("residual feature", names or (), known=names is not None)
        W_E = embed.get("W_E")
        if W_E is None:
            return Axis("residual feature", TOKENS)
        if not isinstance(W_E, list):
            fix = 'list the residual features W_E writes to, e.g. features = ["vowel", "consonant", "digit"]'
            self.fail("embed.features", "is missing", fix)
            return Axis("residual feature", (), known=False)
        return Axis("residual feature", tuple(f"f{i}" for i in range(_dense_width(W_E) or 0)))

    def embedding(self, embed: dict | None, features: Axis) -> torch.Tensor | None:
        if not embed or not features.known:
            return None
        token_columns = [j for j, f in enumerate(features.names) if f in INDEX]
        W_E = embed.get("W_E")
        if W_E is None and not token_columns:
            fix = "write which tokens carry which features, e.g. W_E.vowels.vowel = 1"
            self.fail("embed.W_E", "is missing, so every token would embed to zero", fix)
            return None
        out = self.matrix(W_E, "embed.W_E", Axis("token", TOKENS), features)
        if out is None or isinstance(W_E, list):
            return out  # a dense W_E says every entry itself
        # a token-named feature defaults to one-hot wherever the file does not write its column
        written = {col for row in (W_E or {}).values() if isinstance(row, dict) for col in row}
        written = {j for key in written for j in (features.resolve(key) or [])}
        for j in token_columns:
            if j not in written:
                out[INDEX[features.names[j]], j] = 1.0
        return out

    def positions(self, value, features: Axis, n_ctx: int) -> torch.Tensor | None:
        """W_P: rows by position (`W_P.1.first`), and `W_P.all` for every position 1…n_ctx at once."""
        where = "embed.W_P"
        if isinstance(value, list):
            rows = tuple(str(i + 1) for i in range(len(value)))
            return self.matrix(value, where, Axis("position", rows), features)
        if not isinstance(value, dict):
            return self.matrix(value, where, Axis("position", ()), features)
        bad = [k for k in value if k not in _POSITIONS and k != "all"]
        for key in bad:
            fix = f"rows of W_P are positions 1 to {MAX_POSITIONS}, or all, e.g. W_P.1.first = 1"
            self.fail(f"{where}.{key}", "is not a position", fix)
        if bad:
            return None
        rows = {k: v for k, v in value.items() if k != "all"}
        n_pos = max([int(k) for k in rows] + ([n_ctx] if "all" in value else []), default=0)
        out = self.matrix(rows, where, Axis("position", tuple(str(i + 1) for i in range(n_pos))), features)
        every = value.get("all")
        if every is None or out is None:
            return out
        if not isinstance(every, dict):
            self.fail(f"{where}.all", f"is {kind(every)}", 'name the feature: W_P.all.<feature> = "cos(pos)"')
            return None
        written = {col for row in rows.values() if isinstance(row, dict) for col in row}
        for col, entry in every.items():
            place = f"{where}.all.{col}"
            cols = self.resolve(features, col, place, f"{shown(col)} is not a residual feature")
            if cols is None:
                continue
            if col in written:
                self.fail(place, "sets a column that a numbered row sets too", "write each entry once: all, or rows")
                continue
            column = self.entry_at_positions(entry, place, n_pos)
            if column is not None:
                out[:, cols] = torch.tensor(column, dtype=torch.float64)[:, None]
        return out

    # -- heads ---------------------------------------------------------------------------------------

    def heads(self, value, features: Axis) -> list[Head]:
        if isinstance(value, dict):
            value = [value]
        if not isinstance(value, list) or not all(isinstance(h, dict) for h in value):
            self.fail("heads", "must be one [[heads]] table per head", "start each head with a line [[heads]]")
            return []
        if len(value) > MAX_HEADS:
            self.fail("heads", f"has {len(value)} heads", f"at most {MAX_HEADS} are allowed")
            return []
        return [self.head(spec, f"heads[{i}]", i, features) for i, spec in enumerate(value)]

    def head(self, spec: dict, where: str, index: int, features: Axis) -> Head:
        self.keys(spec, where, HEAD)
        name = spec.get("name", f"h{index}")
        problem = name_problem(name) if isinstance(name, str) else f"is {kind(name)}"
        if problem:
            self.fail(f"{where}.name", f"{shown(name)} {problem}" if isinstance(name, str) else problem, NAME_FIX)
            name = f"h{index}"
        labelled = any(isinstance(spec.get(m), dict) for m in ("W_Q", "W_K", "W_V")) or not any(
            isinstance(spec.get(m), list) for m in ("W_Q", "W_K", "W_V")
        )
        dims = self.head_names(spec, where, "dims", ("W_Q", "W_K"), "d", labelled)
        values = self.head_names(spec, where, "values", ("W_V",), f"{name}_v", labelled)
        qk = Axis(f"dimension of {name}.dims", dims or (), dims is not None)
        v = Axis(f"dimension of {name}.values", values or (), values is not None)
        W_Q = self.matrix(spec.get("W_Q"), f"{where}.W_Q", features, qk) if qk.known else None
        W_K = self.matrix(spec.get("W_K"), f"{where}.W_K", features, qk) if qk.known else None
        W_V = self.matrix(spec.get("W_V"), f"{where}.W_V", features, v) if v.known else None
        d = len(features.names)  # a matrix with an issue becomes zeros, so that later names (W_U rows) still resolve
        return Head(
            W_Q=_or(W_Q, zeros(d, len(qk.names))),
            W_K=_or(W_K, zeros(d, len(qk.names))),
            W_V=_or(W_V, zeros(d, len(v.names))),
            name=name,
            dims=qk.names,
            values=v.names,
        )

    def head_names(
        self, spec: dict, where: str, key: str, matrices: tuple[str, ...], prefix: str, labelled: bool
    ) -> tuple[str, ...] | None:
        """The head's `dims` or `values`: given, or counted from its dense matrices; None if unusable."""
        if key in spec:
            return self.names(spec[key], f"{where}.{key}", MAX_HEAD_DIMS)
        if labelled:
            example = 'dims = ["c"]' if key == "dims" else 'values = ["seen"]'
            self.fail(f"{where}.{key}", "is missing", f"name the columns of {' and '.join(matrices)}, e.g. {example}")
            return None
        width = max((w for m in matrices if (w := _dense_width(spec.get(m))) is not None), default=0)
        if width > MAX_HEAD_DIMS:
            self.fail(
                f"{where}.{matrices[0]}", f"has rows of {width} entries", f"a head has at most {MAX_HEAD_DIMS} {key}"
            )
            return None
        return tuple(f"{prefix}{j}" for j in range(width))

    # -- building blocks -----------------------------------------------------------------------------

    def keys(self, table: dict, where: str, allowed: tuple[str, ...]) -> None:
        for key in table:
            if key not in allowed:
                lowered = {name.lower(): name for name in allowed}  # so W_k suggests W_K, not W_V
                close = difflib.get_close_matches(key.lower(), lowered, n=1)
                hint = f"did you mean {lowered[close[0]]!r}?" if close else f"allowed here: {', '.join(allowed)}"
                self.fail(f"{where}.{key}" if where else key, "is not a known key", hint)

    def table(self, value, where: str, allowed: tuple[str, ...]) -> dict | None:
        """A section that must be a table; None (with one issue) if it is not."""
        if not isinstance(value, dict):
            self.fail(where, f"is {kind(value)}, not a table", f"write [{where}] once, on its own line, then its keys")
            return None
        self.keys(value, where, allowed)
        return value

    def names(self, value, where: str, limit: int, expand_groups: bool = False) -> tuple[str, ...] | None:
        """A list of distinct usable names (a group stands for its tokens if `expand_groups`); None if not."""
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(where, "must be a list of names in quotes", 'e.g. ["vowel", "consonant"]')
            return None
        names: list[str] = []
        for i, name in enumerate(value):
            names += GROUPS[name] if expand_groups and name in GROUPS else (name,)
            problem = name_problem(name)
            if problem:
                self.fail(f"{where}[{i}]", f"the name {shown(name)} {problem}", NAME_FIX)
                return None
        if len(names) > limit:
            self.fail(where, f"has {len(names)} names", f"at most {limit} are allowed")
            return None
        twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
        if twice is not None:
            self.fail(where, f"names {shown(twice)} twice", "give every name once (a group counts each of its tokens)")
            return None
        return tuple(names)


def _or(matrix: torch.Tensor | None, default: torch.Tensor) -> torch.Tensor:
    return default if matrix is None else matrix


def _dense_width(value) -> int | None:
    """Columns of a dense matrix (its first row's length), or None if it is not one."""
    if isinstance(value, list) and value and isinstance(value[0], list):
        return len(value[0])
    return None
