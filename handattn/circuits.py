"""Circuit tables: what each head computes, read straight off the weights, as labelled data.

In the vocabulary of Anthropic's "A Mathematical Framework for Transformer Circuits" and
TransformerLens (weights on the right, x @ W):

- the QK circuit: attn_scores[query, key] = scale · (x_q W_Q)(x_k W_K)ᵀ, for every pair of
  residual rows; it decides where a head attends.
- the OV circuit → logits: x W_V W_U[head's values], what attending fully (pattern = 1) to a
  row adds to each output token's logit; it decides what the head says. (Our heads write their
  values straight into W_U's rows, so W_O is the identity onto those rows.)

Rows are the file's own features when it declares them (`vowel`, `consonant`, …, including
position features written by W_P), and tokens otherwise, through W_E ("full" circuits in
TransformerLens' sense). A named group of tokens (vowels, consonants, letters, digits, all)
is collapsed to one row or column wherever its members' rows or columns are equal.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from handattn.vocab import GROUPS, TOKENS
from handattn.weights import Weights


@dataclass(frozen=True)
class Table:
    """A labelled matrix; each row and column label stands for one or more names (a collapsed group)."""

    title: str
    rows: tuple[str, ...]
    cols: tuple[str, ...]
    values: torch.Tensor  # [len(rows), len(cols)] float64
    row_members: tuple[tuple[str, ...], ...]
    col_members: tuple[tuple[str, ...], ...]
    row_axis: str  # what the rows are, e.g. "query feature"
    col_axis: str

    def to_dict(self) -> dict:
        return {
            "title": self.title,
            "row_axis": self.row_axis,
            "col_axis": self.col_axis,
            "rows": [{"label": r, "members": list(m)} for r, m in zip(self.rows, self.row_members, strict=True)],
            "cols": [{"label": c, "members": list(m)} for c, m in zip(self.cols, self.col_members, strict=True)],
            "values": self.values.tolist(),
        }

    def _repr_html_(self) -> str:
        from handattn.views.html import table_html

        return table_html(self)

    def __getitem__(self, key: tuple[str, str]) -> float:
        """table["consonants", "1"]: the entry by labels, or by any member name of a collapsed label."""
        row, col = key
        return float(self.values[_find(row, self.rows, self.row_members), _find(col, self.cols, self.col_members)])


@dataclass(frozen=True)
class HeadCircuits:
    head: str
    qk: Table
    ov: Table

    def to_dict(self) -> dict:
        return {"head": self.head, "qk": self.qk.to_dict(), "ov": self.ov.to_dict()}

    def _repr_html_(self) -> str:
        from handattn.views.html import circuits_html

        return circuits_html(self)


def circuits(weights: Weights) -> tuple[HeadCircuits, ...]:
    """The QK and OV→logits tables of every head, rows by features (if declared) or tokens."""
    by_token = weights.features == TOKENS  # the default one-hot: features are the tokens
    rows = TOKENS if by_token else weights.features
    basis = weights.W_E if by_token else torch.eye(len(rows), dtype=torch.float64)  # [rows, d_model]
    unit = "token" if by_token else "feature"
    out = []
    start = weights.d_model  # W_U's rows for the first head's values
    for head in weights.heads:
        q, k = basis @ head.W_Q, basis @ head.W_K  # [rows, d_head]
        qk = weights.scale * (q @ k.T)  # [rows, rows]  query row × key row
        W_U_h = weights.W_U[start : start + head.d_value]  # [d_value, d_vocab]
        start += head.d_value
        ov = basis @ head.W_V @ W_U_h  # [rows, d_vocab]
        out.append(
            HeadCircuits(
                head.name,
                collapse(f"QK circuit of {head.name}", qk, rows, rows, f"query {unit}", f"key {unit}"),
                collapse(f"OV circuit → logits of {head.name}", ov, rows, TOKENS, f"attended {unit}", "output token"),
            )
        )
    return tuple(out)


def collapse(
    title: str, matrix: torch.Tensor, rows: tuple[str, ...], cols: tuple[str, ...], row_axis: str, col_axis: str
) -> Table:
    """A Table of `matrix`, each named group of tokens merged where its rows (columns) are equal."""
    row_groups = _groups(rows, [matrix[i] for i in range(len(rows))])
    col_groups = _groups(cols, [matrix[:, j] for j in range(len(cols))])
    values = matrix[[ids[0] for _, ids in row_groups]][:, [ids[0] for _, ids in col_groups]] + 0.0  # no -0.0
    return Table(
        title=title,
        rows=tuple(label for label, _ in row_groups),
        cols=tuple(label for label, _ in col_groups),
        values=values,
        row_members=tuple(tuple(rows[i] for i in ids) for _, ids in row_groups),
        col_members=tuple(tuple(cols[i] for i in ids) for _, ids in col_groups),
        row_axis=row_axis,
        col_axis=col_axis,
    )


def _groups(names: tuple[str, ...], vectors: list[torch.Tensor]) -> list[tuple[str, list[int]]]:
    """(label, indices) in name order: the largest named groups whose members' vectors are all equal first."""
    where = {name: i for i, name in enumerate(names)}
    taken: dict[int, str] = {}
    for group, members in sorted(GROUPS.items(), key=lambda kv: -len(kv[1])):
        ids = [where.get(m) for m in members]
        if None in ids or any(i in taken for i in ids):
            continue
        if all(torch.equal(vectors[i], vectors[ids[0]]) for i in ids):
            taken |= {i: group for i in ids}
    out: list[tuple[str, list[int]]] = []
    seen: set[str] = set()
    for i, name in enumerate(names):
        group = taken.get(i)
        if group is None:
            out.append((name, [i]))
        elif group not in seen:
            seen.add(group)
            out.append((group, [j for j, g in taken.items() if g == group]))
    return out


def _find(name: str, labels: tuple[str, ...], members: tuple[tuple[str, ...], ...]) -> int:
    for i, (label, names) in enumerate(zip(labels, members, strict=True)):
        if name == label or name in names:
            return i
    raise KeyError(name)
