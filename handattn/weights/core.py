"""`Weights`: everything a solution sets, as named float64 tensors, validated on creation.

Convention (TransformerLens): weights multiply on the right, `x @ W`.
    W_E [d_vocab, d_model]   token → residual features (default: one-hot, d_model = 28)
    W_P [n_pos, d_model]     position 1…n_pos → residual features (default: none, i.e. zero)
    per head: W_Q, W_K [d_model, d_head], W_V [d_model, d_value]
    W_U [d_model + Σ d_value, d_vocab], b_U [d_vocab]
W_U's rows are the residual features, then each head's value dimensions in head order.
Every axis has names, so files, tables and error messages speak of "consonant → c",
not of row 3, column 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from handattn.errors import Issue, WeightFileError, shown
from handattn.vocab import D_VOCAB, TOKENS
from handattn.weights.expr import MAX_ABS

MAX_FEATURES = 128  # d_model
MAX_HEADS = 16
MAX_HEAD_DIMS = 64  # d_head and d_value
MAX_NAME = 40  # characters in a feature, head or dimension name
MAX_POSITIONS = 512  # rows of W_P, and the longest text a check will score
NAME_FIX = f"use a short printable name without dots (at most {MAX_NAME} characters)"


def name_problem(name: object) -> str | None:
    """Why a feature, head or dimension name cannot be used, or None if it can.

    Names become TOML keys when saved and appear in every message, so they are short,
    printable (no newline or escape sequence can hide in one), and free of dots
    ("head.x" would read back as two keys).
    """
    if not isinstance(name, str) or not name:
        return "is empty or not text"
    if len(name) > MAX_NAME:
        return f"is {len(name):,} characters long (at most {MAX_NAME})"
    if not name.isprintable():
        return "holds a control or invisible character"
    if "." in name:
        return "holds a dot"
    return None


def _matrix(value, place: str) -> torch.Tensor:
    """A float64 copy of a tensor or nested list; a ragged or non-numeric one is a WeightFileError."""
    try:
        return torch.as_tensor(value, dtype=torch.float64).detach().clone()
    except (TypeError, ValueError, RuntimeError):
        raise WeightFileError(
            "weights", [Issue(place, "is not a rectangular array of numbers", "give every row the same length")]
        ) from None


@dataclass(frozen=True)
class Head:
    """One attention head. `dims` names the d_head query/key columns, `values` the d_value columns."""

    W_Q: torch.Tensor  # [d_model, d_head]
    W_K: torch.Tensor  # [d_model, d_head]
    W_V: torch.Tensor  # [d_model, d_value]
    name: str = ""  # default "h0", "h1", … by position
    dims: tuple[str, ...] = ()  # default "d0", "d1", …
    values: tuple[str, ...] = ()  # default "<name>_v0", … (unique across the model: they name W_U rows)

    @property
    def d_head(self) -> int:
        return self.W_Q.shape[-1]

    @property
    def d_value(self) -> int:
        return self.W_V.shape[-1]


@dataclass(frozen=True)
class Weights:
    """A complete solution for one problem; build it from tensors, or load it from a file."""

    problem: str
    heads: Sequence[Head] = ()
    W_U: torch.Tensor | None = None  # [d_model + Σ d_value, d_vocab], default zeros
    b_U: torch.Tensor | None = None  # [d_vocab], default zeros
    W_E: torch.Tensor | None = None  # [d_vocab, d_model], default one-hot
    W_P: torch.Tensor | None = None  # [n_pos, d_model], default no position embedding
    features: tuple[str, ...] = ()  # names of the d_model residual features
    scale: float = 1.0  # attn_scores = scale · q kᵀ; no hidden 1/sqrt(d_head)
    params: dict[str, float] = field(default_factory=dict)  # named constants the file declared
    warnings: tuple[Issue, ...] = field(default=(), compare=False)  # what the reader noticed but allowed

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: fill in defaults once, here
        if self.W_E is None:  # one-hot: one feature per token, named by the token
            set_(self, "W_E", torch.eye(D_VOCAB, dtype=torch.float64))
            set_(self, "features", tuple(self.features) or TOKENS)
        else:
            set_(self, "W_E", _matrix(self.W_E, "W_E"))
            width = self.W_E.shape[-1] if self.W_E.dim() == 2 else 0
            set_(self, "features", tuple(self.features) or tuple(f"f{i}" for i in range(width)))
        set_(self, "W_P", None if self.W_P is None else _matrix(self.W_P, "W_P"))
        heads = []
        for i, head in enumerate(self.heads):
            name = head.name or f"h{i}"
            W_Q, W_K, W_V = (_matrix(getattr(head, m), f"heads[{i}].{m}") for m in ("W_Q", "W_K", "W_V"))
            dims = tuple(head.dims) or tuple(f"d{j}" for j in range(W_Q.shape[-1] if W_Q.dim() == 2 else 0))
            values = tuple(head.values) or tuple(f"{name}_v{j}" for j in range(W_V.shape[-1] if W_V.dim() == 2 else 0))
            heads.append(Head(W_Q, W_K, W_V, name, dims, values))
        set_(self, "heads", tuple(heads))
        n_rows = len(self.features) + sum(len(h.values) for h in heads)
        W_U = torch.zeros(n_rows, D_VOCAB, dtype=torch.float64) if self.W_U is None else _matrix(self.W_U, "W_U")
        set_(self, "W_U", W_U)
        set_(self, "b_U", torch.zeros(D_VOCAB, dtype=torch.float64) if self.b_U is None else _matrix(self.b_U, "b_U"))
        try:
            set_(self, "scale", float(self.scale))
        except (TypeError, ValueError):
            raise WeightFileError("weights", [Issue("scale", f"is {self.scale!r}", "use a number")]) from None
        set_(self, "params", dict(self.params))
        set_(self, "warnings", tuple(self.warnings))
        issues = self.validate()
        if issues:
            raise WeightFileError("weights", issues)

    # -- sizes and names ---------------------------------------------------------------------------

    @property
    def d_model(self) -> int:
        return len(self.features)

    @property
    def unembed_rows(self) -> tuple[str, ...]:
        """Names of W_U's rows: the residual features, then every head's value dimensions."""
        return self.features + tuple(v for h in self.heads for v in h.values)

    def matrices(self) -> dict[str, torch.Tensor]:
        """Every weight tensor by its place, e.g. "heads[0].W_K" (what max_abs and tables walk)."""
        out = {"W_E": self.W_E, "W_U": self.W_U, "b_U": self.b_U}
        if self.W_P is not None:
            out["W_P"] = self.W_P
        for i, head in enumerate(self.heads):
            out |= {f"heads[{i}].W_Q": head.W_Q, f"heads[{i}].W_K": head.W_K, f"heads[{i}].W_V": head.W_V}
        return out

    def max_abs(self) -> float:
        """The largest absolute weight anywhere (scale included): a leaderboard tie-breaker."""
        return max([abs(self.scale)] + [float(m.abs().max()) for m in self.matrices().values() if m.numel()])

    # -- validation ----------------------------------------------------------------------------------

    def validate(self) -> list[Issue]:
        """Every way these weights cannot run in the model, each with its place and its fix."""
        issues: list[Issue] = []
        d_model = self.d_model
        shapes = {"W_E": (D_VOCAB, d_model), "W_U": (len(self.unembed_rows), D_VOCAB), "b_U": (D_VOCAB,)}
        if self.W_P is not None:
            shapes["W_P"] = (self.W_P.shape[0] if self.W_P.dim() == 2 else -1, d_model)
        for i, head in enumerate(self.heads):
            shapes[f"heads[{i}].W_Q"] = (d_model, len(head.dims))
            shapes[f"heads[{i}].W_K"] = (d_model, len(head.dims))
            shapes[f"heads[{i}].W_V"] = (d_model, len(head.values))
        for place, matrix in self.matrices().items():
            want = shapes[place]
            if tuple(matrix.shape) != want:
                issues.append(Issue(place, f"has shape {list(matrix.shape)}, expected {list(want)}", _shape_fix(place)))
            elif matrix.numel() and not torch.isfinite(matrix).all():
                issues.append(Issue(place, "holds NaN or infinity", "every entry must be a finite number"))
            elif matrix.numel() and matrix.abs().max() > MAX_ABS:
                issues.append(
                    Issue(place, f"holds {float(matrix.abs().max()):.3g}", f"keep every entry within ±{MAX_ABS:g}")
                )
        if not math.isfinite(self.scale) or abs(self.scale) > MAX_ABS:
            issues.append(Issue("scale", f"is {self.scale}", f"use a finite number within ±{MAX_ABS:g}"))
        issues += _check_names(self)
        return issues


def _shape_fix(place: str) -> str:
    if place.endswith(("W_Q", "W_K")):
        return "one row per residual feature, one column per dimension in the head's dims"
    if place.endswith("W_V"):
        return "one row per residual feature, one column per name in the head's values"
    if place == "W_U":
        return "one row per residual feature then per head value dimension, one column per token (28)"
    if place == "W_P":
        return "one row per position, one column per residual feature"
    return "one entry per token (28)" if place == "b_U" else "one row per token (28), one column per feature"


def _check_names(w: Weights) -> list[Issue]:
    issues = []
    sizes = [("features", len(w.features), MAX_FEATURES), ("heads", len(w.heads), MAX_HEADS)]
    if w.W_P is not None:
        sizes.append(("W_P positions", w.W_P.shape[0], MAX_POSITIONS))
    for i, head in enumerate(w.heads):
        sizes += [
            (f"heads[{i}].dims", len(head.dims), MAX_HEAD_DIMS),
            (f"heads[{i}].values", len(head.values), MAX_HEAD_DIMS),
        ]
    for place, size, limit in sizes:
        if size > limit:
            issues.append(Issue(place, f"has {size} entries", f"at most {limit} are allowed"))
    groups = [("features", w.features), ("head names", tuple(h.name for h in w.heads)), ("W_U rows", w.unembed_rows)]
    groups += [(f"heads[{i}].dims", h.dims) for i, h in enumerate(w.heads)]
    for place, names in groups:
        for name in names:
            problem = name_problem(name)
            if problem:
                issues.append(Issue(place, f"the name {shown(name)} {problem}", NAME_FIX))
        seen = set()
        for name in names:
            if name in seen:
                fix = "give every feature and value dimension its own name"
                issues.append(Issue(place, f"the name {shown(name)} is used twice", fix))
            seen.add(name)
    return issues
