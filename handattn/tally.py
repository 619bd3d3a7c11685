"""What every scoring path hands back, and the two computations they share: KL per row and exact sums.

A `Tally` lists groups of real positions that share their target row and the model's
prediction, so they share their KL and argmax hit; the fast path groups thousands of
positions at once, the others make every position its own group. `exact_sum` adds a
value repeated `count` times, correctly rounded, so a grouped tally gives the same
mean as `math.fsum` over every position, to the last bit.

Shapes: G groups, R target rows, V = 28, N texts, P predicted positions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from handattn.evalset import EvalSet


@dataclass(frozen=True)
class Tally:
    per_position: torch.Tensor  # [N, P] KL in nats, clamped at 0, 0 at padding
    kl: torch.Tensor  # [G] KL of each group, clamped at 0
    hit: torch.Tensor  # [G] bool: the model's argmax is a most-likely true token
    count: torch.Tensor  # [G] int64 positions in each group
    row: torch.Tensor  # [G] int64 target row of each group (its context is the row's kind)


class Targets:
    """The weight-free half of the KL, precomputed once per evaluation set from its distinct rows."""

    def __init__(self, eval_set: EvalSet):
        self.p = eval_set.target_rows  # [R, V]
        self.log_p = torch.where(self.p > 0, self.p, 1.0).log()  # [R, V], 0 where p = 0
        self.best = self.p.max(-1).values  # [R] probability of a most-likely token

    def kl_and_hits(self, rows: torch.Tensor, log_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """rows [G] (target rows), log_q [G, V] → KL(p ‖ q) [G] clamped at 0, argmax hits [G].

        log_q is a log_softmax of finite logits, hence finite: where p = 0 the term is 0 · finite = 0.
        """
        p = self.p.index_select(0, rows)  # [G, V]
        kl = (p * (self.log_p.index_select(0, rows) - log_q)).sum(-1).clamp(min=0.0)  # rounding can dip to -1e-17
        hit = p.gather(-1, log_q.argmax(-1, keepdim=True))[:, 0] == self.best.index_select(0, rows)
        return kl, hit


def exact_sum(values: torch.Tensor, count: torch.Tensor | None = None) -> float:
    """Σ count·value over float64 values [G], correctly rounded: math.fsum of each value repeated count times."""
    return exact_sums(values[:, None], count)[0]


def exact_sums(values: torch.Tensor, count: torch.Tensor | None = None) -> list[float]:
    """exact_sum of every column of values [G, C]: C correctly rounded sums.

    Each value is split (Veltkamp) into two halves of at most 27 significant bits, and each count
    into 26-bit digits, so every partial product is a float64 exactly and fsum rounds only once.
    """
    if count is None or bool((count == 1).all()):
        return [math.fsum(column) for column in values.T.tolist()]
    count = count[:, None]  # [G, 1]
    if not torch.isfinite(values).all():  # inf (a baseline that rules out a possible token) or nan
        return [math.fsum(column) for column in (values * count).T.tolist()]
    split = values * 134217729.0  # 2**27 + 1
    high = split - (split - values)
    parts = [high, values - high]  # value = high + low exactly
    terms, rest = [], count
    for scale in (1.0, 2.0**26, 2.0**52):
        digit = (rest % (1 << 26)).double()
        terms += [part * digit * scale for part in parts]  # exact: 27 + 26 bits, then a power of 2
        rest = rest // (1 << 26)
    return [math.fsum(column) for column in torch.cat(terms).T.tolist()]
