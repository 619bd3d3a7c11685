"""Helpers every test module shares: random weights of any shape, random token batches."""

from __future__ import annotations

import torch

from handattn import Head, Weights
from handattn.vocab import D_VOCAB, TOKENS

F64 = torch.float64


def random_weights(
    seed: int = 0,
    problem: str = "problem2",
    *,
    features: int | tuple[str, ...] = 5,
    one_hot: bool = False,
    widths: tuple[tuple[int, int], ...] = ((3, 2), (1, 4)),
    n_pos: int | None = 4,
    scale: float | None = 0.7,
    magnitude: float = 1.0,
    density: float = 1.0,
    named: bool = False,
) -> Weights:
    """Random weights: one head per (d_head, d_value) in `widths`, W_P with `n_pos` rows (None: no W_P).

    `features` is d_model (names f0…) or the names themselves; `one_hot` keeps the default W_E.
    Entries are normal × `magnitude`, each kept with probability `density`. `scale=None` draws one.
    `named` gives the heads names, dims and values and the weights two params, as a file would.
    """
    g = torch.Generator().manual_seed(seed)

    def rand(*shape: int) -> torch.Tensor:
        keep = torch.rand(*shape, generator=g, dtype=F64) < density
        return torch.randn(*shape, generator=g, dtype=F64) * magnitude * keep

    names = TOKENS if one_hot else features if isinstance(features, tuple) else ()
    d_model = len(names) if names else int(features)
    heads = []
    for i, (d_head, d_value) in enumerate(widths):
        labels = {}
        if named:
            labels = {
                "name": f"head {i}",
                "dims": tuple(f"q{j}" for j in range(d_head)),
                "values": tuple(f"v{i}.{j}".replace(".", "_") for j in range(d_value)),
            }
        heads.append(Head(rand(d_model, d_head), rand(d_model, d_head), rand(d_model, d_value), **labels))
    n_rows = d_model + sum(d_value for _, d_value in widths)
    return Weights(
        problem=problem,
        heads=heads,
        W_U=rand(n_rows, D_VOCAB),
        b_U=rand(D_VOCAB),
        W_E=None if one_hot else rand(D_VOCAB, d_model),
        W_P=None if n_pos is None else rand(n_pos, d_model),
        features=names,
        scale=float(torch.randn(1, generator=g, dtype=F64)) if scale is None else scale,
        params={"S": 2.5, "half": 0.5} if named else {},
    )


def random_tokens(seed: int, n: int, length: int) -> torch.Tensor:
    """[n, length] token ids drawn uniformly from the whole vocabulary (not only texts a problem makes)."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, D_VOCAB, (n, length), generator=g)
