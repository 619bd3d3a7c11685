"""Writing `Weights` back to TOML, labelled (names, nonzero entries only) or dense (arrays).

Numbers are written with `repr`, the shortest text that reads back as the same
float64, so `load(save(w))` gives identical tensors. The [params] the weights came from
are written as a comment: every entry is already a number.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

import torch

from handattn.vocab import GROUPS, TOKENS
from handattn.weights.core import Weights

BARE_KEY = re.compile(r"[A-Za-z0-9_-]+\Z")


def save(weights: Weights, path: str | Path, form: str = "labelled") -> None:
    """Write weights to a file in the given form ("labelled" or "dense")."""
    Path(path).write_text(dumps(weights, form), encoding="utf-8")


def dumps(weights: Weights, form: str = "labelled") -> str:
    """The TOML text of a weight file in the given form ("labelled" or "dense")."""
    if form not in ("labelled", "dense"):
        raise ValueError(f"form must be 'labelled' or 'dense', not {form!r}")
    matrix = _labelled if form == "labelled" else _dense
    w = weights
    lines = [f"# handattn weights, {form} form", f"problem = {_string(w.problem)}"]
    if w.scale != 1.0:
        lines.append(f"scale = {_number(w.scale)}")
    if w.params:  # kept as a comment: the entries below are numbers, so a [params] table would go unused
        lines += ["", "# the entries below were computed from these [params]:"]
        lines += [f"#   {_key(name)} = {_number(value)}" for name, value in w.params.items()]
    one_hot = w.features == TOKENS and torch.equal(w.W_E, torch.eye(len(TOKENS), dtype=torch.float64))
    if not one_hot or w.W_P is not None:
        lines += ["", "[embed]", f"features = {_strings(w.features)}"]
        if not one_hot:  # an all-zero W_E must still be written, or loading would fill in the one-hot default
            lines += matrix("W_E", w.W_E, TOKENS, w.features) or ["W_E = {}"]
        if w.W_P is not None:
            lines += matrix("W_P", w.W_P, tuple(str(i + 1) for i in range(len(w.W_P))), w.features)
            if form == "labelled" and len(w.W_P) and not w.W_P[-1].any():  # the last row sets the number of positions
                lines.append(f"W_P.{len(w.W_P)} = {{}}")
    for head in w.heads:
        lines += [
            "",
            "[[heads]]",
            f"name = {_string(head.name)}",
            f"dims = {_strings(head.dims)}",
            f"values = {_strings(head.values)}",
        ]
        lines += matrix("W_Q", head.W_Q, w.features, head.dims)
        lines += matrix("W_K", head.W_K, w.features, head.dims)
        lines += matrix("W_V", head.W_V, w.features, head.values)
    lines += ["", "[unembed]"]
    lines += matrix("W_U", w.W_U, w.unembed_rows, TOKENS)
    if form == "dense":
        lines.append(f"b_U = [{', '.join(_number(x) for x in w.b_U.tolist())}]")
    elif w.b_U.any():
        lines.append(f"b_U = {_inline(w.b_U.tolist(), TOKENS)}")
    return "\n".join(lines) + "\n"


def _labelled(name: str, matrix: torch.Tensor, rows: tuple[str, ...], cols: tuple[str, ...]) -> list[str]:
    """One line per distinct nonzero row, `W_K.consonants = { c = 20.0 }`, groups where they fit."""
    keyed = _grouped([tuple(row) for row in matrix.tolist()], rows)
    return [f"{name}.{_key(key)} = {_inline(row, cols)}" for key, row in keyed if any(row)]


def _grouped(items: list, names: tuple[str, ...]) -> list[tuple[str, object]]:
    """(name, item) pairs, a whole group under the group's name wherever all its tokens agree."""
    left = dict(zip(names, items, strict=True))
    out = []
    if names == TOKENS:
        for group, members in sorted(GROUPS.items(), key=lambda kv: -len(kv[1])):  # largest first
            if all(m in left for m in members) and len({left[m] for m in members}) == 1:
                out.append((group, left[members[0]]))
                for m in members:
                    del left[m]
    return out + list(left.items())


def _dense(name: str, matrix: torch.Tensor, rows: tuple[str, ...], cols: tuple[str, ...]) -> list[str]:
    """An array of rows, each row commented with its name."""
    # names are written as keys even in comments: a raw newline or control character would break the file
    body = [f"  [{', '.join(_number(x) for x in row)}],  # {_key(rows[i])}" for i, row in enumerate(matrix.tolist())]
    return [f"{name} = [  # columns: {', '.join(map(_key, cols))}", *body, "]"]


def _inline(row: Sequence[float], cols: tuple[str, ...]) -> str:
    entries = [f"{_key(col)} = {_number(x)}" for col, x in _grouped(list(row), cols) if x != 0.0]
    return "{ " + ", ".join(entries) + " }"


def _number(x: float) -> str:
    return repr(float(x))


def _key(name: str) -> str:
    return name if BARE_KEY.match(name) else _string(name)


def _string(text: str) -> str:
    # JSON's string escapes are valid TOML basic strings; JSON leaves DEL raw, which TOML forbids
    return json.dumps(text, ensure_ascii=False).replace("\x7f", "\\u007f")


def _strings(names: tuple[str, ...]) -> str:
    return "[" + ", ".join(_string(n) for n in names) + "]"
