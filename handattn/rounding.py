"""Rounding fitted weights to few significant digits, wherever that costs almost nothing.

Gradient descent leaves 17 significant digits on every entry; a file a person reads wants 2 or 3.
`round_entries` rounds every fitted matrix (heads, W_U, b_U; never the embedding or scale) to as
few significant digits as keep the KL within (1 + tolerance) × its value unrounded: first one
digit count for all of them, then fewer, matrix by matrix, while the budget allows (each count
found by bisection: a few dozen evaluations of the KL in all).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch

from handattn.weights import Weights

MAX_DIGITS = 17  # float64 round-trips at 17 significant digits: rounding to 17 changes nothing


def significant(matrix: torch.Tensor, digits: int) -> torch.Tensor:
    """Every entry rounded to `digits` significant decimal digits (as the text `f"{x:.{digits-1}e}"`)."""
    rounded = [float(f"{x:.{digits - 1}e}") for x in matrix.flatten().tolist()]
    return torch.tensor(rounded, dtype=torch.float64).reshape(matrix.shape)


def fitted_places(weights: Weights) -> list[str]:
    """The matrices gradient descent fits, by their place name (as in `Weights.matrices()`)."""
    places = [f"heads[{i}].{m}" for i in range(len(weights.heads)) for m in ("W_Q", "W_K", "W_V")]
    return places + ["W_U", "b_U"]


def with_digits(weights: Weights, digits: dict[str, int]) -> Weights:
    """The weights with each named fitted matrix rounded to its number of significant digits."""
    matrices = weights.matrices()
    new = {place: significant(matrices[place], d) for place, d in digits.items()}
    heads = [
        replace(h, **{m: new.get(f"heads[{i}].{m}", getattr(h, m)) for m in ("W_Q", "W_K", "W_V")})
        for i, h in enumerate(weights.heads)
    ]
    return replace(weights, heads=heads, W_U=new.get("W_U", weights.W_U), b_U=new.get("b_U", weights.b_U))


def round_entries(
    weights: Weights, kl: Callable[[Weights], float], tolerance: float = 0.01
) -> tuple[Weights, dict[str, int]]:
    """Round the fitted matrices to few digits at a cost of at most `tolerance` × KL (relative).

    `kl(weights)` measures the cost (the training KL: never the public set). Returns the rounded
    weights and the digits kept per matrix.
    """
    budget = kl(weights) * (1 + tolerance)
    places = fitted_places(weights)

    def fits(digits: dict[str, int]) -> bool:
        return kl(with_digits(weights, digits)) <= budget

    digits = dict.fromkeys(places, _fewest(lambda d: fits(dict.fromkeys(places, d)), MAX_DIGITS))
    for place in places:  # then fewer digits where one matrix allows it
        digits[place] = _fewest(lambda d: fits({**digits, place: d}), digits[place])  # noqa: B023
    return with_digits(weights, digits), digits


def _fewest(fits: Callable[[int], bool], known: int) -> int:
    """The fewest digits d ≤ known with fits(d), by bisection (known fits, or is MAX_DIGITS).

    The cost is not exactly monotone in d, so bisection may miss a smaller d; it never
    returns one that does not fit.
    """
    lo, hi = 1, known
    while lo < hi:
        mid = (lo + hi) // 2
        if fits(mid):
            hi = mid
        else:
            lo = mid + 1
    return hi
